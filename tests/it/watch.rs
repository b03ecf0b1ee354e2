//! `watch`: the poll against wiremock (what it costs, what it notices), and
//! the binary against the in-process stand-in API, whose scenario the test
//! switches while the watch runs. The verify runs are real rebuilds of the
//! reference Worker, so there are few of them: five in all.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flareproof::cloudflare::standin::StandIn;
use flareproof::cloudflare::{ApiError, Scenario, error_body};
use flareproof::compare::{Bundle, Module};
use flareproof::model::Secret;
use flareproof::watch::{
    Change, MIN_INTERVAL, Outcome, POLL_REQUESTS, RecordedVerdict, STATE_FORMAT, WatchState, diff,
    poll, save_state,
};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{REFERENCE_ACCOUNT, ensure_installed, fixtures_dir};
use crate::verify::{api, api_client, faithful, fast, mount};

const TOKEN: &str = "cf-test-token-Zk93hQ2mVx7LpR4sT8wY";
const TOKEN_ENV: &str = "FP_WATCH_CF_TOKEN";
const ACCOUNT_ENV: &str = "FP_WATCH_CF_ACCOUNT";
const RECIPE: &str = r#"["node", "build.mjs", "--outdir", "{out}"]"#;
/// Longer than any run here should take: a child still running then is
/// killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(240);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(dir: &Path, api_base: &str) -> PathBuf {
    let fixtures = fixtures_dir();
    ensure_installed(&fixtures, &|line| eprintln!("{line}")).expect("fixture dependencies");
    let text = format!(
        "# written by tests/it/watch.rs\n{}",
        crate::support::verify_section(&fixtures, RECIPE, api_base, TOKEN_ENV, ACCOUNT_ENV)
    );
    fs_err::create_dir_all(dir).unwrap();
    let path = dir.join("flareproof.toml");
    fs_err::write(&path, text).unwrap();
    path
}

