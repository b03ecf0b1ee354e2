//! `conform`: the black-box suites against the config's target.

use std::sync::Arc;

use flareproof::conform::Conform;
use flareproof::plan::Plan;

use crate::bars::progress;
use crate::cli::ConformArgs;
use crate::error::ExpectedError;
use crate::exit::Exit;
use crate::scrub::tell;
use crate::summary::Finish;

pub async fn run(args: &ConformArgs) -> Result<Exit, ExpectedError> {
    let report_args = &args.report;
    let known = super::known_failures(&report_args.run)?;
    let config = &args.config.config;
    let target = super::load_target(config)?;
    let plan = Plan::builtin(&target.profile.suite)?;
    let selection = super::selection(&plan, &args.select, |id| !id.starts_with("verify."))?;
    let conform = Conform {
        target: Arc::new(target),
        plan: Arc::new(plan),
        selection,
        progress: progress(report_args.run.quiet),
    };
    if args.dry_run {
        print_dry_run(&conform.dry_run(), &conform.plan.id);
        return Ok(Exit::Pass);
    }
    let (report, probe) = conform.run().await.map_err(ExpectedError::Conform)?;
    crate::scrub::absorb(probe.redactor());
    let finish = Finish::of(report_args, known.as_ref(), config);
    Ok(finish.report(report)?.0)
}

/// `--dry-run`: what the run would do, on stdout.
fn print_dry_run(dry: &flareproof::conform::DryRun, suite: &str) {
    tell!(
        "dry run of {suite}: {} checks, nothing sent",
        dry.checks.len()
    );
    let width = dry
        .checks
        .iter()
        .map(|(_, id, _)| id.len())
        .max()
        .unwrap_or(0);
    let mut area = "";
    for (a, id, title) in &dry.checks {
        if a != area {
            tell!("{a}:");
            area = a;
        }
        tell!("  {id:width$}  {title}");
    }
    for target in &dry.targets {
        tell!("target: {target}");
    }
    tell!(
        "budget: at most {} requests, at most {} per second",
        dry.max_requests,
        dry.max_rps
    );
    let (low, high) = dry.expected_s;
    tell!("expected duration: about {low}–{high} s");
    for why in &dry.expected_why {
        tell!("  {why}");
    }
}
