//! Flake hunt: a correct Worker must pass every run, and each rate-limit
//! fault must fail exactly its own check every sweep, also on a loaded
//! machine. Run through `ci/flake.sh` (never by `cargo test`):
//!
//!     ci/flake.sh conform 20   # the reference Worker at 5/8/12 per 3 s, 20 conform runs
//!     ci/flake.sh sweep 5      # the rate-limit fault sweep, 5 times
//!
//! One core is kept busy (`yes > /dev/null`, its own process group) for the
//! whole hunt. `conform` starts one reference Worker (two edges, a 300 ms
//! revocation lag) and runs the `flareproof conform` binary against it N
//! times back to back, as a user would (a run meets the buckets the one
//! before it left spent); a run is `pass` when it exits 0. `sweep` runs
//! what `conform::each_ratelimit_fault_fails_its_check_and_no_other` runs: per
//! rate-limit fault a reference Worker with it (the demo's settings) and a
//! conform run of every suite, two at a time; a sweep deviates when a fault
//! does not fail its own check, fails another the suite does not declare
//! inseparable, or leaves a check `error` the suite does not say cannot
//! observe under it. Reports are kept under `target/flake/`.
//!
//! Every process started here (launchers and their workerd, the busy loop,
//! the conform binary) leads its own process group, which is killed at the
//! end, on a panic, and on Ctrl-C or SIGTERM.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flareproof::checks::registry;
use flareproof::conform::{Conform, Selection};
use flareproof::model::{Report, Status};
use flareproof::plan::Plan;
use flareproof::testbench::demo;
use flareproof::testbench::fixture::{Fixture, FixtureInfo, FixtureOptions};
use flareproof::testbench::{Event, Events};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};
use std::os::unix::process::CommandExt;

/// Every conform suite.
const ALL: &[&str] = &["cookie.*", "scope.*", "session.*", "ratelimit.*"];
/// Reference Workers alive at once in a sweep (as the test binary allows).
const SWEEP_PARALLEL: usize = 2;

fn usage() -> ! {
    eprintln!("usage: flake conform [N=20] | flake sweep [N=5]");
    std::process::exit(2)
}

fn events() -> Events {
    Events::new(|e: &Event| {
        if !e.is_chatter() {
            eprintln!("{e}")
        }
    })
}

/// Where this hunt keeps its reports.
fn out_dir(mode: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/flake")
        .join(format!("{mode}-{stamp}"))
}

/// Signals every process group led by a direct child of this process (a
/// child that leads no group of its own is signalled alone); the groups.
fn signal_children(signal: Signal) -> Vec<Pid> {
    let me = std::process::id().to_string();
    let mut groups = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid != Some(me.as_str()) {
            continue;
        }
        let pid = Pid::from_raw(pid);
        if getpgid(Some(pid)) == Ok(pid) {
            let _ = killpg(pid, signal);
            groups.push(pid);
        } else {
            let _ = kill(pid, signal);
        }
    }
    groups
}

/// Set once Ctrl-C or SIGTERM arrived: what follows is the stop, not a run.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// After an interruption, waits for the signal handler to end the process
/// instead of reporting a run its stop cut short.
fn unless_interrupted() {
    while INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Ctrl-C or SIGTERM: every child's process group is stopped (TERM, then
/// KILL after a grace period), and the hunt ends with 130.
fn stop_on_signal(runtime: &tokio::runtime::Runtime) {
    runtime.spawn(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("flake: interrupted, stopping every process it started");
        let groups = signal_children(Signal::SIGTERM);
        std::thread::sleep(Duration::from_secs(2));
        for group in groups {
            let _ = killpg(group, Signal::SIGKILL);
        }
        signal_children(Signal::SIGKILL);
        std::process::exit(130);
    });
}

/// A process keeping one core busy, in a group of its own; killed (the
/// whole group) when dropped.
struct Busy(Child);

