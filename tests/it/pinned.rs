//! `audit` pinned to the live versions: a stand-in Cloudflare API serving a
//! gradual deployment and a stand-in Worker that records the
//! `Cloudflare-Workers-Version-Overrides` header of every request.

use std::collections::BTreeMap;
use std::sync::Arc;

use flareproof::attestation;
use flareproof::audit::{Audit, AuditRun};
use flareproof::cloudflare::Scenario;
use flareproof::cloudflare::standin::StandIn;
use flareproof::cloudflare::{Credentials, RetryPolicy};
use flareproof::compare::{Bundle, Module};
use flareproof::conform::Selection;
use flareproof::model::{Evidence, Secret, Status};
use flareproof::plan::Plan;
use flareproof::target::{Target, VerifyTarget};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{REFERENCE_ACCOUNT, mount_sign_in, reference_verify_target, stand_in_target};

const CHECK: &str = "scope.write-as-other-rejected";
const TOKEN: &str = "pinned-test-token-7f3e9a1c5b";
const V1: &str = "aaaaaaaa-1111-4111-8111-111111111111";
const V2: &str = "bbbbbbbb-2222-4222-8222-222222222222";
const OVERRIDE: &str = "cloudflare-workers-version-overrides";

fn override_of(version: &str) -> String {
    format!("flarelink-auth=\"{version}\"")
}

/// A stand-in API whose active deployment holds `versions` (id, share).
async fn api(versions: &[(&str, f64)]) -> StandIn {
    let bundle = Bundle::new(
        Some("worker.js".into()),
        vec![Module::new(
            "worker.js",
            Some("application/javascript+module"),
            b"export default {}".to_vec(),
        )],
    );
    let mut scenario = Scenario::single(
        REFERENCE_ACCOUNT,
        "flarelink-auth",
        Secret::new(TOKEN),
        bundle,
        "2025-09-01",
        &[],
        Vec::new(),
    );
    let template = scenario.versions[0].clone();
    scenario.versions = versions
        .iter()
        .map(|(id, share)| {
            let mut v = template.clone();
            v.id = (*id).to_owned();
            v.percentage = *share;
            v
        })
        .collect();
    StandIn::start(scenario).await.unwrap()
}

/// The stand-in Worker: A and B sign in, B lists one post, A none; a
/// write naming B is refused and A's own accepted, except that a request
/// pinned to `refusing` (if any) has every write refused (no control).
async fn worker(refusing: Option<&str>) -> MockServer {
    let server = MockServer::start().await;
    for (email, id) in [("a@example.test", "a"), ("b@example.test", "b")] {
        mount_sign_in(&server, email, id).await;
    }
    for (cookie, posts) in [
        (
            "session_token=tok-b",
            json!([{ "id": 7, "title": "b's", "author_id": "b" }]),
        ),
        ("session_token=tok-a", json!([])),
    ] {
        Mock::given(method("GET"))
            .and(path("/api/posts"))
            .and(header("cookie", cookie))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "posts": posts })))
            .mount(&server)
            .await;
    }
    if let Some(version) = refusing {
        Mock::given(method("POST"))
            .and(path("/api/posts"))
            .and(header(OVERRIDE, override_of(version).as_str()))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "error": "no" })))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/api/posts"))
        .and(body_partial_json(json!({ "author_id": "b" })))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({ "error": "no" })))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/posts"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "id": 9, "author_id": "a" })),
        )
        .with_priority(3)
        .mount(&server)
        .await;
    server
}

/// A `[verify]` whose recipe writes one small module (what verify concludes
/// does not matter here: its read of the deployment does).
fn verify_target(api: &StandIn, source: &std::path::Path) -> VerifyTarget {
    let mut target = reference_verify_target(source, api.api_base());
    target.recipe.command = [
        "sh",
        "-c",
        "printf 'export default {}' > \"$1/worker.js\"",
        "sh",
        "{out}",
    ]
    .map(str::to_owned)
    .to_vec();
    target.recipe.link = Vec::new();
    target.recipe.non_artifacts = Vec::new();
    target.bisect = false;
    target
}

async fn audit(worker: &MockServer, api: &StandIn) -> AuditRun {
    let source = tempfile::tempdir().unwrap();
    let mut target: Target = stand_in_target(worker, "[profile]\nwindow_s = 1\n", |_| {
        "not-a-real-password".to_owned()
    });
    target.verify = Some(verify_target(api, source.path()));
    let plan = Arc::new(Plan::builtin("flarelink-auth/v1").unwrap());
    let audit = Audit {
        target: Arc::new(target),
        plan: plan.clone(),
        credentials: Credentials {
            account_id: REFERENCE_ACCOUNT.to_owned(),
            token: Secret::new(TOKEN),
        },
        retry: RetryPolicy::default(),
        selection: Selection::new(&[CHECK.to_owned()], &[]).unwrap(),
        progress: Arc::new(flareproof::progress::Silent),
    };
    audit.run().await.expect("the audit runs")
}

