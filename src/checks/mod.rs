//! The checks, one module per area. Each suite function observes the target
//! through the [`Probe`] and returns one [`CheckResult`] per check id it owns.

pub mod cookie;
mod identity;
pub mod ratelimit;
pub mod scope;
pub mod session;
pub mod verify;

use std::sync::Arc;

pub use crate::model::Finding;
pub use identity::{Identity, Unobservable, sign_in, sign_in_as, sign_out, still_signed_in};

use crate::model::CheckResult;
use crate::plan::Plan;
use crate::probe::Probe;
use crate::target::Target;

/// What every check of a run shares.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub target: Arc<Target>,
    pub plan: Arc<Plan>,
    pub probe: Probe,
}

impl Ctx {
    /// The absolute URL of a contract path at the target's base URL.
    pub fn url(&self, path: &str) -> url::Url {
        join(&self.target.base_url, path)
    }

    /// Turns a finding into the check's result (see [`Plan::conclude`]),
    /// scrubbing any secret the run knows from its summary.
    pub fn conclude(&self, id: &str, mut finding: Finding, duration_ms: u64) -> CheckResult {
        finding.summary = self.probe.redactor().scrub(&finding.summary);
        self.plan.conclude(id, finding, duration_ms)
    }
}

/// Joins a contract path onto a base URL, keeping the base's own path prefix.
pub fn join(base: &url::Url, path: &str) -> url::Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    url.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    url.set_query((!query.is_empty()).then_some(query));
    url
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn join_keeps_base_prefix_and_query() {
        let base = url::Url::parse("https://a.test/tenant/").unwrap();
        assert_eq!(
            join(&base, "/api/me").as_str(),
            "https://a.test/tenant/api/me"
        );
        let base = url::Url::parse("http://127.0.0.1:8787").unwrap();
        assert_eq!(
            join(&base, "/api/posts?author_id=7").as_str(),
            "http://127.0.0.1:8787/api/posts?author_id=7"
        );
    }
}
