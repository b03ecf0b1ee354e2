//! Test plans as data (`suites/*.toml`): which checks a profile has, their
//! requirement ids and help, and the suite-wide parameters.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::model::{CheckId, CheckResult, Finding, Parameters, ProfileParameters, Status};
pub use crate::model::{Level, Severity};

/// The areas a check id may belong to.
pub const AREAS: [&str; 5] = ["verify", "cookie", "scope", "session", "ratelimit"];

/// The built-in plan of the `flarelink-auth/v1` profile.
pub const FLARELINK_AUTH_V1: &str = include_str!("../suites/flarelink-auth-v1.toml");

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("read plan `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parse plan `{name}`")]
    Parse {
        name: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("plan `{name}` is invalid: {problem}")]
    Invalid { name: String, problem: String },
    #[error("no built-in plan for profile `{0}` (known: flarelink-auth/v1)")]
    UnknownProfile(String),
}

/// Suite-wide parameters; a target config may override them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub revocation_trials: u32,
    pub poll_interval_ms: u64,
    pub observe_after_refusal_ms: u64,
    pub ratelimit_tolerance: u64,
    pub admin_factor: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedCheck {
    pub id: CheckId,
    pub area: String,
    pub title: String,
    pub severity: Severity,
    pub level: Level,
    pub requirements: Vec<String>,
    pub help: String,
    #[serde(default)]
    pub inseparable_from: Vec<CheckId>,
    /// Checks whose violation leaves this one nothing to observe: under
    /// them it reports `error`, not a verdict.
    #[serde(default)]
    pub cannot_observe_under: Vec<CheckId>,
    /// The reference fault that makes this check fail (every check of a
    /// built-in suite names one; another suite may leave it out).
    #[serde(default)]
    pub fault: Option<Fault>,
}

/// Where a reference fault lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultSite {
    /// A `FAULTS` switch of the reference Worker (fixtures/).
    Worker,
    /// A `FAULTS` switch of the reference Worker's build.
    Build,
    /// A tamper of the Cloudflare API stand-in (the verify tests).
    StandIn,
}

/// A check's reference fault: the one place its id is written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub id: String,
    #[serde(rename = "in")]
    pub site: FaultSite,
    /// What the fault does.
    pub effect: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    id: String,
    title: String,
    contract: String,
    params: Params,
    check: Vec<PlannedCheck>,
}

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub title: String,
    pub contract: String,
    pub params: Params,
    pub checks: Vec<PlannedCheck>,
    /// sha256 of the plan file's bytes, hex.
    pub digest: String,
}

impl Plan {
    /// What a run of this plan judged against, for its report: the plan
    /// file's digest and, for a conform run, the profile's values.
    pub fn parameters(&self, profile: Option<&crate::target::ProfileSection>) -> Parameters {
        Parameters {
            suite_sha256: self.digest.clone(),
            profile: profile.map(|p| ProfileParameters {
                window_s: p.window_s,
                revocation_bound_s: p.revocation_bound_s,
                max_session_age_s: p.max_session_age_s,
                limits: [
                    ("anonymous", p.limits.anonymous),
                    ("free", p.limits.free),
                    ("pro", p.limits.pro),
                    ("admin", p.limits.admin),
                ]
                .into_iter()
                .map(|(tier, limit)| (tier.to_owned(), limit.count()))
                .collect(),
            }),
        }
    }

    /// The built-in plan for a profile id.
    pub fn builtin(profile: &str) -> Result<Plan, PlanError> {
        match profile {
            "flarelink-auth/v1" => Plan::parse("suites/flarelink-auth-v1.toml", FLARELINK_AUTH_V1),
            other => Err(PlanError::UnknownProfile(other.to_owned())),
        }
    }

