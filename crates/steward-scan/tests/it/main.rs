//! Tests of the scanner: every rule's own examples, precision on look-alikes, sources.

mod archives;
mod examples;
mod exports;
mod history;
mod precision;
mod robustness;
mod scanning;
