//! `attestation verify`: an envelope `verify --sign-key` wrote over the
//! faithful stand-in is checked by the binary against what the stand-in
//! serves later: unchanged → 0; a version deployed after the attestation, a
//! binding value, an observer, a module's bytes → 1 naming it; the API down,
//! refusing a part, another account → 2 saying why; a flipped byte in the
//! envelope, another key, an unknown predicate → 1; offline → 0. A good
//! signature over a failed run (a byte-flipped deployment, signed) → 1,
//! offline and online, unless `--allow-failed-result` → 0.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flareproof::attestation::dsse::SigningKey;
use flareproof::attestation::{LiveRecord, Readable};
use flareproof::cloudflare::standin::StandIn;
use flareproof::cloudflare::{Scenario, error_body};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::REFERENCE_ACCOUNT;
use crate::verify::{api, faithful, mount, one_byte_changed, reference_verify_cli};

/// The variables the config `reference_verify_cli` writes names.
const TOKEN_ENV: &str = "FP_TEST_CF_TOKEN";
const ACCOUNT_ENV: &str = "FP_TEST_CF_ACCOUNT";

/// A version id no attestation saw.
const NEW_VERSION: &str = "7e57ab1e-0000-4000-8000-00000000a77e";

struct Attestation {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    envelope: PathBuf,
    vsa: PathBuf,
    public: PathBuf,
    config: PathBuf,
}

/// `verify --sign-key` over the faithful stand-in, once.
fn attested() -> &'static Attestation {
    static ONCE: OnceLock<Attestation> = OnceLock::new();
    ONCE.get_or_init(|| attest(faithful(), 0))
}

/// The faithful deployment with one byte of `worker.js` flipped.
fn flipped() -> Scenario {
    let mut s = faithful();
    s.versions[0].bundle = one_byte_changed(&s.versions[0].bundle).0;
    s
}

/// `verify --sign-key` over [`flipped`], once: a failed run, signed.
fn attested_failure() -> &'static Attestation {
    static ONCE: OnceLock<Attestation> = OnceLock::new();
    ONCE.get_or_init(|| attest(flipped(), 1))
}

/// `verify --sign-key` over a stand-in serving `scenario`, exiting `code`.
fn attest(scenario: Scenario, code: i32) -> Attestation {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let key = SigningKey::generate_p256();
    let private = dir.join("key.pem");
    std::fs::write(&private, key.to_pkcs8_pem().as_bytes()).unwrap();
    let public = dir.join("pub.pem");
    std::fs::write(&public, key.public_key_pem()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let standin = rt.block_on(StandIn::start(scenario)).unwrap();
    let base = standin.api_base().to_string();
    let run = reference_verify_cli(&dir, &base, |c| c.arg("--sign-key").arg(&private));
    assert_eq!(
        run.output.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&run.output.stderr)
    );
    drop(standin);
    let out = dir.join("out");
    Attestation {
        envelope: out.join("attestation.dsse.json"),
        vsa: out.join("attestation.vsa.dsse.json"),
        public,
        config: dir.join("flareproof.toml"),
        dir,
        _dir: tmp,
    }
}