impl Busy {
    fn start() -> Busy {
        let child = Command::new("sh")
            .args(["-c", "exec yes > /dev/null"])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the busy loop");
        Busy(child)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// The `flareproof.toml` for the reference Worker at `info`, with its
/// window and limits; the secrets are named `FLAKE_*`.
fn config(info: &FixtureInfo) -> String {
    let vantages: Vec<String> = info
        .edges
        .iter()
        .filter(|e| **e != info.url)
        .map(|e| format!("\"{e}\""))
        .collect();
    let mut config = format!(
        "[target]\nbase_url = \"{}\"\nvantages = [{}]\norigin = \"{}\"\n\
         [profile]\nwindow_s = {}\nrevocation_bound_s = 5\n\
         limits = {{ anonymous = {}, free = {}, pro = {}, admin = \"unlimited\" }}\n\
         [data]\nservice_key_env = \"FLAKE_SERVICE_KEY\"\n",
        info.url,
        vantages.join(", "),
        info.origin,
        info.window_s,
        info.limit_anonymous,
        info.limit_free,
        info.limit_pro,
    );
    for (role, account) in &info.accounts {
        config.push_str(&format!(
            "[accounts.{role}]\nemail = \"{}\"\npassword_env = \"FLAKE_{}_PASSWORD\"\n",
            account.email,
            role.to_uppercase()
        ));
    }
    config
}

/// The checks of `report` that did not pass (nor warn, nor skip), each
/// with its summary.
fn not_passing(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Error))
        .map(|c| format!("{} {}: {}", c.id, c.status, c.summary))
        .collect()
}

