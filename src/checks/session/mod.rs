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

mod bracket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use url::Url;

use super::identity::{Seen, accepted_at};
use super::registry::{Check, Needs, Observation, Turnover};
use super::{Ctx, Finding, Identity, Unobservable, sign_in_as};
use crate::check;
use crate::model::{Exchange, Secret};
use crate::probe::{Jar, Req};
use crate::target::Account;
use bracket::{Watch, resurrection_finding, window_finding};

/// Revocation trials sign up accounts of their own and poll every vantage;
/// they use only `/api/auth/*`, which the contract leaves unmetered.
const TRIALS: Needs = Needs {
    buckets: &[],
    fresh_accounts: true,
    vantages: true,
    turnover: Turnover::None,
};

pub const CHECKS: &[Check] = &[
    check!("session.revoked-on-sign-out", TRIALS, revoked_on_sign_out),
    check!("session.revoke-all", TRIALS, revoke_all),
    check!("session.no-resurrection", TRIALS, no_resurrection),
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

    /// The role of the accounts its trials sign up.
    fn role(self) -> &'static str {
        match self {
            Revocation::SignOut => "signout",
            Revocation::RevokeAll => "revokeall",
        }
    }
}

/// Every trial of one kind, run once per run: what each token did at each
/// vantage, and the revocation exchanges.
struct Trials {
    watches: Vec<Watch>,
    /// Each trial's control session, polled beside its tokens.
    controls: Vec<ControlWatch>,
    revocations: Vec<Exchange>,
    interval_ms: u64,
}

/// The kinds of trial a run makes: those its selected checks judge
/// (`session.no-resurrection` watches both).
fn kinds_run(ctx: &Ctx) -> Vec<Revocation> {
    let selected = |id: &str| ctx.shared.selected(id);
    [Revocation::SignOut, Revocation::RevokeAll]
        .into_iter()
        .filter(|k| selected(k.check_id()) || selected("session.no-resurrection"))
        .collect()
}

/// Polling uses at most half of the rate cap, whatever the number of tokens
/// and vantages of every trial the run makes: the interval (the
/// measurement's resolution) grows instead.
fn poll_interval_ms(ctx: &Ctx) -> u64 {
    // Each trial also polls its control session.
    let tokens_per_trial: u64 = kinds_run(ctx)
        .iter()
        .map(|k| match k {
            Revocation::SignOut => 2,
            Revocation::RevokeAll => 3,
        })
        .sum();
    let trials = ctx.plan.params.revocation_trials;
    let watchers = u64::from(trials) * tokens_per_trial * ctx.target.vantages.len() as u64;
    let max_rps = u64::from(ctx.target.budget.max_rps.max(1));
    ctx.plan
        .params
        .poll_interval_ms
        .max((watchers * 2000).div_ceil(max_rps))
}

/// Every trial of `kind` at once, each on a fresh account of its own, so
/// that revoke-sessions never ends another trial's (or another check's)
/// session.
async fn trials(ctx: &Ctx, kind: Revocation) -> Result<Arc<Trials>, Unobservable> {
    ctx.once(kind.check_id(), || async {
        let interval_ms = poll_interval_ms(ctx);
        let runs = (1..=ctx.plan.params.revocation_trials).map(|t| async move {
            let (account, control) =
                tokio::join!(revocation_account(ctx, kind.role()), control_session(ctx));
            trial(ctx, &account?, &*control?, kind, t, interval_ms).await
        });
        let mut all = Trials {
            watches: Vec::new(),
            controls: Vec::new(),
            revocations: Vec::new(),
            interval_ms,
        };
        for outcome in join_all(runs).await {
            let (w, c, e) = outcome?;
            all.watches.extend(w);
            all.controls.extend(c);
            all.revocations.extend(e);
        }
        Ok(all)
    })
    .await
}

/// The session every trial polls as its control: of an account signed up
/// once per run, signed in once, never revoked.
async fn control_session(ctx: &Ctx) -> Result<Arc<Identity>, Unobservable> {
    ctx.once("session.control", || async {
        let account = revocation_account(ctx, "control").await?;
        let (control, _) = sign_in_as(ctx, &account, Jar::new()).await?;
        Ok(control)
    })
    .await
}

/// A refusal counts only beside a control that was accepted under the same
/// conditions: a control session refused at any poll means the target (or
/// something before it: a bot filter, a WAF) refused more than the revoked
/// token, and no refusal proves a revocation.
fn blocked(trials: &[&Trials]) -> Option<Finding> {
    let refused: Vec<&ControlWatch> = trials
        .iter()
        .flat_map(|t| &t.controls)
        .filter(|c| c.refused.is_some())
        .collect();
    let first = refused.first()?;
    let (at_ms, exchange) = first.refused.as_ref()?;
    Some(
        Finding::error(format!(
            "could not tell refusal from blocking: the control session, never revoked and polled like the revoked tokens, was refused {} time(s), first at {} {at_ms} ms after trial {}'s revocation",
            refused.len(),
            first.vantage,
            first.trial
        ))
        .with_exchange(exchange),
    )
}

