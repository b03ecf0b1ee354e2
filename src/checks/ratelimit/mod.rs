//! The ratelimit suite: exact per-tier limits in one fixed window, admin not
//! throttled, well-formed 429s, tiers never taken from the client, the
//! anonymous bucket not keyed on client headers, one bucket per identity
//! (per user, across every metered route and vantage), and buckets that
//! reset.
//!
//! Windows do not start when the harness does: each bucket is first spent
//! until refused, the harness polls for the reset (from a little before what
//! `Retry-After` names; the window began after the last refused poll was
//! sent), and the request allowed after it starts the counted window.
//! Probes that need an exhausted bucket (claimed tiers, spoofed addresses,
//! the other user, a second session, the other routes and vantages) run
//! inside the counted window once the count spent it, and count only if
//! answered before it can end; after a later exhaustion (the window's phase
//! unknown) each is bracketed by a plain request that must still be refused,
//! or it is repeated.

mod engine;
mod header;
mod payloads;
mod probes;
mod routes;
mod tier;
mod verdicts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::check::{Check, Lease, Needs, Observation, Turnover, exclusive};
use super::{Ctx, Finding, Unobservable};
use crate::check;
use engine::{Suite, TierOutcome};
use tier::{admin_burst, caller, measure_tier};
use verdicts::{
    merge_probes, probe_finding, retry_after_finding, timelines, window_resets_finding,
};

/// Measures one tier's bucket (free's measurement also spends free2's, the
/// other identity of the per-identity probe).
const fn measures(buckets: &'static [Lease]) -> Needs {
    Needs {
        buckets,
        fresh_accounts: false,
        vantages: false,
        turnover: Turnover::Observes,
    }
}
const ANONYMOUS: &[Lease] = &[exclusive("anonymous")];
const FREE: &[Lease] = &[exclusive("free"), exclusive("free2")];
const PRO: &[Lease] = &[exclusive("pro")];
const ANONYMOUS_AND_FREE: &[Lease] = &[
    exclusive("anonymous"),
    exclusive("free"),
    exclusive("free2"),
];
const EVERY_TIER: &[Lease] = &[
    exclusive("anonymous"),
    exclusive("free"),
    exclusive("free2"),
    exclusive("pro"),
];
/// Admin's burst starts at the first window turnover another check sees.
const ADMIN: Needs = Needs {
    buckets: &[exclusive("admin")],
    fresh_accounts: false,
    vantages: false,
    turnover: Turnover::Awaits,
};

pub const CHECKS: &[Check] = &[
    check!("ratelimit.anonymous", measures(ANONYMOUS), anonymous),
    check!("ratelimit.free", measures(FREE), free),
    check!("ratelimit.pro", measures(PRO), pro),
    check!("ratelimit.admin-unlimited", ADMIN, admin_unlimited),
    check!("ratelimit.retry-after", measures(EVERY_TIER), retry_after),
    check!(
        "ratelimit.tier-not-from-client",
        measures(ANONYMOUS_AND_FREE),
        tier_not_from_client
    ),
    check!(
        "ratelimit.key-not-spoofable",
        measures(ANONYMOUS),
        key_not_spoofable
    ),
    check!("ratelimit.per-identity", measures(FREE), per_identity),
    check!(
        "ratelimit.window-resets",
        measures(EVERY_TIER),
        window_resets
    ),
    check!(
        "ratelimit.every-metered-route",
        measures(EVERY_TIER),
        every_metered_route
    ),
];

fn suite(ctx: &Ctx) -> Suite<'_> {
    Suite {
        ctx,
        window: Duration::from_secs(ctx.target.profile.window_s),
        tolerance: ctx.plan.params.ratelimit_tolerance,
    }
}

/// The tiers with a bucket to measure.
const TIERS: [&str; 3] = ["anonymous", "free", "pro"];

/// `tier`'s measurement, made once per run by the first check that needs it.
async fn tier(ctx: &Ctx, tier: &'static str) -> Result<Arc<TierOutcome>, Unobservable> {
    let limits = &ctx.target.profile.limits;
    let limit = match tier {
        "anonymous" => limits.anonymous.count(),
        "free" => limits.free.count(),
        _ => limits.pro.count(),
    };
    ctx.once(&format!("ratelimit.tier.{tier}"), || {
        measure_tier(suite(ctx), tier, limit)
    })
    .await
}

