//! The binary: parse, run the command, print the error if it could not
//! run; exit 0 pass / 1 fail / 2 error.
#![forbid(unsafe_code)]

mod bars;
mod cli;
mod commands;
mod error;
mod scrub;
mod summary;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // A panic's message may quote what the target sent: printed scrubbed.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("flareproof bug: {}", scrub::text(&info.to_string()));
    }));
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            error.eprint();
            ExitCode::from(error.exit_code())
        }
    }
}
