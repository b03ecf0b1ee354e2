//! `verify`: rebuild the Worker, read the deployed one, compare, attest.

use std::sync::Arc;

use flareproof::attestation;
use flareproof::plan::Plan;
use flareproof::verify::Verify;

use crate::bars::progress;
use crate::cli::VerifyArgs;
use crate::error::{ExpectedError, eprint_error};
use crate::exit::Exit;
use crate::scrub::say;
use crate::summary::{Finish, Vsa};

pub async fn run(args: &VerifyArgs) -> Result<Exit, ExpectedError> {
    let report_args = &args.report;
    let quiet = report_args.run.quiet;
    let known = super::known_failures(&report_args.run)?;
    let signer = super::signer(&args.sign)?;
    let config = &args.config.config;
    let (profile, target, credentials) = super::verify_target(config, &args.api)?;
    let plan = Plan::builtin(&profile.suite)?;
    if !quiet {
        say!(
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
        retry: super::retry(&args.api),
    };
    let progress = progress(quiet);
    progress.suite_started("verify", flareproof::checks::verify::IDS.len());
    let run = verify.run().await.map_err(ExpectedError::Verify)?;
    for check in &run.report.checks {
        progress.check_finished("verify", check);
    }
    progress.suite_finished("verify");
    let finish = Finish::of(report_args, known.as_ref(), config);
    let (code, report) = finish.report(run.report)?;
    let vsa = Vsa {
        report: &report,
        plan: &verify.plan,
        resource_uri: &run.resource_uri,
        subject: attestation::vsa_subject(&run.attestation),
    };
    finish.attestations(run.attestation, vsa, signer.as_ref())?;
    if let Some(error) = &run.api_error {
        eprint_error(error.as_ref(), &[], Some(&error.hint(&token_env)));
    }
    Ok(code)
}
