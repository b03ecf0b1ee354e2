//! Every report format from one fixed report holding every status and every
//! kind of evidence (`schema::every_status_report`): insta snapshots with
//! times and ports redacted; JUnit parsed back, SARIF validated against the
//! vendored SARIF 2.1.0 schema, HTML self-contained with its charts. Then
//! known failures and the audit attestation.

use std::collections::BTreeMap;

use flareproof::attestation;
use flareproof::known_failures::KnownFailures;
use flareproof::model::{
    CheckId, CheckResult, Evidence, Measurement, Report, Status, Timeline, TimelinePoint,
};
use flareproof::plan::Plan;
use flareproof::report::{Format, har, html, junit, markdown, sarif};

use crate::schema::every_status_report;

const SARIF_SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/schemas/sarif-schema-2.1.0.json"
);

/// Snapshot settings: times and ports redacted.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[started_at]");
    settings.add_filter(r#"time="[0-9.]+""#, r#"time="[time]""#);
    settings.add_filter(r"\b\d+\.\d s\b", "[duration] s");
    settings.add_filter(
        r#"<td class="num">\d+ ms</td>"#,
        r#"<td class="num">[time] ms</td>"#,
    );
    settings.add_filter(
        r#""(duration_ms|at_ms|elapsed_ms)": \d+"#,
        r#""$1": "[ms]""#,
    );
    settings.add_filter(r"\(\+\d+ ms, \d+ ms\)", "(+[ms], [ms])");
    settings.add_filter(r#""version": "\d+\.\d+\.\d+""#, r#""version": "[version]""#);
    settings.add_filter(
        r#""semanticVersion": "\d+\.\d+\.\d+""#,
        r#""semanticVersion": "[version]""#,
    );
    settings.add_filter(r"flareproof \d+\.\d+\.\d+", "flareproof [version]");
    settings
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("every format is UTF-8")
}

#[test]
fn snapshots_of_every_format() {
    let report = every_status_report();
    redacted().bind(|| {
        insta::assert_snapshot!("junit", text(junit::render(&report)));
        insta::assert_snapshot!("sarif", text(sarif::render(&report)));
        insta::assert_snapshot!("markdown", text(markdown::render(&report)));
        insta::assert_snapshot!("html", text(html::render(&report)));
        insta::assert_snapshot!("har", text(har::render(&report)));
    });
}

#[test]
fn every_format_is_deterministic() {
    let report = every_status_report();
    for format in Format::ALL {
        assert_eq!(
            format.render(&report),
            format.render(&report.clone()),
            "{format:?}"
        );
    }
}

#[test]
fn junit_parses_back_with_a_suite_per_area_and_a_case_per_check() {
    let mut report = every_status_report();
    let mut scope = report.checks[1].clone();
    scope.id = CheckId::new("scope.bola-list").unwrap();
    report.checks.push(scope);
    let xml = text(junit::render(&report));
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit XML parses back");
    let names: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["cookie", "scope"]);
    let cookie = &parsed.test_suites[0];
    assert_eq!(cookie.test_cases.len(), 5);
    assert_eq!(
        (cookie.failures, cookie.errors, cookie.skipped),
        (1, 1, 1),
        "one fail, one error, one skip"
    );
    use quick_junit::{NonSuccessKind, TestCaseStatus};
    for (case, check) in cookie.test_cases.iter().zip(&report.checks) {
        assert_eq!(case.name.as_str(), check.id.as_str());
        match (&case.status, check.status) {
            (TestCaseStatus::Success { .. }, Status::Pass | Status::Warn) => {}
            (
                TestCaseStatus::NonSuccess {
                    kind, description, ..
                },
                Status::Fail | Status::Error,
            ) => {
                let expected = if check.status == Status::Fail {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                assert_eq!(*kind, expected);
                let body = description.as_ref().unwrap().as_str();
                assert!(body.contains("POST http://127.0.0.1:8787"), "{body}");
                assert!(body.contains("time to refusal: 310 ms"), "{body}");
            }
            (TestCaseStatus::Skipped { message, .. }, Status::Skip) => {
                assert_eq!(message.as_ref().unwrap().as_str(), "skip because");
            }
            (status, expected) => panic!("{} is {status:?}, expected {expected}", check.id),
        }
    }
    assert_eq!(parsed.test_suites[1].failures, 1);
}

fn sarif_validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(SARIF_SCHEMA).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the SARIF schema compiles")
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let validator = sarif_validator();
    let report = every_status_report();
    let sarif: serde_json::Value = serde_json::from_slice(&sarif::render(&report)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report.sarif is not SARIF 2.1.0: {errors:#?}"
    );

    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 5);
    let results = run["results"].as_array().unwrap();
    let levels: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r["ruleId"].as_str().unwrap(), r["level"].as_str().unwrap()))
        .collect();
    assert_eq!(
        levels,
        [("cookie.case-1", "error"), ("cookie.case-2", "warning")],
        "a result per failed or warned check"
    );
    let notes = run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    assert_eq!(notes.len(), 1, "the error check is a notification");
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);

    // The validator is not vacuous.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
    broken["version"] = "2.0.0".into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn sarif_of_the_real_plan_validates_with_help_and_severity() {
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let checks = plan
        .checks
        .iter()
        .enumerate()
        .map(|(i, p)| CheckResult {
            id: p.id.clone(),
            title: p.title.clone(),
            status: Status::ALL[i % 5],
            summary: "observed".into(),
            severity: Some(p.severity),
            level: Some(p.level),
            help: p.help.clone(),
            requirements: p.requirements.clone(),
            evidence: vec![],
            duration_ms: 1,
            version: None,
            target: None,
        })
        .collect();
    let report = Report::new(
        "audit",
        &plan.id,
        every_status_report().subject,
        "2026-11-23T00:00:00Z".into(),
        1,
        checks,
    );
    let sarif: serde_json::Value = serde_json::from_slice(&sarif::render(&report)).unwrap();
    assert!(sarif_validator().is_valid(&sarif));
    for rule in sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
    {
        let planned = plan.check(rule["id"].as_str().unwrap()).unwrap();
        assert!(
            rule["help"]["text"]
                .as_str()
                .unwrap()
                .contains(planned.help.trim())
        );
        assert!(rule["properties"]["security-severity"].is_string());
    }
}

