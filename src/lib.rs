//! flareproof: verify that a deployed Cloudflare auth Worker is the published
//! one, and that it keeps its contract, from the outside.
#![forbid(unsafe_code)]

pub mod attestation;
pub mod audit;
pub mod checks;
pub mod cloudflare;
pub mod compare;
pub mod conform;
pub mod diff;
pub mod init;
pub mod known_failures;
pub mod merge;
pub mod model;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod rebuild;
pub mod report;
pub mod target;
pub mod testbench;
pub mod verify;
pub mod watch;

/// An error and its causes on one line, `: `-separated; for summaries and
/// evidence (the binary prints causes on lines of their own).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The current time as RFC 3339, UTC, to the second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
