//! `verify`: the reference Worker rebuilt and compared with a stand-in
//! Cloudflare API (the in-process stand-in for the binary, wiremock for API
//! faults); tampers, exit codes, evidence, secrets; proptests for the
//! multipart parser and the comparison.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flareproof::checks::verify::{self as checks, Inputs};
use flareproof::cloudflare::standin::StandIn;
use flareproof::cloudflare::{
    ApiError, Client, Credentials, RetryPolicy, Scenario, ScenarioVersion, error_body, fetch_live,
    multipart,
};
use flareproof::compare::{Bundle, DeployedBinding, Module, compare_modules, first_difference};
use flareproof::model::{CheckResult, Evidence, Report, Secret, Status};
use flareproof::plan::Plan;
use flareproof::rebuild::{Rebuild, Variation, rebuild, run_recipe};
use proptest::prelude::*;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    REFERENCE_ACCOUNT, ensure_installed, fixtures_dir, reference_scenario, reference_verify_target,
};

pub(crate) const TOKEN: &str = "cf-test-token-Zk93hQ2mVx7LpR4sT8wY";
const TOKEN_ENV: &str = "FP_TEST_CF_TOKEN";
const ACCOUNT_ENV: &str = "FP_TEST_CF_ACCOUNT";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a thread of its own, so that it may start a runtime even
/// when called from async tests.
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .expect("the helper thread panicked")
}

fn installed_fixtures() -> PathBuf {
    let dir = fixtures_dir();
    ensure_installed(&dir, &|line| eprintln!("{line}")).expect("fixture dependencies install");
    dir
}

/// The reference Worker built once: what "was deployed".
pub(crate) fn deployed_bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = installed_fixtures();
        let target = reference_verify_target(&dir, url::Url::parse("http://x.test/").unwrap());
        let tmp = tempfile::tempdir().unwrap();
        off_runtime(move || {
            runtime()
                .block_on(run_recipe(
                    &target.recipe,
                    &Variation::baseline(),
                    tmp.path(),
                ))
                .expect("the reference Worker builds")
                .bundle
        })
    })
}

/// The reference Worker rebuilt once (twice, varied), for library-level tests.
pub(crate) fn shared_rebuild() -> &'static Rebuild {
    static REBUILD: OnceLock<Rebuild> = OnceLock::new();
    REBUILD.get_or_init(|| {
        let dir = installed_fixtures();
        let target = reference_verify_target(&dir, url::Url::parse("http://x.test/").unwrap());
        off_runtime(move || {
            runtime()
                .block_on(rebuild(&target.recipe, false))
                .expect("the reference Worker rebuilds")
        })
    })
}

pub(crate) fn faithful() -> Scenario {
    reference_scenario(deployed_bundle().clone(), Secret::new(TOKEN))
}

/// The same bundle with one byte changed in the middle of `worker.js`.
pub(crate) fn one_byte_changed(bundle: &Bundle) -> (Bundle, usize) {
    let mut b = bundle.clone();
    let m = b.module_mut("worker.js").unwrap();
    let at = m.bytes.len() / 2;
    m.bytes[at] = if m.bytes[at] == b'x' { b'y' } else { b'x' };
    (b, at)
}

fn config(dir: &Path, api_base: &str, extra: &str, recipe: &str) -> PathBuf {
    let text = format!(
        "# written by tests/it/verify.rs\n{}{extra}\n",
        crate::support::verify_section(
            &installed_fixtures(),
            recipe,
            api_base,
            TOKEN_ENV,
            ACCOUNT_ENV
        )
    );
    fs_err::create_dir_all(dir).unwrap();
    let path = dir.join("flareproof.toml");
    fs_err::write(&path, text).unwrap();
    path
}

const REFERENCE_RECIPE: &str = r#"["node", "build.mjs", "--outdir", "{out}"]"#;

pub(crate) struct CliRun {
    pub(crate) output: Output,
    pub(crate) report: Report,
    pub(crate) report_text: String,
    pub(crate) attestation: String,
}