fn token() -> String {
    faithful().token.expose().to_owned()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(output: Output) -> Run {
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let token = token();
        assert!(
            !run.stdout.contains(&token) && !run.stderr.contains(&token),
            "the API token was printed"
        );
        run
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `attestation verify FILE --key KEY`, with `--config` and `--api-base
/// api` when `api` is given; `more` adds arguments or environment.
fn check_key(
    file: &Path,
    key: &Path,
    api: Option<&str>,
    more: impl FnOnce(&mut Command) -> &mut Command,
) -> Run {
    let a = attested();
    let mut command = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    command
        .args(["attestation", "verify"])
        .arg(file)
        .arg("--key")
        .arg(key)
        .env(TOKEN_ENV, token())
        .env(ACCOUNT_ENV, REFERENCE_ACCOUNT);
    if let Some(api) = api {
        command
            .arg("--config")
            .arg(&a.config)
            .args(["--api-base", api]);
    }
    Run::of(more(&mut command).output().unwrap())
}

/// [`check_key`] with the attestation's signer's key.
fn check_with(
    file: &Path,
    api: Option<&str>,
    more: impl FnOnce(&mut Command) -> &mut Command,
) -> Run {
    check_key(file, &attested().public, api, more)
}

fn check(file: &Path, api: Option<&str>) -> Run {
    check_with(file, api, |c| c)
}

/// `attestation verify` of the verify envelope against a stand-in serving
/// `scenario`.
fn against(scenario: Scenario) -> Run {
    against_with(&attested().envelope, &attested().public, scenario, |c| c)
}

/// `attestation verify FILE --key KEY` against a stand-in serving
/// `scenario`; `more` adds arguments.
fn against_with(
    file: &Path,
    key: &Path,
    scenario: Scenario,
    more: impl FnOnce(&mut Command) -> &mut Command,
) -> Run {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let standin = rt.block_on(StandIn::start(scenario)).unwrap();
    let base = standin.api_base().to_string();
    check_key(file, key, Some(&base), more)
}

#[test]
fn the_faithful_deployment_is_still_what_was_attested_and_offline_the_signature_checks() {
    let a = attested();
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.dir.join("out/attestation.json")).unwrap())
            .unwrap();
    let live = &statement["predicate"]["live"];
    assert_eq!(live["account_id"], REFERENCE_ACCOUNT);
    let version = &live["deployment"]["read"]["versions"][0];
    assert_eq!(version["percentage"], 100.0);
    assert!(
        version["modules"]["read"]["modules"][0]["sha256"].is_string(),
        "{live:#}"
    );
    // A plain_text value by digest only; no secret value or target.
    let text = live.to_string();
    assert!(!text.contains("https://app.flareproof.test"), "{text}");
    assert!(text.contains("value_sha256"), "{text}");

    let run = check(&a.envelope, None);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("signature and statement check"),
        "{run}"
    );
    assert!(
        run.stdout.contains("flareproof verify attestation"),
        "{run}"
    );

    let run = against(faithful());
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("UNCHANGED: the deployment is still what was attested"),
        "{run}"
    );
}

#[test]
fn a_version_deployed_after_the_attestation_is_a_change_naming_it() {
    // The same bundle, uploaded again: another version, not attested.
    let mut s = faithful();
    s.deployment_id = "d3f1a2b4-0000-4000-8000-00000000d3f1".into();
    s.versions[0].id = NEW_VERSION.into();
    let run = against(s);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("CHANGED"), "{run}");
    assert!(
        run.stdout.contains(&format!(
            "version {NEW_VERSION}: receives 100% of traffic and is not among the attested versions"
        )),
        "{run}"
    );
    // A canary of it beside the attested version: still a change.
    let mut s = faithful();
    s.versions[0].percentage = 95.0;
    let mut canary = s.versions[0].clone();
    canary.id = NEW_VERSION.into();
    canary.percentage = 5.0;
    s.versions.push(canary);
    let run = against(s);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout
            .contains(&format!("version {NEW_VERSION}: receives 5%")),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("receives 95% of traffic (attested at 100%)"),
        "{run}"
    );
}

