//! The measurement engine: metered requests as a caller, bursts with
//! requests in flight, spending a bucket until refused, waiting for its
//! window to turn over, and counting one whole window.

use std::time::{Duration, Instant};

use super::routes::RouteProbes;
use crate::checks::{Ctx, Finding, Unobservable, still_signed_in};
use crate::model::{Evidence, Exchange, Timeline, TimelinePoint};
use crate::probe::{Jar, Keep, Observed, Req};

/// How many exhaustions a bucket's probes get before they are given up.
pub(super) const PROBE_ATTEMPTS: usize = 3;

/// Requests of one burst in flight at once.
pub(super) const IN_FLIGHT: usize = 8;

/// Who spends a bucket.
#[derive(Clone)]
pub(super) struct Caller {
    pub(super) bucket: &'static str,
    pub(super) jar: Option<Jar>,
}

impl Caller {
    /// A signed-in caller's session must still be valid after its requests,
    /// or they went out as anonymous (see [`still_signed_in`]).
    pub(super) async fn still_signed_in(&self, ctx: &Ctx) -> Result<(), Unobservable> {
        match &self.jar {
            Some(jar) => still_signed_in(ctx, self.bucket, jar).await,
            None => Ok(()),
        }
    }
}

/// One metered request and what it answered.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub(super) status: u16,
    pub(super) sent: Instant,
    /// Milliseconds since the run started when it was sent.
    pub(super) at_ms: u64,
    /// When its answer arrived: the target counted it between `sent` and
    /// this.
    pub(super) received: Instant,
    pub(super) observed: Observed,
}

impl Hit {
    pub(super) fn allowed(&self) -> bool {
        (200..300).contains(&self.status)
    }
    pub(super) fn refused(&self) -> bool {
        self.status == 429
    }
    /// `Retry-After` as delay-seconds, when it is one.
    pub(super) fn retry_after_s(&self) -> Option<u64> {
        self.observed.retry_after_s()
    }
}

/// Everything one bucket's run recorded.
#[derive(Default)]
pub(super) struct BucketRun {
    pub(super) points: Vec<TimelinePoint>,
    pub(super) hits: Vec<Hit>,
    /// Where a window was seen to begin (milliseconds since the run
    /// started): an allowed request sent after a refusal had been answered.
    pub(super) window_starts_ms: Vec<u64>,
    /// When the earliest refusal since the last seen start was answered.
    pub(super) refused_since_start: Option<Instant>,
}

impl BucketRun {
    /// Records a hit (in the order they were sent). A request allowed after
    /// a refusal of the same bucket had been answered proves that a new
    /// window began in between, whatever the target's headers say.
    pub(super) fn record(&mut self, hit: &Hit) {
        self.points.push(TimelinePoint {
            at_ms: hit.at_ms,
            status: hit.status,
        });
        if hit.refused() {
            let earliest = self
                .refused_since_start
                .map_or(hit.received, |r| r.min(hit.received));
            self.refused_since_start = Some(earliest);
        } else if hit.allowed() && self.refused_since_start.is_some_and(|r| r <= hit.sent) {
            self.window_starts_ms.push(hit.at_ms);
            self.refused_since_start = None;
        }
        self.hits.push(hit.clone());
    }

    pub(super) fn refusals(&self) -> impl Iterator<Item = &Hit> {
        self.hits.iter().filter(|h| h.refused())
    }
}

pub(super) struct Suite<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) window: Duration,
    pub(super) tolerance: u64,
}

