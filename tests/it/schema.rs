//! `report.json` and its committed JSON Schema.

use flareproof::model::{
    CheckId, CheckResult, Evidence, Exchange, Header, HttpRequest, HttpResponse, Measurement,
    ModuleDigest, Report, Status, Subject, TextDiff, Timeline, TimelinePoint,
};
use flareproof::report::json;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/reports/report.schema.json");

/// One fixed report that holds every status and every kind of evidence.
pub fn every_status_report() -> Report {
    let exchange = Exchange {
        label: "sign in as free".into(),
        request: HttpRequest {
            method: "POST".into(),
            url: "http://127.0.0.1:8787/api/auth/sign-in/email".into(),
            headers: vec![Header {
                name: "origin".into(),
                value: "https://app.flareproof.test".into(),
            }],
            body: Some(r#"{"email":"free@flareproof.test","password":"[redacted]"}"#.into()),
        },
        response: Some(HttpResponse {
            status: 200,
            headers: vec![Header {
                name: "set-cookie".into(),
                value: "__Secure-better-auth.session_token=[redacted]; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax".into(),
            }],
            body: None,
            body_truncated: false,
        }),
        error: None,
        at_ms: 12,
        elapsed_ms: 80,
    };
    let evidence = vec![
        Evidence::Exchange(exchange),
        Evidence::Measurement(Measurement {
            name: "time to refusal".into(),
            value: 310.0,
            unit: "ms".into(),
            bound: Some(2000.0),
            vantage: Some("http://127.0.0.1:8788".into()),
            trial: Some(1),
            censored: false,
            resolution: Some(50.0),
            slowest_observation: Some(12.0),
        }),
        Evidence::Digest(ModuleDigest {
            name: "worker.js".into(),
            content_type: Some("application/javascript+module".into()),
            rebuilt_sha256: Some("a".repeat(64)),
            deployed_sha256: Some("b".repeat(64)),
            rebuilt_size: Some(10),
            deployed_size: Some(11),
        }),
        Evidence::Diff(TextDiff {
            subject: "worker.js".into(),
            offset: 4,
            unified: "-a\n+b\n".into(),
        }),
        Evidence::Timeline(Timeline {
            bucket: "free".into(),
            limit: Some(3),
            window_s: 3,
            points: [200, 200, 200, 429]
                .iter()
                .enumerate()
                .map(|(i, s)| TimelinePoint {
                    at_ms: 100 + i as u64 * 10,
                    status: *s,
                })
                .collect(),
            window_starts_ms: vec![130],
        }),
        Evidence::note("a note"),
    ];
    let checks = Status::ALL
        .iter()
        .enumerate()
        .map(|(i, status)| CheckResult {
            id: CheckId::new(format!("cookie.case-{i}")).unwrap(),
            title: format!("case {i}"),
            status: *status,
            summary: format!("{status} because"),
            severity: Some(flareproof::model::Severity::Medium),
            level: Some(flareproof::model::Level::Must),
            help: "what to do".into(),
            requirements: vec!["flarelink-auth/v1:cookie".into()],
            evidence: evidence.clone(),
            duration_ms: 5,
            version: None,
            target: None,
        })
        .collect();
    Report::new(
        "conform",
        "flarelink-auth/v1",
        Subject {
            base_url: Some("http://127.0.0.1:8787/".into()),
            vantages: vec!["http://127.0.0.1:8788/".into()],
            script: None,
        },
        "2026-11-23T00:00:00Z".into(),
        1234,
        checks,
    )
}

pub fn validate(report_json: &[u8]) {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(SCHEMA_PATH).unwrap()).unwrap();
    let instance: serde_json::Value = serde_json::from_slice(report_json).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json does not match its schema: {errors:#?}"
    );
}

#[test]
fn committed_schema_matches_the_model() {
    let generated = json::schema();
    let committed = std::fs::read(SCHEMA_PATH).unwrap_or_default();
    if committed != generated {
        if std::env::var_os("FLAREPROOF_BLESS").is_some() {
            std::fs::write(SCHEMA_PATH, &generated).unwrap();
            return;
        }
        panic!(
            "reports/report.schema.json is out of date with src/model; \
             rerun with FLAREPROOF_BLESS=1 to regenerate it"
        );
    }
}

#[test]
fn a_report_with_every_status_validates() {
    validate(&json::render(&every_status_report()));
}

#[test]
fn the_schema_rejects_what_it_must() {
    let mut report: serde_json::Value =
        serde_json::from_slice(&json::render(&every_status_report())).unwrap();
    report["checks"][0]["status"] = "passed-ish".into();
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(SCHEMA_PATH).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(
        !validator.is_valid(&report),
        "an unknown status must not validate"
    );
    report["checks"][0]["status"] = "pass".into();
    report.as_object_mut().unwrap().remove("verdict");
    assert!(
        !validator.is_valid(&report),
        "a report without a verdict must not validate"
    );
}

/// A report whose checks have these statuses (`cookie.case-N`).
pub fn with_statuses(statuses: &[Status]) -> Report {
    let template = every_status_report();
    let checks = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut check = template.checks[i % template.checks.len()].clone();
            check.id = CheckId::new(format!("cookie.case-{i}")).unwrap();
            check.status = *s;
            check.summary = format!("{s} in this run");
            check.evidence.clear();
            check
        })
        .collect();
    Report::new(
        &template.command,
        &template.profile,
        template.subject.clone(),
        template.started_at.clone(),
        template.duration_ms,
        checks,
    )
}

/// `report` as `dir/report.json`; the folder.
pub fn write(dir: &std::path::Path, report: &Report) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("report.json"), json::render(report)).unwrap();
    dir.to_owned()
}