#[test]
fn markdown_puts_failures_first_with_their_evidence() {
    let md = text(markdown::render(&every_status_report()));
    let at = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in the summary"))
    };
    assert!(at("# flareproof conform: ❌ fail") < at("| area |"));
    assert!(at("### ❌ `cookie.case-1`") < at("### ⛔ `cookie.case-3`"));
    assert!(at("### ⛔ `cookie.case-3`") < at("### ⚠️ `cookie.case-2`"));
    assert!(at("### ⚠️ `cookie.case-2`") < at("## Modules (verify)"));
    assert!(at("## Modules (verify)") < at("## All checks"));
    assert!(md.contains("```http\n# sign in as free"));
    assert!(md.contains("```diff\n-a\n+b\n```"));
    assert!(md.contains("| `worker.js` | `aaaaaaaaaaaa` | `bbbbbbbbbbbb` | 10 | 11 | ❌ differ |"));
}

/// A report like the demo's: revocation trials at two vantages and a rate
/// limit bucket, to show the charts.
fn chart_report() -> Report {
    let mut report = every_status_report();
    let mut session = report.checks[0].clone();
    session.id = CheckId::new("session.revoked-on-sign-out").unwrap();
    session.evidence = (1..=3)
        .flat_map(|trial| {
            ["http://127.0.0.1:8787/", "http://127.0.0.1:8788/"]
                .into_iter()
                .enumerate()
                .map(move |(v, vantage)| {
                    Evidence::Measurement(Measurement {
                        name: "time to refusal after sign-out (token 1)".into(),
                        value: (200 + 150 * v as u32 + 40 * trial) as f64,
                        unit: "ms".into(),
                        bound: Some(2000.0),
                        vantage: Some(vantage.into()),
                        trial: Some(trial),
                        censored: false,
                        resolution: None,
                        slowest_observation: None,
                    })
                })
        })
        .collect();
    let mut ratelimit = report.checks[0].clone();
    ratelimit.id = CheckId::new("ratelimit.free").unwrap();
    ratelimit.evidence = vec![Evidence::Timeline(Timeline {
        bucket: "free".into(),
        limit: Some(8),
        window_s: 3,
        points: (0..24)
            .map(|i| TimelinePoint {
                at_ms: 100 + i * 150,
                status: if i % 20 < 8 { 200 } else { 429 },
            })
            .collect(),
        window_starts_ms: vec![100 + 20 * 150],
    })];
    report.checks.push(session);
    report.checks.push(ratelimit);
    report
}

