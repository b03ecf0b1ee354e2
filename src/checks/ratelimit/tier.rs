//! One tier's measurement, from the engine's primitives: sign in its
//! caller, exhaust its bucket, probe it while spent, wait for the window to
//! turn over, count one whole window; and the admin tier's burst.

use std::time::{Duration, Instant};

use super::engine::*;
use super::probes::{self, probe_until_done};
use super::routes::{self, Controls, RouteProbes};
use super::verdicts::{count_finding, never_refused, unbracketed_finding};
use crate::checks::{Ctx, Finding, Unobservable, sign_in};
use crate::probe::Jar;

pub(super) async fn caller(ctx: &Ctx, bucket: &'static str) -> Result<Caller, Unobservable> {
    if bucket == "anonymous" {
        return Ok(Caller { bucket, jar: None });
    }
    let (identity, _) = sign_in(ctx, bucket, Jar::new()).await?;
    Ok(Caller {
        bucket,
        jar: Some(identity.session_jar()),
    })
}

/// Exhaust, probe, wait for the reset, count a whole window, probe again if
/// the first probes were inconclusive.
pub(super) async fn measure_tier(
    suite: Suite<'_>,
    tier: &'static str,
    limit: Option<u64>,
) -> Result<TierOutcome, Unobservable> {
    let suite = &suite;
    let ctx = suite.ctx;
    let mut lease_names = vec![tier];
    if tier == "free" {
        lease_names.push("free2");
    }
    // Signed in before the buckets are this measurement's: a sign-in spends
    // no metered bucket, and its password hash then queues in the target
    // while the checks sharing the buckets finish, not on the measurement's
    // chain. Free's callers (free, free2 and a second session of free's
    // user, see `probe_until_done`) sign in side by side.
    let (me, other, again) = if tier == "free" {
        let (me, other, again) = tokio::join!(
            caller(ctx, tier),
            caller(ctx, "free2"),
            probes::second_session(ctx, tier)
        );
        (me?, Some(other?), Some(again?))
    } else {
        (caller(ctx, tier).await?, None, None)
    };
    let _lease = ctx.exclusive(&lease_names).await?;
    let mut run = BucketRun::default();
    let mut other_run = BucketRun::default();
    let mut outcome = TierOutcome {
        tier,
        run: BucketRun::default(),
        limit,
        count: Finding::error("not measured"),
        reset: None,
        claims: Probes::default(),
        spoofing: Probes::default(),
        per_identity: Probes::default(),
        routes: RouteProbes::default(),
        spent_until: None,
        other_runs: Vec::new(),
    };
    let Some(limit_n) = limit else {
        outcome.count = Finding::skip(format!("the config declares the {tier} tier unlimited"));
        return Ok(outcome);
    };
    let cap = spend_cap(limit_n);
    // Every other metered route, sent once before the bucket is spent.
    let route_controls = routes::controls(suite, &mut run, &me).await?;
    let exhaust_started = Instant::now();
    let Some(refused) = suite.exhaust(&mut run, &me, cap).await? else {
        let span = exhaust_started.elapsed();
        outcome.count = never_refused(suite.window, tier, limit_n, cap, span).with(timeline(
            tier,
            limit,
            suite.window,
            &run,
        ));
        outcome.run = run;
        return Ok(outcome);
    };
    outcome.routes.uncontrolled = route_controls.uncontrolled.clone();
    outcome.routes.judged = route_controls.routes.len();
    outcome.count = reset_and_count(
        suite,
        &mut run,
        &me,
        refused,
        limit_n,
        &route_controls,
        &mut outcome,
    )
    .await?
    .with(timeline(tier, limit, suite.window, &run));
    // Probe while the bucket is spent: after the count, so that the first
    // reset is the one counted (or, when it never reset, right away).
    probe_until_done(
        suite,
        &mut run,
        &mut other_run,
        (&me, &route_controls),
        other.as_ref(),
        again.as_ref(),
        &mut outcome,
        cap,
    )
    .await?;
    // Every verdict above assumed the requests were this tier's.
    for c in std::iter::once(&me).chain(other.as_ref()) {
        c.still_signed_in(ctx).await?;
    }
    outcome.run = run;
    if other.is_some() {
        outcome.other_runs.push(other_run);
    }
    Ok(outcome)
}

/// How many requests spending a bucket of `limit` may take before it is
/// given up as never refusing.
fn spend_cap(limit: u64) -> u64 {
    limit * 2 + 10
}

