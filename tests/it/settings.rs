//! `verify.settings-match` and `verify.no-undeclared-observers` against a
//! wiremock Cloudflare API serving the recorded shapes: one tamper per
//! comparison, each failing its own check and no other; `/script-settings`
//! and `/settings` observers joined; bad shapes, a refused token and an
//! absent endpoint are errors naming the endpoint; values are capped and
//! masked, a secret's never printed.

use flareproof::checks::verify::{self as checks, Inputs};
use flareproof::cloudflare::{Scenario, error_body, fetch_live};
use flareproof::compare::{DeclaredBinding, DeployedBinding, Module};
use flareproof::model::{CheckResult, Evidence, Status};
use flareproof::plan::Plan;
use flareproof::rebuild::Rebuild;
use flareproof::target::VerifyTarget;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::verify::{api, api_client, faithful, fast, mount, shared_rebuild};

fn target() -> VerifyTarget {
    crate::support::reference_target()
}

/// Serves `s` (plus `extra` mocks, mounted first at a higher priority) and
/// judges it against `rebuild` with `target`.
async fn judge_with(
    s: &Scenario,
    target: &VerifyTarget,
    rebuild: &Rebuild,
    extra: Vec<Mock>,
) -> Vec<CheckResult> {
    let server = MockServer::start().await;
    for m in extra {
        m.with_priority(1).mount(&server).await;
    }
    mount(&server, s).await;
    let client = api_client(&server, fast());
    let live = fetch_live(&client, &s.script).await;
    let exchanges = client.transcript();
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    checks::run(
        &Inputs {
            target,
            rebuild: Ok(rebuild),
            live: live.as_ref(),
            exchanges: &exchanges,
            rebuild_ms: 0,
            fetch_ms: 0,
            base_url: None,
        },
        &plan,
    )
}

fn result<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|r| r.id.as_str() == id).unwrap()
}

fn with_status(results: &[CheckResult], status: Status) -> Vec<&str> {
    results
        .iter()
        .filter(|r| r.status == status)
        .map(|r| r.id.as_str())
        .collect()
}

/// Everything a finding says, exchanges aside.
fn text(r: &CheckResult) -> String {
    let mut out = r.summary.clone();
    for e in &r.evidence {
        if let Evidence::Note { text } = e {
            out.push('\n');
            out.push_str(text);
        }
    }
    out
}

/// The reference target with a `json` binding `CONFIG` declared, limits and
/// the usage model declared; the faithful scenario deploys exactly that.
fn declared_more() -> (VerifyTarget, Scenario) {
    let mut t = target();
    t.declared.bindings.push(DeclaredBinding {
        name: "CONFIG".into(),
        kind: "json".into(),
        target: None,
        value: Some(json!({ "tiers": ["free", "pro"], "strict": true })),
    });
    t.declared.limits = Some(json!({ "cpu_ms": 50 }));
    t.declared.usage_model = Some("standard".into());
    let mut s = faithful();
    s.versions[0].bindings.push(DeployedBinding {
        name: "CONFIG".into(),
        kind: "json".into(),
        target: None,
        value: Some(json!({ "strict": true, "tiers": ["free", "pro"] })),
    });
    (t, s)
}

/// A rebuild with a second module, and a scenario deploying both.
fn two_modules() -> (Rebuild, Scenario) {
    let lib = Module::new(
        "lib.mjs",
        Some("application/javascript+module"),
        b"export const lib = 1;".to_vec(),
    );
    let mut r = shared_rebuild().clone();
    r.first.bundle.insert(lib.clone());
    r.second.bundle.insert(lib.clone());
    let mut s = faithful();
    s.versions[0].bundle.insert(lib);
    (r, s)
}

