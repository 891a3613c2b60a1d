//! The `steward` binary: parses arguments, runs the command, maps errors to exit codes.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = steward_cli::cli::Cli::parse();
    match steward_cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", steward_cli::describe_error(&error));
            ExitCode::from(steward_cli::exit_code(&error))
        }
    }
}