/// `flareproof watch --config … --out … --json` and `extra`, with the
/// token and account in the environment, stdout piped.
fn watch(config: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    cmd.args(["watch", "--json", "--quiet", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env(TOKEN_ENV, TOKEN)
        .env(ACCOUNT_ENV, REFERENCE_ACCOUNT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A finished `watch`: its exit code, its events (every stdout line is one
/// JSON object), its stderr.
struct Ran {
    code: Option<i32>,
    events: Vec<Value>,
    stderr: String,
}

impl Ran {
    fn names(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect()
    }

    fn event(&self, name: &str) -> &Value {
        self.events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no `{name}` event in {:?}\n{}", self.names(), self.stderr))
    }
}

fn parse_events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not a JSON event ({e}): {line}"));
            assert!(event["event"].is_string(), "{line}");
            event
        })
        .collect()
}

fn assert_no_token(text: &str) {
    assert!(!text.contains(TOKEN), "the API token leaked: {text}");
}

/// Runs `cmd` to its end, killing it after [`DEADLINE`].
fn run(mut cmd: Command) -> Ran {
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("watch did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_no_token(&stdout);
    assert_no_token(&stderr);
    Ran {
        code: output.status.code(),
        events: parse_events(&stdout),
        stderr,
    }
}

/// The run folders under `out`, sorted.
fn run_folders(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return vec![];
    };
    let mut folders: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    folders.sort();
    folders
}

fn verdict_of(folder: &Path) -> String {
    let text = fs_err::read_to_string(folder.join("report.json")).unwrap();
    crate::schema::validate(text.as_bytes());
    let report: Value = serde_json::from_str(&text).unwrap();
    report["verdict"].as_str().unwrap().to_owned()
}

fn state_of(path: &Path) -> WatchState {
    serde_json::from_slice(&fs_err::read(path).unwrap()).unwrap()
}

/// The faithful deployment, redeployed: a new deployment of a new version
/// with the same code and settings.
fn redeployed(base: &Scenario, n: u8) -> Scenario {
    let mut s = base.clone();
    s.deployment_id = format!("5a1e7c3b-2d4f-4e6a-8b9c-0d1e2f3a4b{n:02}");
    s.versions[0].id = format!("9b3c2d1e-4f5a-4b6c-8d7e-1f2a3b4c5d{n:02}");
    s
}

/// A new deployment whose version adds a compatibility flag that is not
/// declared: settings-match fails.
fn tampered(base: &Scenario, n: u8) -> Scenario {
    let mut s = redeployed(base, n);
    s.versions[0]
        .compatibility_flags
        .push("streams_enable_constructors".into());
    s
}

/// The state a watch records after verifying what `standin` serves: read
/// with the library's own poll, as a previous run would have.
fn recorded_state(rt: &tokio::runtime::Runtime, standin: &StandIn, path: &Path) {
    let client = flareproof::cloudflare::Client::new(
        &standin.api_base(),
        flareproof::cloudflare::Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        fast(),
    )
    .unwrap();
    let observed = rt
        .block_on(poll(&client, "flarelink-auth", None))
        .expect("the stand-in answers the poll");
    let state = WatchState {
        format: STATE_FORMAT,
        script: "flarelink-auth".into(),
        seen_at: "2026-12-01T18:00:00Z".into(),
        observed,
        last_verify: RecordedVerdict {
            verdict: Outcome::Pass,
            report: "reports/earlier".into(),
            verified_at: "2026-12-01T18:00:09Z".into(),
        },
    };
    save_state(path, &state).unwrap();
}

// ---------------------------------------------------------------------------
// The poll, against wiremock.
// ---------------------------------------------------------------------------

fn small_scenario() -> Scenario {
    Scenario::single(
        REFERENCE_ACCOUNT,
        "flarelink-auth",
        Secret::new(TOKEN),
        Bundle::new(
            Some("worker.js".into()),
            vec![Module::new(
                "worker.js",
                Some("application/javascript+module"),
                b"export default {};".to_vec(),
            )],
        ),
        "2025-09-01",
        &[],
        vec![],
    )
}

#[tokio::test]
async fn a_poll_costs_at_most_its_requests_and_sees_settings_observers_and_ingress_change_in_place()
{
    let server = MockServer::start().await;
    let s = small_scenario();
    mount(&server, &s).await;
    let client = api_client(&server, fast());
    let first = poll(&client, &s.script, None).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    // The deployment, settings and observers, and the script's routes,
    // custom domains and workers.dev switch (the account subdomain only when
    // workers.dev or previews are on, the zone's routes only with a zone).
    let expected = if s.workers_dev || s.previews_enabled {
        8
    } else {
        7
    };
    assert_eq!(requests.len(), expected, "{requests:?}");
    assert!(requests.len() as u64 <= POLL_REQUESTS);
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().contains("/content") && !r.url.path().contains("/versions/")),
        "a poll downloads no module and reads no version"
    );
    assert_eq!(
        first.deployment.id.as_deref(),
        Some(s.deployment_id.as_str())
    );
    assert_eq!(
        first
            .deployment
            .annotations
            .get("workers/triggered_by")
            .map(String::as_str),
        Some("upload")
    );
    assert_eq!(first.deployment.source.as_deref(), Some("wrangler"));

    // Same deployment, a tail consumer and smart placement added in place.
    let mut changed = s.clone();
    changed.tail_consumers = vec!["log-collector".into()];
    changed.placement = Some(serde_json::json!({ "mode": "smart" }));
    // Preview URLs switched on: every uploaded version reachable, no new
    // deployment.
    changed.previews_enabled = true;
    server.reset().await;
    mount(&server, &changed).await;
    let second = poll(&client, &s.script, None).await.unwrap();
    let changes = diff(&first, &second);
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Observer { field, .. } if field == "tail_consumers")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Setting { field, .. } if field == "placement")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Ingress { field, .. } if field == "workers_dev")),
        "{changes:?}"
    );
    assert!(
        !changes
            .iter()
            .any(|c| matches!(c, Change::Deployment { .. })),
        "{changes:?}"
    );
}

