//! One bucket per identity: every metered route the contract names, at
//! every vantage, spends the bucket the count measured on `GET` the ping
//! path. A Worker that meters only its cheap route, or keeps a bucket per
//! route or per edge, lets an exhausted caller go on elsewhere.
//!
//! Each route is controlled: sent once as the same caller at the same
//! vantage before the bucket is spent, it must not answer 429 (a route that
//! refuses everything proves nothing). While the bucket is spent (right
//! after the first exhaustion, during the wait for the reset), each route
//! is sent again and must answer 429, and a plain request after it must
//! still be refused; otherwise the window turned over under the probe and
//! it is repeated after the next exhaustion.

use std::time::Instant;

use futures_util::future::join_all;
use serde_json::json;
use url::Url;

use super::engine::{BucketRun, Caller, Hit, Probes, Suite};
use super::probes::bracketed;
use crate::checks::{Unobservable, join};
use crate::probe::Req;

/// One metered request other than the plain one: a route of the contract
/// at a vantage.
#[derive(Clone)]
pub(super) struct Route {
    pub(super) what: String,
    method: reqwest::Method,
    url: Url,
    body: Option<serde_json::Value>,
}

/// Every metered route the contract names (every `/api/*` outside
/// `/api/auth/*`) at the base URL, and the ping path at every other vantage.
pub(super) fn metered_routes(suite: &Suite<'_>) -> Vec<Route> {
    let ctx = suite.ctx;
    let paths = &ctx.target.paths;
    let base = &ctx.target.base_url;
    let route = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| Route {
        what: format!("{method} {path}"),
        method,
        url: join(base, path),
        body,
    };
    let posts = paths.posts.trim_end_matches('/');
    let mut out = vec![
        route(reqwest::Method::GET, &paths.me, None),
        route(reqwest::Method::GET, &paths.posts, None),
        route(
            reqwest::Method::GET,
            &format!("{posts}/flareproof-no-such-post"),
            None,
        ),
        route(
            reqwest::Method::POST,
            &paths.posts,
            Some(json!({ "title": "flareproof rate-limit probe" })),
        ),
    ];
    for vantage in ctx.target.vantages.iter().filter(|v| *v != base) {
        out.push(Route {
            what: format!("GET {} at {vantage}", paths.ping),
            method: reqwest::Method::GET,
            url: join(vantage, &paths.ping),
            body: None,
        });
    }
    out
}

/// Sends `route` as `caller`: a metered request, recorded like the plain
/// ones. Any answer is evidence here (a 401 for an anonymous caller is an
/// answer that spent, or skipped, the bucket just as a 200 is).
async fn send(
    suite: &Suite<'_>,
    caller: &Caller,
    route: &Route,
    label: &str,
) -> Result<Hit, Unobservable> {
    let ctx = suite.ctx;
    let mut req = Req::new(
        route.method.clone(),
        route.url.clone(),
        format!("{}: {label}", caller.bucket),
    );
    if let Some(jar) = &caller.jar {
        req = req.jar(jar);
    }
    if let Some(body) = &route.body {
        req = req.header("origin", ctx.target.origin.clone()).json(body);
    }
    suite.timed(req).await
}

/// Each route once before the bucket is spent: those that did not answer
/// 429 can be probed; the others are reported as uncontrolled.
pub(super) struct Controls {
    pub(super) routes: Vec<Route>,
    pub(super) uncontrolled: Vec<String>,
}

pub(super) async fn controls(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    me: &Caller,
) -> Result<Controls, Unobservable> {
    let all = metered_routes(suite);
    let hits = join_all(all.iter().map(|r| async move {
        send(
            suite,
            me,
            r,
            &format!("control: {} before spending", r.what),
        )
        .await
    }))
    .await;
    let mut out = Controls {
        routes: Vec::new(),
        uncontrolled: Vec::new(),
    };
    for (route, hit) in all.into_iter().zip(hits) {
        let hit = hit?;
        run.record(&hit);
        if hit.refused() {
            out.uncontrolled.push(route.what);
        } else {
            out.routes.push(route);
        }
    }
    Ok(out)
}

/// While the bucket is spent: each controlled route must answer 429.
///
/// `window_ends`: the earliest the window in which the bucket was seen
/// spent can end (the counted window: its start is measured, never taken
/// from the target). Probes answered before it (less the margin) were
/// answered in that window, so an allowed one is a route that did not
/// spend the bucket. Without it (the bucket never reset, or a later
/// exhaustion whose window's phase is unknown), each probe is followed at
/// once by a plain request that must still be refused, one pair at a time
/// (`bounds`: the limit and the spending cap, see `probes::bracketed`):
/// side by side, probes allowed by a window that turned over under them
/// could take its whole allowance and leave every bracket refused.
/// `probes.done` stays false when the probes did not fit in the window (or
/// a bracket was allowed every time).
pub(super) async fn probe(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    me: &Caller,
    controls: &Controls,
    (window_ends, bounds): (Option<Instant>, (Option<u64>, u64)),
    probes: &mut Probes,
) -> Result<(), Unobservable> {
    let label = |route: &Route| format!("while exhausted: {}", route.what);
    // Inside a window whose end is known, side by side; without one, one
    // bracketed pair at a time (see `probes::bracketed`).
    let mut judged: Vec<(Hit, Option<Hit>, bool)> = Vec::new();
    match window_ends {
        Some(_) => {
            let hits = join_all(
                (controls.routes.iter())
                    .map(|route| async move { send(suite, me, route, &label(route)).await }),
            )
            .await;
            for hit in hits {
                let hit = hit?;
                run.record(&hit);
                let in_window = suite.answered_while_spent(&hit, window_ends);
                judged.push((hit, None, in_window));
            }
        }
        None => {
            let mut unused = BucketRun::default();
            for route in &controls.routes {
                let runs = (&mut *run, &mut unused);
                let label = label(route);
                let send = || send(suite, me, route, &label);
                let (hit, bracket, conclusive) =
                    bracketed(suite, runs, me, me, &route.what, bounds, send).await?;
                judged.push((hit, Some(bracket), conclusive));
            }
        }
    }
    let mut found = Probes {
        done: true,
        ..Probes::default()
    };
    for (route, (probe, bracket, in_window)) in controls.routes.iter().zip(judged) {
        if !in_window {
            found.done = false;
        } else if !probe.refused() {
            found.problems.push(format!(
                "with the {} bucket exhausted, {} answered {} instead of 429",
                me.bucket, route.what, probe.status
            ));
            found.evidence.push(probe.observed.exchange);
            found.evidence.extend(bracket.map(|b| b.observed.exchange));
        } else if found.evidence.len() < 4 {
            found.evidence.push(probe.observed.exchange);
        }
    }
    *probes = found;
    Ok(())
}

/// What a tier's measurement found of its routes.
#[derive(Default)]
pub(super) struct RouteProbes {
    pub(super) probes: Probes,
    /// The routes whose control already answered 429: not judged.
    pub(super) uncontrolled: Vec<String>,
    /// How many routes were judged.
    pub(super) judged: usize,
}
