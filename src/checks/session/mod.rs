//! The session suite: revocation windows in an eventually consistent store.
//!
//! Each trial signs in, makes sure the token is accepted at every vantage,
//! revokes it (sign-out, or revoke-sessions for every session of the user),
//! then replays it at every vantage every `poll_interval_ms` (raised so that
//! polling takes at most half of `budget.max_rps`) until refused,
//! and keeps watching for `observe_after_refusal_ms` afterwards, and never
//! for less than `revocation_bound_s`. The polling interval is the
//! measurement's resolution and is reported with it. Every replay sends the
//! whole cookie jar the sign-in (or sign-up) left, as a browser, or whoever
//! stole its cookies, would: a second cookie that still authenticates (a
//! signed session cache) is a way around revocation.
//!
//! App routes authenticate sessions too. Trial 1 of each kind, once its
//! get-session watches are over (so after the bound), replays a revoked token
//! at the contract's metered app route (`GET /api/me`) at every vantage,
//! beside the never-revoked control at the same route and vantage: accepted
//! there fails the revocation. Those replays are few because they are
//! metered: a refused one spends this machine's anonymous bucket, the
//! control's spends its account's (free) bucket, so they are sent while
//! those buckets are held exclusive (no measurement counts them), and a 429
//! is never an answer (resent after its `Retry-After`, twice at most, then
//! "could not tell").
//!
//! A poll's answer reflects the token's state at some instant between the
//! poll's send and its answer, so the revocation took effect after the last
//! accepted poll was sent and no later than the refusing poll's answer. The
//! verdict uses only what that bracket proves: `pass` when the refusal's
//! answer came within the bound, `fail` when an acceptance was sent after
//! it, `error` when a slow poll left the bound inside the bracket.

mod bracket;
mod polls;
mod signals;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use url::Url;

use super::check::{Check, Needs, Observation, Turnover, shared};
use super::identity::{Seen, accepted_at};
use super::{Ctx, Finding, Identity, Unobservable, sign_in_as};
use crate::check;
use crate::model::{Exchange, Secret};
use crate::probe::{Jar, Observed, Req};
use crate::target::Account;
use bracket::{AppCheck, AppPoll, AppSeen, Watch, resurrection_finding, window_finding};
use polls::*;
use signals::*;

/// Revocation trials sign up accounts of their own and poll every vantage,
/// mostly at `/api/auth/*`, which the contract leaves unmetered. Their few
/// replays at the metered app route spend the anonymous bucket (a refused
/// token is anonymous) and a fresh free account's (which is free's and
/// free2's where a target keys free users together). They are made right
/// after the revocation, under shared leases of those buckets that each
/// check gives up as soon as its trials' replays are over (well before the
/// trials end): the rate-limit measurements then start, and count nothing
/// the replays spent.
const TRIALS: Needs = Needs {
    buckets: &[shared("anonymous"), shared("free"), shared("free2")],
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

    /// The token trial 1 replays at the app route: the one signed out, or
    /// the session revoke-sessions ended from another.
    fn app_token(self) -> &'static str {
        match self {
            Revocation::SignOut => "revoking session",
            Revocation::RevokeAll => "other session",
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
    /// Why trial 1's replays at the app route could not tell anything.
    app_errors: Vec<Unobservable>,
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
        let app_done = app_done(ctx, kind).await;
        let _done = Done(app_done.clone());
        let app_done = &app_done;
        let passwords = passwords_done(ctx, kind).await;
        let _passwords_done = Done(passwords.clone());
        let countdown = Countdown {
            left: AtomicU32::new(ctx.plan.params.revocation_trials),
            done: passwords,
        };
        let countdown = &countdown;
        let interval_ms = poll_interval_ms(ctx);
        let runs = (1..=ctx.plan.params.revocation_trials).map(|t| async move {
            let ticket = countdown.ticket();
            let signals = Signals {
                passwords: &ticket,
                app_done,
            };
            let (account, control) =
                tokio::join!(revocation_account(ctx, kind.role()), control_session(ctx));
            let (account, signed_up) = account?;
            trial(
                ctx,
                &account,
                signed_up,
                &*control?,
                (kind, t),
                interval_ms,
                signals,
            )
            .await
        });
        let mut all = Trials {
            watches: Vec::new(),
            controls: Vec::new(),
            revocations: Vec::new(),
            app_errors: Vec::new(),
            interval_ms,
        };
        for outcome in join_all(runs).await {
            let (w, c, e, app_error) = outcome?;
            all.app_errors.extend(app_error);
            all.watches.extend(w);
            all.controls.extend(c);
            all.revocations.extend(e);
        }
        Ok(all)
    })
    .await
}

