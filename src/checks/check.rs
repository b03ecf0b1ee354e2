//! A check as data: its id, what it needs from a run (buckets, fresh
//! accounts, vantages, window turnovers) and the function that observes it.
//! The conform runner schedules from these declarations alone. Every area
//! builds its `CHECKS` from these types; [`super::registry`] collects them.

use futures_util::future::BoxFuture;

use super::{Ctx, Finding, Unobservable};

/// What a check's function returns: its own verdict, or why it could not
/// observe what it needed (reported as `error` with the reason).
pub type Observation = Result<Finding, Unobservable>;

/// The function that observes one check.
pub type Observe = fn(Ctx) -> BoxFuture<'static, Observation>;

/// How a check uses a rate-limit bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Spends a few requests of it while testing something else: held from
    /// the start of the run, so that no check measures the bucket while
    /// this one spends it. A 429 it meets is waited out (a patient probe).
    Shared,
    /// Measures it: taken when the measurement starts, after every shared
    /// holder is done, and by one measurement at a time.
    Exclusive,
}

/// A rate-limit bucket a check touches: the anonymous bucket of this
/// machine's address, or an account role's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub bucket: &'static str,
    pub access: Access,
}

/// Whether a check sees, or waits for, a rate-limit window turning over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Turnover {
    #[default]
    None,
    /// Its measurement reports the first window turnover it sees.
    Observes,
    /// It starts at a turnover another check observes, when one does.
    Awaits,
}

/// The resources a check needs from a run, as the scheduler reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub buckets: &'static [Lease],
    /// Signs up accounts of its own (so that revoking never ends another
    /// check's session).
    pub fresh_accounts: bool,
    /// Sends to every vantage of the target, not only its base URL.
    pub vantages: bool,
    pub turnover: Turnover,
}

impl Needs {
    /// Touches no bucket, no fresh account, one vantage.
    pub const NOTHING: Needs = Needs {
        buckets: &[],
        fresh_accounts: false,
        vantages: false,
        turnover: Turnover::None,
    };

    /// Whether the check may hold `bucket` with `access`.
    pub fn holds(&self, bucket: &str, access: Access) -> bool {
        self.buckets
            .iter()
            .any(|l| l.bucket == bucket && l.access == access)
    }

    /// A check that spends buckets shared tests something else with them,
    /// so a 429 it meets is waited out instead of judged.
    pub fn patient(&self) -> bool {
        self.buckets.iter().any(|l| l.access == Access::Shared)
    }
}

/// Shorthand for a shared lease.
pub const fn shared(bucket: &'static str) -> Lease {
    Lease {
        bucket,
        access: Access::Shared,
    }
}

/// Shorthand for an exclusive lease.
pub const fn exclusive(bucket: &'static str) -> Lease {
    Lease {
        bucket,
        access: Access::Exclusive,
    }
}

/// One conform check: its id (as in the suite), what it needs, and the
/// function that observes it.
#[derive(Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub needs: Needs,
    pub observe: Observe,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

impl Check {
    /// The area: the part of the id before the dot.
    pub fn area(&self) -> &'static str {
        self.id.split_once('.').map_or(self.id, |(a, _)| a)
    }
}

/// Registers an async check function `f(ctx: Ctx) -> Observation`.
#[macro_export]
#[doc(hidden)]
macro_rules! check {
    ($id:literal, $needs:expr, $f:path) => {
        $crate::checks::check::Check {
            id: $id,
            needs: $needs,
            observe: |ctx| Box::pin($f(ctx)),
        }
    };
}
