//! The probes an exhausted bucket allows: claimed tiers, spoofed client
//! addresses, the other identity (allowed) and a second session of the same
//! user (refused: the bucket is the user's, not the session's), first
//! inside the counted window (whose end is measured), else each bracketed
//! by a plain request that must still be refused.

use super::engine::{BucketRun, Caller, PROBE_ATTEMPTS, Probes, Suite, TierOutcome};
use super::payloads::{spoofed_addresses, tier_claims};
use crate::checks::{Unobservable, sign_in};
use crate::probe::Jar;

pub(super) fn needs_probing(o: &TierOutcome) -> bool {
    match o.tier {
        "anonymous" => !o.claims.done || !o.spoofing.done,
        "free" => !o.claims.done || !o.per_identity.done,
        _ => false,
    }
}

/// Runs the probes, spending the bucket before each attempt; a probe that
/// the window's turnover made inconclusive is repeated. Where there is
/// another identity to probe (free's bucket), `again`, a second session of
/// `me`'s user (signed in before the bucket was spent, see
/// [`second_session`]), is probed too: it must find the bucket exhausted.
#[allow(clippy::too_many_arguments)]
pub(super) async fn probe_until_done(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    other_run: &mut BucketRun,
    me: &Caller,
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
        probe_exhausted(suite, run, other_run, &identities, Some(end), outcome).await?;
    }
    for _ in 0..PROBE_ATTEMPTS {
        if !needs_probing(outcome) || suite.exhaust(run, me, cap).await?.is_none() {
            break;
        }
        probe_exhausted(suite, run, other_run, &identities, None, outcome).await?;
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
/// probe is bracketed by a plain request that must still be refused. A
/// bracket is the weaker proof: when a window turns over under a batch, the
/// probes can take the new window's whole allowance and leave the brackets
/// refused, so it is used only where no window end is known.
pub(super) async fn probe_exhausted(
    suite: &Suite<'_>,
    run: &mut BucketRun,
    other_run: &mut BucketRun,
    who: &Identities<'_>,
    window_ends: Option<std::time::Instant>,
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
    // Probes run side by side (inside the rate cap); without a known window
    // end each is followed by a plain request as `me` that must still be
    // refused.
    let brackets = futures_util::future::join_all(jobs.iter().map(
        |(_, what, probe_caller, header, _)| async move {
            let extra: Vec<(&str, String)> = header.iter().cloned().collect();
            let probe = suite
                .send(probe_caller, &extra, &format!("while exhausted: {what}"))
                .await?;
            let control = match window_ends {
                Some(_) => None,
                None => Some(
                    suite
                        .send(me, &[], &format!("control after {what}"))
                        .await?,
                ),
            };
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
    for ((kind, what, probe_caller, _, must_allow), bracket) in jobs.iter().zip(brackets) {
        let (probe, control) = bracket?;
        if probe_caller.bucket != me.bucket {
            other_run.record(&probe);
        } else if std::ptr::eq(*probe_caller, me) || !probe.allowed() {
            // A second session allowed while the first is exhausted is not
            // the bucket's window turning over: left out of its timeline.
            run.record(&probe);
        }
        let conclusive = suite.answered_while_spent(&probe, control.as_ref(), window_ends);
        if let Some(control) = &control {
            run.record(control);
        }
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
