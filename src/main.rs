//! The binary: parse, run, print, exit 0 pass / 1 fail / 2 error.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use flareproof::cli::{Cli, Command};
use flareproof::conform::{Conform, Selection};
use flareproof::model::{Report, Status};
use flareproof::plan::Plan;
use flareproof::report::Format;
use flareproof::target::TargetConfig;

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
    eprintln!("error: {}", failure.error);
    let mut source = failure.error.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    if let Some(hint) = failure.hint {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(2)
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
            finish(cli, &run.report, &cli.out.join("demo"))
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
        Command::Verify | Command::Audit => Err(hint(
            Message("this command is not implemented yet".to_owned()),
            "`flareproof conform` and `flareproof demo` work today",
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