#[tokio::test]
async fn each_settings_and_observers_tamper_fails_its_own_check_and_no_other() {
    let base = shared_rebuild();
    let (more_target, more) = declared_more();
    let (two_rebuild, two) = two_modules();
    let plain = target();
    // (name, scenario, target, rebuild, failing check, what the summary names)
    let mut cases: Vec<(&str, Scenario, &VerifyTarget, &Rebuild, &str, &str)> = Vec::new();
    let mut push = |name, s, t, r, id, needle| cases.push((name, s, t, r, id, needle));

    let mut s = faithful();
    s.streaming_tail_consumers = vec!["stream-collector".into()];
    push(
        "streaming tail consumer",
        s,
        &plain,
        base,
        checks::NO_UNDECLARED_OBSERVERS,
        "streaming tail consumer `stream-collector`",
    );
    let mut s = faithful();
    s.trace_destinations = vec!["otel-exfil".into()];
    push(
        "trace destination",
        s,
        &plain,
        base,
        checks::NO_UNDECLARED_OBSERVERS,
        "trace destination `otel-exfil`",
    );
    let mut s = faithful();
    s.observability = true;
    push(
        "observability on",
        s,
        &plain,
        base,
        checks::NO_UNDECLARED_OBSERVERS,
        "Workers Observability is on",
    );
    let mut s = faithful();
    let origin = s.versions[0]
        .bindings
        .iter_mut()
        .find(|b| b.name == "TRUSTED_ORIGIN")
        .unwrap();
    origin.value = Some(json!("https://evil.example"));
    push(
        "plain_text value changed",
        s,
        &plain,
        base,
        checks::SETTINGS_MATCH,
        "`TRUSTED_ORIGIN` (plain_text) is \"https://evil.example\"",
    );
    let mut s = more.clone();
    s.versions[0].bindings.last_mut().unwrap().value =
        Some(json!({ "strict": false, "tiers": ["free", "pro"] }));
    push(
        "json value changed",
        s,
        &more_target,
        base,
        checks::SETTINGS_MATCH,
        "`CONFIG` (json) is",
    );
    let mut s = faithful();
    s.versions[0].bindings.push(DeployedBinding {
        name: "STOLEN_KEY".into(),
        kind: "secret_text".into(),
        target: None,
        value: None,
    });
    push(
        "extra secret",
        s,
        &plain,
        base,
        checks::SETTINGS_MATCH,
        "undeclared binding `STOLEN_KEY` (secret_text)",
    );
    let mut s = faithful();
    s.versions[0].bindings.retain(|b| b.name != "SERVICE_KEY");
    push(
        "declared secret missing",
        s,
        &plain,
        base,
        checks::SETTINGS_MATCH,
        "declared binding `SERVICE_KEY` (secret_text) is missing",
    );
    let mut s = faithful();
    s.placement = Some(json!({ "mode": "smart" }));
    push(
        "placement smart",
        s,
        &plain,
        base,
        checks::SETTINGS_MATCH,
        "undeclared placement {\"mode\":\"smart\"}",
    );
    let mut s = more.clone();
    s.limits = json!({ "cpu_ms": 300000 });
    push(
        "limits changed",
        s,
        &more_target,
        base,
        checks::SETTINGS_MATCH,
        "limits.cpu_ms is 300000, declared 50",
    );
    let mut s = faithful();
    s.cache_options = Some(json!({ "enabled": false, "cross_version_cache": true }));
    push(
        "cross-version cache on",
        s,
        &plain,
        base,
        checks::SETTINGS_MATCH,
        "undeclared cache_options.cross_version_cache is true",
    );
    let mut s = more.clone();
    s.usage_model = "unbound".into();
    push(
        "usage model changed",
        s,
        &more_target,
        base,
        checks::SETTINGS_MATCH,
        "usage model is unbound, declared standard",
    );
    let mut s = faithful();
    s.versions[0]
        .bundle
        .module_mut("worker.js")
        .unwrap()
        .content_type = Some("application/javascript".into());
    push(
        "ESM served as CommonJS",
        s,
        &plain,
        base,
        checks::SETTINGS_MATCH,
        "module `worker.js` is deployed as application/javascript, rebuilt as \
         application/javascript+module",
    );
    let mut s = two.clone();
    s.versions[0].bundle.main_module = Some("lib.mjs".into());
    push(
        "entry module changed",
        s,
        &plain,
        &two_rebuild,
        checks::SETTINGS_MATCH,
        "entry module is `lib.mjs`, rebuilt `worker.js`",
    );

    // The faithful deployments pass every check.
    for (name, s, t, r) in [
        ("faithful", faithful(), &plain, base),
        ("faithful, more declared", more.clone(), &more_target, base),
        ("faithful, two modules", two.clone(), &plain, &two_rebuild),
    ] {
        let results = judge_with(&s, t, r, Vec::new()).await;
        assert_eq!(
            with_status(&results, Status::Pass).len(),
            checks::IDS.len(),
            "{name}: {results:#?}"
        );
    }
    for (name, s, t, r, id, needle) in &cases {
        let results = judge_with(s, t, r, Vec::new()).await;
        assert_eq!(
            with_status(&results, Status::Fail),
            vec![*id],
            "{name}: {results:#?}"
        );
        assert_eq!(
            with_status(&results, Status::Pass).len(),
            checks::IDS.len() - 1,
            "{name}: {results:#?}"
        );
        let r = result(&results, id);
        assert!(r.summary.contains(needle), "{name}: {}", r.summary);
    }
}

