//! The session suite: revocation windows in an eventually consistent store.
//!
//! Each trial signs in, makes sure the token is accepted at every vantage,
//! revokes it (sign-out, or revoke-sessions for every session of the user),
//! then replays it at every vantage every `poll_interval_ms` (raised so that
//! polling takes at most half of `budget.max_rps`) until refused,
//! and keeps watching for `observe_after_refusal_ms` afterwards. The polling
//! interval is the measurement's resolution and is reported with it.
//!
//! A poll's answer reflects the token's state at some instant between the
//! poll's send and its answer, so the revocation took effect after the last
//! accepted poll was sent and no later than the refusing poll's answer. The
//! verdict uses only what that bracket proves: `pass` when the refusal's
//! answer came within the bound, `fail` when an acceptance was sent after
//! it, `error` when a slow poll left the bound inside the bracket.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use url::Url;

use super::identity::{Seen, accepted_at};
use super::{Ctx, Finding, Identity, Unobservable, sign_in_as};
use crate::model::{CheckResult, Evidence, Exchange, Measurement, Secret};
use crate::probe::{Jar, Req};
use crate::target::Account;

pub const IDS: [&str; 3] = [
    "session.revoked-on-sign-out",
    "session.revoke-all",
    "session.no-resurrection",
];

/// How a trial revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Revocation {
    SignOut,
    RevokeAll,
}

impl Revocation {
    fn check_id(self) -> &'static str {
        match self {
            Revocation::SignOut => "session.revoked-on-sign-out",
            Revocation::RevokeAll => "session.revoke-all",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Revocation::SignOut => "sign-out",
            Revocation::RevokeAll => "revoke-sessions",
        }
    }
}

/// What one token did at one vantage after the revocation.
#[derive(Debug, Clone)]
struct Watch {
    trial: u32,
    token: &'static str,
    vantage: Url,
    /// Milliseconds from the revocation's answer to when the first refusing
    /// poll was sent.
    refused_after_ms: Option<u64>,
    /// Milliseconds from the revocation's answer to when the first refusing
    /// poll's answer arrived: the revocation had taken effect by then.
    refused_by_ms: Option<u64>,
    /// Milliseconds from the revocation's answer to when the last poll that
    /// was accepted (before any refusal) was sent: the token was still valid
    /// at some instant after this.
    accepted_until_ms: Option<u64>,
    /// The slowest poll up to the first refusal, from asking the governor
    /// for a slot to the answer, in milliseconds.
    slowest_poll_ms: u64,
    /// The longest of those polls' waits for a slot under the rate cap.
    longest_queue_ms: u64,
    /// Milliseconds from the revocation's answer to an acceptance that came
    /// after a refusal.
    resurrected_after_ms: Option<u64>,
    polls: u32,
    /// How long the token was watched, in milliseconds.
    watched_ms: u64,
    /// The exchanges worth showing: the first refusal, the resurrection, or
    /// the last acceptance when it was never refused.
    notable: Vec<Exchange>,
}

pub async fn run(ctx: &Ctx, selected: &[&str]) -> Vec<CheckResult> {
    let started = Instant::now();
    let findings = observe(ctx, selected).await;
    let ms = started.elapsed().as_millis() as u64;
    selected
        .iter()
        .map(|id| {
            let finding = match &findings {
                Ok(findings) => findings
                    .iter()
                    .find(|(done, _)| done == id)
                    .map(|(_, f)| f.clone())
                    .unwrap_or_else(|| Finding::error("no trial ran for this check")),
                Err(unobservable) => unobservable.finding(),
            };
            ctx.conclude(id, finding, ms)
        })
        .collect()
}

