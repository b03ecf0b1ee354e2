//! The probes an exhausted bucket allows: claimed tiers, spoofed client
//! addresses and the other identity, each bracketed by a plain request that
//! must still be refused.

use super::engine::{BucketRun, Caller, PROBE_ATTEMPTS, Probes, Suite, TierOutcome};
use super::payloads::{spoofed_addresses, tier_claims};
use crate::checks::Unobservable;

pub(super) fn needs_probing(o: &TierOutcome) -> bool {
    match o.tier {
        "anonymous" => !o.claims.done || !o.spoofing.done,
        "free" => !o.claims.done || !o.per_identity.done,
        _ => false,
    }
}

/// Runs the probes, spending the bucket before each attempt; a probe that
/// the window's turnover made inconclusive is repeated.
pub(super) async fn probe_until_done(
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
pub(super) async fn probe_exhausted(
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
