//! The ratelimit suite: exact per-tier limits in one fixed window, admin not
//! throttled, well-formed 429s, tiers never taken from the client, the
//! anonymous bucket not keyed on client headers, one bucket per identity,
//! and buckets that reset.
//!
//! Windows do not start when the harness does: each bucket is first spent
//! until refused, the harness waits for the reset (`Retry-After`, then
//! polling), and the request allowed after it starts the counted window.
//! Probes that need an exhausted bucket (claimed tiers, spoofed addresses,
//! the other user) run after the count, while the bucket is spent; each is
//! bracketed: the plain request after it must still be refused, or the
//! window turned over during the probe and it is repeated after spending
//! the new window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::sync::{OwnedRwLockWriteGuard, RwLock, watch};

use super::{Ctx, Finding, Unobservable, sign_in, still_signed_in};
use crate::model::{CheckResult, Evidence, Exchange, Timeline, TimelinePoint};
use crate::probe::{Jar, Observed, Req};

pub const IDS: [&str; 9] = [
    "ratelimit.anonymous",
    "ratelimit.free",
    "ratelimit.pro",
    "ratelimit.admin-unlimited",
    "ratelimit.retry-after",
    "ratelimit.tier-not-from-client",
    "ratelimit.key-not-spoofable",
    "ratelimit.per-identity",
    "ratelimit.window-resets",
];

/// The rate-limit buckets a run spends: the anonymous bucket of this
/// machine's address, and one per account.
pub const BUCKETS: [&str; 5] = ["anonymous", "free", "free2", "pro", "admin"];

/// Locks over the buckets. Checks that spend a few requests of a bucket
/// hold it shared; the ratelimit suite holds each bucket it measures
/// exclusively, so no check starves another or sees a bucket another one
/// exhausted.
#[derive(Debug, Clone)]
pub struct Buckets {
    locks: Arc<std::collections::BTreeMap<&'static str, Arc<RwLock<()>>>>,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            locks: Arc::new(
                BUCKETS
                    .iter()
                    .map(|b| (*b, Arc::new(RwLock::new(()))))
                    .collect(),
            ),
        }
    }
}

/// Held while a check spends a bucket.
pub type Lease = Vec<tokio::sync::OwnedRwLockReadGuard<()>>;

impl Buckets {
    fn lock(&self, bucket: &str) -> Arc<RwLock<()>> {
        self.locks
            .get(bucket)
            .cloned()
            .unwrap_or_else(|| Arc::new(RwLock::new(())))
    }

    /// A shared lease: taken before the exclusive ones are asked for, it
    /// makes the ratelimit suite wait until the holder is done.
    pub fn try_share(&self, buckets: &[&str]) -> Lease {
        buckets
            .iter()
            .filter_map(|b| self.lock(b).try_read_owned().ok())
            .collect()
    }

    async fn exclusive(&self, buckets: &[&str]) -> Vec<OwnedRwLockWriteGuard<()>> {
        let mut guards = Vec::new();
        for b in buckets {
            guards.push(self.lock(b).write_owned().await);
        }
        guards
    }
}

/// How many exhaustions a bucket's probes get before they are given up.
const PROBE_ATTEMPTS: usize = 3;

/// Requests of one burst in flight at once.
const IN_FLIGHT: usize = 8;

/// Claims of a higher tier a client can make.
fn tier_claims() -> Vec<(&'static str, &'static str, String)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(br#"{"sub":"flareproof","tier":"admin"}"#)
    );
    vec![
        (
            "an X-User-Tier: admin header",
            "x-user-tier",
            "admin".to_owned(),
        ),
        (
            "an X-User-Tier: pro header",
            "x-user-tier",
            "pro".to_owned(),
        ),
        (
            "an unsigned JWT with tier admin",
            "authorization",
            format!("Bearer {jwt}"),
        ),
    ]
}