#[tokio::test]
async fn a_poll_with_an_unexpected_shape_or_a_missing_read_is_an_error_naming_it() {
    let server = MockServer::start().await;
    let s = small_scenario();
    mount(&server, &s).await;
    let mut body = s.deployments_body();
    body["result"]["deployments"][0]["annotations"] = serde_json::json!("upload");
    Mock::given(method("GET"))
        .and(path(format!("{}/scripts/{}/deployments", api(), s.script)))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .with_priority(1)
        .mount(&server)
        .await;
    let client = api_client(&server, fast());
    let err = poll(&client, &s.script, None).await.unwrap_err();
    assert!(matches!(err.as_ref(), ApiError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("annotations"), "{err}");
    assert!(err.to_string().contains("/deployments"), "{err}");

    // The tails endpoint refused: the poll fails, it never says "no tails".
    server.reset().await;
    mount(&server, &s).await;
    Mock::given(method("GET"))
        .and(path(format!("{}/scripts/{}/tails", api(), s.script)))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error")),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let err = poll(&client, &s.script, None).await.unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(err.to_string().contains("/tails"), "{err}");
}

// ---------------------------------------------------------------------------
// The binary.
// ---------------------------------------------------------------------------

#[test]
fn once_verifies_a_first_run_then_only_a_change_and_exits_1_on_a_tampered_one() {
    let rt = runtime();
    let base = faithful();
    let standin = rt.block_on(StandIn::start(base.clone())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), standin.api_base().as_str());
    let out = tmp.path().join("reports");
    let state = tmp.path().join("watch-state.json");
    // Each run signs its attestation with the watch's key.
    let key = tmp.path().join("key.pem");
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let once = || {
        watch(
            &config,
            &out,
            &[
                "--once",
                "--state",
                state.to_str().unwrap(),
                "--sign-key",
                key.to_str().unwrap(),
            ],
        )
    };

    // Nothing recorded: the first run verifies.
    let ran = run(once());
    assert_eq!(ran.code, Some(0), "{:?}\n{}", ran.names(), ran.stderr);
    assert_eq!(
        ran.names(),
        ["started", "changed", "verified"],
        "{}",
        ran.stderr
    );
    assert_eq!(ran.event("changed")["changes"][0]["change"], "first_seen");
    let folders = run_folders(&out);
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert_eq!(verdict_of(&folders[0]), "pass");
    assert!(folders[0].join("attestation.json").is_file());
    assert!(folders[0].join("attestation.dsse.json").is_file());
    let name = folders[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.ends_with(&format!("-{}", base.deployment_id)),
        "{name}"
    );
    assert_eq!(name.find('T'), Some(8), "{name}");
    let recorded = state_of(&state);
    assert_eq!(recorded.last_verify.verdict, Outcome::Pass);
    assert_eq!(
        recorded.observed.deployment.id.as_deref(),
        Some(base.deployment_id.as_str())
    );
    let event_report = ran.event("verified")["report"].as_str().unwrap().to_owned();
    assert_eq!(Path::new(&event_report), folders[0].join("report.json"));

    // No change: no run, the state file byte for byte as it was.
    let before = fs_err::read(&state).unwrap();
    let ran = run(once());
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.names(), ["started", "unchanged"], "{}", ran.stderr);
    assert_eq!(run_folders(&out).len(), 1);
    assert_eq!(fs_err::read(&state).unwrap(), before);

    // A new deployment of a new version: verified, the state follows.
    let next = redeployed(&base, 2);
    standin.set(next.clone());
    let ran = run(once());
    assert_eq!(ran.code, Some(0), "{:?}\n{}", ran.names(), ran.stderr);
    let changes = &ran.event("changed")["changes"];
    let kinds: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["deployment", "version_added", "version_removed"],
        "{changes}"
    );
    assert_eq!(changes[0]["to"], next.deployment_id.as_str());
    assert_eq!(changes[1]["version_id"], next.versions[0].id.as_str());
    let folders = run_folders(&out);
    assert_eq!(folders.len(), 2, "{folders:?}");
    assert_eq!(verdict_of(&folders[1]), "pass");
    let recorded = state_of(&state);
    assert_eq!(
        recorded.observed.deployment.id.as_deref(),
        Some(next.deployment_id.as_str())
    );
    assert_eq!(recorded.last_verify.verdict, Outcome::Pass);

    // A tampered new deployment: exit 1, its report written and recorded.
    let bad = tampered(&base, 3);
    standin.set(bad.clone());
    let ran = run(once());
    assert_eq!(ran.code, Some(1), "{:?}\n{}", ran.names(), ran.stderr);
    assert_eq!(ran.event("verified")["verdict"], "fail");
    let folders = run_folders(&out);
    assert_eq!(folders.len(), 3, "{folders:?}");
    let failed = folders
        .iter()
        .find(|f| f.to_str().unwrap().ends_with(&bad.deployment_id))
        .expect("the tampered deployment's run folder");
    assert_eq!(verdict_of(failed), "fail");
    assert!(
        failed.join("attestation.dsse.json").is_file(),
        "a failed run is signed too"
    );
    let report: Value =
        serde_json::from_str(&fs_err::read_to_string(failed.join("report.json")).unwrap()).unwrap();
    let failing: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["verify.settings-match"]);
    let recorded = state_of(&state);
    assert_eq!(recorded.last_verify.verdict, Outcome::Fail);
    assert_eq!(Path::new(&recorded.last_verify.report), failed.as_path());

    // Unchanged since that failure: still exit 1, and no new run.
    let ran = run(once());
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(ran.names(), ["started", "unchanged"]);
    assert_eq!(ran.event("unchanged")["last_verdict"], "fail");
    assert_eq!(run_folders(&out).len(), 3);
}

