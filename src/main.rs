//! The binary: parse, run, print, exit 0 pass / 1 fail / 2 error.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use flareproof::attestation;
use flareproof::audit::Audit;
use flareproof::cli::{ApiArgs, Cli, Command};
use flareproof::cloudflare::{Credentials, RetryPolicy};
use flareproof::conform::{Conform, Selection};
use flareproof::known_failures::KnownFailures;
use flareproof::model::{Report, Status};
use flareproof::plan::Plan;
use flareproof::progress::{Bars, Progress, Silent};
use flareproof::report::{Format, sarif};
use flareproof::target::{Target, TargetConfig, VerifyTarget, load_verify};
use flareproof::verify::Verify;

/// The `--only`/`--skip` selection; one that matches no check of the plan
/// would make a run that checks nothing and passes, so it is refused.
fn selection(plan: &Plan, select: &flareproof::cli::SelectArgs) -> Result<Selection, Failure> {
    let selection = Selection::new(&select.only, &select.skip)?;
    if !plan
        .checks
        .iter()
        .any(|c| selection.includes(c.id.as_str()))
    {
        return Err(hint(
            Message("`--only`/`--skip` leave no check to run".to_owned()),
            "`flareproof list` shows the check ids; globs match them whole, e.g. `cookie.*`",
        ));
    }
    Ok(selection)
}

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

/// Loads `--known-failures` before anything runs, so a malformed file
/// costs nothing.
fn known_failures(cli: &Cli) -> Result<Option<KnownFailures>, Failure> {
    let Some(path) = &cli.known_failures else {
        return Ok(None);
    };
    KnownFailures::load(path).map(Some).map_err(|e| {
        hint(
            e,
            "write one `\"check id glob\" = \"reason\"` per line, e.g. \
             `\"cookie.prefix\" = \"__Host- migration in progress\"`",
        )
    })
}

/// The `[verify]` overrides given on the command line.
fn apply_api_args(target: &mut VerifyTarget, api: &ApiArgs) {
    if let Some(var) = &api.api_token_env {
        target.api_token_env = var.clone();
    }
    if let Some(var) = &api.account_id_env {
        target.account_id_env = var.clone();
    }
    if let Some(url) = &api.api_base {
        target.api_base = url.clone();
    }
}

fn credentials(cli: &Cli, target: &VerifyTarget) -> Result<Credentials, Failure> {
    let path = cli.config.display().to_string();
    target
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
        })
}

fn retry(api: &ApiArgs) -> RetryPolicy {
    RetryPolicy {
        retry_after_cap: Duration::from_secs(api.max_retry_wait),
        ..RetryPolicy::default()
    }
}

fn load_target(cli: &Cli) -> Result<Target, Failure> {
    let config = TargetConfig::load(&cli.config).map_err(|e| {
        hint(
            e,
            "pass `--config FILE`; the README shows the target config's shape",
        )
    })?;
    let path = cli.config.display().to_string();
    config
        .resolve(&path, |var| std::env::var(var).ok())
        .map_err(|e| hint(e, "export the variable, or rename it in the config"))
}

fn progress(cli: &Cli) -> Arc<dyn Progress> {
    match Bars::stderr(cli.quiet) {
        Some(bars) => Arc::new(bars),
        None => Arc::new(Silent),
    }
}

