//! `conform`: run the plan's black-box checks against a live target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::checks::ratelimit::Buckets;
use crate::checks::{self, Ctx, Finding};
use crate::model::{CheckResult, Report, Subject};
use crate::plan::Plan;
use crate::probe::{Probe, ProbeError, Redactor};
use crate::progress::Progress;
use crate::target::Target;

#[derive(Debug, thiserror::Error)]
pub enum ConformError {
    #[error("`{pattern}` is not a valid check id glob")]
    Glob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error(transparent)]
    Probe(#[from] ProbeError),
}

/// Which check ids a run includes: `--only` and `--skip` globs.
#[derive(Debug, Clone)]
pub struct Selection {
    only: Option<GlobSet>,
    skip: Option<GlobSet>,
}

impl Selection {
    pub fn all() -> Self {
        Selection {
            only: None,
            skip: None,
        }
    }

    pub fn new(only: &[String], skip: &[String]) -> Result<Self, ConformError> {
        let set = |patterns: &[String]| -> Result<Option<GlobSet>, ConformError> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let mut builder = GlobSetBuilder::new();
            for pattern in patterns {
                let glob = Glob::new(pattern).map_err(|source| ConformError::Glob {
                    pattern: pattern.clone(),
                    source,
                })?;
                builder.add(glob);
            }
            builder
                .build()
                .map(Some)
                .map_err(|source| ConformError::Glob {
                    pattern: patterns.join(","),
                    source,
                })
        };
        Ok(Selection {
            only: set(only)?,
            skip: set(skip)?,
        })
    }

    pub fn includes(&self, id: &str) -> bool {
        self.only.as_ref().is_none_or(|s| s.is_match(id))
            && !self.skip.as_ref().is_some_and(|s| s.is_match(id))
    }
}

/// Everything a conform run needs, before it runs.
pub struct Conform {
    pub target: Arc<Target>,
    pub plan: Arc<Plan>,
    pub selection: Selection,
    /// Told when each area starts and ends, and of every result.
    pub progress: Arc<dyn Progress>,
}

/// Runs one area's suite between its progress events.
async fn area(
    progress: &dyn Progress,
    name: &str,
    ids: &[&str],
    suite: impl std::future::Future<Output = Vec<CheckResult>>,
) -> Vec<CheckResult> {
    if ids.is_empty() {
        return Vec::new();
    }
    progress.suite_started(name, ids.len());
    let results = suite.await;
    for result in &results {
        progress.check_finished(name, result);
    }
    progress.suite_finished(name);
    results
}

impl Conform {
    /// Runs the selected black-box checks; verify checks are not this run's.
    pub async fn run(&self) -> Result<(Report, Probe), ConformError> {
        let started_at = crate::now_rfc3339();
        let started = Instant::now();
        let redactor = Arc::new(Redactor::new());
        for account in self.target.accounts.values() {
            redactor.learn(&account.password);
        }
        if let Some(key) = &self.target.service_key {
            redactor.learn(key);
        }
        let probe = Probe::new(self.target.budget, redactor)?;
        let ctx = Ctx {
            target: self.target.clone(),
            plan: self.plan.clone(),
            probe: probe.clone(),
        };
        let conform_ids: Vec<&str> = self
            .plan
            .checks
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| !id.starts_with("verify."))
            .collect();
        let selected = |area: &str| -> Vec<&str> {
            conform_ids
                .iter()
                .copied()
                .filter(|id| id.split_once('.').map(|(a, _)| a) == Some(area))
                .filter(|id| self.selection.includes(id))
                .collect()
        };
        let ids = |area| selected(area);
        // Cookie and scope spend a few requests of free's and free2's
        // buckets, and of the anonymous one whenever a session they carry is
        // no longer valid (a target that lets a cross-site POST sign them
        // out, one that drops sessions): they hold all three shared, so the
        // ratelimit suite measures those buckets only once they are done.
        // Session checks use fresh accounts and only `/api/auth/*`, which
        // the contract leaves unmetered.
        let buckets = Buckets::default();
        let progress = self.progress.as_ref();
        let functional_lease = buckets.try_share(&["anonymous", "free", "free2"]);
        // A bucket an earlier run left exhausted answers 429 to checks that
        // test something else: they wait it out (at most a window each, two
        // windows in all) instead of reporting `error`.
        let window = Duration::from_secs(self.target.profile.window_s);
        let functional_ctx = Ctx {
            probe: probe.patient(
                window + Duration::from_secs(1),
                2 * window + Duration::from_secs(2),
            ),
            ..ctx.clone()
        };
        let functional = async {
            let ctx = &functional_ctx;
            let (cookie_ids, scope_ids) = (ids("cookie"), ids("scope"));
            let out = tokio::join!(
                area(
                    progress,
                    "cookie",
                    &cookie_ids,
                    checks::cookie::run(ctx, &cookie_ids)
                ),
                area(
                    progress,
                    "scope",
                    &scope_ids,
                    checks::scope::run(ctx, &scope_ids)
                ),
            );
            drop(functional_lease);
            out
        };
        let (session_ids, ratelimit_ids) = (ids("session"), ids("ratelimit"));
        let ((cookie, scope), session, ratelimit) = tokio::join!(
            functional,
            area(
                progress,
                "session",
                &session_ids,
                checks::session::run(&ctx, &session_ids)
            ),
            area(
                progress,
                "ratelimit",
                &ratelimit_ids,
                checks::ratelimit::run(&ctx, &ratelimit_ids, &buckets)
            ),
        );
        let mut results: Vec<CheckResult> = cookie
            .into_iter()
            .chain(scope)
            .chain(session)
            .chain(ratelimit)
            .collect();
        for id in &conform_ids {
            if results.iter().any(|r| r.id.as_str() == *id) {
                continue;
            }
            // Every conform area has a suite: a selected check without a
            // result could not be observed, which is an error, never a skip.
            let finding = if self.selection.includes(id) {
                Finding::error("the check was selected but did not run")
            } else {
                Finding::skip("not selected (--only/--skip)")
            };
            results.push(ctx.conclude(id, finding, 0));
        }
        // Plan order, so reports are stable.
        results.sort_by_key(|r| conform_ids.iter().position(|id| *id == r.id.as_str()));
        let subject = Subject {
            base_url: Some(self.target.base_url.to_string()),
            vantages: self
                .target
                .vantages
                .iter()
                .skip(1)
                .map(|v| v.to_string())
                .collect(),
            script: None,
        };
        let report = Report::new(
            "conform",
            &self.plan.id,
            subject,
            started_at,
            started.elapsed().as_millis() as u64,
            results,
        );
        Ok((report, probe))
    }
}

#[cfg(test)]
mod tests {
    use super::Selection;

    #[test]
    fn only_and_skip_globs() {
        let s = Selection::new(&["cookie.*".into()], &["cookie.max-age".into()]).unwrap();
        assert!(s.includes("cookie.httponly"));
        assert!(!s.includes("cookie.max-age"));
        assert!(!s.includes("scope.bola-list"));
        assert!(Selection::all().includes("anything.at-all"));
        let err = Selection::new(&["cookie.[".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("cookie.["));
    }
}