/// Waits for the window `refused` spent to turn over and counts the one it
/// opens; returns the count's finding and records the reset in `outcome`.
/// The counted window's start must be bracketed by polls. When the first
/// poll was already allowed (Retry-After overstated the wait), the window
/// it opened is spent and its end measured once more, polling from right
/// after the refusal; unbracketed twice, the count is an error. A count
/// that ran past its window is made once more after the next exhaustion.
async fn reset_and_count(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    me: &Caller,
    mut refused: Hit,
    limit_n: u64,
    route_controls: &Controls,
    outcome: &mut TierOutcome,
) -> Result<Finding, Unobservable> {
    let tier = outcome.tier;
    let cap = spend_cap(limit_n);
    let (mut overstated, mut recounted) = (None, false);
    loop {
        let Some(reset) = suite
            .await_reset(run, me, &refused, overstated.is_none())
            .await?
        else {
            let last = run.hits.last().map(|h| h.observed.exchange.clone());
            outcome.reset = Some(Err((
                format!(
                    "still refused {} s after the 429",
                    (suite.window + Duration::from_secs(2)).as_secs()
                ),
                refused.observed.exchange.clone(),
                last,
            )));
            // No window turns over: the other routes are probed bracketed.
            routes::probe(
                suite,
                run,
                me,
                route_controls,
                (None, (outcome.limit, cap)),
                &mut outcome.routes.probes,
            )
            .await?;
            return Ok(Finding::error(
                "the bucket never reset, so a whole window could not be counted",
            )
            .with_exchange(&refused.observed.exchange));
        };
        if outcome.reset.is_none() {
            outcome.reset = Some(Ok((
                reset.last_refused.observed.exchange.clone(),
                reset.first.observed.exchange.clone(),
            )));
        }
        if reset.bracketed {
            suite.ctx.saw_turnover(reset.began_after);
            let count = suite.count(run, me, &reset, limit_n).await?;
            // The counted window is spent (when the count saw a refusal):
            // the other routes, inside it.
            if count.within && count.refusal.is_some() {
                outcome.spent_until = Some(reset.began_after + suite.window);
                routes::probe(
                    suite,
                    run,
                    me,
                    route_controls,
                    (Some(reset.began_after + suite.window), (outcome.limit, cap)),
                    &mut outcome.routes.probes,
                )
                .await?;
            }
            if count.within || recounted {
                let (window, tolerance) = (suite.window, suite.tolerance);
                return Ok(count_finding(
                    window, tolerance, tier, limit_n, &reset, &count,
                ));
            }
            // Answers that may have come after the window ended (a slow
            // target, or a rate cap shared with the other checks) prove
            // nothing: counted once more, in a later window.
            recounted = true;
        } else if let Some(first) = overstated {
            return Ok(unbracketed_finding(&first, &reset));
        } else {
            // The window turned over before the first poll: spend the
            // window it opened, and find its end by polling.
            overstated = Some(reset);
        }
        let started = Instant::now();
        let Some(again) = suite.exhaust(run, me, cap).await? else {
            return Ok(never_refused(
                suite.window,
                tier,
                limit_n,
                cap,
                started.elapsed(),
            ));
        };
        refused = again;
    }
}

/// Admin sends `admin_factor` x the pro limit inside one window: no 429.
/// The burst starts right after another bucket saw its window turn over
/// (`aligned`: when that window began at the earliest) and must be answered
/// before that window can end. Without alignment the window's phase is
/// unknown, so twice as many are sent within a window's length of their
/// start: they touch at most two windows, so one of those took at least
/// half of them.
pub(super) async fn admin_burst(
    suite: &Suite<'_>,
    me: &Caller,
    aligned: Option<Instant>,
) -> Result<Finding, Unobservable> {
    let ctx = suite.ctx;
    let base = ctx.target.profile.limits.pro.count().unwrap_or(300);
    let n = base * ctx.plan.params.admin_factor;
    let sent = if aligned.is_some() { n } else { 2 * n };
    let mut run = BucketRun::default();
    let started = Instant::now();
    let hits = suite.burst(&mut run, me, sent, "admin").await?;
    me.still_signed_in(ctx).await?;
    let refused = hits
        .iter()
        .enumerate()
        .find(|(_, h)| h.refused())
        .map(|(i, h)| (i + 1, h.clone()));
    let last = hits.iter().map(|h| h.received).max().unwrap_or(started);
    let window_began = aligned.unwrap_or(started);
    let span = last.duration_since(started);
    let how = if aligned.is_some() {
        "inside one window"
    } else {
        "within one window's length (the window's phase unknown: one window took at least half)"
    };
    let finding = match refused {
        Some((i, hit)) => Finding::fail(format!("admin was refused at request {i} of {sent}"))
            .with_exchange(&hit.observed.exchange),
        None if last + suite.margin() < window_began + suite.window => Finding::pass(format!(
            "{sent} requests in {} ms, {how}, none refused",
            span.as_millis()
        )),
        None => Finding::error(format!(
            "{sent} requests took {} ms and may have run past the {} s window, so they prove nothing (raise budget.max_rps or check the target's latency)",
            span.as_millis(),
            suite.window.as_secs()
        )),
    };
    Ok(finding.with(timeline("admin", None, suite.window, &run)))
}
