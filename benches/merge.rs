//! `merge` over many shards: time and peak memory, and whether it grows
//! linearly with the number of shards.
//!
//!     cargo bench --bench merge             # 500 shards (100 tenants x 5 places)
//!
//! The shard is a real demo report (the reference Worker, verify and
//! conform; made once, by running the demo), written as 100 tenants (each
//! its own base URL) from 5 places (`vantage_label`). Each merge runs in a
//! child process of its own (this binary again, `FLAREPROOF_BENCH_CHILD`
//! set), so that its peak RSS (`VmHWM`) is the merge's alone: it reads
//! every shard from disk (validating each against the report schema), merges
//! them, and renders the merged `report.json`. It is run over the first
//! 100, 250 and 500 shards: linear when the time per shard stays flat.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use flareproof::merge::Merger;
use flareproof::model::Report;
use flareproof::testbench::{Events, demo};

const TENANTS: usize = 100;
const PLACES: [&str; 5] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];

/// The child: merges the first `n` shards under `dir`; prints
/// `wall_ms peak_rss_bytes merged_bytes checks targets`.
fn child(dir: &str, n: usize) {
    let started = Instant::now();
    let mut merger = Merger::new();
    for path in shard_paths(Path::new(dir)).into_iter().take(n) {
        let shard = flareproof::diff::load(&path).expect("a shard loads");
        merger.add(shard).expect("the shards merge");
    }
    let report = merger.finish().expect("the merge finishes");
    let bytes = flareproof::report::json::render(&report);
    let wall = started.elapsed();
    println!(
        "{} {} {} {} {}",
        wall.as_secs_f64() * 1000.0,
        flareproof::testbench::peak_rss().expect("VmHWM in /proc/self/status"),
        bytes.len(),
        report.checks.len(),
        report.fleet.len()
    );
}

fn shard_paths(dir: &Path) -> Vec<PathBuf> {
    // Place-major, so that any prefix holds every tenant from some places.
    let mut paths = Vec::new();
    for place in PLACES {
        for t in 0..TENANTS {
            paths.push(dir.join(format!("{place}/tenant-{t:03}/report.json")));
        }
    }
    paths
}

fn write_shards(dir: &Path, demo: &Report) -> u64 {
    let mut bytes = 0;
    for place in PLACES {
        for t in 0..TENANTS {
            let mut shard = demo.clone();
            shard.subject.base_url = Some(format!("https://tenant-{t:03}.example/"));
            shard.vantage_label = Some(place.to_owned());
            let path = dir.join(format!("{place}/tenant-{t:03}"));
            std::fs::create_dir_all(&path).unwrap();
            let json = flareproof::report::json::render(&shard);
            bytes = json.len() as u64;
            std::fs::write(path.join("report.json"), json).unwrap();
        }
    }
    bytes
}

fn main() {
    if let Ok(dir) = std::env::var("FLAREPROOF_BENCH_CHILD") {
        let n = std::env::var("FLAREPROOF_BENCH_SHARDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(TENANTS * PLACES.len());
        child(&dir, n);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    eprintln!("running the demo once for a real shard…");
    let run = runtime
        .block_on(demo::run(Events::ignore()))
        .expect("the demo runs");
    let mut shard = run.report;
    shard.command = "audit".to_owned();
    assert!(
        shard.parameters.is_some(),
        "the demo report records its parameters"
    );
    let dir = tempfile::tempdir().unwrap();
    let size = write_shards(dir.path(), &shard);
    let total = size * (TENANTS * PLACES.len()) as u64;
    let me = std::env::current_exe().unwrap();
    let mut rows = Vec::new();
    for n in [100, 250, 500] {
        let out = Command::new(&me)
            .env("FLAREPROOF_BENCH_CHILD", dir.path())
            .env("FLAREPROOF_BENCH_SHARDS", n.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        rows.push((n, f[0], f[1], f[2], f[3], f[4]));
    }
    let mib = |b: f64| b / (1024.0 * 1024.0);
    println!(
        "merge benchmark: a demo report of {:.0} KiB as {TENANTS} tenants x {} places",
        size as f64 / 1024.0,
        PLACES.len()
    );
    for (n, wall, rss, merged, checks, targets) in &rows {
        println!(
            "  {n:>3} shards ({:.0} MiB): {wall:>7.0} ms, {:>6.2} ms/shard, peak RSS {:>6.1} MiB, \
             merged report {:.0} MiB ({checks} checks, {targets} targets)",
            mib((size * *n as u64) as f64),
            wall / *n as f64,
            mib(*rss),
            mib(*merged),
        );
    }
    let per = |i: usize| rows[i].1 / rows[i].0 as f64;
    println!(
        "  time per shard at 500 / at 100: {:.2}x (linear: about 1)",
        per(2) / per(0)
    );
    println!(
        "  peak RSS at 500 shards: {:.2}x the shards' total size on disk ({:.0} MiB)",
        rows[2].2 / total as f64,
        mib(total as f64)
    );
}