/// N conform runs of the binary against one reference Worker at 5/8/12
/// per 3 s; the number that did not pass.
fn conform_runs(n: usize) -> usize {
    let out = out_dir("conform");
    std::fs::create_dir_all(&out).unwrap();
    let options = FixtureOptions {
        window_s: Some(3),
        limit_anonymous: Some(5),
        limit_free: Some(8),
        limit_pro: Some(12),
        ..demo::options()
    };
    let fixture = Fixture::start(&options, &events()).expect("the reference Worker starts");
    let info = fixture.info();
    let config_path = out.join("flareproof.toml");
    std::fs::write(&config_path, config(info)).unwrap();
    println!(
        "flake conform: {n} runs against {} (window {} s, limits {}/{}/{}), one core busy; reports in {}",
        info.url,
        info.window_s,
        info.limit_anonymous,
        info.limit_free,
        info.limit_pro,
        out.display()
    );
    let mut bad = 0;
    for i in 1..=n {
        let dir = out.join(format!("run-{i:02}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flareproof"));
        cmd.arg("conform")
            .arg("--config")
            .arg(&config_path)
            .arg("--out")
            .arg(&dir)
            .arg("--quiet")
            .env("FLAKE_SERVICE_KEY", info.service_key.expose())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        for (role, account) in &info.accounts {
            cmd.env(
                format!("FLAKE_{}_PASSWORD", role.to_uppercase()),
                account.password.expose(),
            );
        }
        let started = Instant::now();
        let output = cmd
            .spawn()
            .expect("start flareproof conform")
            .wait_with_output()
            .expect("flareproof conform ends");
        unless_interrupted();
        let took = started.elapsed().as_secs_f64();
        let code = output.status.code().unwrap_or(-1);
        if code == 0 {
            println!("run {i}/{n}: pass (exit 0, {took:.1} s)");
            continue;
        }
        bad += 1;
        println!(
            "run {i}/{n}: NOT PASS (exit {code}, {took:.1} s), report in {}",
            dir.display()
        );
        match std::fs::read(dir.join("report.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Report>(&b).ok())
        {
            Some(report) => {
                for line in not_passing(&report) {
                    println!("    {line}");
                }
            }
            None => println!(
                "    no report; stderr: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }
    }
    drop(fixture);
    println!("not passing: {bad} of {n}");
    bad
}

fn ids_with(report: &Report, status: Status) -> BTreeSet<String> {
    report
        .checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.to_string())
        .collect()
}

/// How fault `id`'s run deviated from "fails exactly its own check", if
/// it did: the unexpected verdicts with their summaries.
fn deviation(plan: &Plan, id: &str, report: &Report) -> Option<Vec<String>> {
    let failed = ids_with(report, Status::Fail);
    let errors = ids_with(report, Status::Error);
    let expected = plan.expected_failures(id);
    let tolerated = plan.expected_errors(id);
    let blind = ids_with(report, Status::Pass)
        .iter()
        .any(|p| tolerated.contains(p));
    let ok = failed.contains(id)
        && failed.is_subset(&expected)
        && errors.is_subset(&tolerated)
        && !blind;
    (!ok).then(|| {
        report
            .checks
            .iter()
            .filter(|c| {
                let check = c.id.as_str();
                (c.status == Status::Error && !tolerated.contains(check))
                    || (c.status == Status::Fail && !expected.contains(check))
                    || (c.status != Status::Fail && check == id)
                    || (c.status == Status::Pass && tolerated.contains(check))
            })
            .map(|c| format!("{} {}: {}", c.id, c.status, c.summary))
            .collect()
    })
}

/// One sweep of the rate-limit faults; the faults that deviated, each with
/// its unexpected verdicts.
fn sweep(runtime: &tokio::runtime::Runtime, out: &Path) -> Vec<(String, Vec<String>)> {
    let plan = Arc::new(Plan::builtin("flarelink-auth/v1").unwrap());
    let faults: Vec<&'static str> = registry::all()
        .iter()
        .filter(|c| c.area() == "ratelimit")
        .map(|c| c.id)
        .collect();
    let slots = Arc::new(tokio::sync::Semaphore::new(SWEEP_PARALLEL));
    let mut runs = tokio::task::JoinSet::new();
    for id in faults {
        let (slots, plan) = (slots.clone(), plan.clone());
        runs.spawn_on(
            async move {
                let _slot = slots.acquire_owned().await.unwrap();
                let options = FixtureOptions {
                    faults: vec![id.to_owned()],
                    ..demo::options()
                };
                let fixture = tokio::task::spawn_blocking(move || {
                    Fixture::start(&options, &events()).expect("the reference Worker starts")
                })
                .await
                .unwrap();
                let target = demo::target_for(fixture.info(), 604_800).expect("a target");
                let only: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
                let conform = Conform {
                    target: Arc::new(target),
                    plan,
                    selection: Selection::new(&only, &[]).unwrap(),
                    progress: Arc::new(flareproof::progress::Silent),
                };
                let report = conform.run().await.expect("conform runs").0;
                tokio::task::spawn_blocking(move || drop(fixture))
                    .await
                    .unwrap();
                (id, report)
            },
            runtime.handle(),
        );
    }
    let mut deviations = Vec::new();
    runtime.block_on(async {
        while let Some(run) = runs.join_next().await {
            unless_interrupted();
            let (id, report) = run.unwrap();
            std::fs::write(
                out.join(format!("{id}.json")),
                flareproof::report::json::render(&report),
            )
            .unwrap();
            if let Some(why) = deviation(&plan, id, &report) {
                deviations.push((id.to_owned(), why));
            }
        }
    });
    deviations.sort();
    deviations
}

/// N sweeps; the number that deviated.
fn sweeps(runtime: &tokio::runtime::Runtime, n: usize) -> usize {
    let out = out_dir("sweep");
    println!(
        "flake sweep: {n} sweeps of the rate-limit faults, {SWEEP_PARALLEL} Workers at a time, one core busy; reports in {}",
        out.display()
    );
    let mut bad = 0;
    for i in 1..=n {
        let dir = out.join(format!("sweep-{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        let started = Instant::now();
        let deviations = sweep(runtime, &dir);
        let took = started.elapsed().as_secs_f64();
        if deviations.is_empty() {
            println!("sweep {i}/{n}: every fault failed exactly its check ({took:.0} s)");
            continue;
        }
        bad += 1;
        println!(
            "sweep {i}/{n}: DEVIATED for {} fault(s) ({took:.0} s), reports in {}",
            deviations.len(),
            dir.display()
        );
        for (id, why) in deviations {
            println!("  FAULTS={id}:");
            for line in why {
                println!("    {line}");
            }
        }
    }
    println!("deviating sweeps: {bad} of {n}");
    bad
}

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mode = args.first().map(String::as_str).unwrap_or("conform");
    let n = |default: usize| match args.get(1) {
        None => default,
        Some(n) => n.parse().unwrap_or_else(|_| usage()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    stop_on_signal(&runtime);
    let busy = Busy::start();
    let bad = match mode {
        "conform" => conform_runs(n(20)),
        "sweep" => sweeps(&runtime, n(5)),
        _ => usage(),
    };
    drop(busy);
    std::process::exit(i32::from(bad > 0));
}
