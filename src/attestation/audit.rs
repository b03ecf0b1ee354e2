//! The audit predicate: the suite that was run, every check's result, the
//! bounds measured, the rate-limit buckets observed and the known failures,
//! around verify's predicate.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Evidence, Report, Status, Subject, Tool, Verdict};
use crate::plan::Plan;
use crate::report::text;

use super::statement::{STATEMENT_TYPE, Statement};
use super::verify::{DeploymentRecord, Predicate};

/// The predicate type of a flareproof audit (verify and conform) run.
pub const AUDIT_PREDICATE_TYPE: &str = "https://flareproof.dev/attestation/audit/v1";

/// The certificate of an audit: what was run (the suite and the sha256 of
/// its plan file, the tool), what every check concluded, the bounds that
/// were measured, the known failures it was run with, and verify's record
/// of the build and the deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditPredicate {
    pub verdict: Verdict,
    pub suite: SuiteRecord,
    pub tool: Tool,
    pub started_at: String,
    pub subject: Subject,
    /// Every check's result; a conform result names the live version it is
    /// for when that is known.
    pub checks: Vec<AuditCheckRecord>,
    /// The conform part per live version: which versions were run (pinned
    /// with the override header, or the only version with traffic,
    /// unpinned) and which were not (0 % share); empty when verify did not
    /// read the deployment.
    pub conform_versions: Vec<ConformVersionRecord>,
    /// Every measurement held to a bound (time to refusal per trial and
    /// vantage, …).
    pub measurements: Vec<MeasurementRecord>,
    /// Every rate-limit bucket observed: its limit and what was allowed.
    pub rate_limits: Vec<RateLimitRecord>,
    /// `--known-failures`: check id glob → reason; empty when none.
    pub known_failures: BTreeMap<String, String>,
    /// The verify part's predicate; `null` when verify did not run.
    pub verify: Option<Predicate>,
}

/// One check's result in the audit predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditCheckRecord {
    pub id: String,
    pub status: Status,
    pub summary: String,
    /// The live version a conform result is for: the version its run was
    /// pinned to, or the deployment's only version with traffic; absent for
    /// verify checks and when the deployment is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How the conform part treated one live version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConformVersionRecord {
    pub version_id: String,
    pub percentage: f64,
    /// `pinned` (a run of its own, every request carrying
    /// `Cloudflare-Workers-Version-Overrides`), `unpinned` (the only version
    /// with traffic: one run, no header) or `not-run` (0 % share).
    pub run: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuiteRecord {
    pub id: String,
    pub title: String,
    /// `{"sha256": "<hex of the plan file>"}`.
    pub digest: BTreeMap<String, String>,
}

impl SuiteRecord {
    /// The suite a plan is: its id, title and the sha256 of its file.
    pub fn of(plan: &Plan) -> Self {
        SuiteRecord {
            id: plan.id.clone(),
            title: plan.title.clone(),
            digest: BTreeMap::from([("sha256".to_owned(), plan.digest.clone())]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasurementRecord {
    pub check: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub bound: f64,
    pub within: bool,
    pub vantage: Option<String>,
    pub trial: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimitRecord {
    pub check: String,
    pub bucket: String,
    pub limit: Option<u64>,
    pub window_s: u64,
    pub requests: usize,
    pub allowed: usize,
    pub refused: usize,
}

/// The audit statement for `report` (the final one, after known failures),
/// run under `plan` (only its [`SuiteRecord`] is taken: the report carries
/// the suite id as its profile, but not the title or the plan file's
/// digest); subjects and the build record come from verify's statement
/// when verify ran.
pub fn audit_statement(
    report: &Report,
    plan: &Plan,
    verify: Option<&Statement>,
    known_failures: BTreeMap<String, String>,
) -> Statement<AuditPredicate> {
    let mut measurements = Vec::new();
    let mut rate_limits = Vec::new();
    for check in &report.checks {
        let check_id = match &check.version {
            Some(v) => format!("{}@{v}", check.id),
            None => check.id.to_string(),
        };
        for evidence in &check.evidence {
            match evidence {
                Evidence::Measurement(m) => {
                    if let Some(bound) = m.bound {
                        measurements.push(MeasurementRecord {
                            check: check_id.clone(),
                            name: m.name.clone(),
                            value: m.value,
                            unit: m.unit.clone(),
                            bound,
                            within: m.value <= bound,
                            vantage: m.vantage.clone(),
                            trial: m.trial,
                        });
                    }
                }
                Evidence::Timeline(t) => {
                    let (allowed, refused, _) = text::timeline_counts(t);
                    rate_limits.push(RateLimitRecord {
                        check: check_id.clone(),
                        bucket: t.bucket.clone(),
                        limit: t.limit,
                        window_s: t.window_s,
                        requests: t.points.len(),
                        allowed,
                        refused,
                    });
                }
                _ => {}
            }
        }
    }
    let (checks, conform_versions) =
        versions_of(report, verify.and_then(|s| s.predicate.deployment.as_ref()));
    Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject: verify.map(|s| s.subject.clone()).unwrap_or_default(),
        predicate_type: AUDIT_PREDICATE_TYPE.to_owned(),
        predicate: AuditPredicate {
            verdict: report.verdict,
            suite: SuiteRecord::of(plan),
            tool: report.tool.clone(),
            started_at: report.started_at.clone(),
            subject: report.subject.clone(),
            checks,
            conform_versions,
            measurements,
            rate_limits,
            known_failures,
            verify: verify.map(|s| s.predicate.clone()),
        },
    }
}

/// The check records (each conform result with the version it is for) and
/// the per-version record of the conform part. A result pinned to a version
/// names it; an unpinned conform result is for the deployment's only
/// version with traffic when there is exactly one (otherwise for no version
/// that can be named).
fn versions_of(
    report: &Report,
    deployment: Option<&DeploymentRecord>,
) -> (Vec<AuditCheckRecord>, Vec<ConformVersionRecord>) {
    let serving: Vec<&str> = deployment
        .map(|d| {
            d.versions
                .iter()
                .filter(|v| v.percentage > 0.0)
                .map(|v| v.version_id.as_str())
                .collect()
        })
        .unwrap_or_default();
    let sole = (serving.len() == 1).then(|| serving[0].to_owned());
    let checks: Vec<AuditCheckRecord> = report
        .checks
        .iter()
        .map(|c| AuditCheckRecord {
            id: c.id.to_string(),
            status: c.status,
            summary: c.summary.clone(),
            version: c
                .version
                .clone()
                .or_else(|| (c.id.area() != "verify").then(|| sole.clone()).flatten()),
        })
        .collect();
    let pinned = |id: &str| {
        report
            .checks
            .iter()
            .any(|c| c.version.as_deref() == Some(id))
    };
    let versions = deployment
        .map(|d| {
            d.versions
                .iter()
                .map(|v| ConformVersionRecord {
                    version_id: v.version_id.clone(),
                    percentage: v.percentage,
                    run: if pinned(&v.version_id) {
                        "pinned"
                    } else if v.percentage > 0.0 && sole.as_deref() == Some(v.version_id.as_str()) {
                        "unpinned"
                    } else {
                        "not-run"
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    (checks, versions)
}
