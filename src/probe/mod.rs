//! The only HTTP client for targets: request budget, rate cap, cookies and
//! redaction.

mod budget;
mod client;
mod cookie;
mod redact;

pub use budget::{BudgetExhausted, Governor};
pub use client::{MAX_WIRE_DELAY_S, Observed, Probe, ProbeError, Req};
pub use cookie::{CookieError, Jar, SetCookie};
pub use redact::{REDACTED, Redactor, ScrubError};
