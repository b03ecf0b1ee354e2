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
    /// Print only the verdict line (and no progress bars).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Checks the target is known to fail: a TOML file of
    /// `"check id glob" = "reason"` lines. A listed failure is reported as
    /// `skip` with its reason; a listed check that passes is a `fail`.
    #[arg(long, global = true, value_name = "FILE")]
    pub known_failures: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How `verify` reaches the Cloudflare API.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The environment variable holding the Cloudflare API token
    /// (overrides the config's `api_token_env`).
    #[arg(long, value_name = "VAR")]
    pub api_token_env: Option<String>,
    /// The environment variable holding the Cloudflare account id
    /// (overrides the config's `account_id_env`).
    #[arg(long, value_name = "VAR")]
    pub account_id_env: Option<String>,
    /// The Cloudflare API base URL (overrides the config's `api_base`).
    #[arg(long, value_name = "URL")]
    pub api_base: Option<url::Url>,
    /// The longest `Retry-After` to honour on HTTP 429, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub max_retry_wait: u64,
}

/// Which conform checks run.
#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// Run only check ids matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Skip check ids matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild the Worker and compare it with the deployed bundle.
    Verify {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run the black-box suites against the live Worker.
    Conform {
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Verify and conform in one run: one report and an attestation.json
    /// (in-toto) over the verified modules, the suite and every check.
    Audit {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        select: SelectArgs,
    },
    /// List every check id with its requirement ids.
    List,
    /// Run everything against the reference Worker on this machine; writes
    /// every format.
    Demo,
}