#[tokio::test]
async fn an_undeclared_plain_text_value_is_shown_not_compared_and_a_declared_one_is() {
    let s = faithful();
    // Not declared: shown in the evidence, not compared.
    let mut t = target();
    for b in &mut t.declared.bindings {
        b.value = None;
    }
    let mut changed = s.clone();
    changed.versions[0]
        .bindings
        .iter_mut()
        .find(|b| b.name == "TRUSTED_ORIGIN")
        .unwrap()
        .value = Some(json!("https://other.example"));
    let results = judge_with(&changed, &t, shared_rebuild(), Vec::new()).await;
    let r = result(&results, checks::SETTINGS_MATCH);
    assert_eq!(r.status, Status::Pass, "{}", r.summary);
    assert!(
        text(r).contains(
            "`TRUSTED_ORIGIN` (plain_text) = \"https://other.example\" (value not declared"
        ),
        "{}",
        text(r)
    );
    // Declared (the reference target): the same change fails.
    let results = judge_with(&changed, &target(), shared_rebuild(), Vec::new()).await;
    assert_eq!(
        result(&results, checks::SETTINGS_MATCH).status,
        Status::Fail
    );
}

#[tokio::test]
async fn a_printed_value_is_capped_and_masked_and_a_secret_value_is_never_printed() {
    let mut s = faithful();
    let long = format!(
        "https://deploy:hunter2-Pw9x@origin.example/{}",
        "a".repeat(500)
    );
    s.versions[0]
        .bindings
        .iter_mut()
        .find(|b| b.name == "TRUSTED_ORIGIN")
        .unwrap()
        .value = Some(json!(long));
    let results = judge_with(&s, &target(), shared_rebuild(), Vec::new()).await;
    let r = result(&results, checks::SETTINGS_MATCH);
    assert_eq!(r.status, Status::Fail);
    let all = text(r);
    assert!(!all.contains("hunter2-Pw9x"), "{all}");
    assert!(!all.contains(&"a".repeat(200)), "capped: {all}");
    assert!(all.contains("bytes)"), "{all}");

    // A value declared for a secret: never compared, never printed.
    let mut t = target();
    t.declared
        .bindings
        .iter_mut()
        .find(|b| b.name == "SERVICE_KEY")
        .unwrap()
        .value = Some(json!("sk-live-Qw83hT5mZ"));
    let results = judge_with(&faithful(), &t, shared_rebuild(), Vec::new()).await;
    let r = result(&results, checks::SETTINGS_MATCH);
    assert_eq!(r.status, Status::Error, "{}", r.summary);
    assert!(r.summary.contains("secret `SERVICE_KEY`"), "{}", r.summary);
    assert!(!format!("{r:?}").contains("sk-live-Qw83hT5mZ"));
}