#[test]
fn a_settings_observer_or_module_change_is_a_change_naming_it() {
    let version = faithful().versions[0].id.clone();
    let mut value = faithful();
    for b in &mut value.versions[0].bindings {
        if b.name == "TRUSTED_ORIGIN" {
            b.value = Some(serde_json::json!("https://evil.example"));
        }
    }
    let mut tail = faithful();
    tail.tail_consumers = vec!["log-collector".into()];
    let mut module = faithful();
    let m = module.versions[0].bundle.module_mut("worker.js").unwrap();
    let at = m.bytes.len() / 2;
    m.bytes[at] ^= 0x01;
    let mut placement = faithful();
    placement.placement = Some(serde_json::json!({ "mode": "smart" }));
    let mut route = faithful();
    route.routes = vec!["auth.example.test/*".into()];
    for (name, scenario, said) in [
        (
            "binding value",
            value,
            format!("version {version} binding `TRUSTED_ORIGIN`.value_sha256"),
        ),
        (
            "tail consumer",
            tail,
            "observers.tail_consumers: added \"log-collector\"".to_owned(),
        ),
        (
            "module bytes",
            module,
            format!("version {version} module `worker.js`: sha256"),
        ),
        (
            "placement",
            placement,
            "script settings.placement".to_owned(),
        ),
        (
            "route",
            route,
            "ingress.routes: route `auth.example.test/*`".to_owned(),
        ),
    ] {
        let run = against(scenario);
        assert_eq!(run.code, Some(1), "{name}: {run}");
        assert!(run.stdout.contains("CHANGED"), "{name}: {run}");
        assert!(run.stdout.contains(&said), "{name}: {run}");
        assert!(
            !run.stdout.contains("evil.example"),
            "{name}: a value was printed"
        );
        assert_eq!(
            run.stdout.matches("  changed: ").count(),
            1,
            "{name}: one change, one line: {run}"
        );
    }
}

#[test]
fn the_api_down_or_refusing_a_part_is_could_not_tell_with_the_reason() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Nothing listening: connection refused.
    let refused = rt.block_on(StandIn::start(faithful())).unwrap();
    let base = refused.api_base().to_string();
    drop(refused);
    // Every request a 500.
    let down = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500).set_body_json(error_body(10013, "down")))
            .mount(&down),
    );
    // Faithful, but the tails endpoint refuses the token.
    let part = rt.block_on(MockServer::start());
    let s = faithful();
    rt.block_on(async {
        Mock::given(method("GET"))
            .and(path(format!("{}/scripts/{}/tails", api(), s.script)))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error")),
            )
            .with_priority(1)
            .mount(&part)
            .await;
        mount(&part, &s).await;
    });
    for (name, api, said) in [
        ("connection refused", base, "deployment: could not tell"),
        (
            "HTTP 500",
            format!("{}/client/v4", down.uri()),
            "deployment: could not tell",
        ),
        (
            "tails refused",
            format!("{}/client/v4", part.uri()),
            "observers: could not tell",
        ),
    ] {
        let run = check(&attested().envelope, Some(&api));
        assert_eq!(run.code, Some(2), "{name}: {run}");
        assert!(run.stdout.contains("COULD NOT TELL"), "{name}: {run}");
        assert!(run.stdout.contains(said), "{name}: {run}");
        assert!(run.stderr.contains("hint: "), "{name}: {run}");
        assert!(!run.stdout.contains("UNCHANGED"), "{name}: {run}");
    }
    let run = check(
        &attested().envelope,
        Some(&format!("{}/client/v4", part.uri())),
    );
    assert!(
        run.stderr.contains("\"Workers Scripts Read\" permission"),
        "{run}"
    );
}

#[test]
fn an_attestation_of_another_account_is_could_not_tell_naming_both() {
    let run = check_with(&attested().envelope, Some("http://127.0.0.1:9/"), |c| {
        c.env(ACCOUNT_ENV, "0123456789abcdef0123456789abcdef")
    });
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stdout.contains(REFERENCE_ACCOUNT), "{run}");
    assert!(
        run.stdout.contains("0123456789abcdef0123456789abcdef"),
        "{run}"
    );
}

fn flip_base64_byte(text: &str) -> String {
    let mut bytes = STANDARD.decode(text).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    STANDARD.encode(bytes)
}

