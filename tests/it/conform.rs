//! The conform suites against the reference Worker: all pass when it is
//! healthy, and each fault fails its own check and no other.

use std::collections::BTreeSet;
use std::sync::Arc;

use flareproof::checks::registry;
use flareproof::model::Status;
use flareproof::plan::Plan;
use tokio::sync::Semaphore;

use crate::support::{FixtureOptions, conform, demo_options, ids_with, start};

/// Every conform suite.
const ALL: &[&str] = &["cookie.*", "scope.*", "session.*", "ratelimit.*"];

/// The demo's reference Worker (two edges with a revocation lag, 3 s
/// windows, small limits) with the given faults.
fn two_edges(list: &[&str]) -> FixtureOptions {
    FixtureOptions {
        faults: list.iter().map(|s| s.to_string()).collect(),
        ..demo_options()
    }
}

/// Fixtures started at once by a fault sweep (2 cores).
const PARALLEL_FIXTURES: usize = 3;

/// Where to dump each sweep report, for debugging (`FLAREPROOF_TEST_DUMP=dir`).
fn dump(id: &str, report: &flareproof::model::Report) {
    if let Some(dir) = std::env::var_os("FLAREPROOF_TEST_DUMP") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("{id}.json")),
            flareproof::report::json::render(report),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_conform_suite_passes_against_the_healthy_reference_worker() {
    let fixture = tokio::task::spawn_blocking(|| start(two_edges(&[])))
        .await
        .unwrap();
    let report = conform(&fixture, ALL).await;
    let expected: Vec<String> = registry::all().iter().map(|c| c.id.to_string()).collect();
    assert_eq!(ids_with(&report, Status::Pass), expected, "{report:#?}");
    let leaked = flareproof::report::json::render(&report);
    let text = String::from_utf8(leaked).unwrap();
    for (role, account) in &fixture.info().accounts {
        assert!(
            !text.contains(account.password.expose()),
            "{role}'s password is in the report"
        );
    }
    assert!(!text.contains(fixture.info().service_key.expose()));
    for (i, _) in text.match_indices("session_token=") {
        let after = &text[i + "session_token=".len()..];
        assert!(
            after.starts_with("[redacted]") || after.starts_with(';') || after.starts_with('"'),
            "a session token is in the report: {}",
            &after[..after.len().min(40)]
        );
    }
}

/// The registered check ids of one area.
fn area(name: &str) -> Vec<&'static str> {
    registry::all()
        .iter()
        .filter(|c| c.area() == name)
        .map(|c| c.id)
        .collect()
}

