//! `audit`: verify and conform in one run, concurrently (the rebuild and the
//! black-box suites share nothing), with one report. The binary applies the
//! known failures and writes the report and the audit attestation
//! ([`crate::attestation::audit_statement`]).

use std::sync::Arc;
use std::time::Instant;

use crate::attestation::Statement;
use crate::cloudflare::{ApiError, Credentials, RetryPolicy};
use crate::conform::{Conform, ConformError, Selection};
use crate::model::{Report, Subject};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::target::Target;
use crate::verify::Verify;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("run the verify part")]
    Verify(#[source] ApiError),
    #[error("run the conform part")]
    Conform(#[source] ConformError),
}

/// Everything an audit needs, before it runs. `target.verify` must be set.
pub struct Audit {
    pub target: Arc<Target>,
    pub plan: Arc<Plan>,
    pub credentials: Credentials,
    pub retry: RetryPolicy,
    /// Which conform checks run (`verify.*` always run).
    pub selection: Selection,
    pub progress: Arc<dyn Progress>,
}

/// What an audit produced.
pub struct AuditRun {
    pub report: Report,
    /// The verify part's statement: its subjects (the modules) and build
    /// record go into the audit attestation.
    pub verify_attestation: Statement,
    /// The first Cloudflare API read that failed, for the binary's hint.
    pub api_error: Option<Arc<ApiError>>,
    /// Requests sent to the target by the conform part.
    pub requests: usize,
    /// Every secret the conform part learned (session tokens included), for
    /// whatever prints beside the report.
    pub redactor: Arc<crate::probe::Redactor>,
}

/// Reports a finished part's results as one suite (until the runners call
/// [`Progress`] themselves, check by check).
fn report_suite(progress: &dyn Progress, suite: &str, report: &Report) {
    for check in &report.checks {
        progress.check_finished(suite, check);
    }
    progress.suite_finished(suite);
}

impl Audit {
    pub async fn run(&self) -> Result<AuditRun, AuditError> {
        let started_at = crate::now_rfc3339();
        let started = Instant::now();
        let verify_target = self
            .target
            .verify
            .clone()
            .expect("an audit target has a [verify] section");
        let verify = Verify {
            target: verify_target,
            plan: self.plan.clone(),
            credentials: self.credentials.clone(),
            retry: self.retry,
        };
        let conform = Conform {
            target: self.target.clone(),
            plan: self.plan.clone(),
            selection: self.selection.clone(),
            progress: self.progress.clone(),
        };
        let verify_checks = self
            .plan
            .checks
            .iter()
            .filter(|c| c.id.area() == "verify")
            .count();
        let progress = self.progress.as_ref();
        // Conform reports each of its areas itself.
        progress.suite_started("verify", verify_checks);
        let verifying = async {
            let run = verify.run().await;
            if let Ok(run) = &run {
                report_suite(progress, "verify", &run.report);
            }
            run
        };
        let conforming = conform.run();
        let (verified, conformed) = tokio::join!(verifying, conforming);
        let verified = verified.map_err(AuditError::Verify)?;
        let (conformed, probe) = conformed.map_err(AuditError::Conform)?;
        let report = merge(
            "audit",
            &self.plan,
            verified.report,
            conformed,
            started_at,
            started.elapsed().as_millis() as u64,
        );
        Ok(AuditRun {
            report,
            verify_attestation: verified.attestation,
            api_error: verified.api_error,
            requests: probe.governor().sent_count(),
            redactor: probe.redactor_arc(),
        })
    }
}

/// One report from a verify report and a conform report: verify's checks
/// first, then conform's, each in plan order; the subject of both.
pub fn merge(
    command: &str,
    plan: &Plan,
    verified: Report,
    conformed: Report,
    started_at: String,
    duration_ms: u64,
) -> Report {
    let mut checks = verified.checks;
    checks.extend(conformed.checks);
    checks.sort_by_key(|c| plan.checks.iter().position(|p| p.id == c.id));
    let subject = Subject {
        script: verified.subject.script,
        ..conformed.subject
    };
    Report::new(command, &plan.id, subject, started_at, duration_ms, checks)
}