/// Client headers that must not choose the anonymous bucket.
fn spoofed_addresses() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "X-Forwarded-For: 198.51.100.7",
            "x-forwarded-for",
            "198.51.100.7".to_owned(),
        ),
        (
            "X-Forwarded-For: 203.0.113.9",
            "x-forwarded-for",
            "203.0.113.9".to_owned(),
        ),
        (
            "X-Real-IP: 198.51.100.23",
            "x-real-ip",
            "198.51.100.23".to_owned(),
        ),
        (
            "True-Client-IP: 203.0.113.41",
            "true-client-ip",
            "203.0.113.41".to_owned(),
        ),
    ]
}

/// Who spends a bucket.
#[derive(Clone)]
struct Caller {
    bucket: &'static str,
    jar: Option<Jar>,
}

impl Caller {
    /// A signed-in caller's session must still be valid after its requests,
    /// or they went out as anonymous (see [`still_signed_in`]).
    async fn still_signed_in(&self, ctx: &Ctx) -> Result<(), Unobservable> {
        match &self.jar {
            Some(jar) => still_signed_in(ctx, self.bucket, jar).await,
            None => Ok(()),
        }
    }
}

/// One metered request and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    status: u16,
    sent: Instant,
    /// Milliseconds since the run started when it was sent.
    at_ms: u64,
    /// When its answer arrived: the target counted it between `sent` and
    /// this.
    received: Instant,
    observed: Observed,
}

impl Hit {
    fn allowed(&self) -> bool {
        (200..300).contains(&self.status)
    }
    fn refused(&self) -> bool {
        self.status == 429
    }
    /// `Retry-After` as delay-seconds, when it is one.
    fn retry_after_s(&self) -> Option<u64> {
        self.observed.retry_after_s()
    }
}

/// Everything one bucket's run recorded.
#[derive(Default)]
struct BucketRun {
    points: Vec<TimelinePoint>,
    hits: Vec<Hit>,
    /// Where a window was seen to begin (milliseconds since the run
    /// started): an allowed request sent after a refusal had been answered.
    window_starts_ms: Vec<u64>,
    /// When the earliest refusal since the last seen start was answered.
    refused_since_start: Option<Instant>,
}

impl BucketRun {
    /// Records a hit (in the order they were sent). A request allowed after
    /// a refusal of the same bucket had been answered proves that a new
    /// window began in between, whatever the target's headers say.
    fn record(&mut self, hit: &Hit) {
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

    fn refusals(&self) -> impl Iterator<Item = &Hit> {
        self.hits.iter().filter(|h| h.refused())
    }
}

struct Suite<'a> {
    ctx: &'a Ctx,
    window: Duration,
    tolerance: u64,
}

