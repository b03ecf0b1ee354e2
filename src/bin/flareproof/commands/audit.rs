//! `audit`: verify and conform in one run, one report, an audit attestation.

use std::sync::Arc;

use flareproof::attestation;
use flareproof::audit::Audit;
use flareproof::plan::Plan;

use crate::bars::progress;
use crate::cli::AuditArgs;
use crate::error::{ExpectedError, eprint_error};
use crate::exit::Exit;
use crate::scrub::say;
use crate::summary::{Finish, Vsa};

pub async fn run(args: &AuditArgs) -> Result<Exit, ExpectedError> {
    let report_args = &args.report;
    let quiet = report_args.run.quiet;
    let known = super::known_failures(&report_args.run)?;
    let signer = super::signer(&args.sign)?;
    let config = &args.config.config;
    let mut target = super::load_target(config)?;
    let Some(verify) = target.verify.as_mut() else {
        return Err(ExpectedError::NoVerifySection(config.display().to_string()));
    };
    super::apply_api_args(verify, &args.api);
    let credentials = super::credentials(config, verify)?;
    let token_env = verify.api_token_env.clone();
    let plan = Arc::new(Plan::builtin(&target.profile.suite)?);
    if !quiet {
        say!(
            "auditing `{}`: rebuilding script `{}` and running the {} suite…",
            target.base_url,
            verify.script,
            plan.id
        );
    }
    let audit = Audit {
        target: Arc::new(target),
        plan: plan.clone(),
        credentials,
        retry: super::retry(&args.api),
        selection: super::selection(&plan, &args.select, |_| true)?,
        progress: progress(quiet),
    };
    let run = audit.run().await.map_err(ExpectedError::Audit)?;
    crate::scrub::absorb(&run.redactor);
    let finish = Finish::of(report_args, known.as_ref(), config);
    let (code, report) = finish.report(run.report)?;
    let statement = attestation::audit_statement(
        &report,
        &plan,
        Some(&run.verify_attestation),
        known.as_ref().map(|k| k.entries()).unwrap_or_default(),
    );
    let vsa = Vsa {
        report: &report,
        plan: &plan,
        resource_uri: &run.resource_uri,
        subject: attestation::vsa_subject(&run.verify_attestation),
    };
    finish.attestations(statement, vsa, signer.as_ref())?;
    if let Some(error) = &run.api_error {
        eprint_error(error.as_ref(), &[], Some(&error.hint(&token_env)));
    }
    Ok(code)
}
