//! The bracket arithmetic of revocation: what a token's polls prove about
//! when the revocation took effect, and the verdicts over them. Pure
//! functions over recorded watches, unit-tested without a target.

use url::Url;

use super::Revocation;
use crate::checks::Finding;
use crate::model::{Evidence, Exchange, Measurement};

/// What one token did at one vantage after the revocation.
#[derive(Debug, Clone)]
pub(super) struct Watch {
    pub(super) trial: u32,
    pub(super) token: &'static str,
    pub(super) vantage: Url,
    /// Milliseconds from the revocation's answer to when the first refusing
    /// poll was sent.
    pub(super) refused_after_ms: Option<u64>,
    /// Milliseconds from the revocation's answer to when the first refusing
    /// poll's answer arrived: the revocation had taken effect by then.
    pub(super) refused_by_ms: Option<u64>,
    /// Milliseconds from the revocation's answer to when the last poll that
    /// was accepted (before any refusal) was sent: the token was still valid
    /// at some instant after this.
    pub(super) accepted_until_ms: Option<u64>,
    /// The slowest poll up to the first refusal, from asking the governor
    /// for a slot to the answer, in milliseconds.
    pub(super) slowest_poll_ms: u64,
    /// The longest of those polls' waits for a slot under the rate cap.
    pub(super) longest_queue_ms: u64,
    /// Milliseconds from the revocation's answer to an acceptance that came
    /// after a refusal.
    pub(super) resurrected_after_ms: Option<u64>,
    pub(super) polls: u32,
    /// How long the token was watched, in milliseconds.
    pub(super) watched_ms: u64,
    /// The exchanges worth showing: the first refusal, the resurrection, or
    /// the last acceptance when it was never refused.
    pub(super) notable: Vec<Exchange>,
    /// The token's last replay at the app route (the refusal, or one sent
    /// after the bound), beside the control's (trial 1 only).
    pub(super) app: Option<AppCheck>,
}

/// What the app route answered a presented cookie jar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppSeen {
    Accepted,
    Refused,
    /// A 429 (still, after the resends): neither accepted nor refused.
    Unclear,
    /// Refused, but first by a replay sent after the bound, when the one
    /// before it (sent within the bound) was accepted: the revocation took
    /// effect in between, within the bound or not.
    RefusedAfterTheBound,
}

/// One replay at the app route.
#[derive(Debug, Clone)]
pub(super) struct AppPoll {
    /// Milliseconds from the revocation's answer to when it was sent.
    pub(super) sent_ms: u64,
    pub(super) seen: AppSeen,
    pub(super) status: u16,
    pub(super) exchange: Exchange,
}

/// A revoked token and the control, replayed at the app route at one
/// vantage, one right after the other.
#[derive(Debug, Clone)]
pub(super) struct AppCheck {
    /// The route's path.
    pub(super) route: String,
    pub(super) token: AppPoll,
    pub(super) control: AppPoll,
}

impl AppCheck {
    /// The token was accepted by a replay sent after the bound.
    fn accepted_late(&self, bound_ms: u64) -> bool {
        self.token.seen == AppSeen::Accepted && self.token.sent_ms > bound_ms
    }

    /// Why the replay proves nothing, when it does not: a refusal counts
    /// only beside a control accepted at the same route and vantage, and a
    /// 429 is no answer.
    fn unclear(&self) -> Option<String> {
        let route = &self.route;
        match (self.token.seen, self.control.seen) {
            (AppSeen::Accepted, _) => None,
            (AppSeen::Unclear, _) => Some(format!(
                "GET {route} answered the revoked token {} (rate-limited), neither accepted nor refused",
                self.token.status
            )),
            (AppSeen::RefusedAfterTheBound, _) => Some(format!(
                "GET {route} accepted the revoked token within the bound and first refused it by a replay sent {} ms after the revocation, past the bound: whether it took effect in time is below the replays' resolution",
                self.token.sent_ms
            )),
            (AppSeen::Refused, AppSeen::Accepted) => None,
            (AppSeen::Refused, AppSeen::Refused | AppSeen::RefusedAfterTheBound) => Some(format!(
                "GET {route} refused the revoked token, but refused the never-revoked control too ({})",
                self.control.status
            )),
            (AppSeen::Refused, AppSeen::Unclear) => Some(format!(
                "GET {route} refused the revoked token, but the never-revoked control beside it was rate-limited ({})",
                self.control.status
            )),
        }
    }
}

