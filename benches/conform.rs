//! Conform's wall time against its critical path, on the reference Worker
//! with the demo's short windows.
//!
//!     cargo bench --bench conform           # 3 rounds
//!     FLAREPROOF_BENCH_ROUNDS=5 cargo bench --bench conform
//!
//! The critical path is the longest single inherent wait (the rate-limit
//! window, or the revocation bound) plus the slowest sign-in of the run;
//! the target is ≤ 1.25 × it. The sequential sum is each suite run alone,
//! one after the other: what the scheduler saves.

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

/// The slowest sign-in (or sign-up) the run's evidence shows, in ms.
fn slowest_sign_in(report: &Report) -> f64 {
    report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .filter_map(|e| match e {
            Evidence::Exchange(x) if x.label.contains("sign in") || x.label.contains("sign up") => {
                Some(x.elapsed_ms as f64)
            }
            _ => None,
        })
        .fold(0.0, f64::max)
}

/// One conform run over `only` against a fresh reference Worker.
fn run(runtime: &tokio::runtime::Runtime, only: &[&str]) -> (Duration, Report) {
    let events = Events::new(|e: &Event| {
        if !e.is_chatter() {
            eprintln!("{e}")
        }
    });
    let fixture = Fixture::start(&demo::options(), &events).expect("the reference Worker starts");
    let target = demo::target_for(fixture.info(), 604_800).expect("a target");
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let conform = Conform {
        target: Arc::new(target),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: Selection::new(&only, &[]).unwrap(),
        progress: Arc::new(flareproof::progress::Silent),
    };
    let started = Instant::now();
    let (report, _) = runtime.block_on(conform.run()).expect("conform runs");
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
    (wall, report)
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
    let bound_ms = 2000.0; // demo::target_for's revocation bound
    let inherent = window_ms.max(bound_ms);

    let mut walls = Vec::new();
    let mut paths = Vec::new();
    for round in 1..=rounds {
        let (wall, report) = run(
            &runtime,
            &["cookie.*", "scope.*", "session.*", "ratelimit.*"],
        );
        let path = inherent + slowest_sign_in(&report);
        println!(
            "round {round}: conform {:.0} ms, critical path {:.0} ms (inherent wait {:.0} ms + slowest sign-in {:.0} ms), ratio {:.2}",
            ms(wall),
            path,
            inherent,
            path - inherent,
            ms(wall) / path
        );
        walls.push(ms(wall));
        paths.push(path);
    }
    let mut sequential = 0.0;
    for area in ["cookie.*", "scope.*", "session.*", "ratelimit.*"] {
        let (wall, _) = run(&runtime, &[area]);
        println!("alone: {area:<12} {:.0} ms", ms(wall));
        sequential += ms(wall);
    }
    let (wall, path) = (median(walls), median(paths));
    println!(
        "conform median {wall:.0} ms vs critical path {path:.0} ms: ratio {:.2} (target <= 1.25); suites one after another: {sequential:.0} ms ({:.2} x the concurrent run)",
        wall / path,
        sequential / wall
    );
}
