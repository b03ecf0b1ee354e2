//! Known failures (`--known-failures FILE`): checks a target is known to
//! fail, each with the reason, as the OpenID conformance suite keeps
//! expected failures.
//!
//! The file is TOML, one `"check id glob" = "reason"` per line:
//!
//! ```toml
//! "cookie.prefix" = "__Host- migration in progress (TICKET-12)"
//! "ratelimit.*" = "limits are enforced by the WAF in front, not the Worker"
//! ```
//!
//! A listed check that fails (or warns) is reported as `skip`, its summary
//! saying why; its evidence is kept. An entry that names one check by its
//! exact id asks to be removed once that check passes: the check is
//! reported as `fail`, "known failure no longer fails: remove it", so the
//! list cannot outlive the problem (as the OpenID conformance suite's
//! expected failures do). A glob (`ratelimit.*`) only says which failures
//! are expected: a check it matches that passes stays `pass`, with a note,
//! since a glob over an area covers checks that never failed. No entry
//! turns a `warn`, `skip` or `error` into a `fail`; `error` and `skip` are
//! left as they are: an `error` means nothing was observed, so it is
//! neither hidden nor a sign of a fix. When several entries match, an
//! exact id wins, then the first glob in sorted order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};

use crate::model::{CheckResult, Evidence, Report, Status};

#[derive(Debug, thiserror::Error)]
pub enum KnownFailuresError {
    #[error("read known failures `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse known failures `{path}` (expected `\"check id glob\" = \"reason\"` lines)")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("known failures `{path}`: `{pattern}` is not a valid check id glob")]
    Glob {
        path: PathBuf,
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error(
        "known failures `{path}`: `{pattern}` needs a reason (a non-empty string), not {found}"
    )]
    Reason {
        path: PathBuf,
        pattern: String,
        found: String,
    },
}

/// One entry: a glob over check ids and the reason it is known to fail.
#[derive(Debug, Clone)]
struct Entry {
    pattern: String,
    matcher: GlobMatcher,
    reason: String,
}

/// A parsed known-failures file.
#[derive(Debug, Clone)]
pub struct KnownFailures {
    path: PathBuf,
    entries: Vec<Entry>,
}