#[test]
fn html_is_self_contained_with_both_charts() {
    let page = text(html::render(&chart_report()));
    for banned in ["<script", "<link", "src=", "@import", "url(", "<iframe"] {
        assert!(
            !page.contains(banned),
            "the page must load nothing: {banned}"
        );
    }
    assert!(page.starts_with("<!doctype html>"));
    // One of each per fixed check, plus the session and rate-limit checks.
    assert_eq!(page.matches("<svg").count(), 12);
    assert!(page.contains("bound 2000 ms"));
    assert!(page.contains("limit 8"));
    assert!(page.contains("trial 3"));
    assert!(page.contains("allowed (12)") && page.contains("429 (12)"));
    assert!(page.contains("<pre class=\"diff\">"));
    assert!(page.contains("id=\"check-cookie-case-1\""));
    // Markup in the report is escaped.
    let mut hostile = every_status_report();
    hostile.checks[1].summary = "<img src=x onerror=alert(1)>".into();
    let page = text(html::render(&hostile));
    assert!(!page.contains("<img"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn known_failures_both_ways_through_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known-failures.toml");
    std::fs::write(
        &path,
        "\"cookie.case-0\" = \"fixed upstream, pending deploy\"\n\
         \"cookie.case-1\" = \"__Host- migration in progress\"\n",
    )
    .unwrap();
    let known = KnownFailures::load(&path).unwrap();
    let report = known.apply(every_status_report());
    let case = |i: usize| &report.checks[i];
    assert_eq!(
        case(1).status,
        Status::Skip,
        "the listed failure is skipped"
    );
    assert_eq!(
        case(1).summary,
        "known failure: __Host- migration in progress"
    );
    assert_eq!(case(0).status, Status::Fail, "the listed pass fails");
    assert!(
        case(0)
            .summary
            .starts_with("known failure no longer fails: remove it")
    );
    assert_eq!((report.counts.fail, report.counts.skip), (1, 2));
    let junit = text(junit::render(&report));
    assert!(junit.contains("known failure no longer fails: remove it"));
    let sarif: serde_json::Value = serde_json::from_slice(&sarif::render(&report)).unwrap();
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "cookie.case-0");

    std::fs::write(&path, "\"cookie.case-1\" = 7\n").unwrap();
    let err = KnownFailures::load(&path).unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()));
    let err = KnownFailures::load(&dir.path().join("missing.toml")).unwrap_err();
    assert!(flareproof::error_chain(&err).contains("missing.toml"));
}

