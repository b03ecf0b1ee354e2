//! `conform`: run the plan's black-box checks against a live target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::checks::registry::{self, Check};
use crate::checks::shared::Shared;
use crate::checks::{Ctx, Finding};
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
    /// Told when each area starts and ends, and of every result as it
    /// concludes.
    pub progress: Arc<dyn Progress>,
}

/// The header Cloudflare documents for sending a request to one version of a
/// gradual deployment (Workers gradual deployments, "version overrides").
pub const VERSION_OVERRIDES_HEADER: &str = "Cloudflare-Workers-Version-Overrides";

/// Why a version override header cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error(
        "script name `{0}` is not an RFC 8941 dictionary key (a lowercase letter or `*`, then lowercase letters, digits, `_`, `-`, `.`, `*`), so no `Cloudflare-Workers-Version-Overrides` header can name it"
    )]
    Script(String),
    #[error(
        "version id `{0}` is not an RFC 8941 string (printable ASCII only), so no `Cloudflare-Workers-Version-Overrides` header can carry it"
    )]
    Version(String),
}

/// A conform run pinned to one version of the live deployment: every
/// request of the run carries `Cloudflare-Workers-Version-Overrides:
/// <script>="<version id>"`, and every result names the version.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub script: String,
    pub version_id: String,
    /// The version's share of traffic (0–100) in the deployment.
    pub percentage: f64,
    /// Versions the deployment splits traffic between (this one included).
    pub of_versions: usize,
}

impl Pin {
    /// The header's value: an RFC 8941 dictionary of one member, the script
    /// name as key and the version id as an sf-string (`\` and `"`
    /// escaped). A name or id the grammar cannot carry is an error, never a
    /// header Cloudflare would ignore (which would leave the run unpinned).
    pub fn header_value(&self) -> Result<String, PinError> {
        let key = self.script.as_bytes();
        let key_ok = key
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || *b == b'*')
            && key.iter().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'.' | b'*')
            });
        if !key_ok {
            return Err(PinError::Script(self.script.clone()));
        }
        if !self.version_id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(PinError::Version(self.version_id.clone()));
        }
        let mut value = String::with_capacity(self.script.len() + self.version_id.len() + 3);
        value.push_str(&self.script);
        value.push_str("=\"");
        for c in self.version_id.chars() {
            if c == '"' || c == '\\' {
                value.push('\\');
            }
            value.push(c);
        }
        value.push('"');
        Ok(value)
    }
}

