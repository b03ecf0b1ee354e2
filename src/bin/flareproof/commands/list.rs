//! `list`: every check id of a plan with its requirement ids, on stdout.

use std::path::Path;

use flareproof::plan::Plan;
use flareproof::target::{ProfileSection, TargetConfig, load_verify};

use crate::cli::ListArgs;
use crate::error::ExpectedError;
use crate::exit::Exit;
use crate::scrub::tell;

pub fn run(args: &ListArgs) -> Result<Exit, ExpectedError> {
    let plan = match (&args.suite, &args.config) {
        (Some(suite), _) => Plan::from_file(suite)?,
        (None, Some(config)) => Plan::builtin(&suite_of(config)?)?,
        (None, None) => Plan::builtin(&ProfileSection::default().suite)?,
    };
    let width = plan
        .checks
        .iter()
        .map(|c| c.id.as_str().len())
        .max()
        .unwrap_or(0);
    for check in &plan.checks {
        tell!(
            "{:width$}  {}",
            check.id.as_str(),
            check.requirements.join(", ")
        );
    }
    Ok(Exit::Pass)
}

/// The suite a config's `[profile]` names: a whole config, or one with
/// only `[verify]` (and `[profile]`). No secret is read.
fn suite_of(config: &Path) -> Result<String, ExpectedError> {
    match TargetConfig::load(config) {
        Ok(file) => Ok(file.profile.suite),
        Err(error) => match load_verify(config) {
            Ok((profile, _)) => Ok(profile.suite),
            Err(_) => Err(ExpectedError::Config(error)),
        },
    }
}