#[test]
fn once_with_the_api_down_a_run_that_could_not_tell_or_a_bad_state_file_exits_2_and_leaves_the_state_alone()
 {
    let rt = runtime();
    let standin = rt.block_on(StandIn::start(faithful())).unwrap();
    let down = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
            .mount(&down),
    );
    let refused = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error")),
            )
            .mount(&refused),
    );
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    recorded_state(&rt, &standin, &state);
    let before = fs_err::read(&state).unwrap();
    let out = tmp.path().join("reports");

    for (name, server) in [("503", &down), ("403", &refused)] {
        let config = config(
            &tmp.path().join(name),
            &format!("{}/client/v4", server.uri()),
        );
        let ran = run(watch(
            &config,
            &out,
            &["--once", "--state", state.to_str().unwrap()],
        ));
        assert_eq!(
            ran.code,
            Some(2),
            "{name}: {:?}\n{}",
            ran.names(),
            ran.stderr
        );
        assert_eq!(ran.names(), ["started", "api_error"], "{name}");
        let event = ran.event("api_error");
        assert!(event["retry_in_s"].is_null(), "{event}");
        assert!(
            event["error"]
                .as_str()
                .unwrap()
                .contains(&format!("HTTP {name}")),
            "{event}"
        );
        if name == "403" {
            assert!(
                event["hint"]
                    .as_str()
                    .unwrap()
                    .contains("Workers Scripts Read"),
                "{event}"
            );
        }
        assert_eq!(fs_err::read(&state).unwrap(), before, "{name}");
        assert!(run_folders(&out).is_empty(), "{name}");
    }

    // The poll reads fine, the verify run cannot read the new version's
    // settings (403): it could not tell, so nothing is recorded, exit 2.
    let next = redeployed(&faithful(), 5);
    let half = rt.block_on(MockServer::start());
    rt.block_on(async {
        mount(&half, &next).await;
        Mock::given(method("GET"))
            .and(path(format!(
                "{}/scripts/{}/versions/{}",
                api(),
                next.script,
                next.versions[0].id
            )))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error")),
            )
            .with_priority(1)
            .mount(&half)
            .await;
    });
    let half_config = config(
        &tmp.path().join("half"),
        &format!("{}/client/v4", half.uri()),
    );
    let ran = run(watch(
        &half_config,
        &out,
        &["--once", "--state", state.to_str().unwrap()],
    ));
    assert_eq!(ran.code, Some(2), "{:?}\n{}", ran.names(), ran.stderr);
    assert_eq!(ran.names(), ["started", "changed", "verify_error"]);
    let event = ran.event("verify_error");
    assert!(event["retry_in_s"].is_null(), "{event}");
    assert_eq!(fs_err::read(&state).unwrap(), before);
    let folders = run_folders(&out);
    assert_eq!(folders.len(), 1, "the run's folder, kept: {folders:?}");
    if folders[0].join("report.json").exists() {
        assert_ne!(verdict_of(&folders[0]), "pass");
    }
    fs_err::remove_dir_all(&out).unwrap();

    // A state file that is not one is an error, not a first run: nothing is
    // read, verified or overwritten.
    let config = config(&tmp.path().join("faithful"), standin.api_base().as_str());
    for bad in [
        "",
        "{\"format\": 1, \"script\": \"flarelink-auth\"}",
        "not json",
    ] {
        fs_err::write(&state, bad).unwrap();
        let ran = run(watch(
            &config,
            &out,
            &["--once", "--state", state.to_str().unwrap()],
        ));
        assert_eq!(ran.code, Some(2), "{bad:?}: {}", ran.stderr);
        assert!(ran.events.is_empty(), "{bad:?}: {:?}", ran.names());
        assert!(ran.stderr.contains("not a watch state"), "{}", ran.stderr);
        assert_eq!(fs_err::read_to_string(&state).unwrap(), bad);
        assert!(run_folders(&out).is_empty());
    }
}

