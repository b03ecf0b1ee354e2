//! The polls of a revocation trial: each revoked token watched at every
//! vantage until refused (and past, for a resurrection), its control beside
//! it, and the replays at the app route.

use super::*;

/// What trial 1 replays at the app route.
pub(super) struct AppReplay<'a> {
    pub(super) label: &'static str,
    pub(super) token: &'a Identity,
    pub(super) control: &'a Identity,
    pub(super) revoked: (Instant, u64),
    pub(super) trial: u32,
}

/// Replays `app.token` at the app route at every vantage, from right after
/// the revocation, each time beside the control at the same route and
/// vantage: until the token is refused (or rate-limited: no answer), or
/// until a replay sent after the bound was still accepted. The replays are
/// paced so that they spend at most half of a free bucket per window (an
/// accepted replay spends the token's account's bucket, a refused one this
/// machine's anonymous bucket, once per vantage).
pub(super) async fn app_replays(
    ctx: &Ctx,
    app: &AppReplay<'_>,
) -> Result<Vec<(Url, AppCheck)>, Unobservable> {
    let bound_ms = ctx.target.profile.revocation_bound_s * 1000;
    let window_ms = ctx.target.profile.window_s * 1000;
    let free = ctx.target.profile.limits.free.count().unwrap_or(60).max(2);
    let interval = Duration::from_millis(
        ctx.plan
            .params
            .poll_interval_ms
            .max(window_ms * 2 / free)
            .max(1),
    );
    let (revoked_at, revoked_ms) = app.revoked;
    // One replay is sent just past the bound, so that an acceptance up to
    // it is seen.
    let past_bound = revoked_at + Duration::from_millis(bound_ms + 1);
    let per_vantage = ctx.target.vantages.iter().map(|vantage| async move {
        let mut next = revoked_at;
        let mut accepted = false;
        loop {
            tokio::time::sleep_until(next.into()).await;
            let label =
                |who: &str| format!("trial {}: {who} at the app route at {vantage}", app.trial);
            let token = app_poll(
                ctx,
                &app.token.jar,
                vantage,
                &label(&format!("replay {}", app.label)),
                revoked_ms,
            )
            .await?;
            let control = app_poll(
                ctx,
                &app.control.jar,
                vantage,
                &label("control session"),
                revoked_ms,
            )
            .await?;
            let mut token = token;
            if token.seen == AppSeen::Refused && accepted && token.sent_ms > bound_ms {
                token.seen = AppSeen::RefusedAfterTheBound;
            }
            if token.seen != AppSeen::Accepted || token.sent_ms > bound_ms {
                let check = AppCheck {
                    route: ctx.target.paths.me.clone(),
                    token,
                    control,
                };
                return Ok::<_, Unobservable>((vantage.clone(), check));
            }
            accepted = true;
            next = match next + interval {
                later if next < past_bound && later > past_bound => past_bound,
                later => later,
            };
        }
    });
    join_all(per_vantage).await.into_iter().collect()
}

/// What a trial's control session answered at one vantage.
pub(super) struct ControlWatch {
    pub(super) trial: u32,
    pub(super) vantage: Url,
    /// The first poll that refused it: when it was sent (ms after the
    /// revocation) and the exchange.
    pub(super) refused: Option<(u64, Exchange)>,
}

/// Polls the control session at `vantage` every `interval_ms` until `done`.
pub(super) async fn control_watch(
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
            &control.jar,
            vantage,
            &format!("trial {trial}: control session at {vantage}"),
        )
        .await?;
        if seen == Seen::Refused && out.refused.is_none() {
            out.refused = Some((exchange.at_ms.saturating_sub(revoked_ms), exchange));
        }
        next = next_poll(next, interval, Instant::now());
    }
    Ok(out)
}

/// Polls one token at one vantage until refused (or until a poll sent after
/// the bound was still accepted), then keeps watching for a resurrection.
pub(super) async fn watch(
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
    let observe_ms = observe_after_refusal_ms(ctx);
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
        app: None,
    };
    let mut next = revoked_at;
    let mut last_accepted = None;
    loop {
        tokio::time::sleep_until(next.into()).await;
        let queued = ctx.probe.now_ms();
        let (seen, exchange) = accepted_at(
            ctx,
            &who.jar,
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
        match out.refused_after_ms {
            // Accepted by a poll sent after the bound: late, whatever the
            // poll latency. (Every poll has a timeout, so this is reached.)
            None if at_ms > bound_ms => {
                out.notable.extend(last_accepted);
                return Ok(out);
            }
            // Watched until a poll sent more than `observe_ms` after the
            // refusal (times of one clock, so the difference is within a
            // millisecond) was still refused.
            Some(refused) if at_ms > refused + observe_ms => return Ok(out),
            _ => {}
        }
        next = next_poll(next, interval, Instant::now());
        // The watch's last poll goes just past its end, not up to a poll
        // later.
        if let Some(refused) = out.refused_after_ms {
            next = next.min(revoked_at + Duration::from_millis(refused + observe_ms + 2));
        }
    }
}

/// When a poll on a grid of `interval` after the one due at `due` goes,
/// at `now`: the next grid point, or at once when polls fell behind (a
/// target that stalled, answers slower than `interval`), without a burst
/// of the polls missed meanwhile. Polls are then never more frequent than
/// the interval, and a watch of a given length lasts that long in real
/// time, however slow the target's answers were.
pub(super) fn next_poll(due: Instant, interval: Duration, now: Instant) -> Instant {
    (due + interval).max(now)
}

/// Resends of an app-route replay after a 429, at most.
pub(super) const APP_RESENDS: usize = 2;

/// Presents `jar` at the app route (`paths.me`) at `vantage`: 2xx is
/// accepted, 401 or 403 refused; a 429 is neither (the replay is resent
/// after its `Retry-After`, at most a window, twice at most, then left
/// [`AppSeen::Unclear`]); anything else means we cannot tell.
pub(super) async fn app_poll(
    ctx: &Ctx,
    jar: &Jar,
    vantage: &Url,
    label: &str,
    revoked_ms: u64,
) -> Result<AppPoll, Unobservable> {
    let window = Duration::from_secs(ctx.target.profile.window_s);
    let route = &ctx.target.paths.me;
    let mut attempt = 0;
    loop {
        let label = match attempt {
            0 => label.to_owned(),
            n => format!("{label} (resent {n} time(s) after a 429)"),
        };
        let req = Req::get(super::super::join(vantage, route), label).jar(jar);
        let observed = ctx.probe.send(req).await?;
        let seen = match observed.status {
            200..=299 => AppSeen::Accepted,
            401 | 403 => AppSeen::Refused,
            429 => AppSeen::Unclear,
            other => {
                return Err(Unobservable {
                    reason: format!(
                        "the app route GET {route} at {vantage} answered {other} (expected 2xx, 401, 403 or 429)"
                    ),
                    exchanges: vec![observed.exchange],
                });
            }
        };
        if seen != AppSeen::Unclear || attempt == APP_RESENDS {
            return Ok(AppPoll {
                sent_ms: observed.exchange.at_ms.saturating_sub(revoked_ms),
                seen,
                status: observed.status,
                exchange: observed.exchange,
            });
        }
        attempt += 1;
        let wait = observed
            .retry_after_s()
            .map_or(window, Duration::from_secs)
            .min(window);
        tokio::time::sleep(wait + Duration::from_millis(100)).await;
    }
}