/// Every tier's measurement (side by side); the verdicts over several
/// tiers judge the ones that could be measured.
async fn every_tier(ctx: &Ctx) -> Vec<Arc<TierOutcome>> {
    futures_util::future::join_all(TIERS.map(|t| tier(ctx, t)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn anonymous(ctx: Ctx) -> Observation {
    Ok(tier(&ctx, "anonymous").await?.count.clone())
}

async fn free(ctx: Ctx) -> Observation {
    Ok(tier(&ctx, "free").await?.count.clone())
}

async fn pro(ctx: Ctx) -> Observation {
    Ok(tier(&ctx, "pro").await?.count.clone())
}

async fn admin_unlimited(ctx: Ctx) -> Observation {
    let suite = suite(&ctx);
    // Signed in before the wait, so that the burst starts as soon as a
    // window turns over and its sign-in does not eat into that window.
    let _lease = ctx.exclusive(&["admin"]).await?;
    let me = caller(&ctx, "admin").await?;
    let aligned = ctx
        .turnover(suite.window * 2 + Duration::from_secs(3))
        .await;
    let finding = admin_burst(&suite, &me, aligned).await?;
    // A burst that may have run past its window (it starts when every
    // measured bucket counts its window, at one rate cap) proves nothing:
    // sent once more at the start of a later window, windows being fixed.
    match aligned {
        Some(at) if finding.status == crate::model::Status::Error => {
            let since = Instant::now().saturating_duration_since(at);
            let windows = since.as_nanos().div_ceil(suite.window.as_nanos().max(1));
            let next = u32::try_from(windows)
                .ok()
                .and_then(|n| suite.window.checked_mul(n))
                .and_then(|d| at.checked_add(d));
            let Some(next) = next else {
                return Ok(finding);
            };
            tokio::time::sleep_until(next.into()).await;
            admin_burst(&suite, &me, Some(next)).await
        }
        _ => Ok(finding),
    }
}

async fn retry_after(ctx: Ctx) -> Observation {
    let outcomes = every_tier(&ctx).await;
    Ok(retry_after_finding(suite(&ctx).window, &outcomes))
}

async fn window_resets(ctx: Ctx) -> Observation {
    let outcomes = every_tier(&ctx).await;
    Ok(window_resets_finding(suite(&ctx).window, &outcomes))
}

/// A probe's refusals count only beside the bucket's own control: the same
/// caller's plain requests were allowed at some point of the run. A target
/// that refuses everything refuses a claimed tier too, which proves nothing.
fn uncontrolled(outcomes: &[&TierOutcome]) -> Option<Finding> {
    let never: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.run.hits.iter().any(|h| h.allowed()))
        .map(|o| o.tier)
        .collect();
    (!never.is_empty()).then(|| {
        Finding::error(format!(
            "could not tell refusal from blocking: the {} bucket never allowed a plain request, so its refusals of the probes prove nothing",
            never.join(" and ")
        ))
    })
}

async fn tier_not_from_client(ctx: Ctx) -> Observation {
    let (free, anonymous) = tokio::join!(tier(&ctx, "free"), tier(&ctx, "anonymous"));
    let measured: Vec<&TierOutcome> = [&free, &anonymous]
        .into_iter()
        .filter_map(|o| o.as_deref().ok())
        .collect();
    if let Some(blocked) = uncontrolled(&measured) {
        return Ok(blocked);
    }
    let merged = merge_probes([
        free.as_ref().ok().map(|o| &o.claims),
        anonymous.as_ref().ok().map(|o| &o.claims),
    ]);
    Ok(probe_finding(
        merged.as_ref(),
        "with the bucket exhausted, no claimed tier (header, unsigned JWT) earned another request",
        Vec::new(),
    ))
}

async fn key_not_spoofable(ctx: Ctx) -> Observation {
    let suite = suite(&ctx);
    let o = tier(&ctx, "anonymous").await.ok();
    if let Some(blocked) = o.as_deref().and_then(|o| uncontrolled(&[o])) {
        return Ok(blocked);
    }
    Ok(probe_finding(
        o.as_ref().map(|o| &o.spoofing),
        "with the anonymous bucket exhausted, spoofed client-address headers earned no request",
        o.as_ref()
            .map(|o| timelines(suite.window, o))
            .unwrap_or_default(),
    ))
}

async fn per_identity(ctx: Ctx) -> Observation {
    let suite = suite(&ctx);
    let o = tier(&ctx, "free").await.ok();
    Ok(probe_finding(
        o.as_ref().map(|o| &o.per_identity),
        "with free's bucket exhausted, free2 was still allowed and a second session of free (its own sign-in) was refused too",
        o.as_ref()
            .map(|o| timelines(suite.window, o))
            .unwrap_or_default(),
    ))
}

/// Every metered route and vantage spends the one bucket of each tier the
/// run measured.
async fn every_metered_route(ctx: Ctx) -> Observation {
    let outcomes = every_tier(&ctx).await;
    let measured: Vec<&TierOutcome> = outcomes.iter().map(|o| o.as_ref()).collect();
    if measured.is_empty() {
        return Ok(Finding::error(
            "no bucket could be measured, so no route could be probed",
        ));
    }
    if let Some(blocked) = uncontrolled(&measured) {
        return Ok(blocked);
    }
    if measured.iter().all(|o| o.routes.judged == 0) {
        return Ok(Finding::error(format!(
            "could not tell refusal from blocking: every other metered route already answered 429 before the bucket was spent ({})",
            measured
                .iter()
                .flat_map(|o| o
                    .routes
                    .uncontrolled
                    .iter()
                    .map(move |r| format!("{}: {r}", o.tier)))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let judged: Vec<&TierOutcome> = measured
        .iter()
        .copied()
        .filter(|o| o.routes.judged > 0)
        .collect();
    let merged = routes_merged(&judged);
    let routes = judged.iter().map(|o| o.routes.judged).max().unwrap_or(0);
    let mut finding = probe_finding(
        Some(&merged),
        &format!(
            "with each bucket exhausted on GET {}, every other metered route and vantage ({routes}) answered 429",
            ctx.target.paths.ping
        ),
        Vec::new(),
    );
    let skipped: Vec<String> = measured
        .iter()
        .flat_map(|o| {
            o.routes
                .uncontrolled
                .iter()
                .map(move |r| format!("{}: {r}", o.tier))
        })
        .collect();
    if !skipped.is_empty() {
        finding = finding.with(crate::model::Evidence::note(format!(
            "not judged (already 429 before the bucket was spent): {}",
            skipped.join(", ")
        )));
    }
    Ok(finding)
}

fn routes_merged(outcomes: &[&TierOutcome]) -> engine::Probes {
    engine::Probes {
        done: outcomes.iter().all(|o| o.routes.probes.done),
        problems: outcomes
            .iter()
            .flat_map(|o| o.routes.probes.problems.clone())
            .collect(),
        evidence: outcomes
            .iter()
            .flat_map(|o| o.routes.probes.evidence.clone())
            .collect(),
    }
}