pub(super) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What a watch proves about the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Within {
    /// The refusing poll's answer arrived within the bound.
    Yes,
    /// A poll sent after the bound was accepted, before the first refusal
    /// or after it (a resurrection past the bound).
    No,
    /// The bound lies between the last acceptance's send and the refusal's
    /// answer: which side the revocation fell on is below the resolution
    /// (the poll interval plus the refusing poll's latency).
    Unknown,
}

impl Watch {
    pub(super) fn within(&self, bound_ms: u64) -> Within {
        let late = |ms: Option<u64>| ms.is_some_and(|ms| ms > bound_ms);
        if late(self.accepted_until_ms)
            || late(self.resurrected_after_ms)
            || self.app.as_ref().is_some_and(|a| a.accepted_late(bound_ms))
        {
            Within::No
        } else if self.refused_by_ms.is_some_and(|ms| ms <= bound_ms) {
            Within::Yes
        } else {
            Within::Unknown
        }
    }

    /// `trial 1 revoking session at http://…/`
    pub(super) fn who(&self) -> String {
        format!("trial {} {} at {}", self.trial, self.token, self.vantage)
    }
}

pub(super) fn window_finding(
    kind: Revocation,
    watches: &[Watch],
    revocations: &[Exchange],
    bound_ms: u64,
    interval_ms: u64,
) -> Finding {
    let mut evidence: Vec<Evidence> = watches
        .iter()
        .map(|w| {
            Evidence::Measurement(Measurement {
                name: match w.refused_by_ms {
                    Some(_) => format!("time to refusal after {} ({})", kind.what(), w.token),
                    None => format!("still accepted after {} ({})", kind.what(), w.token),
                },
                value: w.refused_by_ms.unwrap_or(w.watched_ms) as f64,
                unit: "ms".to_owned(),
                bound: Some(bound_ms as f64),
                vantage: Some(w.vantage.to_string()),
                trial: Some(w.trial),
                censored: w.refused_by_ms.is_none(),
                resolution: Some(interval_ms as f64),
                slowest_observation: Some(w.slowest_poll_ms as f64),
            })
        })
        .collect();
    let mut times: Vec<u64> = watches.iter().filter_map(|w| w.refused_by_ms).collect();
    times.sort_unstable();
    let slowest = watches.iter().map(|w| w.slowest_poll_ms).max().unwrap_or(0);
    let queued = watches
        .iter()
        .map(|w| w.longest_queue_ms)
        .max()
        .unwrap_or(0);
    evidence.push(Evidence::note(format!(
        "{} trials x {} watches; resolution (poll interval) {interval_ms} ms; p50 {} ms, max {} ms; bound {bound_ms} ms; slowest poll {slowest} ms (longest wait for the rate cap {queued} ms). Each time is when the refusing poll's answer arrived (the revocation had taken effect by then); the token was still valid at some instant after the previous poll was sent.",
        watches.iter().map(|w| w.trial).max().unwrap_or(0),
        watches.len(),
        percentile(&times, 0.5),
        times.last().copied().unwrap_or(0),
    )));
    evidence.extend(revocations.iter().take(1).cloned().map(Evidence::Exchange));
    let late: Vec<&Watch> = watches
        .iter()
        .filter(|w| w.within(bound_ms) == Within::No)
        .collect();
    let unknown: Vec<&Watch> = watches
        .iter()
        .filter(|w| w.within(bound_ms) == Within::Unknown)
        .collect();
    let app_checked: Vec<&Watch> = watches.iter().filter(|w| w.app.is_some()).collect();
    let app_unclear: Vec<(&Watch, String)> = app_checked
        .iter()
        .filter_map(|w| Some((*w, w.app.as_ref()?.unclear()?)))
        .collect();
    if let Some(route) = app_checked.iter().find_map(|w| w.app.as_ref()) {
        evidence.push(Evidence::note(format!(
            "{} revoked token(s) of trial 1 replayed at the app route GET {} (metered, so only there) from right after the revocation until refused or past the bound, each time beside the never-revoked control at the same vantage.",
            app_checked.len(),
            route.route
        )));
    }
    let finding = if !late.is_empty() {
        let which: Vec<String> = late
            .iter()
            .map(|w| match (w.refused_by_ms, w.resurrected_after_ms) {
                (Some(ms), _) if w.app.as_ref().is_some_and(|a| a.accepted_late(bound_ms)) => {
                    let app = w.app.as_ref().expect("checked above");
                    format!(
                        "{}: refused at get-session by {ms} ms, but accepted at GET {} by a replay sent at {} ms",
                        w.who(),
                        app.route,
                        app.token.sent_ms
                    )
                }
                (Some(ms), Some(again)) if again > bound_ms => format!(
                    "{}: refused by {ms} ms, then accepted again by a poll sent at {again} ms",
                    w.who()
                ),
                (Some(ms), _) => format!(
                    "{}: still accepted by a poll sent at {} ms, refused by {ms} ms",
                    w.who(),
                    w.accepted_until_ms.unwrap_or(0)
                ),
                (None, _) => format!(
                    "{}: still accepted after {} polls, the last sent at {} ms",
                    w.who(),
                    w.polls,
                    w.watched_ms
                ),
            })
            .collect();
        Finding::fail(format!(
            "not refused within {bound_ms} ms after {}: {}",
            kind.what(),
            which.join("; ")
        ))
    } else if !app_unclear.is_empty() {
        let which: Vec<String> = app_unclear
            .iter()
            .map(|(w, why)| format!("{}: {why}", w.who()))
            .collect();
        Finding::error(format!(
            "could not tell whether the app route refuses the token revoked by {}: {}",
            kind.what(),
            which.join("; ")
        ))
    } else if !unknown.is_empty() {
        let which: Vec<String> = unknown
            .iter()
            .map(|w| {
                format!(
                    "{}: last accepted by a poll sent at {} ms, refused by a poll answered at {} ms (slowest poll {} ms, of which {} ms waiting for the rate cap)",
                    w.who(),
                    w.accepted_until_ms.unwrap_or(0),
                    w.refused_by_ms.map_or_else(|| "never".to_owned(), |ms| ms.to_string()),
                    w.slowest_poll_ms,
                    w.longest_queue_ms
                )
            })
            .collect();
        Finding::error(format!(
            "could not tell whether the token was refused within {bound_ms} ms after {}: the bound fell between the last accepted poll's send and the refusing poll's answer, a gap below this run's resolution (poll interval {interval_ms} ms, plus the refusing poll's latency) ({}); rerun: the polls of another run fall elsewhere, and slow ones mean the target or this machine is loaded",
            kind.what(),
            which.join("; ")
        ))
    } else {
        let app = match app_checked.first().and_then(|w| w.app.as_ref()) {
            Some(a) => format!(
                "; refused at GET {} too after the bound ({} replays, each beside an accepted control)",
                a.route,
                app_checked.len()
            ),
            None => String::new(),
        };
        Finding::pass(format!(
            "every token was refused at every vantage within the bound: p50 {} ms, max {} ms (bound {bound_ms} ms, resolution {interval_ms} ms){app}",
            percentile(&times, 0.5),
            times.last().copied().unwrap_or(0)
        ))
    };
    let app_exchanges = |w: &&Watch| -> Vec<Exchange> {
        w.app
            .iter()
            .flat_map(|a| [a.token.exchange.clone(), a.control.exchange.clone()])
            .collect()
    };
    let shown: Vec<Exchange> = late
        .iter()
        .chain(app_unclear.iter().map(|(w, _)| w))
        .flat_map(|w| {
            let mut e = app_exchanges(w);
            e.extend(w.notable.iter().cloned());
            e
        })
        .collect();
    let shown = shown
        .iter()
        .chain(unknown.iter().flat_map(|w| w.notable.iter()))
        .chain(watches.iter().take(2).flat_map(|w| w.notable.iter()));
    let mut finding = finding;
    finding.evidence.extend(evidence);
    finding.with_exchanges(shown.take(6))
}