fn verify_cli(dir: &Path, api_base: &str, extra: &str, recipe: &str, token: &str) -> CliRun {
    verify_cli_with(dir, api_base, extra, recipe, token, |c| c)
}

/// [`verify_cli`] of the reference recipe with more arguments or
/// environment (`more` adds them to the command).
pub(crate) fn reference_verify_cli(
    dir: &Path,
    api_base: &str,
    more: impl FnOnce(&mut Command) -> &mut Command,
) -> CliRun {
    verify_cli_with(dir, api_base, "", REFERENCE_RECIPE, TOKEN, more)
}

pub(crate) fn verify_cli_with(
    dir: &Path,
    api_base: &str,
    extra: &str,
    recipe: &str,
    token: &str,
    more: impl FnOnce(&mut Command) -> &mut Command,
) -> CliRun {
    let config = config(dir, api_base, extra, recipe);
    let out = dir.join("out");
    let mut command = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    command
        .args(["verify", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out);
    let output = more(&mut command)
        .env(TOKEN_ENV, token)
        .env(ACCOUNT_ENV, REFERENCE_ACCOUNT)
        .output()
        .unwrap();
    let report_text = fs_err::read_to_string(out.join("report.json")).unwrap_or_else(|_| {
        panic!(
            "no report.json; stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    crate::schema::validate(report_text.as_bytes());
    CliRun {
        report: serde_json::from_str(&report_text).unwrap(),
        attestation: fs_err::read_to_string(out.join("attestation.json")).unwrap(),
        report_text,
        output,
    }
}

fn ids(report: &Report, status: Status) -> Vec<&str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.as_str())
        .collect()
}

fn check<'a>(report: &'a Report, id: &str) -> &'a CheckResult {
    report.checks.iter().find(|c| c.id.as_str() == id).unwrap()
}

fn assert_no_token(run: &CliRun, token: &str, what: &str) {
    for (name, text) in [
        ("report.json", run.report_text.clone()),
        ("attestation.json", run.attestation.clone()),
        (
            "stdout",
            String::from_utf8_lossy(&run.output.stdout).into_owned(),
        ),
        (
            "stderr",
            String::from_utf8_lossy(&run.output.stderr).into_owned(),
        ),
    ] {
        assert!(
            !text.contains(token),
            "{what}: the API token leaked into {name}"
        );
    }
}

/// The tampers of the issue: each must fail exactly one check.
fn tampers() -> Vec<(&'static str, Scenario, &'static str)> {
    let base = faithful();
    let (changed, _) = one_byte_changed(deployed_bundle());
    let mut out = Vec::new();

    let mut s = base.clone();
    s.versions[0].bundle = changed.clone();
    out.push(("one byte changed", s, checks::MODULES_MATCH));

    let mut s = base.clone();
    s.versions[0].bundle.insert(Module::new(
        "extra.js",
        Some("application/javascript+module"),
        b"export const beacon = 'https://collector.example';".to_vec(),
    ));
    out.push(("extra module", s, checks::MODULES_MATCH));

    let mut s = base.clone();
    s.versions[0]
        .compatibility_flags
        .push("streams_enable_constructors".into());
    out.push(("added compatibility flag", s, checks::SETTINGS_MATCH));

    let mut s = base.clone();
    s.versions[0].bindings.push(DeployedBinding {
        name: "EXFIL".into(),
        kind: "service".into(),
        target: Some("collector".into()),
        value: None,
    });
    out.push(("added binding", s, checks::SETTINGS_MATCH));

    let mut s = base.clone();
    s.placement = Some(serde_json::json!({ "mode": "smart" }));
    out.push(("placement smart", s, checks::SETTINGS_MATCH));

    let mut s = base.clone();
    s.versions[0]
        .bundle
        .module_mut("worker.js")
        .unwrap()
        .content_type = Some("application/javascript".into());
    out.push(("worker.js served as CommonJS", s, checks::SETTINGS_MATCH));

    let mut s = base.clone();
    s.streaming_tail_consumers = vec!["stream-collector".into()];
    out.push((
        "streaming tail consumer",
        s,
        checks::NO_UNDECLARED_OBSERVERS,
    ));

    let mut s = base.clone();
    s.tail_consumers = vec!["log-collector".into()];
    out.push(("tail consumer", s, checks::NO_UNDECLARED_OBSERVERS));

    let mut s = base.clone();
    s.routes = vec!["auth.example.test/*".into()];
    out.push(("undeclared route", s, checks::INGRESS));

    let mut s = base.clone();
    s.versions[0].percentage = 90.0;
    let mut canary: ScenarioVersion = s.versions[0].clone();
    canary.id = "0c0ffee0-aaaa-4bbb-8ccc-000000000010".into();
    canary.percentage = 10.0;
    canary.bundle = changed;
    s.versions.push(canary);
    out.push(("90/10 gradual deployment", s, checks::LIVE_VERSIONS));

    let mut s = base.clone();
    if let Some(deps) = s.versions[0].package_dependencies.as_mut() {
        deps.iter_mut()
            .filter(|d| d.name == "hono")
            .for_each(|d| d.installed_version = "4.13.18".into());
    }
    out.push(("dependency off the lockfile", s, checks::PROVENANCE));
    out
}

