//! Progress of a run, as events: a suite started, a check finished, a suite
//! finished. The library calls a [`Progress`] it is handed and never draws
//! anything itself; [`Silent`] ignores the events (the binary draws them as
//! progress bars).
//!
//! How a runner calls it (e.g. `conform`, per area, from concurrent tasks:
//! every method takes `&self` and implementations are `Send + Sync`):
//!
//! ```
//! use flareproof::progress::{Progress, Silent};
//! # use flareproof::model::{CheckId, CheckResult, Status};
//! let progress: std::sync::Arc<dyn Progress> = std::sync::Arc::new(Silent);
//! progress.suite_started("cookie", 9);
//! # let result = CheckResult { id: CheckId::new("cookie.secure").unwrap(), title: String::new(),
//! #     status: Status::Pass, summary: String::new(), severity: None, level: None,
//! #     help: String::new(), requirements: vec![], evidence: vec![], duration_ms: 0,
//! #     version: None, target: None };
//! progress.check_finished("cookie", &result); // once per check id, as each concludes
//! progress.suite_finished("cookie");
//! ```
//!
//! The suite name is any stable label (`verify`, or an area such as
//! `cookie`); `checks` is how many `check_finished` calls will follow.

use crate::model::CheckResult;

/// What a run reports while it runs. Every method defaults to doing nothing.
pub trait Progress: Send + Sync {
    /// A suite began; `checks` results will follow.
    fn suite_started(&self, _suite: &str, _checks: usize) {}
    /// One check of `suite` concluded.
    fn check_finished(&self, _suite: &str, _result: &CheckResult) {}
    /// Every check of `suite` concluded (or the suite gave up).
    fn suite_finished(&self, _suite: &str) {}
}

/// Ignores every event: the default for library callers and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