/// Every request the Worker saw, by the override header it carried.
async fn requests_by_override(worker: &MockServer) -> BTreeMap<Option<String>, usize> {
    let mut by = BTreeMap::new();
    for r in worker.received_requests().await.unwrap() {
        let values: Vec<String> = r
            .headers
            .get_all(OVERRIDE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert!(values.len() <= 1, "{values:?}");
        *by.entry(values.into_iter().next()).or_insert(0) += 1;
    }
    by
}

fn notes(evidence: &[Evidence]) -> Vec<&str> {
    evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Note { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_gradual_deployment_is_conformed_once_per_version_each_run_pinned_by_its_header() {
    // 60/40 between V1 and V2, and a version at 0 % that is not run.
    let api = api(&[
        (V1, 60.0),
        (V2, 40.0),
        ("cccccccc-0000-4000-8000-000000000000", 0.0),
    ])
    .await;
    let worker = worker(Some(V2)).await;
    let run = audit(&worker, &api).await;

    // Every request carried one version's header; none went unpinned.
    let by = requests_by_override(&worker).await;
    assert!(!by.contains_key(&None), "unpinned requests: {by:?}");
    assert_eq!(
        by.keys().cloned().collect::<Vec<_>>(),
        vec![Some(override_of(V1)), Some(override_of(V2))]
    );
    assert_eq!(by.values().sum::<usize>(), run.requests);
    assert_eq!(
        run.pins
            .iter()
            .map(|p| p.version_id.as_str())
            .collect::<Vec<_>>(),
        [V1, V2]
    );

    // One result per version, in deployment order: V1 keeps the contract,
    // V2 (which refuses every write) cannot be judged.
    let results: Vec<_> = run
        .report
        .checks
        .iter()
        .filter(|c| c.id.as_str() == CHECK)
        .collect();
    assert_eq!(results.len(), 2, "{results:#?}");
    assert_eq!(results[0].version.as_deref(), Some(V1));
    assert_eq!(results[0].status, Status::Pass, "{}", results[0].summary);
    assert_eq!(results[1].version.as_deref(), Some(V2));
    assert_eq!(results[1].status, Status::Error, "{}", results[1].summary);
    for r in &results {
        let notes = notes(&r.evidence);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("cannot be observed from outside")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("concluded differently")),
            "{notes:?}"
        );
        // Each exchange of the run shows the header it carried.
        let version = r.version.as_deref().unwrap();
        for e in &r.evidence {
            if let Evidence::Exchange(x) = e {
                assert!(
                    x.request
                        .headers
                        .iter()
                        .any(|h| h.name.eq_ignore_ascii_case(OVERRIDE)
                            && h.value == override_of(version)),
                    "{x:#?}"
                );
            }
        }
    }
    // The report format shows which version a result is for.
    let md = String::from_utf8(flareproof::report::markdown::render(&run.report)).unwrap();
    assert!(md.contains(&format!("`{CHECK} @ {V1}`")), "{md}");

    // The attestation names the version of each conform result, and which
    // versions were run.
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let statement = attestation::audit_statement(
        &run.report,
        &plan,
        Some(&run.verify_attestation),
        BTreeMap::new(),
    );
    let v: serde_json::Value = serde_json::from_slice(&attestation::render(&statement)).unwrap();
    let checks = v["predicate"]["checks"].as_array().unwrap();
    let pinned: Vec<(&str, &str)> = checks
        .iter()
        .filter(|c| c["id"] == CHECK)
        .map(|c| {
            (
                c["version"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(pinned, [(V1, "pass"), (V2, "error")]);
    assert!(
        checks
            .iter()
            .filter(|c| c["id"].as_str().unwrap().starts_with("verify."))
            .all(|c| c.get("version").is_none())
    );
    let runs: Vec<(&str, &str)> = v["predicate"]["conform_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version_id"].as_str().unwrap(),
                r["run"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            (V1, "pinned"),
            (V2, "pinned"),
            ("cccccccc-0000-4000-8000-000000000000", "not-run")
        ]
    );
}

#[tokio::test]
async fn a_worker_that_ignores_the_header_is_not_claimed_to_honour_it() {
    let api = api(&[(V1, 50.0), (V2, 50.0)]).await;
    let worker = worker(None).await;
    let run = audit(&worker, &api).await;
    let results: Vec<_> = run
        .report
        .checks
        .iter()
        .filter(|c| c.id.as_str() == CHECK)
        .collect();
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r.status, Status::Pass, "{}", r.summary);
        let notes = notes(&r.evidence);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("concluded alike") && n.contains("does not show")),
            "{notes:?}"
        );
    }
}

#[tokio::test]
async fn one_version_at_100_percent_is_one_unpinned_run_as_today() {
    let api = api(&[(V1, 100.0)]).await;
    let worker = worker(None).await;
    let run = audit(&worker, &api).await;
    let by = requests_by_override(&worker).await;
    assert_eq!(by.keys().collect::<Vec<_>>(), [&None], "{by:?}");
    assert!(run.pins.is_empty());
    let results: Vec<_> = run
        .report
        .checks
        .iter()
        .filter(|c| c.id.as_str() == CHECK)
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, Status::Pass, "{}", results[0].summary);
    assert_eq!(results[0].version, None);
    assert!(
        notes(&results[0].evidence)
            .iter()
            .all(|n| !n.contains("pinned")),
    );
    // The report as today: no check carries a version.
    let json: serde_json::Value =
        serde_json::from_slice(&flareproof::report::json::render(&run.report)).unwrap();
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("version").is_none())
    );
    // The attestation still says which version the results are for.
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let statement = attestation::audit_statement(
        &run.report,
        &plan,
        Some(&run.verify_attestation),
        BTreeMap::new(),
    );
    let v: serde_json::Value = serde_json::from_slice(&attestation::render(&statement)).unwrap();
    let record = v["predicate"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == CHECK)
        .unwrap();
    assert_eq!(record["version"], V1);
    assert_eq!(v["predicate"]["conform_versions"][0]["run"], "unpinned");
}
