//! `verify.ingress` against a wiremock stand-in Cloudflare API serving the
//! recorded shapes: the faithful reference ingress passes; each undeclared
//! way in fails; a base URL elsewhere warns; a refusal or an answer of an
//! unexpected shape is `error`, naming the endpoint, field or permission.

use std::time::Duration;

use flareproof::checks::verify::{self as checks, Inputs};
use flareproof::cloudflare::{
    Client, Credentials, RetryPolicy, Scenario, error_body, fetch_live_in_zone,
};
use flareproof::compare::{Bundle, Module};
use flareproof::model::{CheckResult, Evidence, Secret, Status};
use flareproof::plan::Plan;
use flareproof::rebuild::RebuildError;
use flareproof::target::{DeclaredIngress, VerifyTarget};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{REFERENCE_ACCOUNT, reference_scenario};

const TOKEN: &str = "cf-ingress-token-Vb72kPq9Lx3M";

fn api(server: &MockServer) -> String {
    format!("{}/client/v4", server.uri())
}

fn account() -> String {
    format!("/client/v4/accounts/{REFERENCE_ACCOUNT}/workers")
}

/// Mounts the ingress endpoints of `s` (the verify tests' `mount` calls
/// this too).
pub async fn mount_ingress(server: &MockServer, s: &Scenario) {
    let base = format!("/client/v4/accounts/{}/workers", s.account_id);
    let script = &s.script;
    let ok = |body: serde_json::Value| ResponseTemplate::new(200).set_body_json(body);
    for (p, body) in [
        (format!("{base}/scripts/{script}/routes"), s.routes_body()),
        (format!("{base}/domains"), s.domains_body()),
        (
            format!("{base}/scripts/{script}/subdomain"),
            s.subdomain_body(),
        ),
        (format!("{base}/subdomain"), s.account_subdomain_body()),
        (
            format!("/client/v4/zones/{}/workers/routes", s.zone_id),
            s.zone_routes_body(),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ok(body))
            .mount(server)
            .await;
    }
}

/// A one-module deployment of the reference script with the reference
/// ingress (no rebuild needed: `verify.ingress` does not read it).
fn faithful() -> Scenario {
    let bundle = Bundle::new(
        Some("worker.js".into()),
        vec![Module::new(
            "worker.js",
            Some("application/javascript+module"),
            b"export default {}".to_vec(),
        )],
    );
    reference_scenario(bundle, Secret::new(TOKEN))
}

fn target() -> VerifyTarget {
    crate::support::reference_target()
}

async fn serve(s: &Scenario) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/scripts/{}/deployments",
            account(),
            s.script
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(s.deployments_body()))
        .mount(&server)
        .await;
    mount_ingress(&server, s).await;
    server
}

fn client(server: &MockServer) -> Client {
    Client::new(
        &url::Url::parse(&api(server)).unwrap(),
        Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        RetryPolicy {
            attempts: 2,
            backoff: Duration::from_millis(10),
            retry_after_cap: Duration::from_secs(1),
            timeout: Duration::from_secs(20),
        },
    )
    .unwrap()
}

/// Reads `server` and concludes `verify.ingress` for `target`.
async fn judge(server: &MockServer, target: &VerifyTarget, base_url: Option<&str>) -> CheckResult {
    let client = client(server);
    let live = fetch_live_in_zone(&client, &target.script, target.ingress.zone_id.as_deref())
        .await
        .expect("the deployment reads");
    let exchanges = client.transcript();
    let no_rebuild = RebuildError::EmptyRecipe;
    let base = base_url.map(|u| url::Url::parse(u).unwrap());
    let inputs = Inputs {
        target,
        rebuild: Err(&no_rebuild),
        live: Ok(&live),
        exchanges: &exchanges,
        rebuild_ms: 0,
        fetch_ms: 0,
        base_url: base.as_ref(),
    };
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let result = checks::run(&inputs, &plan)
        .into_iter()
        .find(|r| r.id.as_str() == checks::INGRESS)
        .expect("verify.ingress is concluded");
    let text = serde_json::to_string(&result).unwrap();
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    result
}

