//! End-to-end tests of the `steward` binary: real processes, real SQLite files and (when
//! `STEWARD_TEST_PG_URL` is set, always under `scripts/test`) a real PostgreSQL.

mod bad_input;
mod demo;
mod harness;
mod inventory_files;
mod postgres_tls;
mod scan;
mod workflow;
