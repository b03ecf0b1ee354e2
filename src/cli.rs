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
    Verify {
        /// The environment variable holding the Cloudflare API token
        /// (overrides the config's `api_token_env`).
        #[arg(long, value_name = "VAR")]
        api_token_env: Option<String>,
        /// The environment variable holding the Cloudflare account id
        /// (overrides the config's `account_id_env`).
        #[arg(long, value_name = "VAR")]
        account_id_env: Option<String>,
        /// The Cloudflare API base URL (overrides the config's `api_base`).
        #[arg(long, value_name = "URL")]
        api_base: Option<url::Url>,
        /// The longest `Retry-After` to honour on HTTP 429, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        max_retry_wait: u64,
    },
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
