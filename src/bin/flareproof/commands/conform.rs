//! `conform`: the black-box suites against the config's target.

use std::sync::Arc;

use flareproof::conform::Conform;
use flareproof::plan::Plan;

use crate::bars::progress;
use crate::cli::ConformArgs;
use crate::error::ExpectedError;
use crate::summary::Finish;

pub async fn run(args: &ConformArgs) -> Result<u8, ExpectedError> {
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
    let (report, probe) = conform.run().await.map_err(ExpectedError::Conform)?;
    crate::scrub::absorb(probe.redactor());
    let finish = Finish::of(report_args, known.as_ref(), config);
    Ok(finish.report(report)?.0)
}