#[test]
fn a_flipped_byte_another_key_or_an_unknown_statement_does_not_check() {
    let a = attested();
    let good: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a.envelope).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for field in ["payload", "sig"] {
        let mut bad = good.clone();
        let slot = if field == "payload" {
            &mut bad["payload"]
        } else {
            &mut bad["signatures"][0]["sig"]
        };
        *slot = flip_base64_byte(slot.as_str().unwrap()).into();
        let file = tmp.path().join(format!("{field}.json"));
        std::fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
        // Offline and online alike: the signature is checked first.
        for api in [None, Some("http://127.0.0.1:9/")] {
            let run = check(&file, api);
            assert_eq!(run.code, Some(1), "{field}: {run}");
            assert!(
                run.stdout.contains("FAIL the attestation does not check"),
                "{field}: {run}"
            );
        }
    }
    // Signed by a key that is not --key.
    let other = SigningKey::generate_ed25519();
    let statement = std::fs::read(a.dir.join("out/attestation.json")).unwrap();
    let file = tmp.path().join("other-key.json");
    std::fs::write(&file, other.sign_statement(&statement).render()).unwrap();
    let run = check(&file, None);
    assert_eq!(run.code, Some(1), "{run}");
    // A good signature over a statement of a predicate flareproof does not know.
    let key = tmp.path().join("key.pem");
    let signer = SigningKey::generate_p256();
    std::fs::write(&key, signer.public_key_pem()).unwrap();
    let unknown = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [],
        "predicateType": "https://example.test/anything/v1",
        "predicate": {},
    });
    let file = tmp.path().join("unknown.json");
    std::fs::write(
        &file,
        signer
            .sign_statement(&serde_json::to_vec(&unknown).unwrap())
            .render(),
    )
    .unwrap();
    let run = check_key(&file, &key, None, |c| c);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("`predicateType`"), "{run}");
    // A key file that is not a public key: could not check.
    let run = check_key(&a.envelope, &a.config, None, |c| c);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("not PEM"), "{run}");
}

#[test]
fn a_verification_summary_is_checked_by_its_signature_only() {
    let a = attested();
    let run = check(&a.vsa, Some("http://127.0.0.1:9/"));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("verificationResult PASSED"), "{run}");
    assert!(run.stdout.contains("signature only"), "{run}");
    let mut bad: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a.vsa).unwrap()).unwrap();
    bad["payload"] = flip_base64_byte(bad["payload"].as_str().unwrap()).into();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("vsa.json");
    std::fs::write(&file, serde_json::to_vec(&bad).unwrap()).unwrap();
    assert_eq!(check(&file, None).code, Some(1));
}

#[test]
fn an_audit_statement_is_checked_by_the_verify_predicate_it_holds() {
    let a = attested();
    let verify: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.dir.join("out/attestation.json")).unwrap())
            .unwrap();
    let audit = serde_json::json!({
        "_type": flareproof::attestation::STATEMENT_TYPE,
        "subject": verify["subject"],
        "predicateType": flareproof::attestation::AUDIT_PREDICATE_TYPE,
        "predicate": { "verdict": "pass", "started_at": "x", "verify": verify["predicate"] },
    });
    let tmp = tempfile::tempdir().unwrap();
    let signer = SigningKey::generate_ed25519();
    let key = tmp.path().join("pub.pem");
    std::fs::write(&key, signer.public_key_pem()).unwrap();
    let file = tmp.path().join("audit.dsse.json");
    let statement = serde_json::to_vec(&audit).unwrap();
    std::fs::write(&file, signer.sign_statement(&statement).render()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut tail = faithful();
    tail.streaming_tail_consumers = vec!["stream-collector".into()];
    for (scenario, code, said) in [
        (faithful(), 0, "UNCHANGED"),
        (
            tail,
            1,
            "observers.streaming_tail_consumers: added \"stream-collector\"",
        ),
    ] {
        let standin = rt.block_on(StandIn::start(scenario)).unwrap();
        let base = standin.api_base().to_string();
        let run = check_key(&file, &key, Some(&base), |c| c);
        assert_eq!(run.code, Some(code), "{run}");
        assert!(
            run.stdout.contains("a flareproof audit attestation"),
            "{run}"
        );
        assert!(run.stdout.contains(said), "{run}");
    }
}

