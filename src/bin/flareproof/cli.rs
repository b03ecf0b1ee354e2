//! Command-line definitions. Each command takes the options it honours and
//! no others: `list` writes no report, `demo` reads no config.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use flareproof::report::Format;

/// Verify that a deployed Cloudflare auth Worker is the published one, and
/// that it keeps its contract.
#[derive(Debug, Parser)]
#[command(name = "flareproof", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild the Worker and compare it with the deployed bundle.
    Verify(VerifyArgs),
    /// Run the black-box suites against the live Worker.
    Conform(ConformArgs),
    /// Verify and conform in one run: one report and an attestation.json
    /// (in-toto) over the verified modules, the suite and every check.
    Audit(AuditArgs),
    /// List every check id with its requirement ids.
    List(ListArgs),
    /// Run everything against the reference Worker on this machine; writes
    /// every format.
    ///
    /// It reads no config: its target is the reference Worker it starts
    /// (Node.js 20 and npm on PATH, from the repository root).
    Demo(DemoArgs),
    /// Check a signed attestation: its signature offline, and with a
    /// config whether what is live is still what it attests.
    Attestation(AttestationArgs),
    /// Poll the active deployment and verify every change (a new
    /// deployment, a new version, a settings or observer change).
    Watch(WatchArgs),
    /// Compare two reports of the same suite: per check, the status change
    /// and the measurements side by side, new failures first. Exit 1 when
    /// NEW fails a check BASE did not.
    Diff(DiffArgs),
    /// Merge reports of one suite (the shards of a CI matrix) into one:
    /// several targets make a fleet summary, worst first; one target from
    /// several places (`--vantage-label`) keeps each place's measurements.
    Merge(MergeArgs),
    /// Write a commented `flareproof.toml` for a tenant: what the wrangler
    /// config says, the rest asked on a terminal or given as flags. Never
    /// writes a secret, only the names of the variables holding them.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub sign: SignArgs,
}

#[derive(Debug, Args)]
pub struct ConformArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Print the checks that would run, the request budget and the
    /// expected duration; send nothing, write no report.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub sign: SignArgs,
}

#[derive(Debug, Args)]
pub struct AttestationArgs {
    #[command(subcommand)]
    pub command: AttestationCommand,
}

