//! Controls of the checks, against a stand-in target whose answers a test
//! chooses: a refusal that may not be about what the check tests, an unseen
//! write or a session gone invalid never passes.

use std::sync::Arc;

use flareproof::checks::{self, Ctx};
use flareproof::conform::{Conform, Selection};
use flareproof::model::Status;
use flareproof::plan::Plan;
use flareproof::probe::{Jar, Probe, Redactor};
use flareproof::progress::Silent;
use flareproof::target::{Target, TargetConfig};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHECK: &str = "scope.write-as-other-rejected";

/// A target where `free` (user `a`) and `free2` (user `b`) sign in, B lists
/// one post of its own and A lists `a_posts`; POST /api/posts is mounted by
/// the test.
async fn stand_in(a_posts: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    for (email, id) in [("a@example.test", "a"), ("b@example.test", "b")] {
        Mock::given(method("POST"))
            .and(path("/api/auth/sign-in/email"))
            .and(body_partial_json(json!({ "email": email })))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header(
                        "set-cookie",
                        format!("session_token=tok-{id}; Path=/; HttpOnly; Secure; SameSite=Lax"),
                    )
                    .set_body_json(json!({ "user": { "id": id } })),
            )
            .mount(&server)
            .await;
    }
    let list = |cookie: &str, posts: serde_json::Value| {
        Mock::given(method("GET"))
            .and(path("/api/posts"))
            .and(wiremock::matchers::header("cookie", cookie))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "posts": posts })))
    };
    list(
        "session_token=tok-b",
        json!([{ "id": 7, "title": "b's", "author_id": "b" }]),
    )
    .mount(&server)
    .await;
    list("session_token=tok-a", a_posts).mount(&server).await;
    server
}

fn target_for(server: &MockServer) -> Target {
    let config = format!(
        "[target]\nbase_url = \"{}\"\norigin = \"https://app.example.test\"\n\
         [accounts.free]\nemail = \"a@example.test\"\npassword_env = \"PW\"\n\
         [accounts.free2]\nemail = \"b@example.test\"\npassword_env = \"PW\"\n",
        server.uri()
    );
    TargetConfig::parse("stand-in.toml", &config)
        .unwrap()
        .resolve("stand-in.toml", |_| Some("not-a-real-password".to_owned()))
        .unwrap()
}

/// A context outside any run, for the checks' building blocks.
fn ctx_for(server: &MockServer) -> Ctx {
    let target = Arc::new(target_for(server));
    Ctx::standalone(
        target.clone(),
        Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        Probe::new(target.budget, Arc::new(Redactor::new())).unwrap(),
    )
}

/// The check alone, through the conform runner, against the stand-in.
async fn run(server: &MockServer) -> flareproof::model::CheckResult {
    let conform = Conform {
        target: Arc::new(target_for(server)),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: Selection::new(&[CHECK.to_owned()], &[]).unwrap(),
        progress: Arc::new(Silent),
    };
    let (report, _) = conform.run().await.unwrap();
    report
        .checks
        .into_iter()
        .find(|c| c.id.as_str() == CHECK)
        .unwrap()
}

/// Any POST /api/posts is stored as A's post 9.
fn writes_as_a() -> Mock {
    Mock::given(method("POST"))
        .and(path("/api/posts"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({ "id": 9, "author_id": "a" })),
        )
}

fn posts_answer(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": "no" }))
}

#[tokio::test]
async fn a_refused_write_passes_only_when_a_control_write_goes_through() {
    // Every write refused (as if A's session were not valid): the refusal of
    // the write naming B proves nothing.
    let server = stand_in(json!([])).await;
    Mock::given(method("POST"))
        .and(path("/api/posts"))
        .respond_with(posts_answer(401))
        .mount(&server)
        .await;
    let result = run(&server).await;
    assert_eq!(result.status, Status::Error, "{}", result.summary);
    assert!(
        result.summary.contains("control write"),
        "{}",
        result.summary
    );

    // The write naming B refused, A's own write accepted: a pass.
    let server = stand_in(json!([])).await;
    Mock::given(method("POST"))
        .and(path("/api/posts"))
        .and(body_partial_json(json!({ "author_id": "b" })))
        .respond_with(posts_answer(403))
        .with_priority(1)
        .mount(&server)
        .await;
    writes_as_a().with_priority(2).mount(&server).await;
    let result = run(&server).await;
    assert_eq!(result.status, Status::Pass, "{}", result.summary);
}

#[tokio::test]
async fn an_accepted_write_seen_in_neither_list_is_an_error() {
    // Accepted as A's, but no list shows it: B's list may just not show new
    // posts, so "not in B's list" proves nothing.
    let server = stand_in(json!([])).await;
    writes_as_a().mount(&server).await;
    let result = run(&server).await;
    assert_eq!(result.status, Status::Error, "{}", result.summary);
    assert!(
        result.summary.contains("neither A's nor B's list"),
        "{}",
        result.summary
    );
}

/// The rate-limit suite's last word on each caller: a session the target no
/// longer accepts sent its requests as anonymous, which is an error, not
/// that tier's verdict.
#[tokio::test]
async fn a_session_gone_invalid_is_an_error_naming_the_caller() {
    let server = MockServer::start().await;
    for (cookie, answer) in [
        (
            "session_token=live",
            json!({ "session": { "id": "s" }, "user": { "id": "a" } }),
        ),
        ("session_token=gone", serde_json::Value::Null),
    ] {
        Mock::given(method("GET"))
            .and(path("/api/auth/get-session"))
            .and(wiremock::matchers::header("cookie", cookie))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(&server)
            .await;
    }
    let ctx = ctx_for(&server);
    let jar = |token: &str| {
        let mut jar = Jar::new();
        jar.insert("session_token", token);
        jar
    };
    checks::still_signed_in(&ctx, "free", &jar("live"))
        .await
        .expect("a live session passes");
    let err = checks::still_signed_in(&ctx, "free2", &jar("gone"))
        .await
        .unwrap_err();
    assert!(
        err.reason.contains("free2's session was no longer valid"),
        "{}",
        err.reason
    );
    assert_eq!(err.exchanges.len(), 1);
}