/// A running `watch` whose events arrive, timestamped, on a channel.
struct Live {
    child: Child,
    events: mpsc::Receiver<(Instant, Value)>,
    seen: Vec<Value>,
    stderr: tempfile::NamedTempFile,
}

impl Live {
    fn start(mut cmd: Command) -> Live {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut child = cmd.stderr(stderr.reopen().unwrap()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                assert_no_token(&line);
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
                if tx.send((Instant::now(), event)).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            events,
            seen: vec![],
            stderr,
        }
    }

    /// The next `name` event and when it came; fails (killing the child) if
    /// none comes within `within`.
    fn wait_for(&mut self, name: &str, within: Duration) -> (Instant, Value) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, event)) => {
                    self.seen.push(event.clone());
                    if event["event"] == name {
                        return (at, event);
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no `{name}` event within {within:?}; saw {:?}\n{}",
                        self.seen,
                        self.stderr()
                    );
                }
            }
        }
    }

    /// The exit code; fails (killing the child) after `within`.
    fn exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "watch still running after {within:?}; saw {:?}\n{}",
                    self.seen,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The events still to read, after the child exited.
    fn rest(&mut self) -> Vec<Value> {
        let rest: Vec<Value> = self
            .events
            .recv_timeout(Duration::from_secs(5))
            .into_iter()
            .chain(self.events.try_iter())
            .map(|(_, e)| e)
            .collect();
        self.seen.extend(rest.clone());
        rest
    }

    /// What the watch (and its runs) wrote to stderr so far.
    fn stderr(&self) -> String {
        let text = fs_err::read_to_string(self.stderr.path()).unwrap_or_default();
        assert_no_token(&text);
        text
    }

    fn terminate(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_interval_watch_stops_with_exit_1_soon_after_a_tamper_is_switched_on() {
    let rt = runtime();
    let base = faithful();
    let standin = rt.block_on(StandIn::start(base.clone())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), standin.api_base().as_str());
    let out = tmp.path().join("reports");
    let state = tmp.path().join("state.json");
    recorded_state(&rt, &standin, &state);

    let mut live = Live::start(watch(
        &config,
        &out,
        &[
            "--interval",
            "1",
            "--exit-on-fail",
            "--state",
            state.to_str().unwrap(),
        ],
    ));
    let (_, started) = live.wait_for("started", Duration::from_secs(30));
    // 1 s asked; the requests of a poll keep it to MIN_INTERVAL.
    assert_eq!(started["asked_interval_s"], 1);
    assert_eq!(started["interval_s"], MIN_INTERVAL.as_secs());
    assert_eq!(started["clamped"], true);
    assert_eq!(
        started["requests_per_5_min"],
        flareproof::watch::Interval::clamp(1).requests_per_window()
    );
    let interval = MIN_INTERVAL;
    live.wait_for("unchanged", Duration::from_secs(30));
    let (first, _) = live.wait_for("unchanged", Duration::from_secs(30));
    let (second, _) = live.wait_for("unchanged", Duration::from_secs(30));
    let apart = second - first;
    assert!(
        apart >= interval - Duration::from_millis(100) && apart < interval * 2,
        "polls {apart:?} apart"
    );
    assert!(
        run_folders(&out).is_empty(),
        "nothing changed, nothing verified"
    );

    let bad = tampered(&base, 4);
    standin.set(bad.clone());
    let switched = Instant::now();
    let (noticed, changed) = live.wait_for("changed", interval * 2 + Duration::from_secs(1));
    assert!(
        noticed - switched <= interval * 2 + Duration::from_millis(500),
        "noticed {:?} after the switch",
        noticed - switched
    );
    assert_eq!(changed["deployment"], bad.deployment_id.as_str());
    let (_, verified) = live.wait_for("verified", DEADLINE);
    assert_eq!(verified["verdict"], "fail");
    assert_eq!(live.exit(Duration::from_secs(10)), Some(1));
    assert!(
        live.rest().iter().all(|e| e["event"] != "unchanged"),
        "it stopped at the failure"
    );
    let report = PathBuf::from(verified["report"].as_str().unwrap());
    assert_eq!(verdict_of(report.parent().unwrap()), "fail");
    assert_eq!(state_of(&state).last_verify.verdict, Outcome::Fail);
}