impl Suite<'_> {
    /// One metered request (`GET` the ping path) as `caller`, with extra
    /// headers; anything but 2xx or 429 means we cannot tell.
    async fn hit(
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
    async fn send(
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
        let sent = Instant::now();
        let at_ms = self.ctx.probe.now_ms();
        let observed = self.ctx.probe.send(req).await?;
        if !(200..300).contains(&observed.status) && observed.status != 429 {
            return Err(Unobservable {
                reason: format!(
                    "a metered request as {} answered {} (expected 2xx or 429)",
                    caller.bucket, observed.status
                ),
                exchanges: vec![observed.exchange],
            });
        }
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
    async fn burst(
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
    async fn exhaust(
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

    /// Waits out the window of `refused` and returns the first allowed
    /// request after it, or `None` when none came within a window and a bit.
    async fn await_reset(
        &self,
        run: &mut BucketRun,
        caller: &Caller,
        refused: &Hit,
    ) -> Result<Option<Reset>, Unobservable> {
        let give_up = refused.sent + self.window + Duration::from_secs(2);
        let poll = (self.window / 30).max(Duration::from_millis(100));
        let first_try = match refused.retry_after_s() {
            Some(s) => refused.sent + Duration::from_secs(s).min(self.window),
            None => refused.sent + poll,
        };
        let mut last_refused = refused.clone();
        tokio::time::sleep_until(first_try.into()).await;
        loop {
            let hit = self.hit(run, caller, &[], "after the window").await?;
            if hit.allowed() {
                // The new window began after the last refusal reached the
                // target, and - if its Retry-After is honest - no earlier
                // than Retry-After - 1 s after it was sent; a Retry-After
                // that would put the start after the allowed answer is not.
                let told = last_refused
                    .retry_after_s()
                    .map(|s| last_refused.sent + Duration::from_secs(s.saturating_sub(1)));
                let began_after = match told {
                    Some(t) if t <= hit.received => t,
                    _ => last_refused.sent,
                };
                return Ok(Some(Reset {
                    began_after,
                    last_refused,
                    first: hit,
                }));
            }
            last_refused = hit;
            if Instant::now() + poll > give_up {
                return Ok(None);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Counts the allowed requests of the window the reset opened (its
    /// first request is #1): `limit + tolerance + 1` more requests, so that
    /// a correct target refuses at least one. The count is only valid if
    /// every answer arrived before the window could end: the window began
    /// after the last refusal was sent.
    async fn count(
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

    fn margin(&self) -> Duration {
        (self.window / 20).max(Duration::from_millis(200))
    }
}

struct Count {
    allowed: u64,
    span: Duration,
    within: bool,
    refusal: Option<Hit>,
}

/// A window turning over: the last refused request, and the first allowed
/// one after it.
struct Reset {
    /// The earliest the new window can have begun.
    began_after: Instant,
    last_refused: Hit,
    first: Hit,
}

/// What the probes of one exhausted bucket found, per check id.
#[derive(Default)]
struct Probes {
    done: bool,
    problems: Vec<String>,
    evidence: Vec<Exchange>,
}

pub async fn run(ctx: &Ctx, selected: &[&str], buckets: &Buckets) -> Vec<CheckResult> {
    let started = Instant::now();
    let findings = observe(ctx, selected, buckets).await;
    let ms = started.elapsed().as_millis() as u64;
    selected
        .iter()
        .map(|id| {
            let finding = findings
                .iter()
                .find(|(done, _)| done == id)
                .map(|(_, f)| f.clone())
                .unwrap_or_else(|| Finding::error("the check did not run"));
            ctx.conclude(id, finding, ms)
        })
        .collect()
}

type ResetSeen = Result<(Exchange, Exchange), (String, Exchange, Option<Exchange>)>;

/// What a tier's measurement gave the checks.
struct TierOutcome {
    tier: &'static str,
    run: BucketRun,
    limit: Option<u64>,
    /// The count check's finding.
    count: Finding,
    /// Whether the exhausted bucket was allowed again after the window: the
    /// refusal and the allowed request, or why not with the refusal and the
    /// last request.
    reset: Option<ResetSeen>,
    claims: Probes,
    spoofing: Probes,
    per_identity: Probes,
    other_runs: Vec<BucketRun>,
}

async fn observe(ctx: &Ctx, selected: &[&str], buckets: &Buckets) -> Vec<(&'static str, Finding)> {
    let suite = Suite {
        ctx,
        window: Duration::from_secs(ctx.target.profile.window_s),
        tolerance: ctx.plan.params.ratelimit_tolerance,
    };
    let limits = &ctx.target.profile.limits;
    let wants = |id: &str| selected.contains(&id);
    // The admin burst starts at the first reset any bucket shows, so that it
    // lies inside one window wherever windows are aligned.
    let (aligned_tx, aligned_rx) = watch::channel::<Option<Instant>>(None);
    let tiers = [
        ("anonymous", limits.anonymous.count(), "ratelimit.anonymous"),
        ("free", limits.free.count(), "ratelimit.free"),
        ("pro", limits.pro.count(), "ratelimit.pro"),
    ];
    let needs_tier = |tier: &str, id: &str| {
        wants(id)
            || wants("ratelimit.retry-after")
            || wants("ratelimit.window-resets")
            || (tier == "free"
                && (wants("ratelimit.tier-not-from-client") || wants("ratelimit.per-identity")))
            || (tier == "anonymous"
                && (wants("ratelimit.tier-not-from-client")
                    || wants("ratelimit.key-not-spoofable")))
    };
    let measured: Vec<_> = tiers
        .iter()
        .filter(|(tier, _, id)| needs_tier(tier, id))
        .map(|&(tier, limit, _)| measure_tier(&suite, buckets, tier, limit, &aligned_tx))
        .collect();
    let any_measured = !measured.is_empty();
    let admin = async {
        if !wants("ratelimit.admin-unlimited") {
            return None;
        }
        // Signed in before the wait, so that the burst starts as soon as a
        // window turns over and its sign-in does not eat into that window.
        let lease = buckets.exclusive(&["admin"]).await;
        let me = match caller(ctx, "admin").await {
            Ok(me) => me,
            Err(u) => return Some(Err(u)),
        };
        let mut aligned = None;
        if any_measured {
            let mut rx = aligned_rx.clone();
            let give_up = Instant::now() + suite.window * 2 + Duration::from_secs(3);
            if let Ok(Ok(at)) =
                tokio::time::timeout_at(give_up.into(), rx.wait_for(Option::is_some)).await
            {
                aligned = *at;
            }
        }
        let finding = admin_burst(&suite, &me, aligned).await;
        drop(lease);
        Some(finding)
    };
    let (outcomes, admin) = tokio::join!(futures_util::future::join_all(measured), admin);
    drop(aligned_tx);

    let mut findings: Vec<(&'static str, Finding)> = Vec::new();
    let mut outcomes_ok = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(o) => outcomes_ok.push(o),
            Err(u) => {
                let (tier, _, id) = tiers
                    .iter()
                    .filter(|(t, _, id)| needs_tier(t, id))
                    .nth(i)
                    .copied()
                    .expect("a tier per outcome");
                findings.push((id, u.finding()));
                let _ = tier;
            }
        }
    }
    for o in &outcomes_ok {
        let id = tiers
            .iter()
            .find(|(t, _, _)| *t == o.tier)
            .expect("known tier")
            .2;
        if wants(id) {
            findings.push((id, o.count.clone()));
        }
    }
    if let Some(admin) = admin {
        findings.push((
            "ratelimit.admin-unlimited",
            admin.unwrap_or_else(|u| u.finding()),
        ));
    }
    let tier = |name: &str| outcomes_ok.iter().find(|o| o.tier == name);
    let timelines = |o: &TierOutcome| -> Vec<Evidence> {
        std::iter::once(timeline(o.tier, o.limit, suite.window, &o.run))
            .chain(
                o.other_runs
                    .iter()
                    .map(|r| timeline("free2", o.limit, suite.window, r)),
            )
            .collect()
    };
    if wants("ratelimit.retry-after") {
        findings.push((
            "ratelimit.retry-after",
            retry_after_finding(&suite, &outcomes_ok),
        ));
    }
    if wants("ratelimit.window-resets") {
        let observed: Vec<&TierOutcome> =
            outcomes_ok.iter().filter(|o| o.reset.is_some()).collect();
        let broken: Vec<String> = observed
            .iter()
            .filter_map(|o| match &o.reset {
                Some(Err((why, _, _))) => Some(format!("{}: {why}", o.tier)),
                _ => None,
            })
            .collect();
        let finding = if observed.is_empty() {
            Finding::error("no bucket was ever exhausted, so no reset could be observed")
        } else if broken.is_empty() {
            let tiers: Vec<&str> = observed.iter().map(|o| o.tier).collect();
            Finding::pass(format!(
                "the exhausted buckets ({}) were allowed again after the window",
                tiers.join(", ")
            ))
        } else {
            Finding::fail(format!(
                "an exhausted bucket was not allowed again within the window and 2 s: {}",
                broken.join("; ")
            ))
        };
        let mut finding = finding;
        for o in &observed {
            match &o.reset {
                Some(Ok((refused, allowed))) => {
                    finding = finding.with_exchange(refused).with_exchange(allowed);
                }
                Some(Err((_, refused, last))) => {
                    finding = finding.with_exchange(refused).with_exchanges(last);
                    finding = finding.with(timeline(o.tier, o.limit, suite.window, &o.run));
                }
                None => {}
            }
        }
        findings.push(("ratelimit.window-resets", finding));
    }
    let probe_finding = |probes: Option<&Probes>, pass: &str, evidence: Vec<Evidence>| -> Finding {
        let Some(p) = probes else {
            return Finding::error("the bucket this check needs could not be measured");
        };
        let finding = if !p.done {
            Finding::error(
                "the bucket was never seen exhausted long enough to probe it (the window turned over during every attempt, or it was never refused)",
            )
        } else if p.problems.is_empty() {
            Finding::pass(pass)
        } else {
            Finding::fail(p.problems.join("; "))
        };
        let mut finding = finding.with_exchanges(&p.evidence);
        finding.evidence.extend(evidence);
        finding
    };
    if wants("ratelimit.tier-not-from-client") {
        let merged = merge_probes([
            tier("free").map(|o| &o.claims),
            tier("anonymous").map(|o| &o.claims),
        ]);
        findings.push((
            "ratelimit.tier-not-from-client",
            probe_finding(merged.as_ref(), "with the bucket exhausted, no claimed tier (header, unsigned JWT) earned another request", Vec::new()),
        ));
    }
    if wants("ratelimit.key-not-spoofable") {
        let o = tier("anonymous");
        findings.push((
            "ratelimit.key-not-spoofable",
            probe_finding(o.map(|o| &o.spoofing), "with the anonymous bucket exhausted, spoofed client-address headers earned no request", o.map(timelines).unwrap_or_default()),
        ));
    }
    if wants("ratelimit.per-identity") {
        let o = tier("free");
        findings.push((
            "ratelimit.per-identity",
            probe_finding(
                o.map(|o| &o.per_identity),
                "with free's bucket exhausted, free2 was still allowed",
                o.map(timelines).unwrap_or_default(),
            ),
        ));
    }
    findings
}

fn merge_probes(all: [Option<&Probes>; 2]) -> Option<Probes> {
    let present: Vec<&Probes> = all.into_iter().flatten().collect();
    if present.is_empty() {
        return None;
    }
    Some(Probes {
        done: present.iter().all(|p| p.done),
        problems: present.iter().flat_map(|p| p.problems.clone()).collect(),
        evidence: present.iter().flat_map(|p| p.evidence.clone()).collect(),
    })
}

fn timeline(bucket: &str, limit: Option<u64>, window: Duration, run: &BucketRun) -> Evidence {
    Evidence::Timeline(Timeline {
        bucket: bucket.to_owned(),
        limit,
        window_s: window.as_secs(),
        points: run.points.clone(),
        window_starts_ms: run.window_starts_ms.clone(),
    })
}

async fn caller(ctx: &Ctx, bucket: &'static str) -> Result<Caller, Unobservable> {
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
async fn measure_tier(
    suite: &Suite<'_>,
    buckets: &Buckets,
    tier: &'static str,
    limit: Option<u64>,
    aligned: &watch::Sender<Option<Instant>>,
) -> Result<TierOutcome, Unobservable> {
    let ctx = suite.ctx;
    let mut lease_names = vec![tier];
    if tier == "free" {
        lease_names.push("free2");
    }
    let _lease = buckets.exclusive(&lease_names).await;
    let me = caller(ctx, tier).await?;
    let other = if tier == "free" {
        Some(caller(ctx, "free2").await?)
    } else {
        None
    };
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
        other_runs: Vec::new(),
    };
    let Some(limit_n) = limit else {
        outcome.count = Finding::skip(format!("the config declares the {tier} tier unlimited"));
        return Ok(outcome);
    };
    let cap = limit_n * 2 + 10;
    let exhaust_started = Instant::now();
    let Some(refused) = suite.exhaust(&mut run, &me, cap).await? else {
        let span = exhaust_started.elapsed();
        outcome.count = if span < suite.window {
            Finding::fail(format!(
                "{cap} requests within {} ms were all allowed; the {tier} limit is {limit_n} per {} s",
                span.as_millis(),
                suite.window.as_secs()
            ))
        } else {
            Finding::error(format!(
                "{cap} requests were all allowed, but they took {} ms, longer than a window",
                span.as_millis()
            ))
        };
        outcome.count = outcome
            .count
            .with(timeline(tier, limit, suite.window, &run));
        outcome.run = run;
        return Ok(outcome);
    };
    match suite.await_reset(&mut run, &me, &refused).await? {
        None => {
            let last = run.hits.last().map(|h| h.observed.exchange.clone());
            outcome.reset = Some(Err((
                format!(
                    "still refused {} s after the 429",
                    (suite.window + Duration::from_secs(2)).as_secs()
                ),
                refused.observed.exchange.clone(),
                last,
            )));
            outcome.count =
                Finding::error("the bucket never reset, so a whole window could not be counted")
                    .with_exchange(&refused.observed.exchange)
                    .with(timeline(tier, limit, suite.window, &run));
        }
        Some(reset) => {
            aligned.send_if_modified(|at| {
                at.get_or_insert(reset.began_after);
                true
            });
            outcome.reset = Some(Ok((
                reset.last_refused.observed.exchange.clone(),
                reset.first.observed.exchange.clone(),
            )));
            let count = suite.count(&mut run, &me, &reset, limit_n).await?;
            outcome.count = count_finding(suite, tier, limit_n, &reset, &count).with(timeline(
                tier,
                limit,
                suite.window,
                &run,
            ));
        }
    }
    // Probe while the bucket is spent: after the count, so that the first
    // reset is the one counted (or, when it never reset, right away).
    probe_until_done(
        suite,
        &mut run,
        &mut other_run,
        &me,
        other.as_ref(),
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

/// The verdict of one counted window.
fn count_finding(
    suite: &Suite<'_>,
    tier: &str,
    limit: u64,
    reset: &Reset,
    count: &Count,
) -> Finding {
    let tolerance = suite.tolerance;
    let finding = if !count.within {
        Finding::error(format!(
            "counting took {} ms and may have run past the {} s window, so the count proves nothing (raise budget.max_rps or check the target's latency)",
            count.span.as_millis(),
            suite.window.as_secs()
        ))
    } else if count.refusal.is_none() {
        Finding::fail(format!(
            "{} requests in one window were all allowed; the {tier} limit is {limit}",
            count.allowed
        ))
    } else if count.allowed.abs_diff(limit) <= tolerance {
        Finding::pass(format!(
            "exactly {} requests allowed in one window (limit {limit}, tolerance {tolerance})",
            count.allowed
        ))
    } else {
        Finding::fail(format!(
            "{} requests allowed in one window; the {tier} limit is {limit} (tolerance {tolerance})",
            count.allowed
        ))
    };
    let finding = finding.with_exchange(&reset.first.observed.exchange);
    match &count.refusal {
        Some(refusal) => finding.with_exchange(&refusal.observed.exchange),
        None => finding,
    }
}

fn needs_probing(o: &TierOutcome) -> bool {
    match o.tier {
        "anonymous" => !o.claims.done || !o.spoofing.done,
        "free" => !o.claims.done || !o.per_identity.done,
        _ => false,
    }
}

/// Runs the probes, spending the bucket before each attempt; a probe that
/// the window's turnover made inconclusive is repeated.
async fn probe_until_done(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    other_run: &mut BucketRun,
    me: &Caller,
    other: Option<&Caller>,
    outcome: &mut TierOutcome,
    cap: u64,
) -> Result<(), Unobservable> {
    for _ in 0..PROBE_ATTEMPTS {
        if !needs_probing(outcome) || suite.exhaust(run, me, cap).await?.is_none() {
            break;
        }
        probe_exhausted(suite, run, other_run, me, other, outcome).await?;
    }
    Ok(())
}

/// The probes an exhausted bucket allows, each bracketed by a plain
/// request that must still be refused.
async fn probe_exhausted(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    other_run: &mut BucketRun,
    me: &Caller,
    other: Option<&Caller>,
    outcome: &mut TierOutcome,
) -> Result<(), Unobservable> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Claims,
        Spoofing,
        PerIdentity,
    }
    /// What is probed, how it reads, who sends it, with which header.
    type Job<'c> = (Kind, String, &'c Caller, Option<(&'static str, String)>);
    let mut jobs: Vec<Job> = Vec::new();
    if matches!(me.bucket, "anonymous" | "free") && !outcome.claims.done {
        for (what, name, value) in tier_claims() {
            jobs.push((Kind::Claims, what.to_owned(), me, Some((name, value))));
        }
    }
    if me.bucket == "anonymous" && !outcome.spoofing.done {
        for (what, name, value) in spoofed_addresses() {
            jobs.push((Kind::Spoofing, what.to_owned(), me, Some((name, value))));
        }
    }
    if let Some(other) = other
        && !outcome.per_identity.done
    {
        jobs.push((
            Kind::PerIdentity,
            format!("{} while {} is exhausted", other.bucket, me.bucket),
            other,
            None,
        ));
    }
    // Each probe is followed by a plain request as `me` that must still be
    // refused; probes run side by side, so the window has little time to
    // turn over under them.
    let brackets = futures_util::future::join_all(jobs.iter().map(
        |(_, what, probe_caller, header)| async move {
            let extra: Vec<(&str, String)> = header.iter().cloned().collect();
            let probe = suite
                .send(probe_caller, &extra, &format!("while exhausted: {what}"))
                .await?;
            let control = suite
                .send(me, &[], &format!("control after {what}"))
                .await?;
            Ok::<_, Unobservable>((probe, control))
        },
    ))
    .await;
    let mut found: Vec<(Kind, Probes)> = [Kind::Claims, Kind::Spoofing, Kind::PerIdentity]
        .into_iter()
        .map(|k| {
            (
                k,
                Probes {
                    done: true,
                    ..Probes::default()
                },
            )
        })
        .collect();
    for ((kind, what, probe_caller, _), bracket) in jobs.iter().zip(brackets) {
        let (probe, control) = bracket?;
        if probe_caller.bucket == me.bucket {
            run.record(&probe);
        } else {
            other_run.record(&probe);
        }
        run.record(&control);
        let p = &mut found
            .iter_mut()
            .find(|(k, _)| k == kind)
            .expect("a probe set per kind")
            .1;
        if !control.refused() {
            p.done = false;
        } else if kind == &Kind::PerIdentity {
            if !probe.allowed() {
                p.problems.push(format!(
                    "{what}: refused ({}) though only {} had spent its bucket",
                    probe.status, me.bucket
                ));
            }
            p.evidence
                .extend([probe.observed.exchange, control.observed.exchange]);
        } else if probe.allowed() {
            p.problems.push(format!(
                "the exhausted {} bucket allowed a request with {what}",
                me.bucket
            ));
            p.evidence
                .extend([probe.observed.exchange, control.observed.exchange]);
        } else if p.evidence.len() < 4 {
            p.evidence.push(probe.observed.exchange);
        }
    }
    for (kind, p) in found {
        if !p.done || !jobs.iter().any(|(k, ..)| *k == kind) {
            continue;
        }
        match kind {
            Kind::Claims => outcome.claims = p,
            Kind::Spoofing => outcome.spoofing = p,
            Kind::PerIdentity => outcome.per_identity = p,
        }
    }
    Ok(())
}

/// Admin sends `admin_factor` x the pro limit inside one window: no 429.
/// The burst starts right after another bucket saw its window turn over
/// (`aligned`: when that window began at the earliest) and must be answered
/// before that window can end. Without alignment the window's phase is
/// unknown, so twice as many are sent within a window's length of their
/// start: they touch at most two windows, so one of those took at least
/// half of them.
async fn admin_burst(
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

fn retry_after_finding(suite: &Suite<'_>, outcomes: &[TierOutcome]) -> Finding {
    let window_s = suite.window.as_secs();
    let mut problems = Vec::new();
    let mut seen = 0;
    let mut shown: Vec<&Exchange> = Vec::new();
    for o in outcomes {
        for hit in o
            .run
            .refusals()
            .chain(o.other_runs.iter().flat_map(|r| r.refusals()))
        {
            seen += 1;
            let mut bad = Vec::new();
            match hit.observed.header("retry-after") {
                None => bad.push("no Retry-After".to_owned()),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(s) if s <= window_s + 1 => {}
                    Ok(s) => bad.push(format!("Retry-After: {s} exceeds the {window_s} s window")),
                    Err(_) => bad.push(format!("Retry-After: {v:?} is not delay-seconds")),
                },
            }
            for (name, kind) in [
                ("ratelimit-policy", FieldKind::Policy),
                ("ratelimit", FieldKind::Limit),
            ] {
                for value in hit.observed.header_values(name) {
                    if let Err(why) = check_ratelimit_field(value, kind) {
                        bad.push(format!("{name}: {value:?} {why}"));
                    }
                }
            }
            if !bad.is_empty() {
                if shown.len() < 3 {
                    shown.push(&hit.observed.exchange);
                }
                problems.push(format!("{} 429: {}", o.tier, bad.join(", ")));
            }
        }
    }
    problems.dedup();
    if seen == 0 {
        return Finding::error("no 429 was observed, so its headers could not be judged");
    }
    let finding = if problems.is_empty() {
        Finding::pass(format!(
            "all {seen} 429 answers carried a valid Retry-After and well-formed RateLimit fields"
        ))
    } else {
        Finding::fail(problems.into_iter().take(5).collect::<Vec<_>>().join("; "))
    };
    if shown.is_empty()
        && let Some(first) = outcomes.iter().flat_map(|o| o.run.refusals()).next()
    {
        shown.push(&first.observed.exchange);
    }
    finding.with_exchanges(shown)
}

#[derive(Debug, Clone, Copy)]
enum FieldKind {
    /// `RateLimit-Policy`: items with `q` (required) and `w`.
    Policy,
    /// `RateLimit`: items with `r` (required) and `t`.
    Limit,
}

/// Checks a `RateLimit` / `RateLimit-Policy` value against the structured
/// field syntax of draft-ietf-httpapi-ratelimit-headers: a list of items
/// (string or token), each with integer parameters.
fn check_ratelimit_field(value: &str, kind: FieldKind) -> Result<(), String> {
    let (required, optional) = match kind {
        FieldKind::Policy => ("q", "w"),
        FieldKind::Limit => ("r", "t"),
    };
    for member in value.split(',') {
        let member = member.trim();
        let mut parts = member.split(';');
        let item = parts.next().unwrap_or("").trim();
        let bare_item_ok = (item.len() >= 2
            && item.starts_with('"')
            && item.ends_with('"')
            && !item[1..item.len() - 1].contains('"'))
            || (!item.is_empty()
                && item
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '*')
                && item
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(c)));
        if !bare_item_ok {
            return Err(format!(
                "has an item `{item}` that is neither a string nor a token"
            ));
        }
        let mut has_required = false;
        for param in parts {
            let (key, val) = param.trim().split_once('=').unwrap_or((param.trim(), "?1"));
            let key = key.trim();
            if key == required || key == optional {
                if val.trim().parse::<u64>().is_err() {
                    return Err(format!("has `{key}={val}`, not a non-negative integer"));
                }
                if key == "w" && val.trim() == "0" {
                    return Err("has `w=0`".to_owned());
                }
                has_required |= key == required;
            } else if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c))
            {
                return Err(format!("has a malformed parameter `{key}`"));
            }
        }
        if !has_required {
            return Err(format!("has an item without `{required}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratelimit_fields_follow_the_draft_syntax() {
        assert!(check_ratelimit_field(r#""free";q=60;w=60"#, FieldKind::Policy).is_ok());
        assert!(check_ratelimit_field(r#""free";r=0;t=12"#, FieldKind::Limit).is_ok());
        assert!(
            check_ratelimit_field(r#"default;q=10, "burst";q=100;w=1"#, FieldKind::Policy).is_ok()
        );
        assert!(check_ratelimit_field("60", FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";q=-1"#, FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";w=60"#, FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";q=1;w=0"#, FieldKind::Policy).is_err());
        assert!(check_ratelimit_field(r#""free";r=soon"#, FieldKind::Limit).is_err());
    }
}
