//! The `steward` command line: argument definitions, settings resolution and one module
//! per command (`cmd_*`). It prints; the libraries underneath do not. Business rules live
//! in `steward-core`, storage in `steward-store`.

pub mod cli;
mod cmd_audit;
mod cmd_credential;
mod cmd_demo;
mod cmd_findings;
mod cmd_init;
mod cmd_inventory_file;
mod cmd_nhi;
mod cmd_party;
mod cmd_scan;
pub mod demo;
pub mod inventory_file;
pub mod keys;
mod output;
pub mod records;
pub mod sarif;
pub mod settings;

use cli::{Cli, Command};
use std::process::ExitCode;
use steward_core::DomainError;
use steward_store::StoreError;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a well-formed command that could not be carried out (unknown identity,
/// illegal transition, duplicate, database failure, audit verification failure).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code for a malformed command line or input file.
pub const EXIT_USAGE: u8 = 2;

/// A malformed command line or input: exits with [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for a usage error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The exit code for an error: 2 for malformed input, 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some() {
        return EXIT_USAGE;
    }
    match error.downcast_ref::<StoreError>() {
        Some(StoreError::Domain(DomainError::InvalidField { .. } | DomainError::InvalidValue { .. }))
        | Some(StoreError::ImportRecord { .. }) => EXIT_USAGE,
        _ => EXIT_RUNTIME,
    }
}

/// One line describing an error and its causes.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text.replace('\n', " ")
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let globals = &cli.globals;
    match &cli.command {
        Command::Init(args) => cmd_init::run(globals, args),
        Command::Demo(args) => cmd_demo::run(globals, args),
        Command::Party(command) => cmd_party::run(globals, command),
        Command::Nhi(command) => cmd_nhi::run(globals, command),
        Command::Credential(command) => cmd_credential::run(globals, command),
        Command::Import(args) => cmd_inventory_file::import(globals, args),
        Command::Export(args) => cmd_inventory_file::export(globals, args),
        Command::Audit(command) => cmd_audit::run(globals, command),
        Command::Scan(args) => cmd_scan::run(globals, args),
        Command::Findings(args) => cmd_findings::run(globals, args),
    }
}

/// A command-line error as clap renders it, on one line: its message and any lines that
/// list what is missing, without the usage block and tips (errors are one line; a usage
/// line would also show a flag set from the environment as if it were missing).
pub fn one_line_usage_error(rendered: &str) -> String {
    let mut blocks = rendered.split("\n\n");
    let message = blocks.next().unwrap_or(rendered);
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let tips = blocks.filter(|block| block.trim_start().starts_with("tip:"));
    let mut line = std::iter::once(message)
        .chain(tips)
        .flat_map(str::lines)
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    line.push_str(" (see --help)");
    line
}
