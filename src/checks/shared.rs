//! What the checks of one run share: observations made once and read by
//! every check that needs them (a sign-in, a tier's measured bucket, a set
//! of revocation trials), the rate-limit bucket locks, and the first window
//! turnover a measurement saw.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, watch};

use super::Unobservable;
use super::check::{Access, Check};

type Slot = Arc<OnceCell<Result<Arc<dyn Any + Send + Sync>, Unobservable>>>;

/// Held while a check spends a bucket shared.
pub type SharedLease = Vec<OwnedRwLockReadGuard<()>>;

/// A check's hold on the password lane ([`Shared::hold_passwords`]).
pub type PasswordHold = OwnedRwLockReadGuard<()>;
/// Held while a measurement spends buckets exclusively.
pub type ExclusiveLease = Vec<OwnedRwLockWriteGuard<()>>;

/// The run-wide state behind every check's [`super::Ctx`].
pub struct Shared {
    observations: Mutex<BTreeMap<(TypeId, String), Slot>>,
    buckets: BTreeMap<&'static str, Arc<RwLock<()>>>,
    turnover: watch::Sender<Option<Instant>>,
    /// Whether any check of the run observes a window turnover.
    turnover_expected: bool,
    /// The ids of the run's checks.
    selected: Vec<&'static str>,
    /// Held (read) by every check that signs up accounts of its own until
    /// its password work is done; other checks' sign-ins wait for it
    /// (write), see [`Shared::passwords_first`].
    passwords: Arc<RwLock<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("buckets", &self.buckets.keys().collect::<Vec<_>>())
            .field("turnover_expected", &self.turnover_expected)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The state for a run of `checks`: a lock per bucket any of them
    /// declares.
    pub fn new(checks: &[&Check]) -> Shared {
        let buckets = checks
            .iter()
            .flat_map(|c| c.needs.buckets)
            .map(|l| (l.bucket, Arc::new(RwLock::new(()))))
            .collect();
        let turnover_expected = checks
            .iter()
            .any(|c| c.needs.turnover == super::check::Turnover::Observes);
        Shared {
            observations: Mutex::new(BTreeMap::new()),
            buckets,
            turnover: watch::channel(None).0,
            turnover_expected,
            selected: checks.iter().map(|c| c.id).collect(),
            passwords: Arc::default(),
        }
    }

    /// The hold on other checks' sign-ins that `check` takes if it signs up
    /// accounts of its own (the revocation trials: their sign-ups and
    /// sign-ins start the run's longest chain). Called for every check
    /// before any runs, like [`Shared::share`].
    pub fn hold_passwords(&self, check: &Check) -> Option<PasswordHold> {
        check
            .needs
            .fresh_accounts
            .then(|| self.passwords.clone().try_read_owned().ok())
            .flatten()
    }

    /// Waits until every check holding the password lane has let it go. A
    /// Worker hashes passwords in one isolate one after another: sign-ins
    /// that are not on the run's longest chain go after the ones that are,
    /// instead of all finishing together at the end. The holders never
    /// wait for anything a waiter does, so this cannot deadlock.
    pub async fn passwords_first(&self) {
        drop(self.passwords.write().await);
    }

    /// Whether check `id` is part of this run.
    pub fn selected(&self, id: &str) -> bool {
        self.selected.contains(&id)
    }

    /// Takes `check`'s shared leases now. Called for every check before any
    /// runs, so that a measurement's exclusive lease waits for all of them.
    pub fn share(&self, check: &Check) -> SharedLease {
        check
            .needs
            .buckets
            .iter()
            .filter(|l| l.access == Access::Shared)
            .filter_map(|l| self.buckets.get(l.bucket))
            .filter_map(|lock| lock.clone().try_read_owned().ok())
            .collect()
    }

    /// Takes `buckets` exclusively, in one global order (so that two
    /// measurements never wait on each other).
    pub(super) async fn exclusive(&self, buckets: &[&str]) -> ExclusiveLease {
        let mut names: Vec<&str> = buckets.to_vec();
        names.sort_unstable();
        names.dedup();
        let mut guards = Vec::new();
        for name in names {
            if let Some(lock) = self.buckets.get(name) {
                guards.push(lock.clone().write_owned().await);
            }
        }
        guards
    }

    /// The observation stored under `key`, made by `make` the first time
    /// any check asks for it; every later caller waits for and reads the
    /// same result (an `Unobservable` too).
    pub(super) async fn once<T, F, Fut>(&self, key: &str, make: F) -> Result<Arc<T>, Unobservable>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Unobservable>>,
    {
        let slot = {
            let mut map = self
                .observations
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            map.entry((TypeId::of::<T>(), key.to_owned()))
                .or_default()
                .clone()
        };
        let made = slot
            .get_or_init(|| async {
                make()
                    .await
                    .map(|t| Arc::new(t) as Arc<dyn Any + Send + Sync>)
            })
            .await
            .clone()?;
        made.downcast::<T>()
            .map_err(|_| Unobservable::new(format!("observation `{key}` has another type")))
    }

    /// A measurement saw a window begin, at the earliest, at `at`; only the
    /// first report counts.
    pub(super) fn saw_turnover(&self, at: Instant) {
        self.turnover.send_if_modified(|seen| {
            if seen.is_none() {
                *seen = Some(at);
                true
            } else {
                false
            }
        });
    }

    /// The first window turnover a measurement of this run reports, waiting
    /// at most `patience` for it; `None` at once when no check of the run
    /// observes turnovers.
    pub(super) async fn turnover(&self, patience: Duration) -> Option<Instant> {
        if !self.turnover_expected {
            return None;
        }
        let mut rx = self.turnover.subscribe();
        match tokio::time::timeout(patience, rx.wait_for(Option::is_some)).await {
            Ok(Ok(at)) => *at,
            _ => None,
        }
    }
}