async fn window(ctx: &Ctx, kind: Revocation) -> Observation {
    let t = trials(ctx, kind).await?;
    if let Some(blocked) = blocked(&[&t]) {
        return Ok(blocked);
    }
    let bound_ms = ctx.target.profile.revocation_bound_s * 1000;
    Ok(window_finding(
        kind,
        &t.watches,
        &t.revocations,
        bound_ms,
        t.interval_ms,
    ))
}

async fn revoked_on_sign_out(ctx: Ctx) -> Observation {
    window(&ctx, Revocation::SignOut).await
}

async fn revoke_all(ctx: Ctx) -> Observation {
    window(&ctx, Revocation::RevokeAll).await
}

/// Watches the tokens of both kinds of trial.
async fn no_resurrection(ctx: Ctx) -> Observation {
    let (sign_out, revoke_all) = tokio::join!(
        trials(&ctx, Revocation::SignOut),
        trials(&ctx, Revocation::RevokeAll)
    );
    let (sign_out, revoke_all) = (sign_out?, revoke_all?);
    if let Some(blocked) = blocked(&[&sign_out, &revoke_all]) {
        return Ok(blocked);
    }
    let all: Vec<&Watch> = sign_out.watches.iter().chain(&revoke_all.watches).collect();
    Ok(resurrection_finding(
        ctx.plan.params.observe_after_refusal_ms,
        &all,
    ))
}

/// A fresh account (`role` names it): a sign-up, so that revoking never
/// ends another check's session.
async fn revocation_account(ctx: &Ctx, role: &str) -> Result<Account, Unobservable> {
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
    control: &Identity,
    kind: Revocation,
    trial: u32,
    interval_ms: u64,
) -> Result<(Vec<Watch>, Vec<ControlWatch>, Vec<Exchange>), Unobservable> {
    let (first, _) = sign_in_as(ctx, account, Jar::new()).await?;
    let mut tokens: Vec<(&'static str, Identity)> = vec![("revoking session", first)];
    if kind == Revocation::RevokeAll {
        let (second, _) = sign_in_as(ctx, account, Jar::new()).await?;
        tokens.push(("other session", second));
    }
    let primed = tokens
        .iter()
        .map(|(label, identity)| (*label, identity))
        .chain(std::iter::once(("control session", control)));
    for (label, identity) in primed {
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
    // The control is polled at every vantage at the same rate for as long
    // as any token is watched.
    let done = AtomicBool::new(false);
    let controls = ctx.target.vantages.iter().map(|vantage| {
        control_watch(
            ctx,
            control,
            vantage,
            (revoked_at, revoked_ms),
            trial,
            interval_ms,
            &done,
        )
    });
    let (outcomes, controls) = tokio::join!(
        async {
            let outcomes = join_all(watchers).await;
            done.store(true, Ordering::Release);
            outcomes
        },
        join_all(controls)
    );
    let mut watches = Vec::new();
    for outcome in outcomes {
        watches.push(outcome?);
    }
    let controls = controls.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((watches, controls, vec![revoked.exchange]))
}

/// What a trial's control session answered at one vantage.
struct ControlWatch {
    trial: u32,
    vantage: Url,
    /// The first poll that refused it: when it was sent (ms after the
    /// revocation) and the exchange.
    refused: Option<(u64, Exchange)>,
}

/// Polls the control session at `vantage` every `interval_ms` until `done`.
async fn control_watch(
    ctx: &Ctx,
    control: &Identity,
    vantage: &Url,
    (revoked_at, revoked_ms): (Instant, u64),
    trial: u32,
    interval_ms: u64,
    done: &AtomicBool,
) -> Result<ControlWatch, Unobservable> {
    let interval = Duration::from_millis(interval_ms);
    let mut out = ControlWatch {
        trial,
        vantage: vantage.clone(),
        refused: None,
    };
    let mut next = revoked_at;
    while !done.load(Ordering::Acquire) {
        tokio::time::sleep_until(next.into()).await;
        let (seen, exchange) = accepted_at(
            ctx,
            &control.session_jar(),
            vantage,
            &format!("trial {trial}: control session at {vantage}"),
        )
        .await?;
        if seen == Seen::Refused && out.refused.is_none() {
            out.refused = Some((exchange.at_ms.saturating_sub(revoked_ms), exchange));
        }
        next += interval;
    }
    Ok(out)
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
