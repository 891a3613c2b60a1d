//! The conformance suite: every test runs against SQLite and against PostgreSQL, each on
//! a fresh database. PostgreSQL comes from `STEWARD_TEST_PG_URL` (set by `scripts/test`);
//! without it the PostgreSQL half is skipped with a message, except under `CI=true`,
//! where a missing PostgreSQL fails the run.

mod conformance;
mod harness;
mod migrations;
mod sqlite_build;
mod tamper;
#[cfg(target_os = "linux")]
mod writeback;