impl Suite<'_> {
    /// One metered request (`GET` the ping path) as `caller`, with extra
    /// headers; anything but 2xx or 429 means we cannot tell.
    pub(super) async fn hit(
        &self,
        run: &mut BucketRun,
        caller: &Caller,
        extra: &[(&str, String)],
        label: &str,
    ) -> Result<Hit, Unobservable> {
        let hit = self.send(caller, extra, label).await?;
        run.record(&hit);
        Ok(hit)
    }

    /// One metered request, not yet recorded.
    pub(super) async fn send(
        &self,
        caller: &Caller,
        extra: &[(&str, String)],
        label: &str,
    ) -> Result<Hit, Unobservable> {
        let mut req = Req::get(
            self.ctx.url(&self.ctx.target.paths.ping),
            format!("{}: {label}", caller.bucket),
        );
        if let Some(jar) = &caller.jar {
            req = req.jar(jar);
        }
        for (name, value) in extra {
            req = req.header(name, value.clone());
        }
        let hit = self.timed(req).await?;
        if !hit.allowed() && !hit.refused() {
            return Err(Unobservable {
                reason: format!(
                    "a metered request as {} answered {} (expected 2xx or 429)",
                    caller.bucket, hit.status
                ),
                exchanges: vec![hit.observed.exchange],
            });
        }
        Ok(hit)
    }

    /// Sends `req` and says when it left and when its answer came: the
    /// target counted it in between. Any answer is a hit, judged by its
    /// status and headers: only its record of the body is kept.
    pub(super) async fn timed(&self, req: Req) -> Result<Hit, Unobservable> {
        let sent = Instant::now();
        let at_ms = self.ctx.probe.now_ms();
        let observed = self.ctx.probe.send(req.keep(Keep::Record)).await?;
        Ok(Hit {
            status: observed.status,
            sent,
            at_ms,
            received: Instant::now(),
            observed,
        })
    }

    /// `n` requests with up to [`IN_FLIGHT`] at once (the rate cap still
    /// spaces them): a burst's length is then set by the cap, not by the
    /// target's latency. Returned in the order they were sent.
    pub(super) async fn burst(
        &self,
        run: &mut BucketRun,
        caller: &Caller,
        n: u64,
        label: &str,
    ) -> Result<Vec<Hit>, Unobservable> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let mut hits: Vec<Hit> = stream::iter(0..n)
            .map(|i| async move { self.send(caller, &[], &format!("{label} #{}", i + 1)).await })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        hits.sort_by_key(|h| h.sent);
        for hit in &hits {
            run.record(hit);
        }
        Ok(hits)
    }

    /// Spends until the first 429; `None` when `cap` requests were all allowed.
    pub(super) async fn exhaust(
        &self,
        run: &mut BucketRun,
        caller: &Caller,
        cap: u64,
    ) -> Result<Option<Hit>, Unobservable> {
        for i in 0..cap {
            let hit = self
                .hit(run, caller, &[], &format!("spend #{}", i + 1))
                .await?;
            if hit.refused() {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// How often a spent bucket is polled for its window's turnover.
    pub(super) fn poll(&self) -> Duration {
        (self.window / 30).max(Duration::from_millis(100))
    }

    /// Polls the bucket `refused` spent until it is allowed again, and
    /// returns the first allowed request, or `None` when none came within a
    /// window and a bit. The new window's start is measured, never read
    /// from the target: it began after the last refused request was sent.
    ///
    /// With `trust_retry_after`, the refusal's `Retry-After` only schedules
    /// the polls: they start at least 1 s and a poll before the moment it
    /// names (an honest Retry-After is rounded up to whole seconds, so the
    /// window ends in its last second) on a grid that lands on that moment,
    /// so an honest target is met no later than waiting it out would. The
    /// start is bracketed when a poll was refused before the allowed one (or
    /// the first poll went out within two polls of the refusal); a first
    /// poll already allowed means Retry-After overstated the wait, and the
    /// start lies anywhere since the refusal ([`Reset::bracketed`] false).
    /// Without it, polling starts one poll after the refusal.
    pub(super) async fn await_reset(
        &self,
        run: &mut BucketRun,
        caller: &Caller,
        refused: &Hit,
        trust_retry_after: bool,
    ) -> Result<Option<Reset>, Unobservable> {
        let give_up = refused.sent + self.window + Duration::from_secs(2);
        let poll = self.poll();
        let told = refused
            .retry_after_s()
            .filter(|_| trust_retry_after)
            .map(|s| refused.sent + Duration::from_secs(s).min(self.window));
        let mut next = match told {
            Some(at) => poll_start(at, refused.received, poll),
            None => refused.received + poll,
        };
        let mut last_refused = refused.clone();
        let mut refused_polls = 0u32;
        loop {
            tokio::time::sleep_until(next.into()).await;
            let hit = self.hit(run, caller, &[], "after the window").await?;
            if hit.allowed() {
                let width = hit.sent.saturating_duration_since(last_refused.sent);
                return Ok(Some(Reset {
                    began_after: last_refused.sent,
                    bracketed: refused_polls > 0 || width <= poll * 2,
                    last_refused,
                    first: hit,
                }));
            }
            refused_polls += 1;
            last_refused = hit;
            // On the grid while the target answers within a poll; right
            // away when it is slower.
            next = (next + poll).max(Instant::now());
            if next > give_up {
                return Ok(None);
            }
        }
    }

    /// Counts the allowed requests of the window the reset opened (its
    /// first request is #1): `limit + tolerance + 1` more requests, so that
    /// a correct target refuses at least one. The count is only valid if
    /// every answer arrived before the window could end: the window began
    /// after the last refusal was sent.
    pub(super) async fn count(
        &self,
        run: &mut BucketRun,
        caller: &Caller,
        reset: &Reset,
        limit: u64,
    ) -> Result<Count, Unobservable> {
        let hits = self
            .burst(run, caller, limit + self.tolerance + 1, "count")
            .await?;
        let allowed = 1 + hits.iter().filter(|h| h.allowed()).count() as u64;
        let last = hits
            .iter()
            .map(|h| h.received)
            .max()
            .unwrap_or(reset.first.received);
        Ok(Count {
            allowed,
            span: last.duration_since(reset.first.sent),
            within: last + self.margin() < reset.began_after + self.window,
            refusal: hits.into_iter().find(Hit::refused),
        })
    }

    /// Whether a probe was answered while its bucket was spent: before the
    /// spent window can end (`window_ends`, less the margin). Where no
    /// window end is known, see `probes::bracketed`.
    pub(super) fn answered_while_spent(&self, probe: &Hit, window_ends: Option<Instant>) -> bool {
        window_ends.is_some_and(|end| probe.received + self.margin() < end)
    }

    pub(super) fn margin(&self) -> Duration {
        (self.window / 20).max(Duration::from_millis(200))
    }
}

pub(super) struct Count {
    pub(super) allowed: u64,
    pub(super) span: Duration,
    pub(super) within: bool,
    pub(super) refusal: Option<Hit>,
}

/// A window turning over: the last refused request, and the first allowed
/// one after it.
pub(super) struct Reset {
    /// The earliest the new window can have begun: when the last refused
    /// request was sent.
    pub(super) began_after: Instant,
    /// Whether that refused request was a poll just before the allowed one
    /// (or went out within two polls of it), so that `began_after` is a
    /// close bound; when not, the window may have begun long before the
    /// first allowed request.
    pub(super) bracketed: bool,
    pub(super) last_refused: Hit,
    pub(super) first: Hit,
}

/// When to send the first poll for a window that `Retry-After` says ends at
/// `at`: 1 s and a poll before it or earlier, on a grid of `poll` that lands
/// on `at`, never before the refusal was answered (`answered`).
fn poll_start(at: Instant, answered: Instant, poll: Duration) -> Instant {
    let lead = Duration::from_secs(1) + poll;
    let steps = lead.as_nanos().div_ceil(poll.as_nanos().max(1));
    let room = at.saturating_duration_since(answered).as_nanos() / poll.as_nanos().max(1);
    let k = u32::try_from(steps.min(room)).unwrap_or(u32::MAX);
    at.checked_sub(poll.saturating_mul(k))
        .map_or(answered, |t| t.max(answered))
}

/// What the probes of one exhausted bucket found, per check id.
#[derive(Default)]
pub(super) struct Probes {
    pub(super) done: bool,
    pub(super) problems: Vec<String>,
    pub(super) evidence: Vec<Exchange>,
}

pub(super) type ResetSeen = Result<(Exchange, Exchange), (String, Exchange, Option<Exchange>)>;

/// What a tier's measurement gave the checks.
pub(super) struct TierOutcome {
    pub(super) tier: &'static str,
    pub(super) run: BucketRun,
    pub(super) limit: Option<u64>,
    /// The count check's finding.
    pub(super) count: Finding,
    /// Whether the exhausted bucket was allowed again after the window: the
    /// refusal and the allowed request, or why not with the refusal and the
    /// last request.
    pub(super) reset: Option<ResetSeen>,
    pub(super) claims: Probes,
    pub(super) spoofing: Probes,
    pub(super) per_identity: Probes,
    /// Every other metered route and vantage (see [`super::routes`]).
    pub(super) routes: RouteProbes,
    /// The earliest the counted window can end, when the count spent it:
    /// until then the bucket is known spent.
    pub(super) spent_until: Option<Instant>,
    pub(super) other_runs: Vec<BucketRun>,
}

pub(super) fn timeline(
    bucket: &str,
    limit: Option<u64>,
    window: Duration,
    run: &BucketRun,
) -> Evidence {
    Evidence::Timeline(Timeline {
        bucket: bucket.to_owned(),
        limit,
        window_s: window.as_secs(),
        points: run.points.clone(),
        window_starts_ms: run.window_starts_ms.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_start_a_second_and_a_poll_before_retry_after_on_a_grid_that_lands_on_it() {
        let answered = Instant::now();
        let poll = Duration::from_millis(100);
        let at = answered + Duration::from_secs(5);
        let start = poll_start(at, answered, poll);
        let lead = at - start;
        assert!(lead >= Duration::from_millis(1100), "{lead:?}");
        assert!(lead < Duration::from_millis(1200), "{lead:?}");
        assert_eq!(lead.as_millis() % 100, 0, "{lead:?}");
        // A poll longer than a second still lands on the moment named.
        let slow = Duration::from_secs(2);
        let lead = at - poll_start(at, answered, slow);
        assert_eq!(lead, Duration::from_secs(4));
        // Never before the refusal was answered, still on the grid.
        let soon = answered + Duration::from_millis(450);
        let start = poll_start(soon, answered, poll);
        assert!(start >= answered);
        assert_eq!((soon - start).as_millis(), 400);
        // A moment already past: poll right away.
        assert_eq!(poll_start(answered, answered, poll), answered);
    }
}