#[tokio::test]
async fn a_part_that_could_not_be_read_is_recorded_unreadable_never_empty() {
    let server = MockServer::start().await;
    let s = faithful();
    Mock::given(method("GET"))
        .and(path(format!("{}/scripts/{}/routes", api(), s.script)))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error")),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let client = crate::verify::api_client(&server, crate::verify::fast());
    let live = flareproof::cloudflare::fetch_live(&client, &s.script)
        .await
        .unwrap();
    let record = LiveRecord::of(REFERENCE_ACCOUNT, &s.script, &live);
    match &record.ingress.routes {
        Readable::Unreadable(why) => {
            assert!(why.contains("\"Workers Routes Read\""), "{why}")
        }
        Readable::Read(r) => panic!("a refused read was recorded as read: {r:?}"),
    }
    // Two reads of one deployment make equal records; no drift between them.
    let again = flareproof::cloudflare::fetch_live(&client, &s.script)
        .await
        .unwrap();
    let again = LiveRecord::of(REFERENCE_ACCOUNT, &s.script, &again);
    assert_eq!(record, again);
    let drift = LiveRecord::drift(&record, &again);
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(!drift[0].is_change() && drift[0].part == "ingress.routes");
}

/// The gate: `attestation verify … && deploy` must not deploy what a
/// failed run attested, however good its signature.
#[test]
fn a_good_signature_over_a_failed_run_exits_1_unless_allowed() {
    let failed = attested_failure();
    let read = |file: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(failed.dir.join("out").join(file)).unwrap()).unwrap()
    };
    assert_eq!(read("attestation.json")["predicate"]["verdict"], "fail");
    assert_eq!(
        read("attestation.vsa.json")["predicate"]["verificationResult"],
        "FAILED"
    );
    let offline =
        |file: &Path, more: &[&str]| check_key(file, &failed.public, None, |c| c.args(more));
    let failure = "the signature is good but the attested result is a failure";
    for (file, result) in [
        (&failed.envelope, "verdict fail"),
        (&failed.vsa, "verificationResult FAILED"),
    ] {
        let run = offline(file, &[]);
        assert_eq!(run.code, Some(1), "{result}: {run}");
        assert!(
            run.stdout.contains(&format!("FAIL: {failure} ({result})")),
            "{result}: {run}"
        );
        assert!(!run.stdout.contains("PASS"), "{result}: {run}");
        assert!(run.stdout.contains("--allow-failed-result"), "{run}");
        // Checking a signed failure on purpose: 0, still saying it failed.
        let run = offline(file, &["--allow-failed-result"]);
        assert_eq!(run.code, Some(0), "{result}: {run}");
        assert!(
            run.stdout.contains(&format!(
                "{failure} ({result}); accepted with --allow-failed-result"
            )),
            "{result}: {run}"
        );
    }
    // The passing run's statements, offline: 0, no such line.
    for file in [&attested().envelope, &attested().vsa] {
        let run = check(file, None);
        assert_eq!(run.code, Some(0), "{run}");
        assert!(!run.stdout.contains(failure), "{run}");
    }
    // With --config, against what is still deployed: unchanged, and still
    // a failure (1); with the flag, 0. The faithful deployment differs from
    // it: changed, 1 either way.
    let live = |scenario: Scenario, more: &[&str]| {
        against_with(&failed.envelope, &failed.public, scenario, |c| c.args(more))
    };
    let run = live(flipped(), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("UNCHANGED"), "{run}");
    assert!(run.stdout.contains(&format!("FAIL: {failure}")), "{run}");
    let run = live(flipped(), &["--allow-failed-result"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("UNCHANGED"), "{run}");
    assert!(run.stdout.contains(failure), "{run}");
    let run = live(faithful(), &["--allow-failed-result"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stdout.contains("CHANGED: the deployment is no longer"),
        "{run}"
    );
    // A config that cannot be read: could not tell (2) whether a passing
    // run's deployment is still live; a failed run's result is still 1.
    let missing = failed.dir.join("missing.toml");
    for (a, code) in [(attested(), 2), (failed, 1)] {
        let run = check_key(&a.envelope, &a.public, None, |c| {
            c.arg("--config").arg(&missing)
        });
        assert_eq!(run.code, Some(code), "{run}");
        assert!(run.stderr.contains("missing.toml"), "{run}");
    }
}
