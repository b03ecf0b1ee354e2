//! `verify.provenance`: the live versions' metadata, annotations and
//! package_dependencies as the stand-in Cloudflare API (wiremock, the
//! recorded shapes) reports them, judged against the fixture lockfile. No
//! rebuild: the check does not read it.

use std::path::PathBuf;

use flareproof::checks::verify::{self as checks, Inputs};
use flareproof::cloudflare::{Client, Credentials, PackageDependency, RetryPolicy, Scenario};
use flareproof::compare::{Bundle, Module};
use flareproof::model::{Evidence, Finding, Secret, Status};
use flareproof::rebuild::RebuildError;
use flareproof::target::VerifyTarget;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{REFERENCE_ACCOUNT, reference_scenario};
use crate::verify::{api, mount};

const TOKEN: &str = "cf-prov-token-Wm42Kd9Lq0Zr";
const DASH_EMAIL: &str = "deploy@flarelink.example";

fn scenario() -> Scenario {
    let bundle = Bundle::new(
        Some("worker.js".into()),
        vec![Module::new(
            "worker.js",
            Some("application/javascript+module"),
            b"export default { fetch() { return new Response('ok') } }".to_vec(),
        )],
    );
    reference_scenario(bundle, Secret::new(TOKEN))
}

fn target() -> VerifyTarget {
    crate::support::reference_target()
}

fn client(server: &MockServer) -> Client {
    Client::new(
        &url::Url::parse(&format!("{}/client/v4", server.uri())).unwrap(),
        Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        RetryPolicy {
            attempts: 2,
            backoff: std::time::Duration::from_millis(10),
            retry_after_cap: std::time::Duration::from_secs(5),
            timeout: std::time::Duration::from_secs(20),
        },
    )
    .unwrap()
}

/// Reads what `server` serves and decides `verify.provenance` for `target`.
async fn judge_with(server: &MockServer, target: &VerifyTarget) -> Finding {
    let client = client(server);
    let live = flareproof::cloudflare::fetch_live(&client, "flarelink-auth").await;
    let exchanges = client.transcript();
    let no_rebuild = RebuildError::Temp(std::io::Error::other("not rebuilt"));
    checks::provenance(&Inputs {
        target,
        rebuild: Err(&no_rebuild),
        live: live.as_ref(),
        exchanges: &exchanges,
        rebuild_ms: 0,
        fetch_ms: 0,
        base_url: None,
    })
}

async fn judge(s: &Scenario) -> Finding {
    let server = MockServer::start().await;
    mount(&server, s).await;
    judge_with(&server, &target()).await
}

fn notes(f: &Finding) -> Vec<&str> {
    f.evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Note { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn assert_status(f: &Finding, status: Status) {
    assert_eq!(f.status, status, "{}\n{:#?}", f.summary, notes(f));
}

#[tokio::test]
async fn a_faithful_deployment_passes_with_its_dependencies_compared() {
    let f = judge(&scenario()).await;
    assert_status(&f, Status::Pass);
    assert!(
        f.summary.contains("their 2 reported dependencies"),
        "{}",
        f.summary
    );
    let n = notes(&f).join("\n");
    assert!(n.contains("better-auth@1.7.25, hono@4.13.19"), "{n}");
    assert!(n.contains("source `wrangler`"), "{n}");
    // The author's email is personal data: its domain only.
    assert!(n.contains("an address at flarelink.example"), "{n}");
    assert!(
        !n.contains(DASH_EMAIL) && !f.summary.contains(DASH_EMAIL),
        "{n}"
    );
}

#[tokio::test]
async fn a_quick_editor_version_is_a_warn_saying_what_it_says() {
    let mut s = scenario();
    s.versions[0].source = "quick_editor".into();
    s.versions[0].message = Some("hotfix: allow the staging origin".into());
    let f = judge(&s).await;
    assert_status(&f, Status::Warn);
    for want in [
        "the dashboard's quick editor",
        "source `quick_editor`",
        "message \"hotfix: allow the staging origin\"",
        "triggered by `upload`",
        s.versions[0].id.as_str(),
    ] {
        assert!(f.summary.contains(want), "{} lacks {want}", f.summary);
    }
    assert!(!f.summary.contains(DASH_EMAIL));
}

#[tokio::test]
async fn an_unknown_source_is_a_warn_and_a_rollback_is_a_note() {
    let mut s = scenario();
    s.versions[0].source = "unknown".into();
    s.versions[0].triggered_by = Some("rollback".into());
    let f = judge(&s).await;
    assert_status(&f, Status::Warn);
    assert!(
        f.summary.contains("unknown client (source `unknown`"),
        "{}",
        f.summary
    );
    let n = notes(&f).join("\n");
    assert!(n.contains("created by a rollback"), "{n}");

    let mut s = scenario();
    s.versions[0].triggered_by = Some("secret".into());
    let f = judge(&s).await;
    assert_status(&f, Status::Pass);
    assert!(notes(&f).join("\n").contains("a secret change"));
}

#[tokio::test]
async fn a_dependency_at_another_version_fails_naming_it() {
    let mut s = scenario();
    let deps = s.versions[0].package_dependencies.as_mut().unwrap();
    deps.iter_mut()
        .find(|d| d.name == "hono")
        .unwrap()
        .installed_version = "4.13.18".into();
    let f = judge(&s).await;
    assert_status(&f, Status::Fail);
    assert!(
        f.summary
            .contains("`hono` installed 4.13.18, the lockfile pins 4.13.19"),
        "{}",
        f.summary
    );
    assert!(!f.summary.contains("better-auth"), "{}", f.summary);
}

#[tokio::test]
async fn a_dependency_absent_from_the_lockfile_fails_naming_it() {
    let mut s = scenario();
    s.versions[0]
        .package_dependencies
        .as_mut()
        .unwrap()
        .push(PackageDependency {
            name: "left-pad-exfil".into(),
            package_json_version: Some("^1.0.0".into()),
            installed_version: "1.0.3".into(),
        });
    let f = judge(&s).await;
    assert_status(&f, Status::Fail);
    assert!(
        f.summary
            .contains("`left-pad-exfil` 1.0.3 is not in the lockfile"),
        "{}",
        f.summary
    );
}

#[tokio::test]
async fn no_reported_dependencies_is_an_error_never_a_pass() {
    let mut s = scenario();
    s.versions[0].package_dependencies = None;
    let f = judge(&s).await;
    assert_status(&f, Status::Error);
    assert!(
        f.summary.contains("reports no package_dependencies"),
        "{}",
        f.summary
    );

    // An empty list is the API saying the version bundles no package:
    // nothing disagrees with the lockfile (which must still be readable).
    s.versions[0].package_dependencies = Some(Vec::new());
    let f = judge(&s).await;
    assert_status(&f, Status::Pass);

    // The beta endpoint is not there: the modules come from the download,
    // which reports no dependencies.
    let s = scenario();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/workers/{}/versions/{}",
            api(),
            s.script,
            s.versions[0].id
        )))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(flareproof::cloudflare::error_body(10007, "not found")),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let f = judge_with(&server, &target()).await;
    assert_status(&f, Status::Error);
    assert!(f.summary.contains("script download"), "{}", f.summary);
}

