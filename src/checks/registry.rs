//! Checks as data: one [`Check`] per conform check id, holding what it needs
//! from a run and the function that observes it. The conform runner
//! schedules from these declarations alone; an area module lists its checks
//! beside their functions (`CHECKS`), and [`all`] is every area's list.

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

/// Every conform check, area by area.
pub fn all() -> Vec<&'static Check> {
    [
        super::cookie::CHECKS,
        super::scope::CHECKS,
        super::session::CHECKS,
        super::ratelimit::CHECKS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The check registered under `id`.
pub fn find(id: &str) -> Option<&'static Check> {
    all().into_iter().find(|c| c.id == id)
}

/// Registers an async check function `f(ctx: Ctx) -> Observation`.
#[macro_export]
#[doc(hidden)]
macro_rules! check {
    ($id:literal, $needs:expr, $f:path) => {
        $crate::checks::registry::Check {
            id: $id,
            needs: $needs,
            observe: |ctx| Box::pin($f(ctx)),
        }
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::plan::{FaultSite, Plan};

    /// The check ids the README's `## Checks` table lists, in order.
    fn readme_ids() -> Vec<String> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Checks\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the README has a `## Checks` section");
        section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(id, _)| id.to_owned()))
            .collect()
    }

    #[test]
    fn registry_suite_faults_and_docs_list_the_same_checks() {
        let plan = Plan::builtin("flarelink-auth/v1").unwrap();
        let planned: Vec<&str> = plan.checks.iter().map(|c| c.id.as_str()).collect();

        // The registry holds exactly the suite's conform checks, in order;
        // verify's ids are the suite's verify checks.
        let registered: Vec<&str> = all().iter().map(|c| c.id).collect();
        let conform: Vec<&str> = planned
            .iter()
            .copied()
            .filter(|id| !id.starts_with("verify."))
            .collect();
        assert_eq!(registered, conform);
        let verify: Vec<&str> = planned
            .iter()
            .copied()
            .filter(|id| id.starts_with("verify."))
            .collect();
        assert_eq!(super::super::verify::IDS.to_vec(), verify);

        // Every check names a fault of its own, a Worker or build switch for
        // every conform check (a stand-in tamper only for verify's).
        let faults: BTreeSet<&str> = plan.checks.iter().map(|c| c.fault.id.as_str()).collect();
        assert_eq!(faults.len(), plan.checks.len());
        for check in &plan.checks {
            assert!(!check.fault.effect.is_empty(), "{}", check.id);
            if !check.id.as_str().starts_with("verify.") {
                assert_eq!(check.fault.site, FaultSite::Worker, "{}", check.id);
            }
        }

        // The README lists the same ids, in order.
        assert_eq!(readme_ids(), planned);
    }

    #[test]
    fn declared_needs_are_consistent() {
        for check in all() {
            for lease in check.needs.buckets {
                // A bucket is either shared or measured by one check, never both.
                assert!(
                    !check.needs.holds(
                        lease.bucket,
                        match lease.access {
                            Access::Shared => Access::Exclusive,
                            Access::Exclusive => Access::Shared,
                        }
                    ),
                    "{} declares `{}` both shared and exclusive",
                    check.id,
                    lease.bucket
                );
            }
            // Only a check that measures a bucket reports turnovers.
            if check.needs.turnover == Turnover::Observes {
                assert!(
                    check
                        .needs
                        .buckets
                        .iter()
                        .any(|l| l.access == Access::Exclusive),
                    "{} observes turnovers without measuring a bucket",
                    check.id
                );
            }
        }
    }
}
