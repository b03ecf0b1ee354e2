//! The verdicts, pure functions over what the engine recorded: they can be
//! unit-tested without a target.

use std::sync::Arc;
use std::time::Duration;

use super::engine::{Count, Probes, Reset, TierOutcome, timeline};
use super::header::{FieldKind, check_ratelimit_field};
use crate::checks::Finding;
use crate::model::{Evidence, Exchange};

/// A tier's timeline, and the other identity's beside it.
pub(super) fn timelines(window: Duration, o: &TierOutcome) -> Vec<Evidence> {
    std::iter::once(timeline(o.tier, o.limit, window, &o.run))
        .chain(
            o.other_runs
                .iter()
                .map(|r| timeline("free2", o.limit, window, r)),
        )
        .collect()
}

pub(super) fn window_resets_finding(window: Duration, outcomes: &[Arc<TierOutcome>]) -> Finding {
    let observed: Vec<&TierOutcome> = outcomes
        .iter()
        .map(|o| o.as_ref())
        .filter(|o| o.reset.is_some())
        .collect();
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
                finding = finding.with(timeline(o.tier, o.limit, window, &o.run));
            }
            None => {}
        }
    }
    finding
}

/// The verdict of a probe made while a bucket was exhausted.
pub(super) fn probe_finding(
    probes: Option<&Probes>,
    pass: &str,
    evidence: Vec<Evidence>,
) -> Finding {
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
}

pub(super) fn merge_probes(all: [Option<&Probes>; 2]) -> Option<Probes> {
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

/// The verdict of one counted window.
pub(super) fn count_finding(
    window: Duration,
    tolerance: u64,
    tier: &str,
    limit: u64,
    reset: &Reset,
    count: &Count,
) -> Finding {
    let finding = if !count.within {
        Finding::error(format!(
            "counting took {} ms and may have run past the {} s window, so the count proves nothing (raise budget.max_rps or check the target's latency)",
            count.span.as_millis(),
            window.as_secs()
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

/// `cap` requests, sent in `span`, were all allowed.
pub(super) fn never_refused(
    window: Duration,
    tier: &str,
    limit: u64,
    cap: u64,
    span: Duration,
) -> Finding {
    if span < window {
        Finding::fail(format!(
            "{cap} requests within {} ms were all allowed; the {tier} limit is {limit} per {} s",
            span.as_millis(),
            window.as_secs()
        ))
    } else {
        Finding::error(format!(
            "{cap} requests were all allowed, but they took {} ms, longer than a window",
            span.as_millis()
        ))
    }
}

/// Twice the first poll after a refusal was already allowed: where the
/// window began is not known closely enough to count it.
pub(super) fn unbracketed_finding(first: &Reset, second: &Reset) -> Finding {
    let gap = |r: &Reset| {
        r.first
            .sent
            .saturating_duration_since(r.last_refused.sent)
            .as_millis()
    };
    Finding::error(format!(
        "the window's start could not be bracketed: twice the first poll after a 429 was already allowed ({} ms and {} ms after it; its Retry-After said {}), so the window may have begun at any moment in between and a count could straddle two windows",
        gap(first),
        gap(second),
        first
            .last_refused
            .retry_after_s()
            .map_or_else(|| "nothing".to_owned(), |s| format!("{s} s")),
    ))
    .with_exchange(&first.last_refused.observed.exchange)
    .with_exchange(&first.first.observed.exchange)
    .with_exchange(&second.first.observed.exchange)
}

pub(super) fn retry_after_finding(window: Duration, outcomes: &[Arc<TierOutcome>]) -> Finding {
    let window_s = window.as_secs();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn probes(done: bool, problems: &[&str]) -> Probes {
        Probes {
            done,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            evidence: Vec::new(),
        }
    }

    #[test]
    fn a_probe_passes_only_when_it_was_made_and_found_nothing() {
        let verdict = |p: Option<&Probes>| probe_finding(p, "fine", Vec::new()).status;
        assert_eq!(verdict(None), Status::Error);
        assert_eq!(verdict(Some(&probes(false, &[]))), Status::Error);
        assert_eq!(verdict(Some(&probes(true, &[]))), Status::Pass);
        assert_eq!(verdict(Some(&probes(true, &["allowed"]))), Status::Fail);
    }

    #[test]
    fn merged_probes_are_done_only_when_every_part_is() {
        let (done, open) = (probes(true, &["a"]), probes(false, &[]));
        assert!(merge_probes([None, None]).is_none());
        let merged = merge_probes([Some(&done), Some(&open)]).unwrap();
        assert!(!merged.done);
        assert_eq!(merged.problems, ["a"]);
        assert!(merge_probes([Some(&done), None]).unwrap().done);
    }

    #[test]
    fn no_observed_reset_is_an_error_never_a_pass() {
        let finding = window_resets_finding(Duration::from_secs(5), &[]);
        assert_eq!(finding.status, Status::Error);
    }
}
