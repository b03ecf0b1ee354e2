//! Command-line definitions.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::report::Format;

/// Verify that a deployed Cloudflare auth Worker is the published one, and
/// that it keeps its contract.
#[derive(Debug, Parser)]
#[command(name = "flareproof", version, about, long_about = None)]
pub struct Cli {
    /// The target config.
    #[arg(
        long,
        global = true,
        default_value = "flareproof.toml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Where reports are written (`-` prints the first format to stdout).
    #[arg(long, global = true, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    /// Report formats to write (repeatable); `json` is always written.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub format: Vec<Format>,
    /// Print only the verdict line.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild the Worker and compare it with the deployed bundle.
    Verify,
    /// Run the black-box suites against the live Worker.
    Conform {
        /// Run only check ids matching this glob (repeatable).
        #[arg(long, value_name = "GLOB")]
        only: Vec<String>,
        /// Skip check ids matching this glob (repeatable).
        #[arg(long, value_name = "GLOB")]
        skip: Vec<String>,
    },
    /// Verify and conform in one run, with one report.
    Audit,
    /// List every check id with its requirement ids.
    List,
    /// Run everything against the reference Worker on this machine.
    Demo,
}