#[tokio::test]
async fn a_missing_or_unparsable_lockfile_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario();
    let server = MockServer::start().await;
    mount(&server, &s).await;
    let cases: Vec<(PathBuf, Option<&str>, &str)> = vec![
        (
            dir.path().join("package-lock.json"),
            None,
            "read the lockfile",
        ),
        (
            dir.path().join("broken/package-lock.json"),
            Some("{\"lockfileVersion\": 3, \"packages\": {"),
            "parse the lockfile",
        ),
        (
            dir.path().join("pnpm/pnpm-lock.yaml"),
            Some("lockfileVersion: '9.0'\n"),
            "pnpm lockfile, which flareproof does not read",
        ),
    ];
    for (lockfile, text, want) in cases {
        if let Some(text) = text {
            fs_err::create_dir_all(lockfile.parent().unwrap()).unwrap();
            fs_err::write(&lockfile, text).unwrap();
        }
        let mut t = target();
        t.provenance.lockfile = Some(lockfile.clone());
        let f = judge_with(&server, &t).await;
        assert_status(&f, Status::Error);
        assert!(f.summary.contains(want), "{} lacks {want}", f.summary);
        assert!(
            f.summary.contains(&lockfile.display().to_string()),
            "{}",
            f.summary
        );
    }
    // None declared and none found.
    let mut t = target();
    t.provenance.lockfile = None;
    let f = judge_with(&server, &t).await;
    assert_status(&f, Status::Error);
    assert!(
        f.summary.contains("no lockfile to compare with"),
        "{}",
        f.summary
    );
}

#[tokio::test]
async fn a_second_live_version_from_the_dashboard_is_judged_too() {
    let mut s = scenario();
    s.versions[0].percentage = 80.0;
    let mut canary = s.versions[0].clone();
    canary.id = "0c0ffee0-aaaa-4bbb-8ccc-000000000020".into();
    canary.percentage = 20.0;
    canary.source = "dash".into();
    canary.message = Some("edited in the dashboard".into());
    s.versions.push(canary.clone());
    let f = judge(&s).await;
    assert_status(&f, Status::Warn);
    assert!(
        f.summary.contains(
            "version 0c0ffee0-aaaa-4bbb-8ccc-000000000020 (20%) was created in the dashboard"
        ),
        "{}",
        f.summary
    );
    assert!(!f.summary.contains(&s.versions[0].id), "{}", f.summary);

    // Its dependencies are compared too.
    s.versions[1].source = "wrangler".into();
    s.versions[1]
        .package_dependencies
        .as_mut()
        .unwrap()
        .iter_mut()
        .for_each(|d| d.installed_version = "0.0.1".into());
    let f = judge(&s).await;
    assert_status(&f, Status::Fail);
    assert!(
        f.summary
            .contains("0c0ffee0-aaaa-4bbb-8ccc-000000000020 (20%): `better-auth` installed 0.0.1"),
        "{}",
        f.summary
    );
}