#[test]
fn the_binary_passes_a_faithful_deployment_and_fails_each_tamper_on_its_own_check() {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, Scenario, Option<&str>, &str)> =
        vec![("faithful".into(), faithful(), None, REFERENCE_RECIPE)];
    for (name, scenario, id) in tampers() {
        cases.push((name.into(), scenario, Some(id), REFERENCE_RECIPE));
    }
    // A rebuild with a second module the deployment lacks: missing module.
    let two_modules = r#"["sh", "-c", "node build.mjs --outdir \"$1\" && rm \"$1/manifest.json\" && printf 'export const v = 1;' > \"$1/version.mjs\"", "sh", "{out}"]"#;
    cases.push((
        "missing module".into(),
        faithful(),
        Some(checks::MODULES_MATCH),
        two_modules,
    ));
    let standins: Vec<StandIn> = cases
        .iter()
        .map(|(_, s, _, _)| rt.block_on(StandIn::start(s.clone())).unwrap())
        .collect();
    let runs: Vec<CliRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .zip(&standins)
            .enumerate()
            .map(|(i, ((name, _, _, recipe), standin))| {
                let dir = tmp.path().join(format!("case-{i}"));
                let base = standin.api_base().to_string();
                let extra = if name == "missing module" {
                    "main_module = \"worker.js\""
                } else {
                    ""
                };
                scope.spawn(move || verify_cli(&dir, &base, extra, recipe, TOKEN))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((name, _, expected, _), run) in cases.iter().zip(&runs) {
        assert_no_token(run, TOKEN, name);
        let stderr = String::from_utf8_lossy(&run.output.stderr);
        match expected {
            None => {
                assert_eq!(run.output.status.code(), Some(0), "{name}: {stderr}");
                assert_eq!(
                    ids(&run.report, Status::Pass).len(),
                    checks::IDS.len(),
                    "{name}"
                );
                let att: serde_json::Value = serde_json::from_str(&run.attestation).unwrap();
                assert_eq!(att["_type"], "https://in-toto.io/Statement/v1");
                assert_eq!(att["predicate"]["verdict"], "pass");
                assert_eq!(
                    att["subject"][0]["digest"]["sha256"],
                    deployed_bundle().module("worker.js").unwrap().sha256()
                );
                assert!(att["predicate"]["toolchain"]["lockfile"]["sha256"].is_string());
            }
            Some(id) => {
                assert_eq!(run.output.status.code(), Some(1), "{name}: {stderr}");
                assert_eq!(ids(&run.report, Status::Fail), vec![*id], "{name}");
                assert_eq!(
                    ids(&run.report, Status::Pass).len(),
                    checks::IDS.len() - 1,
                    "{name}"
                );
                assert!(!check(&run.report, id).evidence.is_empty(), "{name}");
                let stdout = String::from_utf8_lossy(&run.output.stdout);
                assert!(stdout.contains(&format!("FAIL {id}")), "{name}: {stdout}");
            }
        }
    }
    // The evidence says what differs, where.
    let by_name = |n: &str| &runs[cases.iter().position(|c| c.0 == n).unwrap()].report;
    let (_, at) = one_byte_changed(deployed_bundle());
    let modules = check(by_name("one byte changed"), checks::MODULES_MATCH);
    assert!(
        modules
            .summary
            .contains(&format!("`worker.js` differs from byte {at}")),
        "{}",
        modules.summary
    );
    let diff = modules
        .evidence
        .iter()
        .find_map(|e| match e {
            Evidence::Diff(d) => Some(d),
            _ => None,
        })
        .expect("a diff");
    assert_eq!(diff.offset, at as u64);
    assert!(
        diff.unified.lines().any(|l| l.starts_with('+')),
        "{}",
        diff.unified
    );
    assert!(diff.unified.lines().all(|l| l.chars().count() < 200));
    let extra = check(by_name("extra module"), checks::MODULES_MATCH);
    assert!(extra.summary.contains("`extra.js`"), "{}", extra.summary);
    let missing = check(by_name("missing module"), checks::MODULES_MATCH);
    assert!(
        missing
            .summary
            .contains("missing from the deployment: `version.mjs`"),
        "{}",
        missing.summary
    );
    let flag = check(by_name("added compatibility flag"), checks::SETTINGS_MATCH);
    assert!(
        flag.summary.contains("streams_enable_constructors"),
        "{}",
        flag.summary
    );
    let binding = check(by_name("added binding"), checks::SETTINGS_MATCH);
    assert!(binding.summary.contains("`EXFIL`"), "{}", binding.summary);
    let route = check(by_name("undeclared route"), checks::INGRESS);
    assert!(
        route.summary.contains("route `auth.example.test/*`"),
        "{}",
        route.summary
    );
    let tail = check(by_name("tail consumer"), checks::NO_UNDECLARED_OBSERVERS);
    assert!(tail.summary.contains("log-collector"), "{}", tail.summary);
    let gradual = check(by_name("90/10 gradual deployment"), checks::LIVE_VERSIONS);
    assert!(
        gradual
            .summary
            .contains("0c0ffee0-aaaa-4bbb-8ccc-000000000010 (10%)"),
        "{}",
        gradual.summary
    );
    let dependency = check(by_name("dependency off the lockfile"), checks::PROVENANCE);
    assert!(
        dependency
            .summary
            .contains("`hono` installed 4.13.18, the lockfile pins 4.13.19"),
        "{}",
        dependency.summary
    );
}

#[test]
fn the_binary_exits_2_with_a_permission_hint_when_the_token_is_refused() {
    let rt = runtime();
    let server = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error")),
            )
            .mount(&server),
    );
    let tmp = tempfile::tempdir().unwrap();
    let wrong = "cf-wrong-token-Qa81Lm2Nc7Xv";
    let base = format!("{}/client/v4", server.uri());
    let run = verify_cli(tmp.path(), &base, "", REFERENCE_RECIPE, wrong);
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert_eq!(run.output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: read `"), "{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    assert!(stderr.contains("Workers Scripts Read"), "{stderr}");
    assert_eq!(
        check(&run.report, checks::MODULES_MATCH).status,
        Status::Error,
        "never a match"
    );
    assert_eq!(ids(&run.report, Status::Fail), Vec::<&str>::new());
    assert_eq!(
        check(&run.report, checks::REBUILD_DETERMINISTIC).status,
        Status::Pass,
        "the rebuild is judged even when the API cannot be read"
    );
    assert_no_token(&run, wrong, "auth error");
    // The request did carry the token: the redaction is what kept it out.
    let requests = rt.block_on(server.received_requests()).unwrap();
    assert!(requests.iter().all(|r| {
        r.headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {wrong}"))
    }));
}

#[test]
fn a_nondeterministic_recipe_fails_rebuild_deterministic_naming_module_offset_and_cause() {
    let rt = runtime();
    let standin = rt.block_on(StandIn::start(faithful())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let run = verify_cli(
        tmp.path(),
        standin.api_base().as_str(),
        "env = { FAULTS = \"verify.rebuild-deterministic\" }",
        REFERENCE_RECIPE,
        TOKEN,
    );
    assert_eq!(run.output.status.code(), Some(1));
    // `[verify].env` is recorded by name only: a value may be a secret.
    let attestation: serde_json::Value = serde_json::from_str(&run.attestation).unwrap();
    assert_eq!(
        attestation["predicate"]["recipe"]["env"],
        serde_json::json!(["FAULTS"])
    );
    let c = check(&run.report, checks::REBUILD_DETERMINISTIC);
    assert_eq!(c.status, Status::Fail, "{}", c.summary);
    assert!(
        c.summary
            .contains("`worker.js` differs between the two builds from byte"),
        "{}",
        c.summary
    );
    assert!(c.summary.contains("run to run"), "{}", c.summary);
    let diff = c
        .evidence
        .iter()
        .find_map(|e| match e {
            Evidence::Diff(d) => Some(d),
            _ => None,
        })
        .expect("a diff");
    assert!(
        diff.unified.contains("verify.rebuild-determini"),
        "{}",
        diff.unified
    );
    assert!(
        diff.unified.lines().any(|l| l.starts_with('-')),
        "{}",
        diff.unified
    );
    assert_no_token(&run, TOKEN, "nondeterministic");
}

// ---------------------------------------------------------------------------
// API faults, with wiremock serving the recorded shapes.
// ---------------------------------------------------------------------------

pub(crate) fn api() -> String {
    format!("/client/v4/accounts/{REFERENCE_ACCOUNT}/workers")
}

pub(crate) async fn mount(server: &MockServer, s: &Scenario) {
    let base = api();
    let script = &s.script;
    let ok = |body: serde_json::Value| ResponseTemplate::new(200).set_body_json(body);
    Mock::given(method("GET"))
        .and(path(format!("{base}/scripts/{script}/deployments")))
        .respond_with(ok(s.deployments_body()))
        .mount(server)
        .await;
    for v in &s.versions {
        Mock::given(method("GET"))
            .and(path(format!("{base}/scripts/{script}/versions/{}", v.id)))
            .respond_with(ok(s.version_body(&v.id).unwrap()))
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{base}/workers/{script}/versions/{}", v.id)))
            .and(query_param("include", "modules"))
            .respond_with(ok(s.version_modules_body(&v.id).unwrap()))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(format!("{base}/scripts/{script}/settings")))
        .respond_with(ok(s.settings_body()))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/scripts/{script}/tails")))
        .respond_with(ok(s.tails_body()))
        .mount(server)
        .await;
    crate::ingress::mount_ingress(server, s).await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/scripts/{script}/script-settings")))
        .respond_with(ok(s.script_settings_body()))
        .mount(server)
        .await;
    if let Some((ct, entry, body)) = s.content_v2() {
        Mock::given(method("GET"))
            .and(path(format!("{base}/scripts/{script}/content/v2")))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", ct.as_str())
                    .insert_header("cf-entrypoint", entry.as_str())
                    .set_body_bytes(body),
            )
            .mount(server)
            .await;
    }
}

pub(crate) fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        backoff: Duration::from_millis(20),
        retry_after_cap: Duration::from_secs(60),
        timeout: Duration::from_secs(20),
    }
}

pub(crate) fn api_client(server: &MockServer, retry: RetryPolicy) -> Client {
    Client::new(
        &url::Url::parse(&format!("{}/client/v4", server.uri())).unwrap(),
        Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        retry,
    )
    .unwrap()
}

/// The beta modules endpoint answers 404 for the first version, so the
/// client falls back to the multipart download.
async fn refuse_beta_modules(server: &MockServer, s: &Scenario) {
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/workers/{}/versions/{}",
            api(),
            s.script,
            s.versions[0].id
        )))
        .respond_with(ResponseTemplate::new(404).set_body_json(error_body(10007, "not found")))
        .with_priority(1)
        .mount(server)
        .await;
}

/// The result of check `id`.
fn result_of<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.id.as_str() == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

/// Reads the stand-in through `client` and judges it against the shared
/// rebuild.
async fn judge(
    client: &Client,
) -> (
    Result<flareproof::cloudflare::Live, ApiError>,
    Vec<CheckResult>,
) {
    let target =
        reference_verify_target(&fixtures_dir(), url::Url::parse("http://x.test/").unwrap());
    let live = fetch_live(client, "flarelink-auth").await;
    let exchanges = client.transcript();
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let results = checks::run(
        &Inputs {
            target: &target,
            rebuild: Ok(shared_rebuild()),
            live: live.as_ref(),
            exchanges: &exchanges,
            rebuild_ms: 0,
            fetch_ms: 0,
            base_url: None,
        },
        &plan,
    );
    (live, results)
}

fn status_of(results: &[CheckResult], id: &str) -> Status {
    results.iter().find(|c| c.id.as_str() == id).unwrap().status
}

#[tokio::test]
async fn http_429_waits_for_retry_after_then_succeeds() {
    let _ = shared_rebuild();
    let server = MockServer::start().await;
    let s = faithful();
    Mock::given(method("GET"))
        .and(path(format!("{}/scripts/{}/deployments", api(), s.script)))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(error_body(10429, "rate limited")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let client = api_client(&server, fast());
    let started = Instant::now();
    let (live, results) = judge(&client).await;
    assert!(live.is_ok(), "{:?}", live.err());
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert!(
        results.iter().all(|r| r.status == Status::Pass),
        "{results:#?}"
    );
    let deployments = client.exchanges("deployments");
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0].response.as_ref().unwrap().status, 429);

    // A Retry-After beyond the cap is cut to the cap.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/scripts/{}/deployments", api(), s.script)))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let capped = RetryPolicy {
        retry_after_cap: Duration::from_millis(100),
        ..fast()
    };
    let started = Instant::now();
    let (live, _) = judge(&api_client(&server, capped)).await;
    assert!(live.is_ok());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn http_502_is_retried_and_endless_5xx_is_an_error_never_a_match() {
    let _ = shared_rebuild();
    let server = MockServer::start().await;
    let s = faithful();
    let id = s.versions[0].id.clone();
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/workers/{}/versions/{id}",
            api(),
            s.script
        )))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let client = api_client(&server, fast());
    let (_, results) = judge(&client).await;
    assert_eq!(status_of(&results, checks::MODULES_MATCH), Status::Pass);
    assert_eq!(
        client.exchanges(&format!("modules of version {id}")).len(),
        2
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/workers/{}/versions/{id}",
            api(),
            s.script
        )))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let client = api_client(&server, fast());
    let (_, results) = judge(&client).await;
    let m = result_of(&results, checks::MODULES_MATCH);
    assert_eq!(m.status, Status::Error);
    assert!(
        m.summary.contains("HTTP 503 after 4 attempt(s)"),
        "{}",
        m.summary
    );
    // settings-match compares the modules' content types and entry too: it
    // cannot pass when the modules cannot be read.
    assert_eq!(status_of(&results, checks::SETTINGS_MATCH), Status::Error);
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_with_a_permission_hint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(error_body(10000, "Authentication error")),
        )
        .mount(&server)
        .await;
    let client = api_client(&server, fast());
    let err = fetch_live(&client, "flarelink-auth").await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "not retried"
    );
    let text = flareproof::error_chain(&err);
    assert!(text.contains("Authentication error (code 10000)"), "{text}");
    assert!(
        err.hint("CLOUDFLARE_API_TOKEN")
            .contains("Workers Scripts Read")
    );
    assert!(!format!("{text} {err:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_truncated_script_download_is_an_error_never_a_match() {
    let _ = shared_rebuild();
    let server = MockServer::start().await;
    let mut s = faithful();
    s.beta_modules = false;
    let (ct, entry, body) = s.content_v2().unwrap();
    refuse_beta_modules(&server, &s).await;
    Mock::given(method("GET"))
        .and(path(format!("{}/scripts/{}/content/v2", api(), s.script)))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", ct.as_str())
                .insert_header("cf-entrypoint", entry.as_str())
                .set_body_bytes(body[..body.len() * 2 / 3].to_vec()),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let (_, results) = judge(&api_client(&server, fast())).await;
    let m = result_of(&results, checks::MODULES_MATCH);
    assert_eq!(m.status, Status::Error, "{}", m.summary);
    assert!(m.summary.contains("multipart"), "{}", m.summary);

    // The complete download is the fallback and it matches.
    let server = MockServer::start().await;
    refuse_beta_modules(&server, &s).await;
    mount(&server, &s).await;
    let (_, results) = judge(&api_client(&server, fast())).await;
    let m = result_of(&results, checks::MODULES_MATCH);
    assert_eq!(m.status, Status::Pass, "{}", m.summary);
    assert!(m.summary.contains("script download"), "{}", m.summary);
}

#[tokio::test]
async fn an_envelope_with_success_false_is_an_error() {
    let _ = shared_rebuild();
    let server = MockServer::start().await;
    let s = faithful();
    Mock::given(method("GET"))
        .and(path(format!("{}/scripts/{}/deployments", api(), s.script)))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(error_body(10013, "deployments unavailable")),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let (live, results) = judge(&api_client(&server, fast())).await;
    let err = live.unwrap_err();
    assert!(matches!(err, ApiError::Envelope { .. }), "{err:?}");
    for id in &checks::IDS[1..] {
        let r = result_of(&results, id);
        assert_eq!(r.status, Status::Error, "{id}");
        assert!(
            r.summary.contains("deployments unavailable (code 10013)"),
            "{}",
            r.summary
        );
    }
    assert_eq!(
        status_of(&results, checks::REBUILD_DETERMINISTIC),
        Status::Pass
    );
}

#[tokio::test]
async fn a_gradual_deployment_of_two_verified_versions_passes_and_an_unverified_one_fails() {
    let _ = shared_rebuild();
    let mut s = faithful();
    s.versions[0].percentage = 90.0;
    let mut canary = s.versions[0].clone();
    canary.id = "11111111-2222-4333-8444-555555555555".into();
    canary.percentage = 10.0;
    s.versions.push(canary);
    let server = MockServer::start().await;
    mount(&server, &s).await;
    let (live, results) = judge(&api_client(&server, fast())).await;
    assert_eq!(live.unwrap().versions.len(), 2);
    assert!(
        results.iter().all(|r| r.status == Status::Pass),
        "{results:#?}"
    );

    s.versions[1]
        .compatibility_flags
        .push("no_nodejs_compat_v2".into());
    let server = MockServer::start().await;
    mount(&server, &s).await;
    let (_, results) = judge(&api_client(&server, fast())).await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(failed, vec![checks::LIVE_VERSIONS]);
}

#[tokio::test]
async fn the_stand_in_and_the_client_agree_on_every_shape() {
    let standin = StandIn::start(faithful()).await.unwrap();
    let client = Client::new(
        &standin.api_base(),
        Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        fast(),
    )
    .unwrap();
    let live = fetch_live(&client, "flarelink-auth").await.unwrap();
    let (bundle, _) = live.versions[0].modules.as_ref().unwrap();
    assert_eq!(bundle, deployed_bundle());
    let settings = live.versions[0].settings.as_ref().unwrap();
    assert_eq!(settings.compatibility_flags, vec!["nodejs_compat"]);
    assert_eq!(settings.bindings.len(), 5);
    let observers = live.observers.as_ref().unwrap();
    assert!(observers.tail_consumers.is_empty() && observers.streaming_tail_consumers.is_empty());
    assert!(!observers.observability && observers.disagreements.is_empty());
    assert_eq!(observers.said.len(), 2, "{:?}", observers.said);
    let script = live.script_settings.as_ref().unwrap();
    assert_eq!(script.usage_model.as_deref(), Some("standard"));
}

// ---------------------------------------------------------------------------
// proptest
// ---------------------------------------------------------------------------

fn module_strategy() -> impl Strategy<Value = Vec<Module>> {
    prop::collection::btree_map(
        "[a-z][a-z0-9_./-]{0,15}",
        (
            prop::sample::select(vec![
                "application/javascript+module",
                "application/wasm",
                "text/plain",
                "application/octet-stream",
            ]),
            prop::collection::vec(any::<u8>(), 0..600),
        ),
        1..5,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(name, (ct, bytes))| Module::new(name, Some(ct), bytes))
            .collect()
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn multipart_round_trips(modules in module_strategy(), main in any::<prop::sample::Index>()) {
        let main = modules[main.index(modules.len())].name.clone();
        let bundle = Bundle::new(Some(main.clone()), modules);
        let (ct, body) = multipart::encode(&bundle);
        let parsed = block_on(multipart::parse(&ct, Some(&main), body.into())).unwrap();
        prop_assert_eq!(parsed, bundle);
    }

    #[test]
    fn multipart_never_panics_and_never_returns_a_partial_bundle(
        modules in module_strategy(),
        cut in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..300),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let bundle = Bundle::new(Some(modules[0].name.clone()), modules);
        let (ct, body) = multipart::encode(&bundle);
        let entry = bundle.main_module.clone();
        // Truncated anywhere before the closing boundary: an error.
        let closing = body.len() - "--\r\n".len() - 32 - "flareproof-".len() - 2;
        let at = cut.index(closing);
        let r = block_on(multipart::parse(&ct, entry.as_deref(), body[..at].to_vec().into()));
        prop_assert!(r.is_err(), "a body cut at {} of {} parsed", at, body.len());
        // Noise and flipped bytes: whatever comes back, no panic.
        let _ = block_on(multipart::parse(&ct, entry.as_deref(), noise.into()));
        let mut flipped = body.clone();
        let i = flip.0.index(flipped.len());
        flipped[i] ^= flip.1 | 1;
        let _ = block_on(multipart::parse(&ct, entry.as_deref(), flipped.into()));
    }

    #[test]
    fn any_single_byte_change_is_found_at_its_offset(
        bytes in prop::collection::vec(any::<u8>(), 1..20_000),
        at in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let at = at.index(bytes.len());
        let mut changed = bytes.clone();
        changed[at] = changed[at].wrapping_add(delta);
        prop_assert_eq!(first_difference(&bytes, &changed), Some(at));
        let js = Some("application/javascript+module");
        let a = Bundle::new(Some("w.js".into()), vec![Module::new("w.js", js, bytes)]);
        let b = Bundle::new(Some("w.js".into()), vec![Module::new("w.js", js, changed)]);
        let c = compare_modules(&a, &b);
        prop_assert!(!c.matches());
        prop_assert_eq!(c.differing.len(), 1);
        prop_assert_eq!(c.differing[0].offset, at as u64);
        prop_assert_ne!(c.rebuilt_aggregate, c.deployed_aggregate);
    }

    #[test]
    fn equal_inputs_always_match(modules in module_strategy()) {
        let a = Bundle::new(Some(modules[0].name.clone()), modules);
        let c = compare_modules(&a, &a.clone());
        prop_assert!(c.matches());
        prop_assert_eq!(c.rebuilt_aggregate, c.deployed_aggregate);
        for m in a.modules() {
            prop_assert_eq!(first_difference(&m.bytes, &m.bytes.clone()), None);
        }
    }
}