#[test]
fn sigterm_lets_a_verify_run_finish_and_record_then_stops_and_between_polls_stops_at_once() {
    let rt = runtime();
    let standin = rt.block_on(StandIn::start(faithful())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), standin.api_base().as_str());
    let out = tmp.path().join("reports");
    let state_dir = tmp.path().join("state");
    fs_err::create_dir_all(&state_dir).unwrap();
    let state = state_dir.join("state.json");
    let args = ["--interval", "2", "--state", state.to_str().unwrap()];

    // Nothing recorded: the first poll starts a verify run; SIGTERM during
    // it lets it finish and the verdict be recorded, then the watch stops.
    let mut live = Live::start(watch(&config, &out, &args));
    live.wait_for("changed", Duration::from_secs(30));
    live.terminate();
    let (_, verified) = live.wait_for("verified", DEADLINE);
    assert_eq!(verified["verdict"], "pass");
    let (_, stopped) = live.wait_for("stopped", Duration::from_secs(10));
    assert_eq!(stopped["signal"], "SIGTERM");
    assert_eq!(stopped["when"], "after the verify run");
    assert_eq!(live.exit(Duration::from_secs(10)), Some(0));
    let recorded = state_of(&state);
    assert_eq!(recorded.last_verify.verdict, Outcome::Pass);
    let folders = run_folders(&out);
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert_eq!(verdict_of(&folders[0]), "pass");
    assert!(folders[0].join("attestation.json").is_file());
    let left: Vec<_> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        [std::ffi::OsString::from("state.json")],
        "no temporary file left"
    );
    drop(live);

    // Recorded and unchanged: SIGTERM between polls stops it at once,
    // the state file as it was.
    let before = fs_err::read(&state).unwrap();
    let mut live = Live::start(watch(&config, &out, &args));
    live.wait_for("unchanged", Duration::from_secs(30));
    let sent = Instant::now();
    live.terminate();
    let (_, stopped) = live.wait_for("stopped", Duration::from_secs(10));
    assert_eq!(stopped["when"], "between polls");
    assert_eq!(live.exit(Duration::from_secs(10)), Some(0));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(fs_err::read(&state).unwrap(), before);
    assert_eq!(run_folders(&out).len(), 1);
}

#[test]
fn ctrl_c_to_the_whole_process_group_does_not_cut_a_verify_run_short() {
    use std::os::unix::process::CommandExt as _;
    let rt = runtime();
    let standin = rt.block_on(StandIn::start(faithful())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), standin.api_base().as_str());
    let out = tmp.path().join("reports");
    let state = tmp.path().join("state.json");
    // As a terminal runs it: in a process group of its own, which Ctrl-C
    // signals as a whole.
    let mut cmd = watch(&config, &out, &["--state", state.to_str().unwrap()]);
    cmd.process_group(0);
    let mut live = Live::start(cmd);
    live.wait_for("changed", Duration::from_secs(30));
    let group = nix::unistd::Pid::from_raw(live.child.id() as i32);
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT).unwrap();
    // The run (and its build recipe) did not hear it: it passes.
    let (_, verified) = live.wait_for("verified", DEADLINE);
    assert_eq!(verified["verdict"], "pass", "{}", live.stderr());
    let (_, stopped) = live.wait_for("stopped", Duration::from_secs(10));
    assert_eq!(stopped["signal"], "SIGINT");
    assert_eq!(live.exit(Duration::from_secs(10)), Some(0));
    assert_eq!(state_of(&state).last_verify.verdict, Outcome::Pass);
}