fn notes(r: &CheckResult) -> String {
    r.evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Note { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_faithful_reference_ingress_passes_and_its_base_url_host_is_a_custom_domain() {
    let s = faithful();
    let server = serve(&s).await;
    let r = judge(&server, &target(), Some("http://127.0.0.1:8787/")).await;
    assert_eq!(r.status, Status::Pass, "{}\n{}", r.summary, notes(&r));
    assert!(
        notes(&r).contains("custom domains [127.0.0.1]"),
        "{}",
        notes(&r)
    );
    assert!(
        notes(&r).contains("is one of the live ingress"),
        "{}",
        notes(&r)
    );
    // Verify alone has no base URL: said so, still a pass.
    let r = judge(&server, &target(), None).await;
    assert_eq!(r.status, Status::Pass, "{}", r.summary);
    assert!(notes(&r).contains("no `target.base_url`"), "{}", notes(&r));
    // The other Worker's custom domain in the account is not this script's.
    assert!(!notes(&r).contains("www.example.test"), "{}", notes(&r));
    // workers.dev is off: the account subdomain is not read.
    let received = server.received_requests().await.unwrap();
    assert!(
        !received
            .iter()
            .any(|q| q.url.path().ends_with("/workers/subdomain")),
        "account subdomain read while workers.dev is off"
    );
}

#[tokio::test]
async fn an_undeclared_route_fails_and_a_declared_one_passes_whatever_its_spelling() {
    let mut s = faithful();
    s.routes = vec!["Auth.Example.test/*".into()];
    let server = serve(&s).await;
    let r = judge(&server, &target(), None).await;
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        r.summary.contains("route `Auth.Example.test/*`"),
        "{}",
        r.summary
    );
    let mut t = target();
    t.ingress.routes = vec!["https://auth.example.test/*".into()];
    let r = judge(&server, &t, None).await;
    assert_eq!(r.status, Status::Pass, "{}", r.summary);
    // A different path is a different route.
    t.ingress.routes = vec!["auth.example.test/api/*".into()];
    let r = judge(&server, &t, None).await;
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        notes(&r).contains("declared route `auth.example.test/api/*` is not live"),
        "{}",
        notes(&r)
    );
}

#[tokio::test]
async fn an_undeclared_custom_domain_fails() {
    let mut s = faithful();
    s.custom_domains.push("auth-beta.example.test".into());
    let server = serve(&s).await;
    let r = judge(&server, &target(), None).await;
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        r.summary.contains("custom domain `auth-beta.example.test`"),
        "{}",
        r.summary
    );
    assert!(!r.summary.contains("127.0.0.1"), "{}", r.summary);
}

#[tokio::test]
async fn workers_dev_on_fails_unless_declared_and_then_its_host_is_an_ingress() {
    let mut s = faithful();
    s.workers_dev = true;
    let server = serve(&s).await;
    let r = judge(&server, &target(), None).await;
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        r.summary.contains("workers.dev subdomain is on"),
        "{}",
        r.summary
    );
    let mut t = target();
    t.ingress.workers_dev = true;
    let host = "http://flarelink-auth.flarelink.workers.dev/";
    let r = judge(&server, &t, Some(host)).await;
    assert_eq!(r.status, Status::Pass, "{}\n{}", r.summary, notes(&r));
}

#[tokio::test]
async fn preview_urls_on_fail_unless_declared_and_pass_once_declared() {
    let mut s = faithful();
    s.previews_enabled = true;
    let server = serve(&s).await;
    let r = judge(&server, &target(), None).await;
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(r.summary.contains("preview URLs are on"), "{}", r.summary);
    let mut t = target();
    t.ingress.preview_urls = true;
    let r = judge(&server, &t, None).await;
    assert_eq!(r.status, Status::Pass, "{}", r.summary);
    // A preview URL host counts as an ingress for the base URL.
    let preview = "https://8f2a91c0-flarelink-auth.flarelink.workers.dev/";
    let r = judge(&server, &t, Some(preview)).await;
    assert_eq!(r.status, Status::Pass, "{}\n{}", r.summary, notes(&r));
}

