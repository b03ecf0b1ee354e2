//! The checks, one module per area. Each area lists its checks as data
//! (`CHECKS`, see [`registry`]): an id, what it needs from the run, and the
//! function that observes it through the [`Probe`]. Observations several
//! checks judge are made once per run ([`Ctx::once`]).

pub mod check;
pub mod cookie;
pub mod families;
mod identity;
pub mod ratelimit;
pub mod registry;
pub mod scope;
pub mod session;
pub mod shared;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::model::Finding;
pub use identity::{Identity, Unobservable, sign_in, sign_in_as, sign_out, still_signed_in};

use crate::model::CheckResult;
use crate::plan::Plan;
use crate::probe::Probe;
use crate::target::Target;
use check::{Access, Needs};
use shared::{ExclusiveLease, Shared};

/// What a check sees of its run: the target, the plan, the probe it sends
/// through, the run's shared state, and what it declared it needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub target: Arc<Target>,
    pub plan: Arc<Plan>,
    pub probe: Probe,
    pub shared: Arc<Shared>,
    /// The check this context serves.
    pub check: &'static str,
    pub needs: Needs,
    /// The check's shared leases, held until it ends or calls
    /// [`Ctx::release_shared`].
    pub lease: Arc<std::sync::Mutex<Option<shared::SharedLease>>>,
    /// The check's hold on the password lane (checks that sign up accounts
    /// of their own), held until it ends or calls
    /// [`Ctx::release_passwords`].
    pub passwords: Arc<std::sync::Mutex<Option<shared::PasswordHold>>>,
}

impl Ctx {
    /// A context outside any run, for using the checks' building blocks
    /// (signing in, a probe) on their own: it needs nothing and shares
    /// nothing.
    pub fn standalone(target: Arc<Target>, plan: Arc<Plan>, probe: Probe) -> Ctx {
        Ctx {
            target,
            plan,
            probe,
            shared: Arc::new(Shared::new(&[])),
            check: "harness.standalone",
            needs: Needs::NOTHING,
            lease: Arc::default(),
            passwords: Arc::default(),
        }
    }

    /// Lets other checks' sign-ins go: this check's password work (its
    /// sign-ups and sign-ins) is done.
    pub fn release_passwords(&self) {
        if let Ok(mut hold) = self.passwords.lock() {
            hold.take();
        }
    }

    /// Gives up the check's shared leases before it ends, once it will send
    /// nothing more that spends those buckets: a measurement waiting for
    /// them starts then, not when the check is done.
    pub fn release_shared(&self) {
        if let Ok(mut lease) = self.lease.lock() {
            lease.take();
        }
    }

    /// The observation stored under `key`, made once per run by whichever
    /// check asks first (see [`Shared`]).
    pub async fn once<T, F, Fut>(&self, key: &str, make: F) -> Result<Arc<T>, Unobservable>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Unobservable>>,
    {
        self.shared.once(key, make).await
    }

    /// Takes `buckets` exclusively for a measurement. A bucket the check
    /// did not declare exclusive is refused: the scheduler could not have
    /// ordered it against the checks that share it.
    pub async fn exclusive(&self, buckets: &[&str]) -> Result<ExclusiveLease, Unobservable> {
        if let Some(b) = buckets
            .iter()
            .find(|b| !self.needs.holds(b, Access::Exclusive))
        {
            return Err(Unobservable::new(format!(
                "check `{}` measures bucket `{b}` but does not declare it exclusive",
                self.check
            )));
        }
        Ok(self.shared.exclusive(buckets).await)
    }

    /// Reports that a window began, at the earliest, at `at`.
    pub fn saw_turnover(&self, at: Instant) {
        self.shared.saw_turnover(at);
    }

    /// The first window turnover another check reports, within `patience`.
    pub async fn turnover(&self, patience: Duration) -> Option<Instant> {
        self.shared.turnover(patience).await
    }

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

#[cfg(test)]
mod debug_tests {
    use std::sync::Arc;

    use super::Ctx;
    use crate::model::Secret;
    use crate::plan::Plan;
    use crate::probe::{Probe, Redactor};
    use crate::target::TargetConfig;

    /// `{:?}` of a check's context (target, probe, redactor) prints no
    /// secret it holds or has learned.
    #[test]
    fn a_contexts_debug_holds_no_secret() {
        let config = "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://a.test\"\n\
                      [accounts.free]\nemail = \"a@a.test\"\npassword_env = \"PW\"\n\
                      [data]\nservice_key_env = \"KEY\"\n";
        let target = TargetConfig::parse("t.toml", config)
            .unwrap()
            .resolve("t.toml", |var| {
                Some(match var {
                    "PW" => "pw-canary-4711".to_owned(),
                    _ => "key-canary-4711".to_owned(),
                })
            })
            .unwrap();
        let target = Arc::new(target);
        let redactor = Arc::new(Redactor::new());
        redactor.learn(&Secret::new("token-canary-4711".to_owned()));
        let probe = Probe::new(target.budget, redactor).unwrap();
        let ctx = Ctx::standalone(
            target,
            Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
            probe,
        );
        let printed = format!("{ctx:?} {ctx:#?}");
        for secret in ["pw-canary-4711", "key-canary-4711", "token-canary-4711"] {
            assert!(!printed.contains(secret), "{secret} is in {printed}");
        }
    }
}
