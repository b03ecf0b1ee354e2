//! Verify's wall time against its floor: the build recipe run twice, one
//! after the other, straight in the source folder (no copies, no API).
//!
//!     cargo bench --bench verify            # 5 rounds
//!     FLAREPROOF_BENCH_ROUNDS=10 cargo bench --bench verify
//!
//! Verify runs its two builds concurrently and reads the (stand-in) API
//! while they run, so the target is ≤ 1.2 × the floor.
//!
//! Then a large bundle: a recipe writing one 10 MiB module, deployed with
//! 100 scattered one-byte differences. Verify runs in a child process of
//! its own (this binary again, `FLAREPROOF_BENCH_CHILD` set) so that its
//! peak RSS (`VmHWM`) is verify's alone, not the stand-in's; targets: wall
//! ≤ 1.2 × (recipe run twice) and peak RSS ≤ 10 × the bundle size.

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

/// The large bundle's generator: one deterministic 10 MiB minified line.
const GENERATOR: &str = r#"
import { writeFileSync } from "node:fs";
const size = 10 * 1024 * 1024;
const parts = ["export default{fetch(){return new Response('ok')}};"];
let n = parts[0].length, x = 1;
while (n < size) {
  x = (x * 1103515245 + 12345) % 2147483648;
  const s = `function f${x.toString(36)}(a,b){return a*${x % 997}+b;}`;
  parts.push(s);
  n += s.length;
}
writeFileSync(process.argv[2] + "/worker.js", parts.join("").slice(0, size));
"#;
const LARGE_SIZE: usize = 10 * 1024 * 1024;
const LARGE_DIFFERENCES: usize = 100;
const TOKEN: &str = "bench-token-5c0a8b7e1d2f3a4b";

fn large_target(source: &std::path::Path, api_base: url::Url) -> flareproof::target::VerifyTarget {
    let mut target = reference_verify_target(source, api_base);
    target.recipe.command = ["node", "gen.mjs", "{out}"].map(str::to_owned).to_vec();
    target.recipe.link = Vec::new();
    target.recipe.non_artifacts = Vec::new();
    target
}

/// The child: one verify run of the large bundle; prints
/// `wall_ms peak_rss_bytes verdict first-diff-summary-line`.
fn child(api: &str, source: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let verify = Verify {
        target: large_target(std::path::Path::new(source), url::Url::parse(api).unwrap()),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        credentials: Credentials {
            account_id: REFERENCE_ACCOUNT.to_owned(),
            token: Secret::new(TOKEN),
        },
        retry: RetryPolicy::default(),
    };
    let t = Instant::now();
    let run = runtime.block_on(verify.run()).unwrap();
    let wall = t.elapsed();
    let rss = flareproof::testbench::peak_rss().expect("VmHWM in /proc/self/status");
    let diff = run
        .report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .find_map(|e| match e {
            flareproof::model::Evidence::Diff(d) => Some(d.unified.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let counted = diff
        .lines()
        .find(|l| l.starts_with("… and"))
        .unwrap_or("(no count)")
        .to_owned();
    let first = diff.lines().next().unwrap_or("(no diff)").to_owned();
    println!(
        "{} {} {} {}\t{}\t{}\trebuild {:.1} ms, API reads {:.1} ms",
        ms(wall),
        rss,
        run.report.verdict.as_str(),
        diff.len(),
        first,
        counted,
        ms(run.rebuild_time),
        ms(run.fetch_time)
    );
}

fn large(rounds: usize, runtime: &tokio::runtime::Runtime) {
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("gen.mjs"), GENERATOR).unwrap();
    let out = tempfile::tempdir().unwrap();
    let build = || {
        let status = Command::new("node")
            .arg("gen.mjs")
            .arg(out.path())
            .current_dir(source.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("node runs");
        assert!(status.success(), "the generator fails");
    };
    build();
    // The floor is measured in the same rounds as verify, just before each
    // child, so both meet the same load on a shared machine.
    let mut floor: Vec<Duration> = Vec::new();
    let token = Secret::new(TOKEN);
    let standin = runtime.block_on(async {
        let target = large_target(source.path(), url::Url::parse("http://127.0.0.1/").unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let mut deployed = run_recipe(&target.recipe, &Variation::baseline(), tmp.path())
            .await
            .expect("the large recipe runs")
            .bundle;
        let module = deployed.module_mut("worker.js").expect("worker.js");
        assert_eq!(module.bytes.len(), LARGE_SIZE);
        // 100 one-byte differences spread over the module.
        for i in 0..LARGE_DIFFERENCES {
            let at = (i * LARGE_SIZE / LARGE_DIFFERENCES) + 4_099 * i % 10_000 + 17;
            module.bytes[at] = if module.bytes[at] == b'#' { b'%' } else { b'#' };
        }
        StandIn::start(reference_scenario(deployed, token.clone()))
            .await
            .unwrap()
    });
    let exe = std::env::current_exe().unwrap();
    let mut wall = Vec::new();
    let mut rss = Vec::new();
    let mut last = String::new();
    for round in 0..=rounds {
        if round > 0 {
            let t = Instant::now();
            build();
            build();
            floor.push(t.elapsed());
        }
        let output = Command::new(&exe)
            .env("FLAREPROOF_BENCH_CHILD", standin.api_base().as_str())
            .env("FLAREPROOF_BENCH_SOURCE", source.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("the child runs");
        assert!(output.status.success(), "the verify child fails");
        let line = String::from_utf8(output.stdout).unwrap();
        let mut fields = line.split_whitespace();
        let w: f64 = fields.next().unwrap().parse().unwrap();
        let r: u64 = fields.next().unwrap().parse().unwrap();
        let verdict = fields.next().unwrap();
        assert_eq!(verdict, "fail", "100 differences are a fail: {line}");
        assert!(
            line.contains(&format!(
                "{} more differing regions",
                LARGE_DIFFERENCES - 10
            )),
            "the diff is bounded: {line}"
        );
        if round > 0 {
            // Round 0 warms the page cache.
            wall.push(Duration::from_secs_f64(w / 1000.0));
            rss.push(r);
        }
        last = line;
    }
    drop(standin);
    let (floor, wall) = (median(floor), median(wall));
    rss.sort();
    let peak = *rss.last().unwrap();
    println!(
        "large bundle: one {} MiB module, {LARGE_DIFFERENCES} scattered one-byte differences, {rounds} rounds, medians",
        LARGE_SIZE / (1024 * 1024)
    );
    println!(
        "  floor (recipe run twice, sequential): {:>8.1} ms",
        ms(floor)
    );
    println!(
        "  verify wall time (child process):     {:>8.1} ms",
        ms(wall)
    );
    println!(
        "  ratio verify / floor: {:.2}x (target <= 1.20x)",
        wall.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  verify peak RSS (VmHWM, largest round): {:.1} MiB = {:.2}x the bundle (target <= 10x)",
        peak as f64 / (1024.0 * 1024.0),
        peak as f64 / LARGE_SIZE as f64
    );
    let mut fields = last.trim_end().split('\t');
    let head = fields.next().unwrap_or("");
    println!(
        "  diff evidence: {} bytes",
        head.split_whitespace().nth(3).unwrap_or("?")
    );
    for f in fields {
        println!("    {f}");
    }
}

fn main() {
    if let Ok(api) = std::env::var("FLAREPROOF_BENCH_CHILD") {
        let source = std::env::var("FLAREPROOF_BENCH_SOURCE").expect("FLAREPROOF_BENCH_SOURCE");
        child(&api, &source);
        return;
    }
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
    let token = Secret::new(TOKEN);
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

    large(rounds, &runtime);
}