async fn observe(
    ctx: &Ctx,
    selected: &[&str],
) -> Result<Vec<(&'static str, Finding)>, Unobservable> {
    let wants = |id: &str| selected.contains(&id);
    let trials = ctx.plan.params.revocation_trials;
    let mut watches: Vec<(Revocation, Vec<Watch>)> = Vec::new();
    let mut evidence: Vec<(Revocation, Vec<Exchange>)> = Vec::new();
    let kinds: Vec<Revocation> = [Revocation::SignOut, Revocation::RevokeAll]
        .into_iter()
        .filter(|k| wants(k.check_id()) || wants("session.no-resurrection"))
        .collect();
    // Polling uses at most half of the rate cap, whatever the number of
    // tokens and vantages: the interval (the measurement's resolution) grows
    // instead.
    let tokens_per_trial: u64 = kinds
        .iter()
        .map(|k| match k {
            Revocation::SignOut => 1,
            Revocation::RevokeAll => 2,
        })
        .sum();
    let watchers = u64::from(trials) * tokens_per_trial * ctx.target.vantages.len() as u64;
    let max_rps = u64::from(ctx.target.budget.max_rps.max(1));
    let interval = ctx
        .plan
        .params
        .poll_interval_ms
        .max((watchers * 2000).div_ceil(max_rps));
    // Every trial runs at once, each on a fresh account of its own, so that
    // revoke-sessions never ends another trial's (or another check's)
    // session.
    let mut runs = Vec::new();
    for kind in kinds {
        for t in 1..=trials {
            runs.push(async move {
                let account = revocation_account(ctx, kind).await?;
                let (w, e) = trial(ctx, &account, kind, t, interval).await?;
                Ok::<_, Unobservable>((kind, w, e))
            });
        }
    }
    for outcome in join_all(runs).await {
        let (kind, w, e) = outcome?;
        match watches.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, all)) => all.extend(w),
            None => watches.push((kind, w)),
        }
        match evidence.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, all)) => all.extend(e),
            None => evidence.push((kind, e)),
        }
    }

    let bound_ms = ctx.target.profile.revocation_bound_s * 1000;
    let mut findings = Vec::new();
    for (kind, ws) in &watches {
        let exchanges = &evidence
            .iter()
            .find(|(k, _)| k == kind)
            .expect("evidence per kind")
            .1;
        findings.push((
            kind.check_id(),
            window_finding(*kind, ws, exchanges, bound_ms, interval),
        ));
    }
    if wants("session.no-resurrection") {
        let all: Vec<&Watch> = watches.iter().flat_map(|(_, ws)| ws).collect();
        findings.push(("session.no-resurrection", resurrection_finding(ctx, &all)));
    }
    Ok(findings)
}

/// The account a kind of trial revokes: a fresh sign-up, so that revoking
/// never ends another check's session.
async fn revocation_account(ctx: &Ctx, kind: Revocation) -> Result<Account, Unobservable> {
    let domain = ctx
        .target
        .account("free")
        .and_then(|a| a.email.split_once('@').map(|(_, d)| d.to_owned()))
        .unwrap_or_else(|| "flareproof.invalid".to_owned());
    let nonce = format!(
        "{:x}{:x}",
        std::process::id(),
        ctx.probe.now_ms() ^ super::identity::random_u64()
    );
    let role = match kind {
        Revocation::SignOut => "signout",
        Revocation::RevokeAll => "revokeall",
    };
    let account = Account {
        role: format!("revocation-{role}"),
        email: format!("flareproof-{role}-{nonce}@{domain}"),
        password: Secret::new(format!(
            "fp-{:x}-{:x}-Aa1!",
            super::identity::random_u64(),
            super::identity::random_u64()
        )),
    };
    ctx.probe.redactor().learn(&account.password);
    let req = Req::post(
        ctx.url(&ctx.target.paths.sign_up),
        format!("sign up a {role} account"),
    )
    .header("origin", ctx.target.origin.clone())
    .json(&json!({
        "email": account.email,
        "password": account.password.expose(),
        "name": format!("flareproof {role}"),
    }));
    let observed = ctx.probe.send(req).await?;
    if observed.status != 200 {
        return Err(Unobservable {
            reason: format!(
                "sign-up of a revocation account answered {}",
                observed.status
            ),
            exchanges: vec![observed.exchange],
        });
    }
    Ok(account)
}