/// For each fault id: a reference Worker with that fault, a conform run over
/// `selection`, and the fault's own check must fail with evidence while no
/// other check fails (except those the plan declares inseparable) or errs.
async fn sweep(ids: Vec<&'static str>, selection: &'static [&'static str]) {
    let plan = Arc::new(Plan::builtin("flarelink-auth/v1").unwrap());
    let slots = Arc::new(Semaphore::new(PARALLEL_FIXTURES));
    let mut runs = tokio::task::JoinSet::new();
    for id in ids {
        let slots = slots.clone();
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let fixture = tokio::task::spawn_blocking(move || start(two_edges(&[id])))
                .await
                .unwrap();
            let report = conform(&fixture, selection).await;
            (id, report)
        });
    }
    let mut problems = Vec::new();
    while let Some(run) = runs.join_next().await {
        let (id, report) = run.unwrap();
        dump(id, &report);
        let failed: BTreeSet<String> = ids_with(&report, Status::Fail).into_iter().collect();
        let errors: BTreeSet<String> = ids_with(&report, Status::Error).into_iter().collect();
        let expected = plan.expected_failures(id);
        let tolerated = plan.expected_errors(id);
        let passed_blind = ids_with(&report, Status::Pass)
            .into_iter()
            .filter(|p| tolerated.contains(p))
            .count();
        if !failed.contains(id)
            || !failed.is_subset(&expected)
            || !errors.is_subset(&tolerated)
            || passed_blind > 0
        {
            // Every unexpected verdict with its reason, so that a CI log
            // alone says what went wrong.
            let why: Vec<String> = report
                .checks
                .iter()
                .filter(|c| {
                    let check = c.id.as_str();
                    (c.status == Status::Error && !tolerated.contains(check))
                        || (c.status == Status::Fail && !expected.contains(check))
                        || (c.status != Status::Fail && check == id)
                })
                .map(|c| format!("{} {:?}: {}", c.id, c.status, c.summary))
                .collect();
            problems.push(format!(
                "FAULTS={id}: failed {failed:?} (expected {expected:?}), errors {errors:?} {why:#?}"
            ));
        }
        let own = report.checks.iter().find(|c| c.id.as_str() == id).unwrap();
        if own.evidence.is_empty() || own.summary.is_empty() {
            problems.push(format!(
                "FAULTS={id}: the failure carries no evidence or summary"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_cookie_fault_fails_its_check_and_no_other() {
    sweep(area("cookie"), ALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_scope_fault_fails_its_check_and_no_other() {
    sweep(area("scope"), ALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_session_fault_fails_its_check_and_no_other() {
    sweep(area("session"), ALL).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_ratelimit_fault_fails_its_check_and_no_other() {
    sweep(area("ratelimit"), ALL).await;
}

/// With a known lag L and a poll interval P, the reported worst time to
/// refusal is at most L + P (+ a little for timers, + the refusing poll's
/// round trip, since the time is taken at its answer): the edge that cached
/// the token keeps it for L from the priming lookup, made just before
/// sign-out. And it is well above zero (at least L/2): the lag was really
/// measured, not missed.
#[tokio::test(flavor = "multi_thread")]
async fn the_revocation_window_is_measured_within_one_poll_interval() {
    const L: u64 = 1000;
    let fixture = tokio::task::spawn_blocking(|| {
        start(FixtureOptions {
            edges: Some(2),
            revocation_lag_ms: Some(L),
            ..FixtureOptions::default()
        })
    })
    .await
    .unwrap();
    let report = conform(&fixture, &["session.revoked-on-sign-out"]).await;
    let check = report
        .checks
        .iter()
        .find(|c| c.id.as_str() == "session.revoked-on-sign-out")
        .unwrap();
    assert_eq!(check.status, Status::Pass, "{check:#?}");
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let interval = plan.params.poll_interval_ms as f64;
    let times: Vec<f64> = check
        .evidence
        .iter()
        .filter_map(|e| match e {
            flareproof::model::Evidence::Measurement(m) => Some(m.value),
            _ => None,
        })
        .collect();
    assert_eq!(
        times.len() as u32,
        plan.params.revocation_trials * 2,
        "a time per trial per vantage"
    );
    // Each time is the refusing poll's answer, so it may exceed the true
    // time by that poll's round trip: the slowest poll the measurements report.
    let slowest_poll: f64 = check
        .evidence
        .iter()
        .filter_map(|e| match e {
            flareproof::model::Evidence::Measurement(m) => m.slowest_observation,
            _ => None,
        })
        .reduce(f64::max)
        .expect("the measurements report the slowest poll");
    let worst = times.iter().cloned().fold(0.0, f64::max);
    let slack = 150.0 + slowest_poll;
    assert!(
        worst <= L as f64 + interval + slack && worst >= L as f64 / 2.0,
        "worst time to refusal {worst} ms is not within [L/2, L + one interval + 150 ms + the slowest poll] (L={L} ms, interval {interval} ms, slowest poll {slowest_poll} ms); all: {times:?}"
    );
}

/// The run never sends more than `max_requests` nor faster than `max_rps`,
/// and a check the budget cut short is an `error`, never a pass or a fail.
#[tokio::test(flavor = "multi_thread")]
async fn the_budget_and_the_rate_cap_are_never_exceeded() {
    let fixture = tokio::task::spawn_blocking(|| start(two_edges(&[])))
        .await
        .unwrap();
    let budget = flareproof::target::Budget {
        max_requests: 60,
        max_rps: 40,
        max_body_bytes: 8 * 1024 * 1024,
        max_kept_bytes: None,
    };
    let mut target = crate::support::target(&fixture);
    target.budget = budget;
    let conform = flareproof::conform::Conform {
        target: Arc::new(target),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: flareproof::conform::Selection::all(),
        progress: Arc::new(flareproof::progress::Silent),
    };
    let started = std::time::Instant::now();
    let (report, probe) = conform.run().await.unwrap();
    let governor = probe.governor();
    assert!(
        governor.sent_count() as u64 <= budget.max_requests,
        "{} sent",
        governor.sent_count()
    );
    assert!(
        governor.peak_per_second() <= budget.max_rps as usize,
        "peak {} per second",
        governor.peak_per_second()
    );
    // Spacing alone makes 60 requests at 40 per second last 1.5 s at least.
    assert!(started.elapsed() >= std::time::Duration::from_millis(1450));
    assert!(ids_with(&report, Status::Fail).is_empty(), "{report:#?}");
    let cut_short: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Error)
        .collect();
    assert!(
        !cut_short.is_empty(),
        "60 requests cannot cover every check"
    );
    assert!(
        cut_short.iter().any(|c| c.summary.contains("budget")),
        "{cut_short:#?}"
    );
}

/// A bucket left spent (as right after an earlier run) answers 429 to the
/// functional checks: they wait the window out (and say so in the
/// exchange) instead of reporting `error`, and the whole run passes.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_bucket_is_waited_out_by_the_functional_checks() {
    // A window long enough that the run, started right after the spend,
    // meets the bucket still spent even on a busy machine (with 5 s, the
    // first metered request of a run on 2 busy cores came after the
    // window had turned over).
    const WINDOW_S: u64 = 15;
    let fixture = tokio::task::spawn_blocking(|| {
        start(FixtureOptions {
            window_s: Some(WINDOW_S),
            ..two_edges(&[])
        })
    })
    .await
    .unwrap();
    // Spend free's bucket right before the run, as the ratelimit suite of
    // an earlier run does, early in a window so that the run meets it
    // spent: when the 429 says the window ends within 12 s, wait for the
    // next one and spend that (bounded: the limit is 20).
    let ctx = crate::support::ctx(&fixture);
    let (free, _) = flareproof::checks::sign_in(&ctx, "free", Default::default())
        .await
        .expect("free signs in");
    let mut left_in_window = None;
    'windows: for _ in 0..3 {
        for _ in 0..40 {
            let req = flareproof::probe::Req::get(ctx.url(&ctx.target.paths.posts), "spend free")
                .jar(&free.session_jar());
            let observed = ctx.probe.send(req).await.unwrap();
            if observed.status == 429 {
                let s = observed.retry_after_s().expect("a 429 with Retry-After");
                if s >= WINDOW_S - 3 {
                    left_in_window = Some(s);
                    break 'windows;
                }
                tokio::time::sleep(std::time::Duration::from_millis(s * 1000 + 100)).await;
                continue 'windows;
            }
        }
        panic!("free's bucket never answered 429");
    }
    assert!(left_in_window.is_some(), "no fresh window was spent");
    let conform = flareproof::conform::Conform {
        target: Arc::new(crate::support::target(&fixture)),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: flareproof::conform::Selection::all(),
        progress: Arc::new(flareproof::progress::Silent),
    };
    let (report, probe) = conform.run().await.unwrap();
    let not_passed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} {:?}: {}", c.id, c.status, c.summary))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    // The functional checks met the spent bucket and waited (at most a
    // window + 1 s each).
    let waits = probe.waits();
    assert!(!waits.is_empty(), "no check met the spent bucket");
    assert!(
        waits
            .iter()
            .all(|w| *w <= std::time::Duration::from_secs(WINDOW_S + 1)),
        "{waits:?}"
    );
}

/// Admin probed alone has no other bucket's reset to align on: the window's
/// phase is unknown, so it sends twice the probed count (60 = 2 x 2 x pro's
/// 15) within a window's length. An admin limited like pro is refused; the
/// healthy one passes and says the phase was unknown.
#[tokio::test(flavor = "multi_thread")]
async fn admin_alone_is_probed_with_twice_the_count() {
    const ID: &str = "ratelimit.admin-unlimited";
    let healthy = tokio::task::spawn_blocking(|| start(two_edges(&[])));
    let faulty = tokio::task::spawn_blocking(|| start(two_edges(&[ID])));
    let (healthy, faulty) = (healthy.await.unwrap(), faulty.await.unwrap());
    let (healthy_report, faulty_report) =
        tokio::join!(conform(&healthy, &[ID]), conform(&faulty, &[ID]));
    let result = |report: &flareproof::model::Report| {
        report
            .checks
            .iter()
            .find(|c| c.id.as_str() == ID)
            .cloned()
            .unwrap()
    };
    let healthy = result(&healthy_report);
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.summary);
    assert!(
        healthy.summary.contains("60 requests") && healthy.summary.contains("phase unknown"),
        "{}",
        healthy.summary
    );
    let faulty = result(&faulty_report);
    assert_eq!(faulty.status, Status::Fail, "{}", faulty.summary);
    assert!(faulty.summary.contains("of 60"), "{}", faulty.summary);
}