fn at(endpoint: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET")).and(path(format!("{}/scripts/flarelink-auth/{endpoint}", api())))
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "success": true, "errors": [], "messages": [], "result": body
    }))
}

#[tokio::test]
async fn both_settings_endpoints_are_read_and_their_disagreement_is_noted() {
    // /script-settings names a declared tail consumer /settings does not.
    let mut t = target();
    t.observers.tail_consumers = vec!["audit-log".into()];
    let s = faithful();
    let mut script_level = s.script_settings_body()["result"].clone();
    script_level["tail_consumers"] = json!([{ "service": "audit-log" }]);
    let results = judge_with(
        &s,
        &t,
        shared_rebuild(),
        vec![at("script-settings").respond_with(ok(script_level.clone()))],
    )
    .await;
    let r = result(&results, checks::NO_UNDECLARED_OBSERVERS);
    assert_eq!(r.status, Status::Pass, "{}", r.summary);
    let all = text(r);
    assert!(
        all.contains(
            "/settings and /script-settings disagree on tail consumers: [] vs [audit-log]"
        ),
        "{all}"
    );
    assert!(
        all.contains("/script-settings: tail consumers [audit-log]"),
        "{all}"
    );

    // Undeclared, named by /script-settings alone: fails.
    let results = judge_with(
        &s,
        &target(),
        shared_rebuild(),
        vec![at("script-settings").respond_with(ok(script_level))],
    )
    .await;
    assert_eq!(
        with_status(&results, Status::Fail),
        vec![checks::NO_UNDECLARED_OBSERVERS]
    );
    let r = result(&results, checks::NO_UNDECLARED_OBSERVERS);
    assert!(
        r.summary.contains("tail consumer `audit-log`"),
        "{}",
        r.summary
    );

    // Declared streaming consumers, trace destinations and observability
    // pass.
    let mut s = faithful();
    s.streaming_tail_consumers = vec!["stream-collector".into()];
    s.trace_destinations = vec!["otel".into()];
    s.observability = true;
    let mut t = target();
    t.observers.streaming_tail_consumers = vec!["stream-collector".into()];
    t.observers.trace_destinations = vec!["otel".into()];
    t.observers.observability = true;
    let results = judge_with(&s, &t, shared_rebuild(), Vec::new()).await;
    assert_eq!(
        with_status(&results, Status::Pass).len(),
        checks::IDS.len(),
        "{results:#?}"
    );
}