#[test]
fn a_malformed_known_failures_file_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kf.toml");
    std::fs::write(&path, "cookie.prefix = [\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flareproof"))
        .args(["conform", "--config", "/nonexistent/flareproof.toml"])
        .arg("--known-failures")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("parse known failures") && stderr.contains("kf.toml"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn the_audit_attestation_holds_the_suite_its_digest_checks_and_bounds() {
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let report = chart_report();
    let known = BTreeMap::from([("cookie.case-1".to_owned(), "reason".to_owned())]);
    let statement = attestation::audit_statement(&report, &plan, None, known);
    let v: serde_json::Value = serde_json::from_slice(&attestation::render(&statement)).unwrap();
    assert_eq!(v["_type"], attestation::STATEMENT_TYPE);
    assert_eq!(v["predicateType"], attestation::AUDIT_PREDICATE_TYPE);
    let p = &v["predicate"];
    assert_eq!(p["suite"]["id"], "flarelink-auth/v1");
    assert_eq!(p["suite"]["digest"]["sha256"], plan.digest);
    assert_eq!(p["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["checks"].as_array().unwrap().len(), report.checks.len());
    assert_eq!(p["checks"][1]["status"], "fail");
    let measurements = p["measurements"].as_array().unwrap();
    // 5 fixed checks × 1 + 6 revocation measurements.
    assert_eq!(measurements.len(), 11);
    assert!(measurements.iter().all(|m| m["bound"] == 2000.0));
    assert_eq!(p["rate_limits"].as_array().unwrap().len(), 6);
    assert_eq!(p["known_failures"]["cookie.case-1"], "reason");
    assert!(p["verify"].is_null());
}

#[test]
fn markdown_escapes_and_never_breaks_a_table() {
    let mut report = every_status_report();
    report.checks[0].summary = "a | b\nc".into();
    let md = text(markdown::render(&report));
    let row = md
        .lines()
        .find(|l| l.contains("`cookie.case-0`") && l.starts_with("| ✅"))
        .unwrap();
    assert!(row.contains("a \\| b c"), "{row}");
}

/// Writes the fixed report (with revocation and rate-limit charts) as every
/// format into `$FLAREPROOF_SAMPLE_DIR`, to look at in a browser:
/// `FLAREPROOF_SAMPLE_DIR=/tmp/sample cargo test --test it report::sample -- --ignored`.
#[test]
#[ignore = "writes files for a person to look at"]
fn sample() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("FLAREPROOF_SAMPLE_DIR").expect("set FLAREPROOF_SAMPLE_DIR"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let report = chart_report();
    for format in Format::ALL {
        std::fs::write(dir.join(format.file_name()), format.render(&report)).unwrap();
    }
}

/// `flareproof audit` end to end: the reference Worker for conform, a
/// stand-in Cloudflare API serving its build for verify, one config with
/// `[target]` and `[verify]`, and a known-failures file that lists a check
/// which passes.
#[test]
fn audit_writes_one_report_and_an_audit_attestation() {
    use crate::support::{
        FixtureOptions, REFERENCE_ACCOUNT, ensure_installed, fixtures_dir, reference_scenario,
        reference_verify_target,
    };
    use flareproof::cloudflare::standin::StandIn;
    use flareproof::model::Secret;
    use flareproof::rebuild::{Variation, run_recipe};

    const TOKEN: &str = "cf-audit-token-Qm38vXz1LpR7";
    let fixtures = fixtures_dir();
    ensure_installed(&fixtures, &|line| eprintln!("{line}")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let recipe_target =
        reference_verify_target(&fixtures, url::Url::parse("http://x.test/").unwrap());
    let build_dir = tempfile::tempdir().unwrap();
    let standin = runtime.block_on(async {
        let built = run_recipe(
            &recipe_target.recipe,
            &Variation::baseline(),
            build_dir.path(),
        )
        .await
        .expect("the reference Worker builds");
        StandIn::start(reference_scenario(built.bundle, Secret::new(TOKEN)))
            .await
            .unwrap()
    });
    let fixture = crate::support::start(FixtureOptions::default());
    let info = fixture.info();

    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::conform_config(info, "FP_AUDIT");
    config.push_str(&crate::support::verify_section(
        &fixtures,
        r#"["node", "build.mjs", "--outdir", "{out}"]"#,
        standin.api_base().as_str(),
        "FP_AUDIT_CF_TOKEN",
        "FP_AUDIT_CF_ACCOUNT",
    ));
    let config_path = dir.path().join("flareproof.toml");
    std::fs::write(&config_path, config).unwrap();
    let known = dir.path().join("known.toml");
    std::fs::write(
        &known,
        "\"cookie.secure\" = \"was broken before the last deploy\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flareproof"));
    cmd.args([
        "audit", "--only", "cookie.*", "--format", "sarif", "--format", "markdown",
    ])
    .arg("--config")
    .arg(&config_path)
    .arg("--out")
    .arg(&out)
    .arg("--known-failures")
    .arg(&known)
    .env("FP_AUDIT_CF_TOKEN", TOKEN)
    .env("FP_AUDIT_CF_ACCOUNT", REFERENCE_ACCOUNT);
    crate::support::conform_env(&mut cmd, info, "FP_AUDIT");
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FAIL cookie.secure: known failure no longer fails: remove it"),
        "{stdout}"
    );

    let report_json = std::fs::read(out.join("report.json")).unwrap();
    crate::schema::validate(&report_json);
    let report: Report = serde_json::from_slice(&report_json).unwrap();
    assert_eq!(report.command, "audit");
    let status = |id: &str| {
        report
            .checks
            .iter()
            .find(|c| c.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} missing"))
            .status
    };
    for id in [
        "verify.rebuild-deterministic",
        "verify.modules-match",
        "verify.settings-match",
        "verify.no-undeclared-observers",
        "verify.live-versions",
        "cookie.httponly",
    ] {
        assert_eq!(status(id), Status::Pass, "{id}\n{stdout}");
    }
    assert_eq!(status("cookie.secure"), Status::Fail);
    assert_eq!(status("scope.bola-list"), Status::Skip, "not selected");
    assert_eq!(report.counts.fail, 1);

    let att: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("attestation.json")).unwrap()).unwrap();
    assert_eq!(att["predicateType"], attestation::AUDIT_PREDICATE_TYPE);
    assert!(
        !att["subject"].as_array().unwrap().is_empty(),
        "the modules"
    );
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    assert_eq!(att["predicate"]["suite"]["digest"]["sha256"], plan.digest);
    assert_eq!(att["predicate"]["verdict"], "fail");
    assert_eq!(
        att["predicate"]["known_failures"]["cookie.secure"],
        "was broken before the last deploy"
    );
    assert_eq!(
        att["predicate"]["checks"].as_array().unwrap().len(),
        plan.checks.len()
    );
    assert!(att["predicate"]["verify"]["bundle"]["aggregate_sha256"].is_string());

    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.sarif")).unwrap()).unwrap();
    assert!(sarif_validator().is_valid(&sarif));
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "cookie.secure");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.starts_with("# flareproof audit: ❌ fail"));
    for (name, text) in [
        ("stdout", stdout.to_string()),
        ("stderr", stderr.to_string()),
        (
            "report.json",
            String::from_utf8_lossy(&report_json).into_owned(),
        ),
        ("summary.md", summary),
        ("attestation.json", att.to_string()),
        ("report.sarif", sarif.to_string()),
    ] {
        assert!(!text.contains(TOKEN), "the API token leaked into {name}");
        assert!(
            !text.contains(info.service_key.expose()),
            "the service key leaked into {name}"
        );
    }
    drop(standin);
}
