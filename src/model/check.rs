//! Check identity and outcome: `CheckId`, `Status`, `CheckResult`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::evidence::Evidence;

/// A stable dotted check id such as `cookie.httponly`.
///
/// Reports, filters, known-failures and suites all use it, so it is validated
/// once here: `area.name`, lowercase ASCII letters, digits and `-`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct CheckId(String);

/// Why a string is not a check id.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a check id (expected `area.name`, lowercase letters, digits and `-`)")]
pub struct InvalidCheckId(pub String);

impl CheckId {
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidCheckId> {
        let id = id.into();
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        match id.split_once('.') {
            Some((area, name)) if valid_part(area) && valid_part(name) => Ok(Self(id)),
            _ => Err(InvalidCheckId(id)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The area: the part before the dot (`cookie` for `cookie.httponly`).
    pub fn area(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(a, _)| a)
    }
}

impl TryFrom<String> for CheckId {
    type Error = InvalidCheckId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<CheckId> for String {
    fn from(id: CheckId) -> String {
        id.0
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of one check.
///
/// `Fail` means the target is wrong; `Error` means the harness could not tell.
/// An `Error` is never reported as a pass.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Error,
    Skip,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pass,
        Status::Fail,
        Status::Warn,
        Status::Error,
        Status::Skip,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Error => "error",
            Status::Skip => "skip",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Must a violation fail the check, or only warn?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Must,
    Should,
}

/// How much a violation matters (SARIF's `security-severity` derives from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

/// One check's result, with the requirement ids it enforces and the evidence
/// that decided it. It carries everything a reporter shows (title, severity,
/// level, help), so that no reporter needs the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    pub id: CheckId,
    pub title: String,
    pub status: Status,
    /// One sentence saying why the check has this status.
    pub summary: String,
    /// How much a violation matters; none for an id the plan does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Whether a violation fails (`must`) or warns (`should`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// What the check enforces and how to fix a violation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    pub requirements: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// Wall time the check took, in milliseconds.
    pub duration_ms: u64,
    /// The live Worker version this (conform) result is for, when the run
    /// was pinned to one version of a gradual deployment with the
    /// `Cloudflare-Workers-Version-Overrides` header; none otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The target (tenant) this result is for, in a report that `merge`
    /// made from shards of several targets; none otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}