#[tokio::test]
async fn bad_shapes_a_refused_token_and_an_absent_endpoint_are_errors_naming_the_endpoint() {
    let s = faithful();
    let mut settings = s.settings_body()["result"].clone();
    settings["placement"] = json!("smart");
    let mut script_level = s.script_settings_body()["result"].clone();
    script_level["streaming_tail_consumers"] = json!([{ "name": "x" }]);
    let mut observability = s.settings_body()["result"].clone();
    observability["observability"]["traces"]["destinations"] = json!("otel");
    let mut version = s.version_body(&s.versions[0].id).unwrap()["result"].clone();
    for b in version["resources"]["bindings"].as_array_mut().unwrap() {
        if b["name"] == "TRUSTED_ORIGIN" {
            b.as_object_mut().unwrap().remove("text");
        }
    }
    let version_path = format!("versions/{}", s.versions[0].id);
    let refused =
        ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error"));
    let absent = ResponseTemplate::new(404).set_body_json(error_body(10007, "not found"));
    let version_needles = [
        version_path.as_str(),
        "`TRUSTED_ORIGIN` has no string `text`",
    ];
    let cases: Vec<(&str, Mock, &str, &[&str])> = vec![
        (
            "placement not an object",
            at("settings").respond_with(ok(settings)),
            checks::SETTINGS_MATCH,
            &["/settings", "`placement` is not an object"],
        ),
        (
            "streaming consumer without service",
            at("script-settings").respond_with(ok(script_level)),
            checks::NO_UNDECLARED_OBSERVERS,
            &["/script-settings", "streaming_tail_consumers", "`service`"],
        ),
        (
            "trace destinations not a list",
            at("settings").respond_with(ok(observability)),
            checks::NO_UNDECLARED_OBSERVERS,
            &["/settings", "observability.traces.destinations"],
        ),
        (
            "plain_text without text",
            at(&version_path).respond_with(ok(version)),
            checks::SETTINGS_MATCH,
            &version_needles,
        ),
        (
            "script-settings refused",
            at("script-settings").respond_with(refused),
            checks::NO_UNDECLARED_OBSERVERS,
            &["/script-settings", "HTTP 403", "Workers Scripts Read"],
        ),
        (
            "script-settings absent",
            at("script-settings").respond_with(absent),
            checks::NO_UNDECLARED_OBSERVERS,
            &["/script-settings", "HTTP 404"],
        ),
    ];
    for (name, mock, id, needles) in cases {
        let results = judge_with(&s, &target(), shared_rebuild(), vec![mock]).await;
        let r = result(&results, id);
        assert_eq!(r.status, Status::Error, "{name}: {}", r.summary);
        for n in needles {
            assert!(r.summary.contains(n), "{name}: {n} not in {}", r.summary);
        }
        assert!(with_status(&results, Status::Fail).is_empty(), "{name}");
    }
}

#[tokio::test]
async fn the_script_download_carries_content_types_and_the_entry_module_too() {
    let (two_rebuild, two) = two_modules();
    let refuse_beta = |s: &Scenario| {
        Mock::given(method("GET"))
            .and(path(format!(
                "{}/workers/{}/versions/{}",
                api(),
                s.script,
                s.versions[0].id
            )))
            .respond_with(ResponseTemplate::new(404).set_body_json(error_body(10007, "not found")))
    };
    // Faithful through the download: every check passes.
    let mut s = two.clone();
    s.beta_modules = false;
    let results = judge_with(&s, &target(), &two_rebuild, vec![refuse_beta(&s)]).await;
    // (The download reports no package_dependencies: provenance cannot
    // compare them, which is its `error`, not a settings matter.)
    assert_eq!(
        with_status(&results, Status::Error),
        vec![checks::PROVENANCE],
        "{results:#?}"
    );
    assert_eq!(
        with_status(&results, Status::Pass).len(),
        checks::IDS.len() - 1,
        "{results:#?}"
    );
    let r = result(&results, checks::SETTINGS_MATCH);
    assert!(
        text(r).contains("read from the script download"),
        "{}",
        text(r)
    );
    // A CommonJS part and another entry in `cf-entrypoint`: settings-match.
    s.versions[0]
        .bundle
        .module_mut("lib.mjs")
        .unwrap()
        .content_type = Some("application/javascript".into());
    s.versions[0].bundle.main_module = Some("lib.mjs".into());
    let results = judge_with(&s, &target(), &two_rebuild, vec![refuse_beta(&s)]).await;
    assert_eq!(
        with_status(&results, Status::Fail),
        vec![checks::SETTINGS_MATCH],
        "{results:#?}"
    );
    let r = result(&results, checks::SETTINGS_MATCH);
    assert!(
        r.summary
            .contains("module `lib.mjs` is deployed as application/javascript"),
        "{}",
        r.summary
    );
    assert!(
        r.summary
            .contains("entry module is `lib.mjs`, rebuilt `worker.js`"),
        "{}",
        r.summary
    );
}
