//! The only HTTP client for targets: request budget, rate cap, what a run
//! keeps of answers, cookies and redaction.

mod body;
mod browser;
mod budget;
mod client;
mod cookie;
mod redact;

pub use body::{Keep, KeptBody, Ledger, RECORD_WINDOW};
pub use browser::{
    Applied, CookieStore, Outcome, Policy, Rejection, StoredCookie, default_path, domain_matches,
    host_prefix_missing, is_secure_origin, path_matches,
};
pub use budget::{BudgetExhausted, Governor};
pub use client::{MAX_WIRE_DELAY_S, Observed, Probe, ProbeError, Req};
pub use cookie::{CookieError, Jar, SetCookie, parse_cookie_date};
pub use redact::{REDACTED, Redactor};