async fn run(cli: &Cli) -> Result<u8, Failure> {
    let known = known_failures(cli)?;
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
            let (code, report) = finish(cli, run.report, &dir, &Format::ALL, known.as_ref())?;
            let statement = attestation::audit_statement(
                &report,
                &run.plan,
                Some(&run.attestation),
                known.map(|k| k.entries()).unwrap_or_default(),
            );
            write_attestation(&dir, &attestation::render(&statement))?;
            eprintln!(
                "open {} in a browser; {} is a CI job summary",
                dir.join(Format::Html.file_name()).display(),
                dir.join(Format::Markdown.file_name()).display()
            );
            Ok(code)
        }
        Command::Conform { select } => {
            let target = load_target(cli)?;
            let plan = Plan::builtin(&target.profile.suite)?;
            let selection = selection(&plan, select)?;
            let conform = Conform {
                target: Arc::new(target),
                plan: Arc::new(plan),
                selection,
                progress: progress(cli),
            };
            let (report, _) = conform.run().await?;
            Ok(finish(cli, report, &cli.out, &cli.format, known.as_ref())?.0)
        }
        Command::Verify { api } => {
            let (profile, mut target) = load_verify(&cli.config).map_err(|e| {
                hint(
                    e,
                    "pass `--config FILE` with a `[verify]` section (`source`, `recipe`, \
                     `script`, …); the README shows its shape",
                )
            })?;
            apply_api_args(&mut target, api);
            let credentials = credentials(cli, &target)?;
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
                retry: retry(api),
            };
            let progress = progress(cli);
            progress.suite_started("verify", 5);
            let run = verify.run().await.map_err(|e| {
                hint(
                    e,
                    "check `api_base` in the `[verify]` section (or `--api-base`)",
                )
            })?;
            for check in &run.report.checks {
                progress.check_finished("verify", check);
            }
            progress.suite_finished("verify");
            let (code, _) = finish(cli, run.report, &cli.out, &cli.format, known.as_ref())?;
            write_attestation(&cli.out, &attestation::render(&run.attestation))?;
            if let Some(error) = &run.api_error {
                print_error(error.as_ref(), Some(&error.hint(&token_env)));
            }
            Ok(code)
        }
        Command::Audit { api, select } => {
            let mut target = load_target(cli)?;
            let Some(verify) = target.verify.as_mut() else {
                return Err(hint(
                    Message(format!(
                        "config `{}` has no `[verify]` section; audit runs verify and conform",
                        cli.config.display()
                    )),
                    "add a `[verify]` section (the README shows its shape), or run \
                     `flareproof conform`",
                ));
            };
            apply_api_args(verify, api);
            let credentials = credentials(cli, verify)?;
            let token_env = verify.api_token_env.clone();
            let plan = Arc::new(Plan::builtin(&target.profile.suite)?);
            if !cli.quiet {
                eprintln!(
                    "auditing `{}`: rebuilding script `{}` and running the {} suite…",
                    target.base_url, verify.script, plan.id
                );
            }
            let audit = Audit {
                target: Arc::new(target),
                plan: plan.clone(),
                credentials,
                retry: retry(api),
                selection: selection(&plan, select)?,
                progress: progress(cli),
            };
            let run = audit.run().await?;
            let (code, report) = finish(cli, run.report, &cli.out, &cli.format, known.as_ref())?;
            let statement = attestation::audit_statement(
                &report,
                &plan,
                Some(&run.verify_attestation),
                known.map(|k| k.entries()).unwrap_or_default(),
            );
            write_attestation(&cli.out, &attestation::render(&statement))?;
            if let Some(error) = &run.api_error {
                print_error(error.as_ref(), Some(&error.hint(&token_env)));
            }
            Ok(code)
        }
    }
}

fn write_attestation(dir: &Path, bytes: &[u8]) -> Result<(), Failure> {
    if dir == Path::new("-") {
        return Ok(());
    }
    let path = dir.join("attestation.json");
    fs_err::write(&path, bytes)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The SARIF results' location: the config, relative to where the run
/// started (the repository root in CI).
fn render(cli: &Cli, format: Format, report: &Report) -> Vec<u8> {
    match format {
        Format::Sarif if cli.config.is_relative() && cli.config.exists() => {
            let path = cli.config.display().to_string();
            sarif::render_for(report, path.trim_start_matches("./"))
        }
        _ => format.render(report),
    }
}

/// Applies the known failures, writes the report in `formats` (and always
/// JSON), prints the summary, and returns the exit code of the verdict
/// with the final report. With `--out -` the first format goes to stdout
/// and the summary to stderr.
fn finish(
    cli: &Cli,
    report: Report,
    dir: &Path,
    formats: &[Format],
    known: Option<&KnownFailures>,
) -> Result<(u8, Report), Failure> {
    let report = match known {
        Some(known) => known.apply(report),
        None => report,
    };
    let to_stdout = dir == Path::new("-");
    let mut written = Vec::new();
    if to_stdout {
        let format = formats.first().copied().unwrap_or(Format::Json);
        std::io::stdout().write_all(&render(cli, format, &report))?;
    } else {
        let mut formats = formats.to_vec();
        formats.push(Format::Json);
        formats.sort();
        formats.dedup();
        fs_err::create_dir_all(dir)?;
        for format in formats {
            let path = dir.join(format.file_name());
            fs_err::write(&path, render(cli, format, &report))?;
            written.push(path);
        }
    }
    let mut lines = Vec::new();
    if !cli.quiet {
        for check in &report.checks {
            let status = check.status.as_str().to_uppercase();
            lines.push(match check.status {
                Status::Pass => format!("{status:>5} {}", check.id),
                _ => format!("{status:>5} {}: {}", check.id, check.summary),
            });
        }
    }
    let c = report.counts;
    lines.push(format!(
        "verdict: {} ({} passed, {} failed, {} warned, {} errors, {} skipped) in {:.1} s",
        report.verdict.as_str(),
        c.pass,
        c.fail,
        c.warn,
        c.error,
        c.skip,
        report.duration_ms as f64 / 1000.0
    ));
    for line in lines {
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok((report.verdict.exit_code(), report))
}
