//! The binary: parse, run the command, print the error if it could not
//! run; exit 0 pass / 1 fail / 2 could not tell (every code in `exit`).
#![forbid(unsafe_code)]

mod bars;
mod cli;
mod commands;
mod error;
mod exit;
mod scrub;
mod summary;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // A panic's message may quote what the target sent: printed scrubbed.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("flareproof bug: {}", scrub::text(&info.to_string()));
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => {
            let _ = usage.print();
            return exit::of_usage(&usage).into();
        }
    };
    match commands::run(cli.command) {
        Ok(exit) => exit.into(),
        Err(error) => {
            error.eprint();
            error.exit().into()
        }
    }
}
