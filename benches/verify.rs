//! Verify's wall time against its floor: the build recipe run twice, one
//! after the other, straight in the source folder (no copies, no API).
//!
//!     cargo bench --bench verify            # 5 rounds
//!     FLAREPROOF_BENCH_ROUNDS=10 cargo bench --bench verify
//!
//! Verify runs its two builds concurrently and reads the (stand-in) API
//! while they run, so the target is ≤ 1.2 × the floor.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flareproof::cloudflare::standin::StandIn;
use flareproof::cloudflare::{Credentials, RetryPolicy};
use flareproof::model::{Secret, Verdict};
use flareproof::plan::Plan;
use flareproof::rebuild::{Variation, run_recipe};
use flareproof::testbench::demo::{REFERENCE_ACCOUNT, reference_scenario, reference_verify_target};
use flareproof::testbench::fixture::{ensure_installed, fixtures_dir};
use flareproof::verify::Verify;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let rounds: usize = std::env::var("FLAREPROOF_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let dir = fixtures_dir();
    ensure_installed(&dir, &|line| eprintln!("{line}")).expect("fixture dependencies install");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // The floor: the recipe's own time, twice in a row.
    let out = tempfile::tempdir().unwrap();
    let build = || {
        let status = Command::new("node")
            .args(["build.mjs", "--outdir"])
            .arg(out.path())
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("node runs");
        assert!(status.success(), "the recipe fails");
    };
    build(); // warm the page cache
    let floor: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            build();
            build();
            t.elapsed()
        })
        .collect();

    // Verify against the stand-in serving the reference build.
    let token = Secret::new("bench-token-5c0a8b7e1d2f3a4b");
    let (standin, target) = runtime.block_on(async {
        let mut target =
            reference_verify_target(&dir, url::Url::parse("http://127.0.0.1/").unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let deployed = run_recipe(&target.recipe, &Variation::baseline(), tmp.path())
            .await
            .expect("the reference Worker builds");
        let standin = StandIn::start(reference_scenario(deployed.bundle, token.clone()))
            .await
            .unwrap();
        target.api_base = standin.api_base();
        (standin, target)
    });
    let verify = Verify {
        target,
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        credentials: Credentials {
            account_id: REFERENCE_ACCOUNT.to_owned(),
            token,
        },
        retry: RetryPolicy::default(),
    };
    let mut wall = Vec::new();
    let mut rebuild = Vec::new();
    let mut fetch = Vec::new();
    runtime.block_on(verify.run()).unwrap(); // warm-up
    for _ in 0..rounds {
        let t = Instant::now();
        let run = runtime.block_on(verify.run()).unwrap();
        wall.push(t.elapsed());
        assert_eq!(
            run.report.verdict,
            Verdict::Pass,
            "{:#?}",
            run.report.checks
        );
        rebuild.push(run.rebuild_time);
        fetch.push(run.fetch_time);
    }
    drop(standin);

    let (floor, wall) = (median(floor), median(wall));
    println!("verify benchmark: reference Worker, {rounds} rounds, medians");
    println!(
        "  floor (recipe run twice, sequential): {:>8.1} ms",
        ms(floor)
    );
    println!(
        "  verify wall time:                     {:>8.1} ms",
        ms(wall)
    );
    println!(
        "    of which rebuild (2 builds, concurrent): {:>8.1} ms",
        ms(median(rebuild))
    );
    println!(
        "    of which API reads (concurrent):         {:>8.1} ms",
        ms(median(fetch))
    );
    println!(
        "  ratio verify / floor: {:.2}x (target <= 1.20x)",
        wall.as_secs_f64() / floor.as_secs_f64()
    );
}