#[derive(Debug, Subcommand)]
pub enum AttestationCommand {
    /// Check an `attestation.dsse.json`'s signature and statement, and that
    /// the run it attests passed; with `--config`, read the live deployment
    /// and say whether every version with traffic is still among the
    /// attested ones, with the attested settings. Exit 0 a good signature
    /// over a passing result (and unchanged), 1 a bad signature, a failed
    /// attested result or a change, 2 could not tell.
    Verify(AttestationVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AttestationVerifyArgs {
    /// The DSSE envelope (`attestation.dsse.json`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The signer's public key (SPKI PEM, ECDSA P-256 or Ed25519).
    #[arg(long, value_name = "PUBLIC.pem")]
    pub key: PathBuf,
    /// The target config: compare the attestation with what is live.
    /// Without it only the signature and the statement are checked
    /// (offline).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Exit 0 for a good signature over a failed result (verdict `fail` or
    /// `error`, verificationResult `FAILED`), which otherwise exits 1: to
    /// check that a failed run's evidence is authentic, never to gate a
    /// deploy. The output still says the attested result failed.
    #[arg(long)]
    pub allow_failed_result: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub sign: SignArgs,
    /// Seconds between two reads of the deployment, its settings, observers
    /// and ingress. A read is at most 9 requests; intervals under 5 s are
    /// clamped to 5 s, so polls stay within 600 of the API's 1,200 requests
    /// per 5 minutes.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub interval: u64,
    /// Read once, compare with `--state`, verify if it changed, and exit
    /// (the cron form): 0 unchanged since a pass, or pass; 1 fail (or
    /// unchanged since a fail); 2 could not tell (the state file untouched).
    #[arg(long, requires = "state")]
    pub once: bool,
    /// The deployment last seen and its verify verdict (JSON), written
    /// (atomically) only after a verdict. Absent: a first run, verified.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Stop at the first verify run that fails, exit 1. (A run that could
    /// not tell, like an API outage, is retried with backoff.)
    #[arg(long)]
    pub exit_on_fail: bool,
    /// Run `audit` (verify and conform) on a change instead of `verify`.
    #[arg(long)]
    pub conform: bool,
    /// One JSON object per event on stdout instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The config to write.
    #[arg(long, default_value = "flareproof.toml", value_name = "FILE")]
    pub config: PathBuf,
    /// The Worker's wrangler config (default: the first of wrangler.jsonc,
    /// wrangler.json, wrangler.toml in the current folder).
    #[arg(long, value_name = "FILE")]
    pub wrangler: Option<PathBuf>,
    /// The wrangler environment that is deployed (`env.<NAME>`).
    #[arg(long, value_name = "NAME")]
    pub wrangler_env: Option<String>,
    /// Overwrite an existing config.
    #[arg(long)]
    pub force: bool,
    /// Never prompt: fail naming every value neither a flag nor a default
    /// gives (also when stdin is not a terminal).
    #[arg(long)]
    pub non_interactive: bool,
    #[command(flatten)]
    pub answers: InitAnswers,
}

/// One flag per question `init` asks (see `flareproof::init::questions`).
#[derive(Debug, Default, Args)]
pub struct InitAnswers {
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
    #[arg(long, value_name = "EMAIL")]
    pub free_email: Option<String>,
    #[arg(long, value_name = "VAR")]
    pub free_password_env: Option<String>,
    #[arg(long, value_name = "EMAIL")]
    pub free2_email: Option<String>,
    #[arg(long, value_name = "VAR")]
    pub free2_password_env: Option<String>,
    #[arg(long, value_name = "EMAIL")]
    pub pro_email: Option<String>,
    #[arg(long, value_name = "VAR")]
    pub pro_password_env: Option<String>,
    #[arg(long, value_name = "EMAIL")]
    pub admin_email: Option<String>,
    #[arg(long, value_name = "VAR")]
    pub admin_password_env: Option<String>,
    #[arg(long, value_name = "VAR")]
    pub service_key_env: Option<String>,
    #[arg(long, value_name = "SECONDS")]
    pub window_s: Option<String>,
    #[arg(long, value_name = "N")]
    pub limit_anonymous: Option<String>,
    #[arg(long, value_name = "N")]
    pub limit_free: Option<String>,
    #[arg(long, value_name = "N")]
    pub limit_pro: Option<String>,
    #[arg(long, value_name = "SECONDS")]
    pub revocation_bound_s: Option<String>,
}

impl InitAnswers {
    /// The answers given, by flag name.
    pub fn given(&self) -> Vec<(&'static str, &str)> {
        let all = [
            ("base-url", &self.base_url),
            ("origin", &self.origin),
            ("free-email", &self.free_email),
            ("free-password-env", &self.free_password_env),
            ("free2-email", &self.free2_email),
            ("free2-password-env", &self.free2_password_env),
            ("pro-email", &self.pro_email),
            ("pro-password-env", &self.pro_password_env),
            ("admin-email", &self.admin_email),
            ("admin-password-env", &self.admin_password_env),
            ("service-key-env", &self.service_key_env),
            ("window-s", &self.window_s),
            ("limit-anonymous", &self.limit_anonymous),
            ("limit-free", &self.limit_free),
            ("limit-pro", &self.limit_pro),
            ("revocation-bound-s", &self.revocation_bound_s),
        ];
        all.into_iter()
            .filter_map(|(flag, v)| v.as_deref().map(|v| (flag, v)))
            .collect()
    }
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier report (`report.json`, or the folder holding it).
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The later report (`report.json`, or the folder holding it).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Where the diff is written (`diff.md`, `diff.html`); `-` prints the
    /// Markdown to stdout.
    #[arg(long, default_value = "-", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards: `report.json` files, folders holding one, or folders
    /// whose sub-folders hold them (as a CI job's downloaded artifacts).
    #[arg(value_name = "DIR_OR_REPORT", required = true)]
    pub shards: Vec<PathBuf>,
    /// Where the merged report is written (`-` prints the first format to
    /// stdout).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Report formats to write (repeatable); `json` is always written.
    #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
    pub format: Vec<Format>,
    /// How many shards there must be (the matrix's cells): fewer, as when
    /// a cell wrote no report, or more is an error, never a merge of the
    /// rest.
    #[arg(long, value_name = "N")]
    pub expect: Option<usize>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List the suite the config's `[profile] suite` names (default: the
    /// built-in `flarelink-auth/v1`).
    #[arg(long, value_name = "FILE", conflicts_with = "suite")]
    pub config: Option<PathBuf>,
    /// List the plan in this suite file (a TOML plan like
    /// `suites/flarelink-auth-v1.toml`).
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where reports are written: the demo writes into `DIR/demo`.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The target config, for the commands that read one.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The target config.
    #[arg(long, default_value = "flareproof.toml", value_name = "FILE")]
    pub config: PathBuf,
}

/// Where a checking command's report goes, and in which formats.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Where reports are written (`-` prints the first format to stdout).
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    /// Report formats to write (repeatable); `json` is always written.
    #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
    pub format: Vec<Format>,
    /// Where this run is made from (e.g. a CI runner's region), recorded in
    /// the report so that `merge` keeps each place's measurements apart:
    /// 1 to 64 ASCII letters, digits, `.`, `_` or `-`.
    #[arg(long, value_name = "LABEL", value_parser = vantage_label)]
    pub vantage_label: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

fn vantage_label(label: &str) -> Result<String, String> {
    if flareproof::merge::valid_label(label) {
        Ok(label.to_owned())
    } else {
        Err(
            "1 to 64 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or digit"
                .to_owned(),
        )
    }
}

/// What every command that runs checks takes.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Print only the verdict line (and no progress bars).
    #[arg(long, short)]
    pub quiet: bool,
    /// Checks the target is known to fail: a TOML file of
    /// `"check id glob" = "reason"` lines. A listed failure is reported as
    /// `skip` with its reason; a check listed by its exact id that passes
    /// is a `fail` (remove it from the list); a glob never fails a check.
    #[arg(long, value_name = "FILE")]
    pub known_failures: Option<PathBuf>,
    /// A report of an earlier run (`report.json` or its folder): also write
    /// the diff against it (`diff.md`, `diff.html`) beside the report.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

/// How an attestation is signed: `attestation.dsse.json` (and the
/// verification summary's envelope) beside `attestation.json`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// Sign with this private key (PKCS#8 PEM, ECDSA P-256 or Ed25519,
    /// unencrypted).
    #[arg(long, value_name = "FILE", conflicts_with = "sign_key_env")]
    pub sign_key: Option<PathBuf>,
    /// Sign with the PKCS#8 PEM key held in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub sign_key_env: Option<String>,
}

/// How `verify` reaches the Cloudflare API.
#[derive(Debug, Clone, Args)]
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
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Run only check ids matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Skip check ids matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,
}