impl KnownFailures {
    pub fn load(path: &Path) -> Result<Self, KnownFailuresError> {
        let text = fs_err::read_to_string(path).map_err(|source| KnownFailuresError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the file's text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, KnownFailuresError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|source| KnownFailuresError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        let mut entries = Vec::new();
        for (pattern, value) in table {
            let reason = match &value {
                toml::Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
                toml::Value::String(_) => "an empty string".to_owned(),
                other => format!("a {}", other.type_str()),
            };
            if !matches!(&value, toml::Value::String(s) if !s.trim().is_empty()) {
                return Err(KnownFailuresError::Reason {
                    path: path.to_owned(),
                    pattern,
                    found: reason,
                });
            }
            let matcher = Glob::new(&pattern)
                .map_err(|source| KnownFailuresError::Glob {
                    path: path.to_owned(),
                    pattern: pattern.clone(),
                    source,
                })?
                .compile_matcher();
            entries.push(Entry {
                pattern,
                matcher,
                reason,
            });
        }
        entries.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        Ok(KnownFailures {
            path: path.to_owned(),
            entries,
        })
    }

    /// The entries as written: glob → reason.
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|e| (e.pattern.clone(), e.reason.clone()))
            .collect()
    }

    fn entry_for(&self, id: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.pattern == id)
            .or_else(|| self.entries.iter().find(|e| e.matcher.is_match(id)))
    }

    /// Applies the list to one result.
    pub fn apply_to(&self, mut check: CheckResult) -> CheckResult {
        let Some(entry) = self.entry_for(check.id.as_str()) else {
            return check;
        };
        let listed = format!(
            "listed in {} as `{}` = {:?}",
            self.path.display(),
            entry.pattern,
            entry.reason
        );
        match check.status {
            Status::Fail | Status::Warn => {
                check.evidence.insert(
                    0,
                    Evidence::note(format!(
                        "known failure, {listed}; without it: {}: {}",
                        check.status, check.summary
                    )),
                );
                check.summary = format!("known failure: {}", entry.reason);
                check.status = Status::Skip;
            }
            Status::Pass if entry.pattern != check.id.as_str() => {
                check.evidence.push(Evidence::note(format!(
                    "{listed}; it passes (a glob marks the failures it matches as expected, it \
                     never fails a check that passes)"
                )));
            }
            Status::Pass => {
                check.evidence.insert(
                    0,
                    Evidence::note(format!("{listed}; it passed: {}", check.summary)),
                );
                check.summary = format!(
                    "known failure no longer fails: remove it (`{}` in {})",
                    entry.pattern,
                    self.path.display()
                );
                check.status = Status::Fail;
            }
            Status::Error | Status::Skip => {
                check
                    .evidence
                    .push(Evidence::note(format!("known failure, {listed}")));
            }
        }
        check
    }

    /// Applies the list to a report; the verdict and counts are derived
    /// again from the new statuses.
    pub fn apply(&self, report: Report) -> Report {
        let mut report = report;
        let checks = std::mem::take(&mut report.checks)
            .into_iter()
            .map(|c| self.apply_to(c))
            .collect();
        report.with_checks(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CheckId, Subject, Verdict};

    fn check(id: &str, status: Status) -> CheckResult {
        CheckResult {
            id: CheckId::new(id).unwrap(),
            title: id.into(),
            status,
            summary: format!("{status} as observed"),
            severity: None,
            level: None,
            help: String::new(),
            requirements: vec![],
            evidence: vec![],
            duration_ms: 1,
            version: None,
            target: None,
        }
    }

    fn report(checks: Vec<CheckResult>) -> Report {
        Report::new(
            "conform",
            "flarelink-auth/v1",
            Subject {
                base_url: None,
                vantages: vec![],
                script: None,
            },
            "t".into(),
            1,
            checks,
        )
    }

    fn list(text: &str) -> KnownFailures {
        KnownFailures::parse(Path::new("known.toml"), text).unwrap()
    }

    #[test]
    fn a_listed_failure_is_a_skip_with_its_reason() {
        let known = list("\"cookie.prefix\" = \"__Host- migration in progress\"\n");
        let before = report(vec![
            check("cookie.prefix", Status::Fail),
            check("cookie.secure", Status::Pass),
        ]);
        assert_eq!(before.verdict, Verdict::Fail);
        let after = known.apply(before);
        assert_eq!(after.verdict, Verdict::Pass);
        assert_eq!((after.counts.skip, after.counts.pass), (1, 1));
        let prefix = &after.checks[0];
        assert_eq!(prefix.status, Status::Skip);
        assert!(prefix.summary.contains("__Host- migration in progress"));
        let Evidence::Note { text } = &prefix.evidence[0] else {
            panic!("a note first");
        };
        assert!(text.contains("fail: fail as observed"), "{text}");
    }

    #[test]
    fn an_exact_id_that_passes_fails_asking_to_be_removed() {
        let known = list("\"ratelimit.free\" = \"the WAF does it\"\n");
        let after = known.apply(report(vec![
            check("ratelimit.free", Status::Pass),
            check("cookie.secure", Status::Pass),
        ]));
        assert_eq!(after.verdict, Verdict::Fail);
        let free = &after.checks[0];
        assert_eq!(free.status, Status::Fail);
        assert_eq!(
            free.summary,
            "known failure no longer fails: remove it (`ratelimit.free` in known.toml)"
        );
        let Evidence::Note { text } = &free.evidence[0] else {
            panic!("a note first");
        };
        assert!(text.contains("it passed: pass as observed"), "{text}");
        assert_eq!(after.checks[1].status, Status::Pass, "unlisted: untouched");
    }

    #[test]
    fn a_glob_over_passing_checks_leaves_them_passing() {
        // The README's example: a glob over an area whose checks pass.
        let known = list("\"ratelimit.*\" = \"the WAF does it\"\n");
        let after = known.apply(report(vec![
            check("ratelimit.free", Status::Pass),
            check("ratelimit.pro", Status::Pass),
            check("cookie.secure", Status::Pass),
        ]));
        assert_eq!(after.verdict, Verdict::Pass);
        assert_eq!((after.counts.pass, after.counts.fail), (3, 0));
        let free = &after.checks[0];
        assert_eq!(
            free.summary, "pass as observed",
            "the summary is the check's"
        );
        let Some(Evidence::Note { text }) = free.evidence.last() else {
            panic!("a note says the glob matched");
        };
        assert!(
            text.contains("`ratelimit.*`") && text.contains("it passes"),
            "{text}"
        );
        assert!(after.checks[2].evidence.is_empty(), "unlisted: untouched");
    }

    #[test]
    fn a_glob_marks_the_failures_it_matches_as_expected_and_fails_nothing() {
        let known = list("\"ratelimit.*\" = \"the WAF does it\"\n");
        let after = known.apply(report(vec![
            check("ratelimit.free", Status::Fail),
            check("ratelimit.pro", Status::Warn),
            check("ratelimit.anonymous", Status::Error),
            check("ratelimit.admin-unlimited", Status::Skip),
            check("ratelimit.per-identity", Status::Pass),
        ]));
        let status = |i: usize| after.checks[i].status;
        assert_eq!(status(0), Status::Skip, "the failure is expected");
        assert_eq!(after.checks[0].summary, "known failure: the WAF does it");
        assert_eq!(status(1), Status::Skip, "a warn is a known failure too");
        assert_eq!(status(2), Status::Error, "an error is never hidden");
        assert_eq!(status(3), Status::Skip);
        assert_eq!(status(4), Status::Pass, "a glob never fails a pass");
        assert_eq!(after.counts.fail, 0);
        assert_eq!(after.verdict, Verdict::Error, "the error still rules");
    }

    #[test]
    fn an_exact_id_wins_over_a_glob() {
        let known = list("\"cookie.*\" = \"broad\"\n\"cookie.prefix\" = \"exact\"\n");
        let after = known.apply_to(check("cookie.prefix", Status::Fail));
        assert_eq!(after.summary, "known failure: exact");
    }

    #[test]
    fn malformed_files_are_errors_naming_the_file() {
        let cases = [
            (
                "cookie.prefix = \"x\"\n[",
                "parse known failures `bad.toml`",
            ),
            ("\"cookie.prefix\" = 3\n", "needs a reason"),
            ("\"cookie.prefix\" = \"  \"\n", "an empty string"),
            ("\"cookie.[\" = \"x\"\n", "not a valid check id glob"),
        ];
        for (text, needle) in cases {
            let err = KnownFailures::parse(Path::new("bad.toml"), text).unwrap_err();
            let chain = crate::error_chain(&err);
            assert!(
                chain.contains(needle) && chain.contains("bad.toml"),
                "{needle:?} not in {chain:?}"
            );
        }
    }
}
