//! Controls of the checks, against a stand-in target whose answers a test
//! chooses: a refusal that may not be about what the check tests, an unseen
//! write or a session gone invalid never passes.

use std::sync::Arc;

use crate::support::{mount_sign_in, run_checks, stand_in_target};
use flareproof::checks::{self, Ctx};
use flareproof::model::Status;
use flareproof::plan::Plan;
use flareproof::probe::{Jar, Probe, Redactor};
use flareproof::target::Target;
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
        mount_sign_in(&server, email, id).await;
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
    stand_in_target(server, "", |_| "not-a-real-password".to_owned())
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

/// The checks `only`, through the conform runner, against the stand-in.
async fn run_only(server: &MockServer, only: &[&str]) -> Vec<flareproof::model::CheckResult> {
    run_checks(target_for(server), only).await
}

/// The check alone, through the conform runner, against the stand-in.
async fn run(server: &MockServer) -> flareproof::model::CheckResult {
    run_only(server, &[CHECK]).await.remove(0)
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

const ATTRIBUTE_CHECKS: [&str; 6] = [
    "cookie.httponly",
    "cookie.secure",
    "cookie.samesite",
    "cookie.prefix",
    "cookie.domain",
    "cookie.max-age",
];

/// A sign-in that sets a conforming session cookie and a `theme` cookie with
/// none of the session flags; get-session accepts the session token, and
/// the theme cookie alone when `theme_authenticates`.
async fn sign_in_with_a_second_cookie(theme_authenticates: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/auth/sign-in/email"))
        .respond_with(
            ResponseTemplate::new(200)
                .append_header(
                    "set-cookie",
                    "__Secure-session_token=tok-a; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=600",
                )
                .append_header("set-cookie", "theme=dark; Path=/; Max-Age=31536000")
                .set_body_json(json!({ "user": { "id": "a" } })),
        )
        .mount(&server)
        .await;
    let session = json!({ "session": { "id": "s" }, "user": { "id": "a" } });
    let mut accepted = vec!["__Secure-session_token=tok-a"];
    if theme_authenticates {
        accepted.push("theme=dark");
    }
    for cookie in accepted {
        Mock::given(method("GET"))
            .and(path("/api/auth/get-session"))
            .and(wiremock::matchers::header("cookie", cookie))
            .respond_with(ResponseTemplate::new(200).set_body_json(session.clone()))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::Value::Null))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

/// An unrelated cookie beside the session cookie is reported, not failed:
/// the session rules apply to the cookies that authenticate.
#[tokio::test]
async fn a_cookie_that_does_not_authenticate_is_not_judged_as_the_session() {
    let server = sign_in_with_a_second_cookie(false).await;
    for result in run_only(&server, &ATTRIBUTE_CHECKS).await {
        assert_eq!(result.status, Status::Pass, "{result:#?}");
        assert!(
            result.evidence.iter().any(|e| matches!(
                e,
                flareproof::model::Evidence::Note { text } if text.contains("theme")
            )),
            "{} does not report the theme cookie",
            result.id
        );
    }
}

/// A second cookie the target accepts in place of the session cookie is a
/// session cookie too, whatever its name: its missing flags fail.
#[tokio::test]
async fn a_second_cookie_that_authenticates_is_held_to_the_session_rules() {
    let server = sign_in_with_a_second_cookie(true).await;
    let results = run_only(&server, &ATTRIBUTE_CHECKS).await;
    for id in [
        "cookie.httponly",
        "cookie.secure",
        "cookie.samesite",
        "cookie.prefix",
        "cookie.max-age",
    ] {
        let result = results.iter().find(|r| r.id.as_str() == id).unwrap();
        assert_eq!(result.status, Status::Fail, "{result:#?}");
        assert!(result.summary.contains("theme"), "{}", result.summary);
    }
    let domain = results
        .iter()
        .find(|r| r.id.as_str() == "cookie.domain")
        .unwrap();
    assert_eq!(domain.status, Status::Pass, "{domain:#?}");
}

/// A target whose Origin check only asks that the Origin start with the
/// trusted one: the prefix look-alike gets through, so cookie.csrf-origin
/// fails (one foreign Origin, `null` and none, as sent before, all pass it).
#[tokio::test]
async fn an_origin_check_by_prefix_fails_csrf_origin() {
    let server = stand_in(json!([])).await;
    for route in ["/api/posts", "/api/auth/sign-out"] {
        Mock::given(method("POST"))
            .and(path(route))
            .and(wiremock::matchers::header_regex(
                "origin",
                r"^https://app\.example\.test",
            ))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 9 })))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(posts_answer(403))
            .with_priority(2)
            .mount(&server)
            .await;
    }
    let result = run_only(&server, &["cookie.csrf-origin"]).await.remove(0);
    assert_eq!(result.status, Status::Fail, "{result:#?}");
    assert!(
        result
            .summary
            .contains("the trusted host as the prefix of another site answered 201"),
        "{}",
        result.summary
    );
}

/// A target whose sign-out does nothing while a filter in front of it
/// answers 403 to everything once polling starts: the revoked token's 403s
/// are no revocation, because the never-revoked control is refused too. It
/// passed before the trials had a control.
#[tokio::test]
async fn a_refusal_beside_a_refused_control_is_an_error_not_a_pass() {
    let server = MockServer::start().await;
    for route in ["/api/auth/sign-up/email", "/api/auth/sign-out"] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/api/auth/sign-in/email"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "set-cookie",
                    "session_token=tok; Path=/; HttpOnly; Secure; SameSite=Lax",
                )
                .set_body_json(json!({ "user": { "id": "u" } })),
        )
        .mount(&server)
        .await;
    // Three trials prime their revoking and control sessions (6 requests);
    // every later get-session meets the filter.
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "session": { "id": "s" }, "user": { "id": "u" } })),
        )
        .up_to_n_times(6)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .respond_with(ResponseTemplate::new(403).set_body_string("blocked"))
        .with_priority(2)
        .mount(&server)
        .await;
    let mut target = target_for(&server);
    target.profile.revocation_bound_s = 1;
    let result = &run_checks(target, &["session.revoked-on-sign-out"]).await[0];
    assert_eq!(result.status, Status::Error, "{result:#?}");
    assert!(
        result
            .summary
            .contains("could not tell refusal from blocking"),
        "{}",
        result.summary
    );
}

/// A target that answers 429 to every metered request refuses spoofed
/// client addresses too: that proves nothing, so key-not-spoofable is an
/// error, not the pass it was before its probes needed the bucket to have
/// allowed a plain request.
#[tokio::test]
async fn probes_of_a_bucket_that_never_allowed_anything_are_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/ping"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .mount(&server)
        .await;
    let mut target = target_for(&server);
    target.profile.window_s = 1;
    let result = &run_checks(target, &["ratelimit.key-not-spoofable"]).await[0];
    assert_eq!(result.status, Status::Error, "{result:#?}");
    assert!(
        result.summary.contains("never allowed a plain request"),
        "{}",
        result.summary
    );
}