/// `--format`: the names of [`Format::ALL`], each with what it is for.
fn format_parser() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(
        Format::ALL.map(|format| PossibleValue::new(format.name()).help(format.about())),
    )
    .map(|name| {
        name.parse::<Format>()
            .expect("clap passes only the names of Format::ALL")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn format_takes_every_name_and_repeats() {
        let cli = Cli::try_parse_from([
            "flareproof",
            "conform",
            "--format",
            "sarif",
            "--format=html",
        ])
        .unwrap();
        let Command::Conform(args) = cli.command else {
            panic!("parsed {cli:?}")
        };
        assert_eq!(args.report.format, [Format::Sarif, Format::Html]);
        for format in Format::ALL {
            assert!(
                Cli::try_parse_from(["flareproof", "verify", "--format", format.name()]).is_ok()
            );
        }
        assert!(Cli::try_parse_from(["flareproof", "verify", "--format", "yaml"]).is_err());
    }

    #[test]
    fn init_has_a_flag_for_every_question_and_no_other() {
        let command = Cli::command();
        let init = command.find_subcommand("init").unwrap();
        let flags: Vec<&str> = init.get_arguments().filter_map(|a| a.get_long()).collect();
        for q in flareproof::init::questions(None) {
            assert!(flags.contains(&q.flag.as_str()), "no --{}", q.flag);
        }
        let answers = InitAnswers {
            limit_pro: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(answers.given(), [("limit-pro", "1")]);
        // Every flag `given` names is a question.
        let questions: Vec<String> = flareproof::init::questions(None)
            .into_iter()
            .map(|q| q.flag)
            .collect();
        let cli = Cli::try_parse_from(
            std::iter::once("flareproof".to_owned())
                .chain(["init".to_owned()])
                .chain(
                    questions
                        .iter()
                        .flat_map(|f| [format!("--{f}"), "x".to_owned()]),
                ),
        )
        .unwrap();
        let Command::Init(args) = cli.command else {
            panic!()
        };
        let given: Vec<&str> = args.answers.given().into_iter().map(|(f, _)| f).collect();
        assert_eq!(given, questions);
    }

    #[test]
    fn demo_takes_no_config_and_list_no_report_options() {
        assert!(Cli::try_parse_from(["flareproof", "demo", "--config", "x.toml"]).is_err());
        assert!(Cli::try_parse_from(["flareproof", "demo", "--format", "html"]).is_err());
        assert!(Cli::try_parse_from(["flareproof", "list", "--out", "-"]).is_err());
        assert!(
            Cli::try_parse_from(["flareproof", "list", "--config", "a", "--suite", "b"]).is_err(),
            "--config and --suite name the plan two ways"
        );
        assert!(Cli::try_parse_from(["flareproof", "demo", "--out", "o", "-q"]).is_ok());
    }
}
