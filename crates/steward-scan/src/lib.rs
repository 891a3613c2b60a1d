//! steward's secret scanner: finds copies of secrets in files so they can be matched to
//! the inventory by fingerprint.
//!
//! - [`rules`]: the rule format (TOML, embedded in the binary; user rules from a
//!   directory), each rule with positive and negative examples that tests check.
//! - [`matcher`]: one pass over each blob with all rules at once — an Aho-Corasick
//!   automaton over the rules' keywords finds candidate places, and only the rules whose
//!   keyword occurs there run their regular expression, in a window around it.
//! - `keywords`: that keyword pass: the Aho-Corasick DFA as a flat table, walked as
//!   interleaved lanes over each blob.
//! - [`checks`]: what separates a secret from a look-alike: entropy, placeholders and
//!   documentation values, provider checksums.
//! - [`source`]: inputs (directories and files), read in parallel with rayon.
//! - [`archive`]: zip, tar and gzip archives, nested, expanded in memory under limits.
//! - [`exports`]: Slack workspace exports and Jira JSON, scanned message by message.
//! - [`staged`]: the staged (index) content of a repository, for pre-commit hooks.
//! - [`git`]: every blob of every commit of every ref (via gix), each distinct blob once.
//! - [`finding`]: matches grouped into one finding per distinct secret (keyed
//!   fingerprint, redacted preview) with all its locations.
//!
//! The engine is synchronous and does no printing; plain secrets live only in memory
//! until they are fingerprinted, unless a caller asks for them explicitly.

pub mod archive;
pub mod checks;
pub mod exports;
pub mod finding;
pub mod git;
mod keywords;
pub mod matcher;
pub mod rules;
pub mod source;
pub mod staged;

pub use finding::{Finding, FindingLocation, GitOrigin, ScanReport, ScanStats};
pub use matcher::{Match, Matcher};
pub use rules::{Rule, RuleError, RuleSet};
pub use source::{Progress, ScanOptions, scan_paths};