#[test]
fn an_api_outage_is_retried_with_a_growing_backoff_and_never_ends_the_watch() {
    let rt = runtime();
    let base = faithful();
    let standin = rt.block_on(StandIn::start(base.clone())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    recorded_state(&rt, &standin, &state);
    let before = fs_err::read(&state).unwrap();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
            .mount(&server),
    );
    let config = config(tmp.path(), &format!("{}/client/v4", server.uri()));
    let out = tmp.path().join("reports");
    let mut live = Live::start(watch(
        &config,
        &out,
        &[
            "--interval",
            "1",
            "--exit-on-fail",
            "--state",
            state.to_str().unwrap(),
        ],
    ));
    let (_, first) = live.wait_for("api_error", Duration::from_secs(60));
    let (_, second) = live.wait_for("api_error", Duration::from_secs(60));
    assert_eq!(first["retry_in_s"], MIN_INTERVAL.as_secs(), "{first}");
    assert_eq!(second["retry_in_s"], MIN_INTERVAL.as_secs() * 2, "{second}");
    assert!(
        first["error"].as_str().unwrap().contains("HTTP 503"),
        "{first}"
    );
    assert!(
        live.child.try_wait().unwrap().is_none(),
        "the watch goes on"
    );
    // The API is back: the same deployment, unchanged; nothing was verified
    // or recorded meanwhile.
    rt.block_on(async {
        server.reset().await;
        mount(&server, &base).await;
    });
    let (_, unchanged) = live.wait_for("unchanged", Duration::from_secs(60));
    assert_eq!(unchanged["last_verdict"], "pass");
    assert!(
        live.seen
            .iter()
            .all(|e| e["event"] != "verified" && e["event"] != "changed"),
        "{:?}",
        live.seen
    );
    assert_eq!(fs_err::read(&state).unwrap(), before);
    assert!(run_folders(&out).is_empty());
}

/// Preview URLs switched on with no new deployment: the poll sees the
/// ingress change, and the verify run it starts fails `verify.ingress`.
#[test]
fn preview_urls_switched_on_in_place_are_a_change_verified_as_a_failure() {
    let rt = runtime();
    let base = faithful();
    let standin = rt.block_on(StandIn::start(base.clone())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), standin.api_base().as_str());
    let out = tmp.path().join("reports");
    let state = tmp.path().join("state.json");
    recorded_state(&rt, &standin, &state);
    let once = || {
        watch(
            &config,
            &out,
            &["--once", "--state", state.to_str().unwrap()],
        )
    };
    let ran = run(once());
    assert_eq!(ran.names(), ["started", "unchanged"], "{}", ran.stderr);

    let mut previews = base.clone();
    previews.previews_enabled = true;
    standin.set(previews);
    let ran = run(once());
    assert_eq!(ran.code, Some(1), "{:?}\n{}", ran.names(), ran.stderr);
    let changes = ran.event("changed")["changes"].as_array().unwrap().clone();
    assert!(
        changes
            .iter()
            .any(|c| c["change"] == "ingress" && c["field"] == "workers_dev"),
        "{changes:?}"
    );
    assert!(
        changes.iter().all(|c| c["change"] == "ingress"),
        "no deployment, version or setting changed: {changes:?}"
    );
    let folders = run_folders(&out);
    assert_eq!(folders.len(), 1, "{folders:?}");
    let report: Value =
        serde_json::from_str(&fs_err::read_to_string(folders[0].join("report.json")).unwrap())
            .unwrap();
    let ingress = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "verify.ingress")
        .unwrap();
    assert_eq!(ingress["status"], "fail", "{ingress}");
    assert_eq!(state_of(&state).last_verify.verdict, Outcome::Fail);
}
