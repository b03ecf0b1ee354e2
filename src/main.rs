//! The binary: parse, run, print, exit 0 pass / 1 fail / 2 error.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use flareproof::cli::{Cli, Command};
use flareproof::cloudflare::RetryPolicy;
use flareproof::conform::{Conform, Selection};
use flareproof::model::{Report, Status};
use flareproof::plan::Plan;
use flareproof::report::{Format, attestation};
use flareproof::target::{TargetConfig, load_verify};
use flareproof::verify::Verify;

/// An error for the user: the chain, and what to do about it.
struct Failure {
    error: Box<dyn std::error::Error>,
    hint: Option<String>,
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            error: Box::new(error),
            hint: None,
        }
    }
}

fn hint(error: impl std::error::Error + 'static, hint: impl Into<String>) -> Failure {
    Failure {
        error: Box::new(error),
        hint: Some(hint.into()),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report_failure(e.into()),
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => report_failure(failure),
    }
}

fn report_failure(failure: Failure) -> ExitCode {
    print_error(failure.error.as_ref(), failure.hint.as_deref());
    ExitCode::from(2)
}

/// `error:`, a `caused by:` line per source, then the hint, to stderr.
fn print_error(error: &dyn std::error::Error, hint: Option<&str>) {
    eprintln!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

async fn run(cli: &Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::List => {
            let plan = Plan::builtin("flarelink-auth/v1")?;
            let width = plan
                .checks
                .iter()
                .map(|c| c.id.as_str().len())
                .max()
                .unwrap_or(0);
            for check in &plan.checks {
                println!(
                    "{:width$}  {}",
                    check.id.as_str(),
                    check.requirements.join(", ")
                );
            }
            Ok(0)
        }
        Command::Demo => {
            eprintln!("starting the reference auth Worker (workerd via Miniflare)…");
            let run = flareproof::demo::run().await.map_err(|e| {
                hint(
                    e,
                    "the demo needs Node.js 20 and npm on PATH; run it from the repository root",
                )
            })?;
            eprintln!(
                "reference Worker ready in {} ms; {} requests sent",
                run.fixture_ready.as_millis(),
                run.requests
            );
            let dir = cli.out.join("demo");
            let code = finish(cli, &run.report, &dir)?;
            let path = dir.join("attestation.json");
            fs_err::write(&path, attestation::render(&run.attestation))?;
            eprintln!("wrote {}", path.display());
            Ok(code)
        }
        Command::Conform { only, skip } => {
            let config = TargetConfig::load(&cli.config).map_err(|e| {
                hint(
                    e,
                    "pass `--config FILE`; the README shows the target config's shape",
                )
            })?;
            let path = cli.config.display().to_string();
            let target = config
                .resolve(&path, |var| std::env::var(var).ok())
                .map_err(|e| hint(e, "export the variable, or rename it in the config"))?;
            let plan = Plan::builtin(&target.profile.suite)?;
            let conform = Conform {
                target: Arc::new(target),
                plan: Arc::new(plan),
                selection: Selection::new(only, skip)?,
            };
            let (report, _) = conform.run().await?;
            finish(cli, &report, &cli.out)
        }
        Command::Verify {
            api_token_env,
            account_id_env,
            api_base,
            max_retry_wait,
        } => {
            let (profile, mut target) = load_verify(&cli.config).map_err(|e| {
                hint(
                    e,
                    "pass `--config FILE` with a `[verify]` section (`source`, `recipe`, \
                     `script`, …); the README shows its shape",
                )
            })?;
            if let Some(var) = api_token_env {
                target.api_token_env = var.clone();
            }
            if let Some(var) = account_id_env {
                target.account_id_env = var.clone();
            }
            if let Some(url) = api_base {
                target.api_base = url.clone();
            }
            let path = cli.config.display().to_string();
            let credentials = target
                .credentials(&path, |var| std::env::var(var).ok())
                .map_err(|e| {
                    hint(
                        e,
                        format!(
                            "set `{}` (an API token with \"Workers Scripts Read\") and `{}`, or \
                             pass `--api-token-env` / `--account-id-env`",
                            target.api_token_env, target.account_id_env
                        ),
                    )
                })?;
            let plan = Plan::builtin(&profile.suite)?;
            if !cli.quiet {
                eprintln!(
                    "rebuilding `{}` twice and reading script `{}` from {}…",
                    target.recipe.source.display(),
                    target.script,
                    target.api_base
                );
            }
            let token_env = target.api_token_env.clone();
            let verify = Verify {
                target,
                plan: Arc::new(plan),
                credentials,
                retry: RetryPolicy {
                    retry_after_cap: Duration::from_secs(*max_retry_wait),
                    ..RetryPolicy::default()
                },
            };
            let run = verify.run().await.map_err(|e| {
                hint(
                    e,
                    "check `api_base` in the `[verify]` section (or `--api-base`)",
                )
            })?;
            let code = finish(cli, &run.report, &cli.out)?;
            let path = cli.out.join("attestation.json");
            fs_err::write(&path, attestation::render(&run.attestation))?;
            eprintln!("wrote {}", path.display());
            if let Some(error) = &run.api_error {
                print_error(error.as_ref(), Some(&error.hint(&token_env)));
            }
            Ok(code)
        }
        Command::Audit => Err(hint(
            Message("this command is not implemented yet".to_owned()),
            "`flareproof verify`, `flareproof conform` and `flareproof demo` work today",
        )),
    }
}

/// Writes the report in every requested format, prints the summary, and
/// returns the exit code of the verdict.
fn finish(cli: &Cli, report: &Report, dir: &Path) -> Result<u8, Failure> {
    let mut formats = cli.format.clone();
    formats.push(Format::Json);
    formats.sort();
    formats.dedup();
    fs_err::create_dir_all(dir)?;
    let mut written = Vec::new();
    for format in formats {
        let path = dir.join(format.file_name());
        fs_err::write(&path, format.render(report))?;
        written.push(path);
    }
    if !cli.quiet {
        for check in &report.checks {
            let status = check.status.as_str().to_uppercase();
            match check.status {
                Status::Pass => println!("{status:>5} {}", check.id),
                _ => println!("{status:>5} {}: {}", check.id, check.summary),
            }
        }
    }
    let c = report.counts;
    println!(
        "verdict: {} ({} passed, {} failed, {} warned, {} errors, {} skipped) in {:.1} s",
        report.verdict.as_str(),
        c.pass,
        c.fail,
        c.warn,
        c.error,
        c.skip,
        report.duration_ms as f64 / 1000.0
    );
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(report.verdict.exit_code())
}
