//! The report: every check's result and the verdict. Plain data; formats in
//! `crate::report` turn it into bytes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check::{CheckResult, Status};

/// Bumped when a stable field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The run's overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check passed (warn and skip allowed).
    Pass,
    /// At least one check failed: the target is wrong.
    Fail,
    /// No check failed, but at least one could not decide.
    Error,
}

impl Verdict {
    /// The verdict over a set of statuses: any `fail` wins, then any
    /// `error`. A run in which no check passed or warned observed nothing
    /// (every check skipped, or none ran): that is an `error`, never a pass.
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a Status>) -> Self {
        let mut verdict = Verdict::Error;
        let mut undecided = false;
        for status in statuses {
            match status {
                Status::Fail => return Verdict::Fail,
                Status::Error => undecided = true,
                Status::Pass | Status::Warn => verdict = Verdict::Pass,
                Status::Skip => {}
            }
        }
        if undecided { Verdict::Error } else { verdict }
    }

    /// The check status the verdict reads as (for a badge or an icon).
    pub fn status(self) -> Status {
        match self {
            Verdict::Pass => Status::Pass,
            Verdict::Fail => Status::Fail,
            Verdict::Error => Status::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    pub fn this() -> Self {
        Tool {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// How many checks ended in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub error: usize,
    pub skip: usize,
}

impl Counts {
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a Status>) -> Self {
        let mut counts = Counts::default();
        for status in statuses {
            *counts.get_mut(*status) += 1;
        }
        counts
    }

    pub fn get(&self, status: Status) -> usize {
        match status {
            Status::Pass => self.pass,
            Status::Fail => self.fail,
            Status::Warn => self.warn,
            Status::Error => self.error,
            Status::Skip => self.skip,
        }
    }

    fn get_mut(&mut self, status: Status) -> &mut usize {
        match status {
            Status::Pass => &mut self.pass,
            Status::Fail => &mut self.fail,
            Status::Warn => &mut self.warn,
            Status::Error => &mut self.error,
            Status::Skip => &mut self.skip,
        }
    }
}

/// What was checked: never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Subject {
    /// The auth Worker's base URL (conform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Extra vantage points (edges) used for revocation checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vantages: Vec<String>,
    /// The Worker script name (verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    /// The command that produced it: `verify`, `conform`, `audit` or `demo`.
    pub command: String,
    /// The contract profile, e.g. `flarelink-auth/v1`.
    pub profile: String,
    pub subject: Subject,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub verdict: Verdict,
    pub counts: Counts,
    pub checks: Vec<CheckResult>,
    /// What the checks were judged against: the suite file and the
    /// profile's values. Shards of different suites or parameters are not
    /// merged; absent in a report of an older flareproof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    /// Where the run was made from (`--vantage-label`, e.g. a CI runner's
    /// region), so that `merge` keeps each place's measurements apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage_label: Option<String>,
    /// A merged report's targets: one row per target, worst first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<FleetRow>,
}

/// What a run's checks were judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Parameters {
    /// The sha256 of the suite file the plan was read from, hex.
    pub suite_sha256: String,
    /// The `[profile]` values the conform checks judged against; absent
    /// for a verify run, which uses none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileParameters>,
}

/// The `[profile]` values a conform run judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileParameters {
    pub window_s: u64,
    pub revocation_bound_s: u64,
    pub max_session_age_s: u64,
    /// Requests per window by tier; `null` for unlimited.
    pub limits: BTreeMap<String, Option<u64>>,
}

/// One target of a merged report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FleetRow {
    /// The target as its checks name it (`CheckResult::target`).
    pub target: String,
    pub verdict: Verdict,
    pub counts: Counts,
    /// The ids of its failed checks (with ` @ version` when pinned).
    pub failing: Vec<String>,
    /// The ids of its checks that could not decide.
    pub undecided: Vec<String>,
    /// The places its shards were run from (`--vantage-label`).
    pub vantage_labels: Vec<String>,
    /// The shard files merged for it.
    pub shards: Vec<String>,
}

impl Report {
    /// Builds a report, deriving the verdict and counts from the checks so
    /// they can never disagree with them.
    pub fn new(
        command: &str,
        profile: &str,
        subject: Subject,
        started_at: String,
        duration_ms: u64,
        checks: Vec<CheckResult>,
    ) -> Self {
        let statuses: Vec<Status> = checks.iter().map(|c| c.status).collect();
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool::this(),
            command: command.to_owned(),
            profile: profile.to_owned(),
            subject,
            started_at,
            duration_ms,
            verdict: Verdict::of(&statuses),
            counts: Counts::of(&statuses),
            checks,
            parameters: None,
            vantage_label: None,
            fleet: Vec::new(),
        }
    }

    /// This report with other checks: the verdict and counts derived again,
    /// everything else kept.
    pub fn with_checks(self, checks: Vec<CheckResult>) -> Self {
        let statuses: Vec<Status> = checks.iter().map(|c| c.status).collect();
        Report {
            verdict: Verdict::of(&statuses),
            counts: Counts::of(&statuses),
            checks,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_prefers_fail_over_error_and_ignores_warn_and_skip() {
        use Status::*;
        assert_eq!(Verdict::of(&[Pass, Warn, Skip]), Verdict::Pass);
        assert_eq!(Verdict::of(&[Pass, Error, Skip]), Verdict::Error);
        assert_eq!(Verdict::of(&[Error, Fail, Pass]), Verdict::Fail);
        // A run that observed nothing is not a pass.
        assert_eq!(Verdict::of(&[]), Verdict::Error);
        assert_eq!(Verdict::of(&[Skip, Skip]), Verdict::Error);
        assert_eq!(Verdict::of(&[Warn, Skip]), Verdict::Pass);
    }

    #[test]
    fn counts_add_up() {
        use Status::*;
        let c = Counts::of(&[Pass, Pass, Fail, Skip]);
        assert_eq!((c.pass, c.fail, c.warn, c.error, c.skip), (2, 1, 0, 0, 1));
    }
}