/// How many of an area's selected checks are still running.
struct Areas(Vec<(&'static str, usize)>);

impl Areas {
    fn new(checks: &[&'static Check], progress: &dyn Progress) -> Areas {
        let mut areas: Vec<(&'static str, usize)> = Vec::new();
        for check in checks {
            match areas.iter_mut().find(|(a, _)| *a == check.area()) {
                Some((_, n)) => *n += 1,
                None => areas.push((check.area(), 1)),
            }
        }
        for (area, n) in &areas {
            progress.suite_started(area, *n);
        }
        Areas(areas)
    }

    fn finished(&mut self, result: &CheckResult, progress: &dyn Progress) {
        let area = result.id.area();
        progress.check_finished(area, result);
        if let Some((_, n)) = self.0.iter_mut().find(|(a, _)| *a == area) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                progress.suite_finished(area);
            }
        }
    }
}

/// What a panic carried, for the check's `error`.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// What a run would do, worked out without sending anything
/// (`conform --dry-run`).
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    /// The selected checks, in plan order: area, id, title.
    pub checks: Vec<(String, String, String)>,
    /// Where the requests would go: the base URL and every vantage.
    pub targets: Vec<String>,
    pub max_requests: u64,
    pub max_rps: u32,
    /// The expected wall time, low and high, in seconds, and what sets it.
    pub expected_s: (u64, u64),
    pub expected_why: Vec<String>,
}

impl Conform {
    /// The plan of a run, its request budget and its expected duration;
    /// sends nothing and reads no secret beyond what the config resolved.
    ///
    /// The expected time follows how a run spends it: the suites run side
    /// by side, so it is the longest of (a) a rate-limit measurement, one
    /// to three windows (spend the bucket, wait for the turnover, count the
    /// next window and probe inside it), (b) a revocation trial, the
    /// revocation bound once or twice (the refusal, then the watch for a
    /// resurrection), and (c) the requests themselves at the rate cap.
    pub fn dry_run(&self) -> DryRun {
        let checks: Vec<(String, String, String)> = self
            .plan
            .checks
            .iter()
            .filter(|c| !c.id.as_str().starts_with("verify."))
            .filter(|c| self.selection.includes(c.id.as_str()))
            .map(|c| (c.area.clone(), c.id.to_string(), c.title.clone()))
            .collect();
        let has = |area: &str| checks.iter().any(|(a, ..)| a == area);
        let profile = &self.target.profile;
        let budget = self.target.budget;
        let rps = u64::from(budget.max_rps.max(1));
        let mut low = 1u64;
        let mut high = 5u64;
        let mut why = Vec::new();
        if has("ratelimit") {
            let w = profile.window_s;
            low = low.max(w);
            high = high.max(3 * w + 2);
            why.push(format!(
                "rate limits: {w}–{} s (one to three {w} s windows per bucket, buckets side by side)",
                3 * w + 2
            ));
        }
        if has("session") {
            let r = profile.revocation_bound_s;
            low = low.max(r);
            high = high.max(2 * r + 2);
            why.push(format!(
                "revocation: {r}–{} s (the {r} s bound, then the watch for a resurrection)",
                2 * r + 2
            ));
        }
        // At least one request per check, at most the budget, at the cap.
        let least = (checks.len() as u64).div_ceil(rps);
        let most = budget.max_requests.div_ceil(rps);
        low = low.max(least);
        why.push(format!(
            "requests: at most {} at {} per second: {most} s if the whole budget were spent",
            budget.max_requests, budget.max_rps
        ));
        let targets = std::iter::once(&self.target.base_url)
            .chain(self.target.vantages.iter())
            .map(|u| {
                // Never a credential a URL carries.
                let mut u = u.clone();
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        DryRun {
            checks,
            targets,
            max_requests: budget.max_requests,
            max_rps: budget.max_rps,
            expected_s: (low, high.max(low)),
            expected_why: why,
        }
    }

    /// Runs the selected black-box checks; verify checks are not this run's.
    ///
    /// Every check runs in a task of its own, scheduled from what it
    /// declares ([`Needs`](crate::checks::registry::Needs)): shared bucket
    /// leases are taken for every check before any starts, exclusive ones
    /// by a measurement when it starts, so a bucket is measured only once
    /// no other check spends it. A check whose task panics is an `error`.
    pub async fn run(&self) -> Result<(Report, Probe), ConformError> {
        self.run_pinned(None, Arc::new(Redactor::new())).await
    }

    /// [`Conform::run`], pinned to one live version when `pin` is given
    /// (every request carries its override header, every result names the
    /// version and says what the header does and does not show), learning
    /// every secret into `redactor` (an audit shares one across its runs).
    /// The run has a request budget of its own (`target.budget`).
    pub async fn run_pinned(
        &self,
        pin: Option<&Pin>,
        redactor: Arc<Redactor>,
    ) -> Result<(Report, Probe), ConformError> {
        let started_at = crate::now_rfc3339();
        let started = Instant::now();
        for account in self.target.accounts.values() {
            redactor.learn(&account.password);
        }
        if let Some(key) = &self.target.service_key {
            redactor.learn(key);
        }
        if let Some(name) = &self.target.session_cookie {
            redactor.hold_cookie(name);
        }
        let mut probe = Probe::new(self.target.budget, redactor)?;
        let pinned = match pin.map(|p| (p, p.header_value())) {
            None => None,
            Some((p, Ok(value))) => {
                probe = probe.with_run_header(VERSION_OVERRIDES_HEADER, &value);
                Some((p, Ok(value)))
            }
            Some((p, Err(e))) => Some((p, Err(e))),
        };
        if let Some((pin, Err(e))) = &pinned {
            return Ok((self.unpinnable(pin, e, started_at, started), probe));
        }
        let conform_ids: Vec<&str> = self
            .plan
            .checks
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| !id.starts_with("verify."))
            .collect();
        let selected: Vec<&'static Check> = conform_ids
            .iter()
            .filter(|id| self.selection.includes(id))
            .filter_map(|id| registry::find(id))
            .collect();
        let shared = Arc::new(Shared::new(&selected));
        let ctx = |check: &'static Check, probe: Probe, (lease, passwords)| Ctx {
            target: self.target.clone(),
            plan: self.plan.clone(),
            probe,
            shared: shared.clone(),
            check: check.id,
            needs: check.needs,
            lease: Arc::new(std::sync::Mutex::new(Some(lease))),
            passwords: Arc::new(std::sync::Mutex::new(passwords)),
        };
        // A bucket spent by an earlier run, or by the checks sharing it,
        // answers 429 to checks that test something else with it: they wait
        // it out (at most a window and a second each, two windows and two
        // seconds in all, counted from each request's first send, not from
        // the run's start) instead of reporting `error`.
        let window = Duration::from_secs(self.target.profile.window_s);
        let patient = probe.patient(
            window + Duration::from_secs(1),
            2 * window + Duration::from_secs(2),
        );
        let leases: Vec<_> = selected
            .iter()
            .map(|c| (shared.share(c), shared.hold_passwords(c)))
            .collect();
        let mut areas = Areas::new(&selected, self.progress.as_ref());
        let mut running = FuturesUnordered::new();
        for (check, lease) in selected.iter().copied().zip(leases) {
            let probe = if check.needs.patient() {
                patient.clone()
            } else {
                probe.clone()
            };
            // The check holds its shared leases until it ends (its context
            // is dropped with it) or releases them earlier.
            let ctx = ctx(check, probe, lease);
            let task = tokio::spawn(async move {
                let began = Instant::now();
                let observation = (check.observe)(ctx).await;
                (observation, began.elapsed())
            });
            let began = Instant::now();
            running.push(async move { (check, task.await, began) });
        }
        let mut results: Vec<CheckResult> = Vec::new();
        while let Some((check, joined, began)) = running.next().await {
            let (finding, took) = match joined {
                Ok((Ok(finding), took)) => (finding, took),
                Ok((Err(unobservable), took)) => (unobservable.finding(), took),
                Err(e) if e.is_panic() => (
                    Finding::error(format!(
                        "the check panicked (a harness bug, reported as error): {}",
                        panic_message(e.into_panic())
                    )),
                    began.elapsed(),
                ),
                Err(_) => (
                    Finding::error("the check's task was cancelled"),
                    began.elapsed(),
                ),
            };
            let result = ctx(check, probe.clone(), (Vec::new(), None)).conclude(
                check.id,
                finding,
                took.as_millis() as u64,
            );
            areas.finished(&result, self.progress.as_ref());
            results.push(result);
        }
        for id in &conform_ids {
            if results.iter().any(|r| r.id.as_str() == *id) {
                continue;
            }
            // A selected check without a result could not be observed (its
            // id has no registered function): an error, never a skip.
            let finding = if self.selection.includes(id) {
                Finding::error("no check function is registered for this id")
            } else {
                Finding::skip("not selected (--only/--skip)")
            };
            results.push(self.plan.conclude(id, finding, 0));
        }
        // Plan order, so reports are stable.
        results.sort_by_key(|r| conform_ids.iter().position(|id| *id == r.id.as_str()));
        if let Some((pin, Ok(value))) = &pinned {
            let sent = probe.governor().sent_count();
            for result in &mut results {
                result.version = Some(pin.version_id.clone());
                if result.status != crate::model::Status::Skip {
                    result.evidence.insert(0, pinned_note(pin, value, sent));
                }
            }
        }
        let subject = self.subject();
        let mut report = Report::new(
            "conform",
            &self.plan.id,
            subject,
            started_at,
            started.elapsed().as_millis() as u64,
            results,
        );
        report.parameters = Some(self.plan.parameters(Some(&self.target.profile)));
        // Once more against everything the run learned, whatever was known
        // when each exchange was recorded; fails closed.
        probe.redactor().redact(&mut report);
        Ok((report, probe))
    }
}

/// What a pinned run's header shows, and what it does not.
fn pinned_note(pin: &Pin, value: &str, sent: usize) -> crate::model::Evidence {
    crate::model::Evidence::note(format!(
        "run pinned to version {} ({}% of traffic, one of {} live versions): each of this run's {sent} requests carried `{VERSION_OVERRIDES_HEADER}: {value}`. Whether the Worker honoured the override cannot be observed from outside unless the versions answer differently; this result is for that version only if Cloudflare applied the header.",
        pin.version_id, pin.percentage, pin.of_versions
    ))
}

impl Conform {
    /// The report of a run that could not be pinned: every selected check
    /// an `error` naming why (an unpinned run would judge whichever version
    /// Cloudflare picked), the rest skipped.
    fn unpinnable(&self, pin: &Pin, e: &PinError, started_at: String, started: Instant) -> Report {
        let results: Vec<CheckResult> = self
            .plan
            .checks
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| !id.starts_with("verify."))
            .map(|id| {
                let finding = if self.selection.includes(id) {
                    Finding::error(format!(
                        "could not pin the run to version {}: {e}",
                        pin.version_id
                    ))
                } else {
                    Finding::skip("not selected (--only/--skip)")
                };
                let mut result = self.plan.conclude(id, finding, 0);
                result.version = Some(pin.version_id.clone());
                result
            })
            .collect();
        let mut report = Report::new(
            "conform",
            &self.plan.id,
            self.subject(),
            started_at,
            started.elapsed().as_millis() as u64,
            results,
        );
        report.parameters = Some(self.plan.parameters(Some(&self.target.profile)));
        report
    }

    fn subject(&self) -> Subject {
        Subject {
            base_url: Some(self.target.base_url.to_string()),
            vantages: self
                .target
                .vantages
                .iter()
                .skip(1)
                .map(|v| v.to_string())
                .collect(),
            script: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pin, PinError, Selection};

    fn pin(script: &str, version: &str) -> Pin {
        Pin {
            script: script.into(),
            version_id: version.into(),
            percentage: 50.0,
            of_versions: 2,
        }
    }

    #[test]
    fn the_override_header_is_an_rfc_8941_dictionary_of_one_member() {
        assert_eq!(
            pin("flarelink-auth", "dc8dcd28-271b-4367-9840-6c244f84cb40")
                .header_value()
                .unwrap(),
            "flarelink-auth=\"dc8dcd28-271b-4367-9840-6c244f84cb40\""
        );
        assert_eq!(
            pin("w_1.x", "a\"b\\c").header_value().unwrap(),
            r#"w_1.x="a\"b\\c""#
        );
        // An sf-key starts with a lowercase letter or `*`.
        assert!(matches!(
            pin("1worker", "v").header_value(),
            Err(PinError::Script(_))
        ));
        assert!(matches!(
            pin("Worker", "v").header_value(),
            Err(PinError::Script(_))
        ));
        assert!(matches!(
            pin("", "v").header_value(),
            Err(PinError::Script(_))
        ));
        assert!(matches!(
            pin("w", "v\u{e9}").header_value(),
            Err(PinError::Version(_))
        ));
        assert!(matches!(
            pin("w", "v\n").header_value(),
            Err(PinError::Version(_))
        ));
    }

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
