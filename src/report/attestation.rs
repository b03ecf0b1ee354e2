//! `attestation.json`: an in-toto Statement v1 over the verified modules.
//! `verify` writes a [`Predicate`] (the verdict, the source revision, the
//! recipe, the toolchain and every check's result); `audit` writes an
//! [`AuditPredicate`], which adds the suite and its digest, the bounds
//! measured and the known failures, and holds the verify predicate. Plain
//! data and pure functions; the caller signs it (e.g. `cosign attest-blob`)
//! if it wants a signature.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Evidence, Report, Status, Subject, Tool, Verdict};
use crate::plan::Plan;
use crate::rebuild::{SourceRevision, Toolchain};

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a flareproof verify run.
pub const PREDICATE_TYPE: &str = "https://flareproof.dev/attestation/verify/v1";
/// The predicate type of a flareproof audit (verify and conform) run.
pub const AUDIT_PREDICATE_TYPE: &str = "https://flareproof.dev/attestation/audit/v1";

/// An artifact the statement is about: one upload module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDescriptor {
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

/// An in-toto Statement; the predicate is verify's unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement<P = Predicate> {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: P,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predicate {
    pub verdict: Verdict,
    pub profile: String,
    /// The Worker script name.
    pub script: String,
    pub started_at: String,
    pub tool: Tool,
    /// `null` outside a git work tree.
    pub source_revision: Option<SourceRevision>,
    pub recipe: RecipeRecord,
    /// `null` when the recipe could not run.
    pub toolchain: Option<Toolchain>,
    /// The rebuilt bundle: entry module and aggregate digest.
    pub bundle: Option<BundleRecord>,
    /// The active deployment as read from the API.
    pub deployment: Option<DeploymentRecord>,
    pub checks: Vec<CheckRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipeRecord {
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub non_artifacts: Vec<String>,
    pub link: Vec<String>,
    /// The settings of each build.
    pub variations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleRecord {
    pub main_module: Option<String>,
    pub aggregate_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentRecord {
    pub id: Option<String>,
    pub versions: Vec<VersionRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRecord {
    pub version_id: String,
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRecord {
    pub id: String,
    pub status: Status,
    pub summary: String,
}

/// Every check of a report, as the attestation records it.
pub fn check_records(report: &Report) -> Vec<CheckRecord> {
    report
        .checks
        .iter()
        .map(|c| CheckRecord {
            id: c.id.to_string(),
            status: c.status,
            summary: c.summary.clone(),
        })
        .collect()
}

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
    pub checks: Vec<CheckRecord>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuiteRecord {
    pub id: String,
    pub title: String,
    /// `{"sha256": "<hex of the plan file>"}`.
    pub digest: BTreeMap<String, String>,
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
/// run under `plan`; subjects and the build record come from verify's
/// statement when verify ran.
pub fn audit_statement(
    report: &Report,
    plan: &Plan,
    verify: Option<&Statement>,
    known_failures: BTreeMap<String, String>,
) -> Statement<AuditPredicate> {
    let mut measurements = Vec::new();
    let mut rate_limits = Vec::new();
    for check in &report.checks {
        for evidence in &check.evidence {
            match evidence {
                Evidence::Measurement(m) => {
                    if let Some(bound) = m.bound {
                        measurements.push(MeasurementRecord {
                            check: check.id.to_string(),
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
                    let (allowed, refused, _) = super::text::timeline_counts(t);
                    rate_limits.push(RateLimitRecord {
                        check: check.id.to_string(),
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
    Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject: verify.map(|s| s.subject.clone()).unwrap_or_default(),
        predicate_type: AUDIT_PREDICATE_TYPE.to_owned(),
        predicate: AuditPredicate {
            verdict: report.verdict,
            suite: SuiteRecord {
                id: plan.id.clone(),
                title: plan.title.clone(),
                digest: BTreeMap::from([("sha256".to_owned(), plan.digest.clone())]),
            },
            tool: report.tool.clone(),
            started_at: report.started_at.clone(),
            subject: report.subject.clone(),
            checks: check_records(report),
            measurements,
            rate_limits,
            known_failures,
            verify: verify.map(|s| s.predicate.clone()),
        },
    }
}

/// Pretty JSON with a trailing newline.
pub fn render<P: Serialize>(statement: &Statement<P>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(statement).expect("an attestation always serializes");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_in_toto_statement() {
        let s = Statement {
            statement_type: STATEMENT_TYPE.into(),
            subject: vec![ResourceDescriptor {
                name: "worker.js".into(),
                digest: BTreeMap::from([("sha256".into(), "ab".repeat(32))]),
            }],
            predicate_type: PREDICATE_TYPE.into(),
            predicate: Predicate {
                verdict: Verdict::Pass,
                profile: "flarelink-auth/v1".into(),
                script: "auth".into(),
                started_at: "2026-11-23T00:00:00Z".into(),
                tool: Tool::this(),
                source_revision: None,
                recipe: RecipeRecord {
                    command: vec!["node".into()],
                    env: BTreeMap::new(),
                    non_artifacts: vec![],
                    link: vec![],
                    variations: vec![],
                },
                toolchain: None,
                bundle: None,
                deployment: None,
                checks: vec![],
            },
        };
        let v: serde_json::Value = serde_json::from_slice(&render(&s)).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], "ab".repeat(32));
        assert_eq!(v["predicate"]["verdict"], "pass");
    }
}