    pub fn from_file(path: &Path) -> Result<Plan, PlanError> {
        let text = fs_err::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Plan::parse(&path.display().to_string(), &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<Plan, PlanError> {
        let file: PlanFile = toml::from_str(text).map_err(|source| PlanError::Parse {
            name: name.to_owned(),
            source: Box::new(source),
        })?;
        let invalid = |problem: String| PlanError::Invalid {
            name: name.to_owned(),
            problem,
        };
        let mut seen = BTreeSet::new();
        for check in &file.check {
            if !seen.insert(check.id.clone()) {
                return Err(invalid(format!("check `{}` is listed twice", check.id)));
            }
            if check.area != check.id.area() {
                return Err(invalid(format!(
                    "check `{}` has area `{}`, expected `{}`",
                    check.id,
                    check.area,
                    check.id.area()
                )));
            }
            if !AREAS.contains(&check.area.as_str()) {
                return Err(invalid(format!(
                    "check `{}` is in unknown area `{}`",
                    check.id, check.area
                )));
            }
            if check.requirements.is_empty() {
                return Err(invalid(format!(
                    "check `{}` cites no requirement",
                    check.id
                )));
            }
        }
        let mut faults = BTreeSet::new();
        for check in &file.check {
            if let Some(fault) = &check.fault
                && !faults.insert(fault.id.as_str())
            {
                return Err(invalid(format!(
                    "check `{}` names fault `{}`, which another check names too",
                    check.id, fault.id
                )));
            }
        }
        for check in &file.check {
            if let Some(other) = check
                .inseparable_from
                .iter()
                .chain(&check.cannot_observe_under)
                .find(|o| !seen.contains(*o))
            {
                return Err(invalid(format!(
                    "check `{}` is inseparable from unknown check `{other}`",
                    check.id
                )));
            }
        }
        if file.params.poll_interval_ms == 0 || file.params.revocation_trials == 0 {
            return Err(invalid(
                "`poll_interval_ms` and `revocation_trials` must be positive".to_owned(),
            ));
        }
        Ok(Plan {
            id: file.id,
            title: file.title,
            contract: file.contract,
            params: file.params,
            checks: file.check,
            digest: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// The faults the reference Worker and its build switch on with
    /// `FAULTS`, as the launcher reads them from this plan.
    pub fn fixture_faults(&self) -> Vec<&Fault> {
        self.checks
            .iter()
            .filter_map(|c| c.fault.as_ref())
            .filter(|f| f.site != FaultSite::StandIn)
            .collect()
    }

    pub fn check(&self, id: &str) -> Option<&PlannedCheck> {
        self.checks.iter().find(|c| c.id.as_str() == id)
    }

    /// The checks reference fault `fault` may fail: its own and those the
    /// plan declares inseparable from it (what a fault sweep expects).
    pub fn expected_failures(&self, fault: &str) -> std::collections::BTreeSet<String> {
        let mut expected = std::collections::BTreeSet::from([fault.to_owned()]);
        if let Some(check) = self.check(fault) {
            expected.extend(check.inseparable_from.iter().map(|c| c.to_string()));
        }
        expected
    }

    /// The checks the plan says cannot observe anything under fault
    /// `fault`: they may report `error` (never `pass` or `fail`).
    pub fn expected_errors(&self, fault: &str) -> std::collections::BTreeSet<String> {
        self.checks
            .iter()
            .filter(|c| c.cannot_observe_under.iter().any(|u| u.as_str() == fault))
            .map(|c| c.id.to_string())
            .collect()
    }

    /// Turns a finding into the check's result, with the plan's title and
    /// requirement ids. A `should` check's failure is a `warn`. An id the
    /// plan does not know is an `error` result, never a pass.
    pub fn conclude(&self, id: &str, finding: Finding, duration_ms: u64) -> CheckResult {
        let planned = self.check(id);
        let (status, summary) = match (finding.status, planned) {
            (_, None) => (
                Status::Error,
                format!("check `{id}` is not in plan `{}`", self.id),
            ),
            (Status::Fail, Some(p)) if p.level == Level::Should => (Status::Warn, finding.summary),
            (status, Some(_)) => (status, finding.summary),
        };
        CheckResult {
            id: planned.map_or_else(
                || {
                    CheckId::new(id)
                        .unwrap_or_else(|_| CheckId::new("plan.unknown-check").expect("a valid id"))
                },
                |p| p.id.clone(),
            ),
            title: planned.map_or_else(|| id.to_owned(), |p| p.title.clone()),
            status,
            summary,
            severity: planned.map(|p| p.severity),
            level: planned.map(|p| p.level),
            help: planned.map(|p| p.help.clone()).unwrap_or_default(),
            requirements: planned.map(|p| p.requirements.clone()).unwrap_or_default(),
            evidence: finding.evidence,
            duration_ms,
            version: None,
            target: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plan_parses_with_a_digest() {
        // Which ids it holds is checked against the registry, the faults and
        // the README in `checks::registry`.
        let plan = Plan::builtin("flarelink-auth/v1").unwrap();
        assert!(!plan.checks.is_empty());
        assert_eq!(plan.digest.len(), 64);
    }

    #[test]
    fn duplicate_and_misfiled_checks_are_refused() {
        let base = |checks: &str| {
            format!(
                "id='x'\ntitle='x'\ncontract='x'\n[params]\nrevocation_trials=1\npoll_interval_ms=1\n\
                 observe_after_refusal_ms=1\nratelimit_tolerance=0\nadmin_factor=2\n{checks}"
            )
        };
        let check = |id: &str, area: &str| {
            format!(
                "[[check]]\nid='{id}'\narea='{area}'\ntitle='t'\nseverity='high'\nlevel='must'\n\
                 requirements=['r']\nhelp='h'\nfault={{id='{id}',in='worker',effect='e'}}\n"
            )
        };
        let twice = base(&format!(
            "{}{}",
            check("cookie.a", "cookie"),
            check("cookie.a", "cookie")
        ));
        assert!(
            Plan::parse("t", &twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let misfiled = base(&check("cookie.a", "scope"));
        assert!(
            Plan::parse("t", &misfiled)
                .unwrap_err()
                .to_string()
                .contains("area")
        );
        let bad_id = base(&check("Cookie", "cookie"));
        assert!(matches!(
            Plan::parse("t", &bad_id),
            Err(PlanError::Parse { .. })
        ));
    }
}

#[cfg(test)]
mod conclude_tests {
    use super::*;

    #[test]
    fn conclude_attaches_plan_data_and_never_passes_an_unknown_id() {
        let plan = Plan::builtin("flarelink-auth/v1").unwrap();
        let known = plan.conclude("cookie.httponly", Finding::pass("ok"), 3);
        assert_eq!(known.status, Status::Pass);
        assert_eq!(
            known.requirements,
            plan.check("cookie.httponly").unwrap().requirements
        );
        let unknown = plan.conclude("cookie.made-up", Finding::pass("ok"), 3);
        assert_eq!(unknown.status, Status::Error);
    }
}