pub(super) fn resurrection_finding(observe_ms: u64, watches: &[&Watch]) -> Finding {
    let resurrected: Vec<&&Watch> = watches
        .iter()
        .filter(|w| w.resurrected_after_ms.is_some())
        .collect();
    let refused = watches
        .iter()
        .filter(|w| w.refused_after_ms.is_some())
        .count();
    if refused == 0 {
        return Finding::error("no token was ever refused, so resurrection could not be observed");
    }
    if resurrected.is_empty() {
        return Finding::pass(format!(
            "{refused} refused tokens stayed refused for {observe_ms} ms after their refusal"
        ));
    }
    let which: Vec<String> = resurrected
        .iter()
        .map(|w| {
            format!(
                "trial {} {} at {}: refused at {} ms, accepted again at {} ms",
                w.trial,
                w.token,
                w.vantage,
                w.refused_after_ms.unwrap_or(0),
                w.resurrected_after_ms.unwrap_or(0)
            )
        })
        .collect();
    Finding::fail(format!(
        "a refused token was accepted again: {}",
        which.join("; ")
    ))
    .with_exchanges(resurrected.iter().flat_map(|w| w.notable.iter()).take(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn watch(accepted_until: Option<u64>, refused: Option<(u64, u64)>) -> Watch {
        Watch {
            trial: 1,
            token: "revoking session",
            vantage: Url::parse("http://127.0.0.1:1/").unwrap(),
            refused_after_ms: refused.map(|(sent, _)| sent),
            refused_by_ms: refused.map(|(_, answered)| answered),
            accepted_until_ms: accepted_until,
            slowest_poll_ms: 0,
            longest_queue_ms: 0,
            resurrected_after_ms: None,
            polls: 3,
            watched_ms: refused.map_or(accepted_until.unwrap_or(0), |(sent, _)| sent),
            notable: Vec::new(),
            app: None,
        }
    }

    #[test]
    pub(super) fn the_verdict_uses_only_what_the_bracket_proves() {
        // Refused, answered within the bound.
        assert_eq!(watch(Some(300), Some((400, 420))).within(2000), Within::Yes);
        assert_eq!(watch(None, Some((0, 15))).within(2000), Within::Yes);
        // A refusing poll sent before the bound but answered after it: the
        // revocation may have taken effect after the bound (no false pass).
        assert_eq!(
            watch(Some(1800), Some((1900, 2500))).within(2000),
            Within::Unknown
        );
        // The last acceptance before the bound and a slow refusal: a poll
        // that stalled is not a failure of the target (no false fail).
        assert_eq!(
            watch(Some(250), Some((2100, 2150))).within(2000),
            Within::Unknown
        );
        // Accepted by a poll sent after the bound: late, however slow.
        assert_eq!(watch(Some(2050), None).within(2000), Within::No);
        assert_eq!(
            watch(Some(2050), Some((2150, 2160))).within(2000),
            Within::No
        );
        // Refused in time, then accepted again by a poll sent after the
        // bound: the token was valid past the bound (a resurrection within
        // the bound is `session.no-resurrection`'s alone).
        let resurrected = |at| Watch {
            resurrected_after_ms: Some(at),
            ..watch(Some(300), Some((400, 420)))
        };
        assert_eq!(resurrected(2100).within(2000), Within::No);
        assert_eq!(resurrected(1900).within(2000), Within::Yes);
        // Never observed after the bound (cannot happen from `watch`, which
        // polls past the bound): not a pass.
        assert_eq!(watch(Some(1500), None).within(2000), Within::Unknown);
    }

    fn app_poll(seen: AppSeen, status: u16, sent_ms: u64) -> AppPoll {
        AppPoll {
            sent_ms,
            seen,
            status,
            exchange: Exchange {
                label: "app route".to_owned(),
                request: crate::model::HttpRequest {
                    method: "GET".to_owned(),
                    url: "http://127.0.0.1:1/api/me".to_owned(),
                    headers: Vec::new(),
                    body: None,
                },
                response: None,
                error: None,
                at_ms: sent_ms,
                elapsed_ms: 1,
            },
        }
    }

    /// A watch refused in time at get-session, with the app route's replay
    /// after the bound and the control's beside it.
    fn with_app(token: (AppSeen, u16), control: (AppSeen, u16)) -> Watch {
        Watch {
            app: Some(AppCheck {
                route: "/api/me".to_owned(),
                token: app_poll(token.0, token.1, 2100),
                control: app_poll(control.0, control.1, 2105),
            }),
            ..watch(Some(250), Some((350, 360)))
        }
    }

    #[test]
    fn the_app_route_accepting_a_revoked_token_fails_and_an_unclear_control_is_an_error() {
        use crate::model::Status;
        let verdict = |w: Watch| window_finding(Revocation::SignOut, &[w], &[], 2000, 100);
        // Refused at get-session, accepted at the app route after the bound.
        let f = verdict(with_app((AppSeen::Accepted, 200), (AppSeen::Accepted, 200)));
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(
            f.summary.contains("accepted at GET /api/me"),
            "{}",
            f.summary
        );
        // Refused beside an accepted control: a pass that says so.
        let f = verdict(with_app((AppSeen::Refused, 401), (AppSeen::Accepted, 200)));
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert!(f.summary.contains("GET /api/me"), "{}", f.summary);
        // Refused beside a refused or rate-limited control, or rate-limited
        // itself: no answer.
        for (token, control) in [
            ((AppSeen::Refused, 401), (AppSeen::Refused, 403)),
            ((AppSeen::Refused, 401), (AppSeen::Unclear, 429)),
            ((AppSeen::Unclear, 429), (AppSeen::Accepted, 200)),
        ] {
            let f = verdict(with_app(token, control));
            assert_eq!(f.status, Status::Error, "{token:?} {control:?}: {f:?}");
        }
        // A late acceptance at get-session still fails, whatever the app
        // route's control did.
        let late = Watch {
            accepted_until_ms: Some(2050),
            ..with_app((AppSeen::Refused, 401), (AppSeen::Unclear, 429))
        };
        assert_eq!(verdict(late).status, Status::Fail);
    }

    #[test]
    pub(super) fn a_slow_poll_across_the_bound_is_an_error_and_a_late_one_a_failure() {
        let slow = [watch(Some(250), Some((2100, 2150)))];
        let finding = window_finding(Revocation::SignOut, &slow, &[], 2000, 100);
        assert_eq!(finding.status, crate::model::Status::Error, "{finding:?}");
        assert!(
            finding.summary.contains("below this run's resolution"),
            "{}",
            finding.summary
        );
        let late = [
            watch(Some(250), Some((2100, 2150))),
            watch(Some(2050), None),
        ];
        let finding = window_finding(Revocation::SignOut, &late, &[], 2000, 100);
        assert_eq!(finding.status, crate::model::Status::Fail, "{finding:?}");
        let fine = [watch(Some(250), Some((350, 360)))];
        let finding = window_finding(Revocation::SignOut, &fine, &[], 2000, 100);
        assert_eq!(finding.status, crate::model::Status::Pass, "{finding:?}");
    }
}