#[tokio::test]
async fn a_zone_route_of_another_script_is_ignored_and_one_of_this_script_counts() {
    let mut s = faithful();
    s.zone_routes = vec![
        ("www.example.test/*".into(), Some("marketing-site".into())),
        ("static.example.test/*".into(), None),
    ];
    let server = serve(&s).await;
    let mut t = target();
    t.ingress.zone_id = Some(s.zone_id.clone());
    let r = judge(&server, &t, None).await;
    assert_eq!(r.status, Status::Pass, "{}\n{}", r.summary, notes(&r));
    s.zone_routes
        .push(("*.example.test/auth/*".into(), Some(s.script.clone())));
    let server = serve(&s).await;
    let r = judge(&server, &t, None).await;
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        r.summary.contains("route `*.example.test/auth/*`"),
        "{}",
        r.summary
    );
    assert!(!r.summary.contains("www.example.test"), "{}", r.summary);
    // Declared, and the base URL's host is matched by its wildcard.
    t.ingress.routes = vec!["*.example.test/auth/*".into()];
    let r = judge(&server, &t, Some("https://id.example.test/auth")).await;
    assert_eq!(r.status, Status::Pass, "{}\n{}", r.summary, notes(&r));
}

#[tokio::test]
async fn a_base_url_host_outside_the_ingress_warns() {
    let server = serve(&faithful()).await;
    let r = judge(&server, &target(), Some("https://staging.example.test/")).await;
    assert_eq!(r.status, Status::Warn, "{}", r.summary);
    assert!(
        r.summary.contains("`staging.example.test`")
            && r.summary.contains("conform may be testing something else"),
        "{}",
        r.summary
    );
}

#[tokio::test]
async fn a_refused_zone_routes_read_is_an_error_naming_the_permission() {
    let s = faithful();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/client/v4/zones/{}/workers/routes",
            s.zone_id
        )))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(error_body(10000, "Authentication error")),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/scripts/{}/deployments",
            account(),
            s.script
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(s.deployments_body()))
        .mount(&server)
        .await;
    mount_ingress(&server, &s).await;
    let mut t = target();
    t.ingress.zone_id = Some(s.zone_id.clone());
    let r = judge(&server, &t, None).await;
    assert_eq!(r.status, Status::Error, "{}", r.summary);
    assert!(r.summary.contains("routes of zone"), "{}", r.summary);
    assert!(r.summary.contains("Workers Routes"), "{}", r.summary);
    assert!(r.summary.contains("HTTP 403"), "{}", r.summary);
    // The refused exchange is evidence.
    assert!(r.evidence.iter().any(|e| matches!(
        e,
        Evidence::Exchange(x) if x.label == "zone routes"
            && x.response.as_ref().is_some_and(|r| r.status == 403)
    )));
}

async fn with_body(endpoint: &str, body: serde_json::Value) -> MockServer {
    let s = faithful();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(endpoint.to_owned()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/scripts/{}/deployments",
            account(),
            s.script
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(s.deployments_body()))
        .mount(&server)
        .await;
    mount_ingress(&server, &s).await;
    server
}

fn envelope(result: serde_json::Value) -> serde_json::Value {
    json!({ "success": true, "errors": [], "messages": [], "result": result })
}

#[tokio::test]
async fn a_malformed_answer_is_an_error_naming_endpoint_and_field() {
    let routes = format!("{}/scripts/flarelink-auth/routes", account());
    let domains = format!("{}/domains", account());
    let subdomain = format!("{}/scripts/flarelink-auth/subdomain", account());
    let cases = [
        (
            routes.clone(),
            envelope(json!({ "routes": [] })),
            "`result` is not a list",
        ),
        (
            routes.clone(),
            envelope(json!([{ "id": "r1", "script": "flarelink-auth" }])),
            "a route has no `pattern`",
        ),
        (
            domains.clone(),
            envelope(json!([{ "id": "d1", "service": "flarelink-auth" }])),
            "a custom domain has no `hostname`",
        ),
        (
            subdomain.clone(),
            envelope(json!({ "enabled": "false", "previews_enabled": false })),
            "`enabled` is missing or not a boolean",
        ),
        (
            subdomain.clone(),
            envelope(json!({ "enabled": false })),
            "`previews_enabled` is missing or not a boolean",
        ),
    ];
    for (endpoint, body, said) in cases {
        let server = with_body(&endpoint, body).await;
        let r = judge(&server, &target(), None).await;
        assert_eq!(r.status, Status::Error, "{endpoint}: {}", r.summary);
        assert!(r.summary.contains(said), "{endpoint}: {}", r.summary);
        assert!(r.summary.contains(&endpoint), "{endpoint}: {}", r.summary);
    }
}

