//! What a check saw: HTTP exchanges (secrets redacted), measurements, digests,
//! diffs and notes. Plain data, no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One piece of evidence behind a check's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// An HTTP request and what came back (or why nothing did).
    Exchange(Exchange),
    /// A number the check measured, with its unit and the bound it was held to.
    Measurement(Measurement),
    /// A module's digests, rebuilt vs deployed.
    Digest(ModuleDigest),
    /// A readable diff around the first difference of two byte strings.
    Diff(TextDiff),
    /// Requests of one rate-limit bucket over time: allowed or refused.
    Timeline(Timeline),
    /// A sentence that is neither of the above.
    Note { text: String },
}

impl Evidence {
    pub fn note(text: impl Into<String>) -> Self {
        Evidence::Note { text: text.into() }
    }
}

/// A header as sent or received; values of secret headers are redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<Header>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<Header>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// True when `body` was cut to keep reports small.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Exchange {
    /// What this request was for, e.g. `sign in as free`.
    pub label: String,
    pub request: HttpRequest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<HttpResponse>,
    /// Why no response was received (timeout, connection refused, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds since the run started when the request was sent.
    pub at_ms: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// The bound the value is held to, in the same unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Which vantage point (edge URL) it was measured at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial: Option<u32>,
    /// True when the value is only a lower bound: the event was not seen
    /// before observation stopped (e.g. a token still accepted at the end).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub censored: bool,
    /// The measurement's resolution (e.g. the poll interval), in its unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<f64>,
    /// The slowest single observation (poll round trip) behind the value,
    /// in its unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowest_observation: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModuleDigest {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TextDiff {
    /// What is compared, e.g. the module name.
    pub subject: String,
    /// Byte offset of the first difference.
    pub offset: u64,
    /// A unified diff of the region around the difference.
    pub unified: String,
}

/// One rate-limit bucket's requests over time, for the timeline chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Timeline {
    /// What was spent, e.g. `free` or `anonymous (rotating X-Forwarded-For)`.
    pub bucket: String,
    /// The limit the bucket is held to, per window; none when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    pub window_s: u64,
    pub points: Vec<TimelinePoint>,
    /// Where the harness observed a window begin, in milliseconds since the
    /// run started: the request allowed first after a refusal. Charts start
    /// windows here, never where the target's own headers say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window_starts_ms: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimelinePoint {
    /// Milliseconds since the run started when the request was sent.
    pub at_ms: u64,
    /// The HTTP status: 2xx allowed, 429 refused.
    pub status: u16,
}
