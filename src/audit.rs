//! `audit`: verify, then conform once per live version, with one report.
//! Verify reads the active deployment; when it splits traffic between
//! versions, each version with a share gets a conform run of its own, pinned
//! to it with Cloudflare's `Cloudflare-Workers-Version-Overrides` header, one
//! run after the other with a quiet gap between them (they meet the same
//! Worker's KV and rate-limit buckets). One version with all the traffic (or
//! a deployment verify could not read) is one unpinned run, as `conform`.
//! The binary applies the known failures and writes the report and the
//! audit attestation ([`crate::attestation::audit_statement`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::attestation::{DeploymentRecord, Statement};
use crate::cloudflare::{ApiError, Credentials, RetryPolicy};
use crate::conform::{Conform, ConformError, Pin, Selection};
use crate::model::{Evidence, Report, Status, Subject};
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
    /// What verify checked, as a URI (account, script, deployment).
    pub resource_uri: String,
    /// The first Cloudflare API read that failed, for the binary's hint.
    pub api_error: Option<Arc<ApiError>>,
    /// Requests sent to the target by the conform part.
    pub requests: usize,
    /// Every secret the conform part learned (session tokens included), for
    /// whatever prints beside the report.
    pub redactor: Arc<crate::probe::Redactor>,
    /// The version each conform run was pinned to, in run order; empty for
    /// one unpinned run.
    pub pins: Vec<Pin>,
}

/// The conform runs an audit makes for the deployment verify read: one per
/// version with a share of traffic, pinned, when there are two or more; no
/// pin (one run, as `conform`) for one version with all the traffic or an
/// unknown deployment. A version at 0 % serves no traffic: it is not run.
pub fn pins(script: &str, deployment: Option<&DeploymentRecord>) -> Vec<Pin> {
    let Some(deployment) = deployment else {
        return Vec::new();
    };
    let live: Vec<_> = deployment
        .versions
        .iter()
        .filter(|v| v.percentage > 0.0)
        .collect();
    if live.len() < 2 {
        return Vec::new();
    }
    live.iter()
        .map(|v| Pin {
            script: script.to_owned(),
            version_id: v.version_id.clone(),
            percentage: v.percentage,
            of_versions: live.len(),
        })
        .collect()
}

/// How long pinned runs wait between them, quiet: two rate-limit windows
/// and a second. The second run must not meet buckets the first spent; a
/// fixed-window counter forgets them after one quiet window, a
/// sliding-window estimate (which weighs the previous window's count) only
/// after two.
pub fn quiet_gap(window_s: u64) -> Duration {
    Duration::from_secs(window_s.saturating_mul(2).saturating_add(1))
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
        // Verify first: its read of the deployment says which versions the
        // conform runs are for.
        let verified = verify.run().await.map_err(AuditError::Verify)?;
        report_suite(progress, "verify", &verified.report);
        let pins = pins(
            &verified.attestation.predicate.script,
            verified.attestation.predicate.deployment.as_ref(),
        );
        let redactor = Arc::new(crate::probe::Redactor::new());
        let mut requests = 0;
        let mut runs = Vec::new();
        if pins.is_empty() {
            let (report, probe) = conform
                .run_pinned(None, redactor.clone())
                .await
                .map_err(AuditError::Conform)?;
            requests += probe.governor().sent_count();
            runs.push(report);
        }
        for (i, pin) in pins.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(quiet_gap(self.target.profile.window_s)).await;
            }
            // Each run has the whole request budget: it is one suite, which
            // the budget is sized for; a share of it would leave the later
            // runs' checks unobservable.
            let (report, probe) = conform
                .run_pinned(Some(pin), redactor.clone())
                .await
                .map_err(AuditError::Conform)?;
            requests += probe.governor().sent_count();
            runs.push(report);
        }
        compare_versions(&mut runs);
        let conformed = concat(runs);
        let report = merge(
            "audit",
            &self.plan,
            verified.report,
            conformed,
            started_at,
            started.elapsed().as_millis() as u64,
        );
        // Once more against every secret all the runs learned.
        let mut report = report;
        redactor.redact(&mut report);
        Ok(AuditRun {
            report,
            verify_attestation: verified.attestation,
            resource_uri: verified.resource_uri,
            api_error: verified.api_error,
            requests,
            redactor,
            pins,
        })
    }
}

/// Beside each check of pinned runs, what comparing the versions' results
/// shows: alike results do not show the override was honoured (a Worker, or
/// a route, that ignores it answers every run from the same version);
/// different ones show that different code answered, or that the check is
/// not repeatable.
fn compare_versions(runs: &mut [Report]) {
    if runs.len() < 2 {
        return;
    }
    let mut by_id: BTreeMap<String, Vec<(String, Status)>> = BTreeMap::new();
    for run in runs.iter() {
        for c in &run.checks {
            by_id
                .entry(c.id.to_string())
                .or_default()
                .push((c.version.clone().unwrap_or_default(), c.status));
        }
    }
    for run in runs.iter_mut() {
        for c in &mut run.checks {
            if c.status == Status::Skip {
                continue;
            }
            let Some(all) = by_id.get(c.id.as_str()) else {
                continue;
            };
            let alike = all.windows(2).all(|w| w[0].1 == w[1].1);
            let listed = all
                .iter()
                .map(|(v, s)| format!("{v}: {s}"))
                .collect::<Vec<_>>()
                .join(", ");
            let text = if alike {
                format!(
                    "all {} versions concluded alike ({listed}): this does not show that the override header was honoured; a Worker that ignores it answers every run alike",
                    all.len()
                )
            } else {
                format!(
                    "the versions concluded differently ({listed}): different code answered the pinned runs, or the check is not repeatable"
                )
            };
            c.evidence.push(Evidence::note(text));
        }
    }
}

/// The pinned runs' reports as one: every run's checks, in run order (the
/// merge sorts them into plan order, keeping that order within an id).
fn concat(mut runs: Vec<Report>) -> Report {
    let mut first = runs.remove(0);
    let mut checks = std::mem::take(&mut first.checks);
    for run in runs {
        checks.extend(run.checks);
        first.duration_ms += run.duration_ms;
    }
    first.with_checks(checks)
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
    let mut report = Report::new(command, &plan.id, subject, started_at, duration_ms, checks);
    // The conform part's: the suite and the profile values it judged with.
    report.parameters = conformed.parameters.or(verified.parameters);
    report.vantage_label = conformed.vantage_label;
    report
}
