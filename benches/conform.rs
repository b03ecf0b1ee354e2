//! Conform's wall time against its critical path, on the reference Worker
//! with the demo's short windows.
//!
//!     cargo bench --bench conform           # 3 rounds
//!     FLAREPROOF_BENCH_ROUNDS=5 cargo bench --bench conform
//!
//! The critical path is the longest chain of waits no scheduler can
//! overlap: the longest suite run alone, on a fresh Worker (median of the
//! rounds). It includes what the run's own evidence cannot show: a Worker
//! hashes passwords in one isolate, one after another, so a suite's sign-ups
//! and sign-ins wait for each other whatever the scheduler does. The target
//! is conform ≤ 1.1 × it. The chain read from the evidence alone (the
//! rate-limit chain: the slowest sign-in, then one window; or the
//! revocation chain: the slowest sign-in, the slowest time to refusal, then
//! the resurrection watch) is printed too, as a floor that leaves the
//! hashing out. The sequential sum is each suite run alone, one after the
//! other: what the scheduler saves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flareproof::conform::{Conform, Selection};
use flareproof::model::{Evidence, Report, Status};
use flareproof::plan::Plan;
use flareproof::testbench::demo;
use flareproof::testbench::fixture::Fixture;
use flareproof::testbench::{Event, Events};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The slowest exchange whose label says `what`, in ms.
fn slowest(report: &Report, what: &str) -> f64 {
    report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .filter_map(|e| match e {
            Evidence::Exchange(x) if x.label.contains(what) => Some(x.elapsed_ms as f64),
            _ => None,
        })
        .fold(0.0, f64::max)
}

/// The slowest time to refusal a revocation check measured, in ms.
fn slowest_refusal(report: &Report) -> f64 {
    report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .filter_map(|e| match e {
            Evidence::Measurement(m) if m.name.starts_with("time to refusal") => Some(m.value),
            _ => None,
        })
        .fold(0.0, f64::max)
}

/// The chain read from a run's evidence (see the module's docs), and how
/// it reads.
fn critical_path(report: &Report, window_ms: f64, watch_ms: f64) -> (f64, String) {
    let sign_in = slowest(report, "sign in");
    let ratelimit = sign_in + window_ms;
    let refusal = slowest_refusal(report);
    let session = sign_in + refusal + watch_ms;
    let how = if ratelimit >= session {
        format!("slowest sign-in {sign_in:.0} ms + window {window_ms:.0} ms")
    } else {
        format!(
            "slowest sign-in {sign_in:.0} ms + refusal {refusal:.0} ms + resurrection watch {watch_ms:.0} ms"
        )
    };
    (ratelimit.max(session), how)
}

/// What one run gave: its wall time, its report, the requests it sent and
/// the target's revocation bound.
struct Run {
    wall: Duration,
    report: Report,
    requests: usize,
    bound_s: u64,
}

/// One conform run over `only` against a fresh reference Worker.
fn run(runtime: &tokio::runtime::Runtime, only: &[&str]) -> Run {
    let events = Events::new(|e: &Event| {
        if !e.is_chatter() {
            eprintln!("{e}")
        }
    });
    let fixture = Fixture::start(&demo::options(), &events).expect("the reference Worker starts");
    let target = demo::target_for(fixture.info(), 604_800).expect("a target");
    let bound_s = target.profile.revocation_bound_s;
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let conform = Conform {
        target: Arc::new(target),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: Selection::new(&only, &[]).unwrap(),
        progress: Arc::new(flareproof::progress::Silent),
    };
    let started = Instant::now();
    let (report, probe) = runtime.block_on(conform.run()).expect("conform runs");
    let wall = started.elapsed();
    let bad: Vec<_> = report
        .checks
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Error))
        .map(|c| format!("{} {}: {}", c.id, c.status, c.summary))
        .collect();
    assert!(
        bad.is_empty(),
        "the healthy reference Worker must pass: {bad:#?}"
    );
    Run {
        wall,
        report,
        requests: probe.governor().sent_count(),
        bound_s,
    }
}

fn main() {
    let rounds: usize = std::env::var("FLAREPROOF_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = demo::options();
    let window_ms = options.window_s.unwrap_or(60) as f64 * 1000.0;
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let mut walls = Vec::new();
    let mut paths = Vec::new();
    for round in 1..=rounds {
        let r = run(
            &runtime,
            &["cookie.*", "scope.*", "session.*", "ratelimit.*"],
        );
        // The resurrection watch lasts observe_after_refusal_ms, and at
        // least the revocation bound.
        let watch_ms = (plan.params.observe_after_refusal_ms as f64).max(r.bound_s as f64 * 1000.0);
        let (path, how) = critical_path(&r.report, window_ms, watch_ms);
        println!(
            "round {round}: conform {:.0} ms, chain read from the evidence {path:.0} ms ({how}), ratio {:.2}, {} requests",
            ms(r.wall),
            ms(r.wall) / path,
            r.requests
        );
        walls.push(ms(r.wall));
        paths.push(path);
    }
    let areas = ["cookie.*", "scope.*", "session.*", "ratelimit.*"];
    let mut alone: Vec<Vec<f64>> = vec![Vec::new(); areas.len()];
    for round in 1..=rounds {
        for (i, area) in areas.iter().enumerate() {
            let r = run(&runtime, &[area]);
            println!(
                "round {round}: alone {area:<12} {:.0} ms, {} requests",
                ms(r.wall),
                r.requests
            );
            alone[i].push(ms(r.wall));
        }
    }
    let alone: Vec<f64> = alone.into_iter().map(median).collect();
    let sequential: f64 = alone.iter().sum();
    let (longest, area) =
        alone.iter().zip(areas).fold(
            (0.0, ""),
            |best, (&t, a)| if t > best.0 { (t, a) } else { best },
        );
    let (wall, floor) = (median(walls), median(paths));
    println!(
        "conform median {wall:.0} ms vs critical path {longest:.0} ms (the longest suite alone, {area}): ratio {:.2} (target <= 1.1); chain read from the evidence (no hashing) {floor:.0} ms: ratio {:.2}; suites one after another: {sequential:.0} ms ({:.2} x the concurrent run)",
        wall / longest,
        wall / floor,
        sequential / wall
    );
}