#[tokio::test]
async fn malformed_metadata_shapes_are_errors_naming_endpoint_and_field() {
    let s = scenario();
    let id = s.versions[0].id.clone();
    let mut detail = s.version_body(&id).unwrap();
    detail["result"]["metadata"]["source"] = serde_json::json!(7);
    let mut beta = s.version_modules_body(&id).unwrap();
    beta["result"]["package_dependencies"] = serde_json::json!([{ "name": "hono" }]);
    let mut beta_annotations = s.version_modules_body(&id).unwrap();
    beta_annotations["result"]["annotations"] = serde_json::json!("upload");
    let cases = [
        (
            Some(detail),
            None,
            format!("/scripts/flarelink-auth/versions/{id}"),
            "`metadata.source` is not a string",
        ),
        (
            None,
            Some(beta),
            format!("/workers/flarelink-auth/versions/{id}?include=modules"),
            "`package_dependencies[0]` (`hono`) has no `installedVersion`",
        ),
        (
            None,
            Some(beta_annotations),
            format!("/workers/flarelink-auth/versions/{id}?include=modules"),
            "`annotations` is not an object",
        ),
    ];
    for (detail, beta, endpoint, field) in cases {
        let server = MockServer::start().await;
        if let Some(body) = detail {
            Mock::given(method("GET"))
                .and(path(format!(
                    "{}/scripts/{}/versions/{id}",
                    api(),
                    s.script
                )))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .with_priority(1)
                .mount(&server)
                .await;
        }
        if let Some(body) = beta {
            Mock::given(method("GET"))
                .and(path(format!(
                    "{}/workers/{}/versions/{id}",
                    api(),
                    s.script
                )))
                .and(query_param("include", "modules"))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .with_priority(1)
                .mount(&server)
                .await;
        }
        mount(&server, &s).await;
        let f = judge_with(&server, &target()).await;
        assert_status(&f, Status::Error);
        assert!(
            f.summary.contains(&endpoint),
            "{} lacks {endpoint}",
            f.summary
        );
        assert!(f.summary.contains(field), "{} lacks {field}", f.summary);
        assert!(!f.summary.contains(TOKEN));
    }
}

#[tokio::test]
async fn a_refused_version_read_is_an_error_naming_the_permission() {
    let s = scenario();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "{}/scripts/{}/versions/{}",
            api(),
            s.script,
            s.versions[0].id
        )))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(flareproof::cloudflare::error_body(
                10000,
                "Authentication error",
            )),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    mount(&server, &s).await;
    let f = judge_with(&server, &target()).await;
    assert_status(&f, Status::Error);
    assert!(f.summary.contains("Workers Scripts Read"), "{}", f.summary);
}

#[tokio::test]
async fn the_stand_in_serves_the_provenance_the_client_parses() {
    let s = scenario();
    let standin = flareproof::cloudflare::standin::StandIn::start(s.clone())
        .await
        .unwrap();
    let client = Client::new(
        &standin.api_base(),
        Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        RetryPolicy::default(),
    )
    .unwrap();
    let live = flareproof::cloudflare::fetch_live(&client, "flarelink-auth")
        .await
        .unwrap();
    let p = live.versions[0].provenance.as_ref().unwrap();
    assert_eq!(p.source.as_deref(), Some("wrangler"));
    assert_eq!(p.triggered_by.as_deref(), Some("upload"));
    assert_eq!(
        p.dependencies,
        flareproof::cloudflare::Dependencies::Reported(
            s.versions[0].package_dependencies.clone().unwrap()
        )
    );
}

#[test]
fn the_lockfile_defaults_to_the_source_folders_and_a_declared_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("worker");
    fs_err::create_dir_all(&source).unwrap();
    let write = |extra: &str| {
        let path = dir.path().join("flareproof.toml");
        let text = crate::support::verify_section(
            &source,
            r#"["true"]"#,
            "http://127.0.0.1:1/client/v4",
            "FP_PROV_TOKEN",
            "FP_PROV_ACCOUNT",
        );
        fs_err::write(&path, format!("{text}{extra}\n")).unwrap();
        flareproof::target::load_verify(&path)
            .unwrap()
            .1
            .provenance
            .lockfile
    };
    assert_eq!(write(""), None);
    fs_err::write(source.join("yarn.lock"), "").unwrap();
    assert_eq!(write(""), Some(source.join("yarn.lock")));
    fs_err::write(source.join("package-lock.json"), "{}").unwrap();
    assert_eq!(write(""), Some(source.join("package-lock.json")));
    assert_eq!(
        write("lockfile = \"../locks/package-lock.json\""),
        Some(source.join("../locks/package-lock.json"))
    );
}

#[tokio::test]
async fn a_long_message_is_shortened_in_the_summary() {
    let mut s = scenario();
    s.versions[0].source = "dash".into();
    s.versions[0].message = Some("x".repeat(1000));
    let f = judge(&s).await;
    assert_status(&f, Status::Warn);
    assert!(
        f.summary.contains(&format!("\"{}\"…", "x".repeat(200))),
        "{}",
        f.summary
    );
    assert!(!f.summary.contains(&"x".repeat(201)));
}