/// One trial: sign in (twice for revoke-all), prime every vantage, revoke,
/// watch every token at every vantage.
async fn trial(
    ctx: &Ctx,
    account: &Account,
    kind: Revocation,
    trial: u32,
    interval_ms: u64,
) -> Result<(Vec<Watch>, Vec<Exchange>), Unobservable> {
    let (first, _) = sign_in_as(ctx, account, Jar::new()).await?;
    let mut tokens: Vec<(&'static str, Identity)> = vec![("revoking session", first)];
    if kind == Revocation::RevokeAll {
        let (second, _) = sign_in_as(ctx, account, Jar::new()).await?;
        tokens.push(("other session", second));
    }
    for (label, identity) in &tokens {
        for vantage in &ctx.target.vantages {
            let (seen, exchange) = accepted_at(
                ctx,
                &identity.session_jar(),
                vantage,
                &format!("prime {label} at {vantage}"),
            )
            .await?;
            if !matches!(seen, Seen::Accepted) {
                return Err(Unobservable {
                    reason: format!(
                        "a fresh token ({label}) was not accepted at {vantage} before revocation"
                    ),
                    exchanges: vec![exchange],
                });
            }
        }
    }
    let revoking = &tokens[0].1;
    let path = match kind {
        Revocation::SignOut => &ctx.target.paths.sign_out,
        Revocation::RevokeAll => &ctx.target.paths.revoke_sessions,
    };
    let req = Req::post(ctx.url(path), format!("trial {trial}: {}", kind.what()))
        .header("origin", ctx.target.origin.clone())
        .jar(&revoking.session_jar())
        .json(&json!({}));
    let revoked = ctx.probe.send(req).await?;
    let revoked_at = Instant::now();
    let revoked_ms = ctx.probe.now_ms();
    if revoked.status != 200 {
        return Err(Unobservable {
            reason: format!("{} answered {} (expected 200)", kind.what(), revoked.status),
            exchanges: vec![revoked.exchange],
        });
    }
    let mut watchers = Vec::new();
    for (label, identity) in &tokens {
        for vantage in &ctx.target.vantages {
            watchers.push(watch(
                ctx,
                identity,
                label,
                vantage,
                (revoked_at, revoked_ms),
                trial,
                interval_ms,
            ));
        }
    }
    let mut watches = Vec::new();
    for outcome in join_all(watchers).await {
        watches.push(outcome?);
    }
    Ok((watches, vec![revoked.exchange]))
}

/// Polls one token at one vantage until refused (or until a poll sent after
/// the bound was still accepted), then keeps watching for a resurrection.
async fn watch(
    ctx: &Ctx,
    who: &Identity,
    label: &'static str,
    vantage: &Url,
    (revoked_at, revoked_ms): (Instant, u64),
    trial: u32,
    interval_ms: u64,
) -> Result<Watch, Unobservable> {
    let interval = Duration::from_millis(interval_ms);
    let bound_ms = ctx.target.profile.revocation_bound_s * 1000;
    let observe_for = Duration::from_millis(ctx.plan.params.observe_after_refusal_ms);
    let mut out = Watch {
        trial,
        token: label,
        vantage: vantage.clone(),
        refused_after_ms: None,
        refused_by_ms: None,
        accepted_until_ms: None,
        slowest_poll_ms: 0,
        longest_queue_ms: 0,
        resurrected_after_ms: None,
        polls: 0,
        watched_ms: 0,
        notable: Vec::new(),
    };
    let mut next = revoked_at;
    let mut last_accepted = None;
    loop {
        tokio::time::sleep_until(next.into()).await;
        let queued = ctx.probe.now_ms();
        let (seen, exchange) = accepted_at(
            ctx,
            &who.session_jar(),
            vantage,
            &format!("trial {trial}: replay {label} at {vantage}"),
        )
        .await?;
        let answered = ctx.probe.now_ms();
        // Times from the revocation's answer: when the poll left the
        // governor (a difference of whole ms, under 1 ms over the truth, so
        // `at_ms > bound_ms` proves a send after the bound), and when its
        // answer arrived (rounded up, so "answered within the bound" holds).
        let at_ms = exchange.at_ms.saturating_sub(revoked_ms);
        let answered_ms = revoked_at.elapsed().as_micros().div_ceil(1000) as u64;
        out.polls += 1;
        if out.refused_after_ms.is_none() {
            out.slowest_poll_ms = out.slowest_poll_ms.max(answered.saturating_sub(queued));
            out.longest_queue_ms = out
                .longest_queue_ms
                .max(exchange.at_ms.saturating_sub(queued));
        }
        out.watched_ms = at_ms;
        match (seen, out.refused_after_ms) {
            (Seen::Refused, None) => {
                out.refused_after_ms = Some(at_ms);
                out.refused_by_ms = Some(answered_ms);
                out.notable.push(exchange);
            }
            (Seen::Accepted, Some(_)) => {
                out.resurrected_after_ms = Some(at_ms);
                out.notable.push(exchange);
                return Ok(out);
            }
            (Seen::Accepted, None) => {
                out.accepted_until_ms = Some(at_ms);
                last_accepted = Some(exchange);
            }
            (Seen::Refused, Some(_)) => {}
        }
        next += interval;
        let elapsed = next.duration_since(revoked_at);
        match out.refused_after_ms {
            // Accepted by a poll sent after the bound: late, whatever the
            // poll latency. (Every poll has a timeout, so this is reached.)
            None if at_ms > bound_ms => {
                out.notable.extend(last_accepted);
                return Ok(out);
            }
            Some(refused) if elapsed > Duration::from_millis(refused) + observe_for => {
                return Ok(out);
            }
            _ => {}
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What a watch proves about the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Within {
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
    fn within(&self, bound_ms: u64) -> Within {
        let late = |ms: Option<u64>| ms.is_some_and(|ms| ms > bound_ms);
        if late(self.accepted_until_ms) || late(self.resurrected_after_ms) {
            Within::No
        } else if self.refused_by_ms.is_some_and(|ms| ms <= bound_ms) {
            Within::Yes
        } else {
            Within::Unknown
        }
    }

    /// `trial 1 revoking session at http://…/`
    fn who(&self) -> String {
        format!("trial {} {} at {}", self.trial, self.token, self.vantage)
    }
}

fn window_finding(
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
    let finding = if !late.is_empty() {
        let which: Vec<String> = late
            .iter()
            .map(|w| match (w.refused_by_ms, w.resurrected_after_ms) {
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
        Finding::pass(format!(
            "every token was refused at every vantage within the bound: p50 {} ms, max {} ms (bound {bound_ms} ms, resolution {interval_ms} ms)",
            percentile(&times, 0.5),
            times.last().copied().unwrap_or(0)
        ))
    };
    let shown = late
        .iter()
        .chain(&unknown)
        .flat_map(|w| w.notable.iter())
        .chain(watches.iter().take(2).flat_map(|w| w.notable.iter()));
    let mut finding = finding;
    finding.evidence.extend(evidence);
    finding.with_exchanges(shown.take(6))
}

fn resurrection_finding(ctx: &Ctx, watches: &[&Watch]) -> Finding {
    let observe_ms = ctx.plan.params.observe_after_refusal_ms;
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

    fn watch(accepted_until: Option<u64>, refused: Option<(u64, u64)>) -> Watch {
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
        }
    }

    #[test]
    fn the_verdict_uses_only_what_the_bracket_proves() {
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

    #[test]
    fn a_slow_poll_across_the_bound_is_an_error_and_a_late_one_a_failure() {
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