#[tokio::test]
async fn an_undeclared_route_fails_even_when_another_part_is_unreadable() {
    let mut s = faithful();
    s.routes = vec!["auth.example.test/*".into()];
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/domains", account())))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/scripts/{}/deployments",
            account(),
            s.script
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(s.deployments_body()))
        .mount(&server)
        .await;
    mount_ingress(&server, &s).await;
    let r = judge(&server, &target(), None).await;
    assert_eq!(r.status, Status::Fail, "{}", r.summary);
    assert!(
        notes(&r).contains("the custom domains could not be read"),
        "{}",
        notes(&r)
    );
    // Without the undeclared route the unreadable part is an error, never a pass.
    s.routes.clear();
    let server2 = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{}/domains", account())))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(1)
        .mount(&server2)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/scripts/{}/deployments",
            account(),
            s.script
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(s.deployments_body()))
        .mount(&server2)
        .await;
    mount_ingress(&server2, &s).await;
    let r = judge(&server2, &target(), None).await;
    assert_eq!(r.status, Status::Error, "{}", r.summary);
    drop(server);
}

#[test]
fn the_reference_target_declares_the_reference_ingress() {
    let t = target();
    assert_eq!(
        t.ingress,
        DeclaredIngress {
            custom_domains: vec!["127.0.0.1".into()],
            ..DeclaredIngress::default()
        }
    );
}

#[tokio::test]
async fn the_stand_in_serves_every_ingress_shape_the_client_reads() {
    use flareproof::cloudflare::standin::StandIn;
    let mut s = faithful();
    s.routes = vec!["auth.example.test/*".into()];
    s.workers_dev = true;
    s.previews_enabled = true;
    s.zone_routes = vec![
        ("auth.example.test/*".into(), Some(s.script.clone())),
        ("www.example.test/*".into(), Some("marketing-site".into())),
    ];
    let zone = s.zone_id.clone();
    let standin = StandIn::start(s).await.unwrap();
    let client = Client::new(
        &standin.api_base(),
        Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        RetryPolicy::default(),
    )
    .unwrap();
    let live = fetch_live_in_zone(&client, "flarelink-auth", Some(&zone))
        .await
        .unwrap();
    let i = &live.ingress;
    let routes = i.routes.as_ref().unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].pattern, "auth.example.test/*");
    let domains = i.custom_domains.as_ref().unwrap();
    let hosts: Vec<&str> = domains.iter().map(|d| d.hostname.as_str()).collect();
    assert_eq!(hosts, vec!["127.0.0.1"], "only this script's");
    let dev = i.workers_dev.as_ref().unwrap();
    assert!(dev.enabled && dev.previews_enabled);
    assert_eq!(
        i.account_subdomain.as_ref().unwrap().as_ref().unwrap(),
        "flarelink"
    );
    let (z, zone_routes) = i.zone_routes.as_ref().unwrap();
    assert_eq!(z, &zone);
    let zone_routes = zone_routes.as_ref().unwrap();
    assert_eq!(zone_routes.len(), 1, "only this script's: {zone_routes:?}");
}

#[test]
fn verify_with_a_full_config_passes_target_base_url_and_verify_only_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let section = crate::support::verify_section(
        &crate::support::fixtures_dir(),
        r#"["node", "build.mjs", "--outdir", "{out}"]"#,
        "http://127.0.0.1:9/client/v4",
        "FP_INGRESS_TOKEN",
        "FP_INGRESS_ACCOUNT",
    );
    let only = dir.path().join("verify-only.toml");
    std::fs::write(&only, &section).unwrap();
    let (_, t) = flareproof::target::load_verify(&only).unwrap();
    assert_eq!(t.base_url, None);
    assert_eq!(t.ingress.custom_domains, vec!["127.0.0.1".to_owned()]);
    let full = dir.path().join("full.toml");
    std::fs::write(
        &full,
        format!(
            "[target]\nbase_url = \"https://auth.example.test/\"\norigin = \"https://app.example.test\"\n{section}"
        ),
    )
    .unwrap();
    let (_, t) = flareproof::target::load_verify(&full).unwrap();
    assert_eq!(
        t.base_url.as_ref().map(url::Url::as_str),
        Some("https://auth.example.test/")
    );
}
