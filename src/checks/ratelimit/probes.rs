//! The probes an exhausted bucket allows: claimed tiers, spoofed client
//! addresses, the other identity (allowed) and a second session of the same
//! user (refused: the bucket is the user's, not the session's), first
//! inside the counted window (whose end is measured), else each bracketed
//! by a plain request that must still be refused (see [`bracketed`]).

use std::future::Future;

use super::engine::{BucketRun, Caller, Hit, PROBE_ATTEMPTS, Probes, Suite, TierOutcome};
use super::payloads::{spoofed_addresses, tier_claims};
use super::routes::{self, Controls};
use crate::checks::{Unobservable, sign_in};
use crate::probe::Jar;

/// Whether the probes of the bucket still need an exhausted bucket: its
/// own (claims, spoofing, per identity) or the other metered routes'.
fn needs_probing(o: &TierOutcome) -> bool {
    let own = match o.tier {
        "anonymous" => !o.claims.done || !o.spoofing.done,
        "free" => !o.claims.done || !o.per_identity.done,
        _ => false,
    };
    own || (o.routes.judged > 0 && !o.routes.probes.done)
}

/// Records a probe in the run of the bucket it spends: `me`'s, or the other
/// identity's. A second session allowed while the first is exhausted is not
/// the bucket's window turning over: left out of its timeline.
fn record_probe(
    run: &mut BucketRun,
    other_run: &mut BucketRun,
    me: &Caller,
    sender: &Caller,
    probe: &Hit,
) {
    if sender.bucket != me.bucket {
        other_run.record(probe);
    } else if std::ptr::eq(sender, me) || !probe.allowed() {
        run.record(probe);
    }
}

/// One probe sent where no window end is known, bracketed: the probe, then
/// at once a plain request as `me` that must still be refused. Nothing else
/// spends `me`'s bucket between the two (the probes of a batch go one pair
/// after another, never side by side), so when a window turned over before
/// the probe, the probe took at most one of the new window's requests and,
/// with a limit of 2 or more, the bracket is allowed: the pair proves
/// nothing, the bucket is spent again and the pair resent, at most
/// [`PROBE_ATTEMPTS`] times. With a limit of 1 a bracket proves nothing
/// (a probe allowed by a new window leaves it refused too). Returns the
/// last pair, both recorded (see [`record_probe`]), and whether it is
/// conclusive.
#[allow(clippy::too_many_arguments)]
pub(super) async fn bracketed<F, Fut>(
    suite: &Suite<'_>,
    (run, other_run): (&mut BucketRun, &mut BucketRun),
    me: &Caller,
    sender: &Caller,
    what: &str,
    (limit, cap): (Option<u64>, u64),
    probe: F,
) -> Result<(Hit, Hit, bool), Unobservable>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Hit, Unobservable>>,
{
    let proves = limit.is_some_and(|l| l >= 2);
    let mut attempt = 1;
    loop {
        let hit = probe().await?;
        record_probe(run, other_run, me, sender, &hit);
        let bracket = suite
            .hit(run, me, &[], &format!("control after {what}"))
            .await?;
        let conclusive = proves && bracket.refused();
        if conclusive || !proves || attempt >= PROBE_ATTEMPTS {
            return Ok((hit, bracket, conclusive));
        }
        // The window turned over: spend it again before the next pair.
        if suite.exhaust(run, me, cap).await?.is_none() {
            return Ok((hit, bracket, false));
        }
        attempt += 1;
    }
}

/// Runs the probes, spending the bucket before each attempt; a probe that
/// the window's turnover made inconclusive is repeated. Where there is
/// another identity to probe (free's bucket), `again`, a second session of
/// `me`'s user (signed in before the bucket was spent, see
/// [`second_session`]), is probed too: it must find the bucket exhausted.
///
/// The other metered routes (`controls`) are probed inside the counted
/// window when the count spent it; when they could not be (the count ran
/// past its window, or the window ended under them), they are probed here,
/// bracketed, after a later exhaustion.
#[allow(clippy::too_many_arguments)]
pub(super) async fn probe_until_done(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    other_run: &mut BucketRun,
    (me, controls): (&Caller, &Controls),
    other: Option<&Caller>,
    again: Option<&Caller>,
    outcome: &mut TierOutcome,
    cap: u64,
) -> Result<(), Unobservable> {
    let again = match other {
        Some(_) if needs_probing(outcome) && !outcome.per_identity.done => again,
        _ => None,
    };
    let identities = Identities { me, other, again };
    // First inside the counted window, if the count spent it: its end is
    // known, so no bracket is needed.
    if let Some(end) = outcome.spent_until
        && needs_probing(outcome)
    {
        probe_exhausted(
            suite,
            run,
            other_run,
            &identities,
            (Some(end), cap),
            outcome,
        )
        .await?;
    }
    let bounds = (outcome.limit, cap);
    for _ in 0..PROBE_ATTEMPTS {
        if !needs_probing(outcome) || suite.exhaust(run, me, cap).await?.is_none() {
            break;
        }
        probe_exhausted(suite, run, other_run, &identities, (None, cap), outcome).await?;
        if outcome.routes.judged > 0 && !outcome.routes.probes.done {
            let mut probes = Probes::default();
            routes::probe(suite, run, me, controls, (None, bounds), &mut probes).await?;
            outcome.routes.probes = probes;
        }
    }
    // Its refusals are about `me`'s user only while it is a live session of
    // that user (else it went out anonymous).
    if let Some(again) = again {
        again.still_signed_in(suite.ctx).await?;
    }
    Ok(())
}

