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

    /// The README's `## Checks` table, as the suite makes it.
    fn checks_table(plan: &Plan) -> String {
        let mut table = String::from("| id | what it checks | level |\n|---|---|---|\n");
        for c in &plan.checks {
            let level = match c.level {
                crate::model::Level::Must => "must",
                crate::model::Level::Should => "should",
            };
            table.push_str(&format!("| `{}` | {} | {level} |\n", c.id, c.title));
        }
        table
    }

    /// The README's `## Checks` table must be the suite's: a check is
    /// listed by regenerating it (`FLAREPROOF_BLESS=1 cargo test --lib`),
    /// not by hand.
    #[test]
    fn the_readme_lists_the_suites_checks() {
        let plan = Plan::builtin("flarelink-auth/v1").unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme
            .find("| id | what it checks | level |\n")
            .expect("the README has the checks table");
        let end = readme[start..]
            .find("\n\n")
            .map_or(readme.len(), |e| start + e + 1);
        let want = checks_table(&plan);
        if std::env::var_os("FLAREPROOF_BLESS").is_some() {
            let blessed = format!("{}{want}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, blessed).unwrap();
            return;
        }
        assert_eq!(
            &readme[start..end],
            want,
            "README.md's checks table is not the suite's; rerun with FLAREPROOF_BLESS=1 to regenerate it"
        );
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
        let mut faults = BTreeSet::new();
        for check in &plan.checks {
            let fault = check
                .fault
                .as_ref()
                .unwrap_or_else(|| panic!("{} names no fault", check.id));
            assert!(faults.insert(fault.id.as_str()), "{}", check.id);
            assert!(!fault.effect.is_empty(), "{}", check.id);
            if !check.id.as_str().starts_with("verify.") {
                assert_eq!(fault.site, FaultSite::Worker, "{}", check.id);
            }
        }

        // The README lists the same ids: see `the_readme_lists_the_suites_checks`.
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
