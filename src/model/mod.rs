//! The domain as plain serde data: check ids, statuses, evidence, results and
//! the report. No I/O.

mod check;
mod evidence;
mod finding;
mod redact;
mod report;
mod secret;

pub use check::{CheckId, CheckResult, InvalidCheckId, Level, Severity, Status};
pub use evidence::{
    Evidence, Exchange, Header, HttpRequest, HttpResponse, Measurement, ModuleDigest, TextDiff,
    Timeline, TimelinePoint,
};
pub use finding::Finding;
pub use redact::{Redact, Scrub};
pub use report::{
    Counts, FleetRow, Parameters, ProfileParameters, Report, SCHEMA_VERSION, Subject, Tool, Verdict,
};
pub use secret::Secret;