/// A second session of `bucket`'s user: a sign-in of its own (never the
/// first session's cookies), spending the same bucket. Signed in with the
/// first, before the bucket is spent, so that its password hash is not
/// made inside the counted window.
pub(super) async fn second_session(
    ctx: &crate::checks::Ctx,
    bucket: &'static str,
) -> Result<Caller, Unobservable> {
    let (identity, _) = sign_in(ctx, bucket, Jar::new()).await?;
    Ok(Caller {
        bucket,
        jar: Some(identity.session_jar()),
    })
}

/// Who the probes of an exhausted bucket send as: its owner, another user
/// (free2) and a second session of the owner's user.
pub(super) struct Identities<'c> {
    pub(super) me: &'c Caller,
    pub(super) other: Option<&'c Caller>,
    pub(super) again: Option<&'c Caller>,
}

/// The probes an exhausted bucket allows.
///
/// `window_ends`: the earliest the window the bucket was seen spent in can
/// end (the counted window, whose start is measured). A probe answered
/// before it, less the margin, was answered while the bucket was spent.
/// Without it (a later exhaustion, whose window's phase is unknown), each
/// probe is bracketed by a plain request that must still be refused, one
/// pair at a time ([`bracketed`]): side by side, a batch of probes allowed
/// by a window that turned over under it could take the new window's whole
/// allowance and leave every bracket refused (a correct Worker failed so).
pub(super) async fn probe_exhausted(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    other_run: &mut BucketRun,
    who: &Identities<'_>,
    (window_ends, cap): (Option<std::time::Instant>, u64),
    outcome: &mut TierOutcome,
) -> Result<(), Unobservable> {
    let (me, other) = (who.me, who.other);
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Claims,
        Spoofing,
        PerIdentity,
    }
    /// What is probed, how it reads, who sends it, with which header, and
    /// whether it must be allowed (a per-identity probe of another user) or
    /// refused (every other probe, and a second session of the same user).
    type Job<'c> = (
        Kind,
        String,
        &'c Caller,
        Option<(&'static str, String)>,
        bool,
    );
    let mut jobs: Vec<Job> = Vec::new();
    if matches!(me.bucket, "anonymous" | "free") && !outcome.claims.done {
        for (what, name, value) in tier_claims() {
            jobs.push((
                Kind::Claims,
                what.to_owned(),
                me,
                Some((name, value)),
                false,
            ));
        }
    }
    if me.bucket == "anonymous" && !outcome.spoofing.done {
        for (what, name, value) in spoofed_addresses() {
            jobs.push((
                Kind::Spoofing,
                what.to_owned(),
                me,
                Some((name, value)),
                false,
            ));
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
            true,
        ));
        if let Some(again) = who.again {
            jobs.push((
                Kind::PerIdentity,
                format!(
                    "a second session of {} (its own sign-in) while the first is exhausted",
                    me.bucket
                ),
                again,
                None,
                false,
            ));
        }
    }
    /// Who sends a probe, its extra header and its label.
    type Send<'c> = (&'c Caller, Vec<(&'static str, String)>, String);
    let sends: Vec<Send> = jobs
        .iter()
        .map(|(_, what, sender, header, _)| {
            let extra = header.iter().cloned().collect();
            (*sender, extra, format!("while exhausted: {what}"))
        })
        .collect();
    // Inside a window whose end is known the probes run side by side
    // (inside the rate cap); without one, one bracketed pair at a time.
    let mut judged: Vec<(Hit, Option<Hit>, bool)> = Vec::new();
    match window_ends {
        Some(_) => {
            let hits = futures_util::future::join_all(
                (sends.iter()).map(|(sender, extra, label)| suite.send(sender, extra, label)),
            )
            .await;
            for ((sender, ..), hit) in sends.iter().zip(hits) {
                let hit = hit?;
                record_probe(run, other_run, me, sender, &hit);
                let conclusive = suite.answered_while_spent(&hit, window_ends);
                judged.push((hit, None, conclusive));
            }
        }
        None => {
            let bounds = (outcome.limit, cap);
            for (job, (sender, extra, label)) in jobs.iter().zip(&sends) {
                let runs = (&mut *run, &mut *other_run);
                let send = || suite.send(sender, extra, label);
                let (hit, bracket, conclusive) =
                    bracketed(suite, runs, me, sender, &job.1, bounds, send).await?;
                judged.push((hit, Some(bracket), conclusive));
            }
        }
    }
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
    for ((kind, what, _, _, must_allow), (probe, control, conclusive)) in jobs.iter().zip(judged) {
        let control: Vec<_> = control.into_iter().map(|c| c.observed.exchange).collect();
        let p = &mut found
            .iter_mut()
            .find(|(k, _)| k == kind)
            .expect("a probe set per kind")
            .1;
        if !conclusive {
            p.done = false;
        } else if kind == &Kind::PerIdentity && *must_allow {
            if !probe.allowed() {
                p.problems.push(format!(
                    "{what}: refused ({}) though only {} had spent its bucket",
                    probe.status, me.bucket
                ));
            }
            p.evidence.push(probe.observed.exchange);
            p.evidence.extend(control);
        } else if kind == &Kind::PerIdentity {
            if probe.allowed() {
                p.problems.push(format!(
                    "{what}: allowed ({}), though the user's bucket was exhausted: the bucket follows the session, not the user",
                    probe.status
                ));
            }
            p.evidence.push(probe.observed.exchange);
            p.evidence.extend(control);
        } else if probe.allowed() {
            p.problems.push(format!(
                "the exhausted {} bucket allowed a request with {what}",
                me.bucket
            ));
            p.evidence.push(probe.observed.exchange);
            p.evidence.extend(control);
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