/// The session every trial polls as its control: of an account signed up
/// once per run (the sign-up's own session, or one sign-in when it set
/// none), never revoked.
async fn control_session(ctx: &Ctx) -> Result<Arc<Identity>, Unobservable> {
    ctx.once("session.control", || async {
        let (account, signed_up) = revocation_account(ctx, "control").await?;
        match signed_up {
            Some(control) => Ok(control),
            None => Ok(sign_in_as(ctx, &account, Jar::new()).await?.0),
        }
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
    let kinds = [kind];
    let (t, ()) = tokio::join!(trials(ctx, kind), release_after_replays(ctx, &kinds));
    let t = t?;
    if let Some(blocked) = blocked(&[&t]) {
        return Ok(blocked);
    }
    let bound_ms = ctx.target.profile.revocation_bound_s * 1000;
    let finding = window_finding(kind, &t.watches, &t.revocations, bound_ms, t.interval_ms);
    // A failure at get-session stands; anything else needed the app route.
    match t.app_errors.first() {
        Some(e) if finding.status != crate::model::Status::Fail => Ok(Finding::error(format!(
            "could not tell whether the app route GET {} refuses the token revoked by {}: {}",
            ctx.target.paths.me,
            kind.what(),
            e.reason
        ))
        .with_exchanges(&e.exchanges)),
        _ => Ok(finding),
    }
}

async fn revoked_on_sign_out(ctx: Ctx) -> Observation {
    window(&ctx, Revocation::SignOut).await
}

async fn revoke_all(ctx: Ctx) -> Observation {
    window(&ctx, Revocation::RevokeAll).await
}

/// Watches the tokens of both kinds of trial.
async fn no_resurrection(ctx: Ctx) -> Observation {
    let (sign_out, revoke_all, ()) = tokio::join!(
        trials(&ctx, Revocation::SignOut),
        trials(&ctx, Revocation::RevokeAll),
        release_after_replays(&ctx, &[Revocation::SignOut, Revocation::RevokeAll])
    );
    let (sign_out, revoke_all) = (sign_out?, revoke_all?);
    if let Some(blocked) = blocked(&[&sign_out, &revoke_all]) {
        return Ok(blocked);
    }
    let all: Vec<&Watch> = sign_out.watches.iter().chain(&revoke_all.watches).collect();
    Ok(resurrection_finding(observe_after_refusal_ms(&ctx), &all))
}

/// How long a refused token is still watched: `observe_after_refusal_ms`,
/// and never less than the bound (a token the target brings back from a
/// stale replica may come back any time within it).
fn observe_after_refusal_ms(ctx: &Ctx) -> u64 {
    ctx.plan
        .params
        .observe_after_refusal_ms
        .max(ctx.target.profile.revocation_bound_s * 1000)
}

/// A fresh account (`role` names it): a sign-up, so that revoking never
/// ends another check's session. With it, the session the sign-up set
/// (better-auth's `autoSignIn`), if it set one, which saves a sign-in (a
/// password hash in the target's isolate).
async fn revocation_account(
    ctx: &Ctx,
    role: &str,
) -> Result<(Account, Option<Identity>), Unobservable> {
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
    let signed_up = signed_up_session(ctx, &account, &observed);
    Ok((account, signed_up))
}

/// One trial: the sign-up's session or a sign-in (and one more sign-in for
/// revoke-all), prime every vantage, revoke, watch every token at every
/// vantage; trial 1 then replays a token at the app route.
async fn trial(
    ctx: &Ctx,
    account: &Account,
    signed_up: Option<Identity>,
    control: &Identity,
    (kind, trial): (Revocation, u32),
    interval_ms: u64,
    signals: Signals<'_>,
) -> Result<TrialOutcome, Unobservable> {
    let first = match signed_up {
        Some(session) => session,
        None => sign_in_as(ctx, account, Jar::new()).await?.0,
    };
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
                &identity.jar,
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
        .jar(&revoking.jar)
        .json(&json!({}));
    let revoked = ctx.probe.send(req).await?;
    // The trial's chain has started (what follows is the watch, of a fixed
    // length): other checks' sign-ins may hash now.
    signals.passwords.punch();
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
    // Trial 1 replays a revoked token at the app route at every vantage,
    // from right after the revocation, beside the control.
    let app_token = tokens
        .iter()
        .find(|(label, _)| *label == kind.app_token())
        .map_or(revoking, |(_, identity)| identity);
    let app = AppReplay {
        label: kind.app_token(),
        token: app_token,
        control,
        revoked: (revoked_at, revoked_ms),
        trial,
    };
    let (outcomes, controls, apps) = tokio::join!(
        async {
            let outcomes = join_all(watchers).await;
            done.store(true, Ordering::Release);
            outcomes
        },
        join_all(controls),
        async {
            match trial {
                1 => {
                    let replays = app_replays(ctx, &app).await;
                    // Nothing more spends the shared buckets.
                    signals.app_done.send_replace(true);
                    Some(replays)
                }
                _ => None,
            }
        }
    );
    let mut watches = Vec::new();
    for outcome in outcomes {
        watches.push(outcome?);
    }
    let controls = controls.into_iter().collect::<Result<Vec<_>, _>>()?;
    // The app route failing to answer is that route's "could not tell",
    // not the whole trial's: get-session's watches still stand.
    let app_error = match apps {
        Some(Ok(checks)) => {
            for (vantage, check) in checks {
                if let Some(w) = watches
                    .iter_mut()
                    .find(|w| w.token == app.label && w.vantage == vantage)
                {
                    w.app = Some(check);
                }
            }
            None
        }
        Some(Err(e)) => Some(e),
        None => None,
    };
    Ok((watches, controls, vec![revoked.exchange], app_error))
}

/// A trial's watches, its control's, the revocation exchange, and why the
/// app route could not tell anything, if it could not.
type TrialOutcome = (
    Vec<Watch>,
    Vec<ControlWatch>,
    Vec<Exchange>,
    Option<Unobservable>,
);

/// The session a sign-up set, as the identity a sign-in would have made
/// (the same choice of session cookie, the jar of every cookie it set);
/// `None` when it set no session cookie.
fn signed_up_session(ctx: &Ctx, account: &Account, observed: &Observed) -> Option<Identity> {
    let set = observed.set_cookies();
    let cookie_name = super::identity::session_cookie(ctx, &set)?.name.clone();
    let mut jar = Jar::new();
    jar.apply(&set);
    Some(Identity {
        role: account.role.clone(),
        jar,
        cookie_name,
    })
}
