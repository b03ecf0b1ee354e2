//! The registry: every area's `CHECKS` (see [`super::check`] for what a
//! check declares), and lookup by id. Nothing but this module and the
//! runner imports the areas' lists, so the areas depend on the check types
//! and never on the registry.

pub use super::check::{
    Access, Check, Lease, Needs, Observation, Observe, Turnover, exclusive, shared,
};

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
