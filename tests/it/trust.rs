//! Nothing the target says about itself is trusted where it can be
//! measured: a window's start is bracketed by polls, not read from
//! `Retry-After`; a row is another owner's by its values, wherever the
//! answer puts it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{mount_sign_in, run_checks, stand_in_target};
use flareproof::model::{CheckResult, Status};
use flareproof::target::Target;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn target(server: &MockServer, extra: &str) -> Target {
    stand_in_target(
        server,
        &format!(
            "[accounts.pro]\nemail = \"p@example.test\"\npassword_env = \"PW\"\n\
             [data]\nservice_key_env = \"KEY\"\n{extra}"
        ),
        |_| "not-a-real-secret".to_owned(),
    )
}

/// Signs in `email` as user `id` with the session token `tok-<id>`, a
/// session get-session accepts.
async fn account(server: &MockServer, email: &str, id: &str) {
    mount_sign_in(server, email, id).await;
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .and(header("cookie", format!("session_token=tok-{id}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "session": { "id": "s" }, "user": { "id": id } })),
        )
        .mount(server)
        .await;
}

// ---------------------------------------------------------------------------
// Window starts
// ---------------------------------------------------------------------------

/// A fixed-window limiter on GET /api/ping. Its phase is set by its first
/// refusal: that window ends `phase` later, and every window after it lasts
/// `window`. A liar's Retry-After always says the whole window; an honest
/// one says the seconds to the window's end, rounded up.
struct FixedWindow {
    limit: u32,
    window: Duration,
    phase: Duration,
    liar: bool,
    state: Mutex<WindowState>,
}

#[derive(Default)]
struct WindowState {
    count: u32,
    end: Option<Instant>,
    /// How late after its window began each window's first request came.
    first_request_late: Vec<Duration>,
}

impl FixedWindow {
    fn new(limit: u32, window_s: u64, liar: bool) -> Arc<Self> {
        Arc::new(FixedWindow {
            limit,
            window: Duration::from_secs(window_s),
            phase: Duration::from_millis(300),
            liar,
            state: Mutex::new(WindowState::default()),
        })
    }
}

/// The limiter as a wiremock responder (the test keeps its own handle).
struct Limiter(Arc<FixedWindow>);

impl Respond for Limiter {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let l = &self.0;
        let now = Instant::now();
        let mut s = l.state.lock().unwrap();
        if let Some(mut end) = s.end
            && now >= end
        {
            while now >= end {
                end += l.window;
            }
            s.end = Some(end);
            s.count = 0;
            let began = end - l.window;
            s.first_request_late.push(now - began);
        }
        s.count += 1;
        if s.count <= l.limit {
            return ResponseTemplate::new(200).set_body_json(json!({ "ok": true }));
        }
        let end = *s.end.get_or_insert(now + l.phase);
        let retry_after = if l.liar {
            l.window.as_secs()
        } else {
            (end - now).as_secs_f64().ceil().max(1.0) as u64
        };
        ResponseTemplate::new(429)
            .insert_header("retry-after", retry_after.to_string())
            .set_body_json(json!({ "error": "RateLimited" }))
    }
}

async fn limited(limiter: &Arc<FixedWindow>) -> MockServer {
    let server = MockServer::start().await;
    account(&server, "p@example.test", "p").await;
    Mock::given(method("GET"))
        .and(path("/api/ping"))
        .respond_with(Limiter(limiter.clone()))
        .mount(&server)
        .await;
    server
}

fn pro_limit(limit: u64, window_s: u64, max_rps: u32) -> String {
    format!(
        "[profile]\nwindow_s = {window_s}\n\
         [profile.limits]\nanonymous = 10\nfree = 60\npro = {limit}\nadmin = \"unlimited\"\n\
         [budget]\nmax_rps = {max_rps}\n"
    )
}

/// The stand-in allows 2 per 3 s window while the config says 4, and its
/// Retry-After always says 3 s although its window turns over 0.3 s after
/// the first refusal. Waiting the whole Retry-After puts the count 0.3 s
/// before the next turnover: 1 + 1 allowed before it, 2 after, exactly 4,
/// and a count whose start was read from Retry-After took that for one
/// window and passed. Bracketed by polls, the start is seen for what it is
/// and the count reads the target's real 2.
#[tokio::test]
async fn a_retry_after_that_always_says_the_whole_window_does_not_make_a_straddled_count_pass() {
    let limiter = FixedWindow::new(2, 3, true);
    let server = limited(&limiter).await;
    let result = run_checks(target(&server, &pro_limit(4, 3, 5)), &["ratelimit.pro"])
        .await
        .remove(0);
    assert_ne!(result.status, Status::Pass, "{result:#?}");
    assert_eq!(result.status, Status::Fail, "{result:#?}");
    assert!(
        result.summary.contains("2 requests allowed in one window"),
        "{}",
        result.summary
    );
}

/// The same liar with the limit the config declares: its first poll is
/// already allowed, so the window it opened is spent and its end found by
/// polling; that start is bracketed and the count passes, neither an error
/// nor a failure for a Retry-After that only overstated the wait.
#[tokio::test]
async fn an_overstated_retry_after_is_measured_again_and_a_right_limit_passes() {
    let limiter = FixedWindow::new(4, 3, true);
    let server = limited(&limiter).await;
    let result = run_checks(target(&server, &pro_limit(4, 3, 5)), &["ratelimit.pro"])
        .await
        .remove(0);
    assert_eq!(result.status, Status::Pass, "{result:#?}");
    // Three windows were seen: the spent one, the one the first poll met
    // (spent again), and the one counted.
    assert_eq!(limiter.state.lock().unwrap().first_request_late.len(), 2);
}

/// An honest Retry-After (seconds to the window's end, rounded up) only
/// schedules the polls: they start before the moment it names, so the new
/// window is met within a poll of its start (never later than waiting out
/// Retry-After would), and the count passes.
#[tokio::test]
async fn an_honest_retry_after_is_polled_through_and_the_count_passes() {
    let limiter = FixedWindow::new(3, 2, false);
    let server = limited(&limiter).await;
    let result = run_checks(target(&server, &pro_limit(3, 2, 10)), &["ratelimit.pro"])
        .await
        .remove(0);
    assert_eq!(result.status, Status::Pass, "{result:#?}");
    let late = limiter.state.lock().unwrap().first_request_late.clone();
    // Retry-After said 1 s for a window 0.3 s from its end: waiting it out
    // would meet the new window 0.7 s late.
    assert!(
        late.first()
            .is_some_and(|d| *d < Duration::from_millis(350)),
        "the new window was met {late:?} after it began"
    );
}

// ---------------------------------------------------------------------------
// Row ownership by value
// ---------------------------------------------------------------------------

const A_POST: fn() -> Value = || json!({ "id": 3, "title": "a's notes", "author_id": "a" });
const B_POST: fn() -> Value = || json!({ "id": 7, "title": "b's diary", "author_id": "b" });

/// Users `a` (free) and `b` (free2) with one post each; A's and B's lists,
/// A's post by id, and the data plane scoped to either answer faithfully.
/// `a_list` is A's list answer; everything else is mounted by the test.
async fn two_users(a_list: Value) -> MockServer {
    let server = MockServer::start().await;
    account(&server, "a@example.test", "a").await;
    account(&server, "b@example.test", "b").await;
    for (cookie, answer) in [
        ("session_token=tok-a", a_list),
        ("session_token=tok-b", json!({ "posts": [B_POST()] })),
    ] {
        Mock::given(method("GET"))
            .and(path("/api/posts"))
            .and(header("cookie", cookie))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/posts/3"))
        .and(header("cookie", "session_token=tok-a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(A_POST()))
        .mount(&server)
        .await;
    server
}

fn scope_target(server: &MockServer) -> Target {
    target(server, "")
}

async fn verdict(server: &MockServer, check: &str) -> CheckResult {
    run_checks(scope_target(server), &[check]).await.remove(0)
}

/// A's list holds only A's posts under `posts`, and B's post beside them
/// under `data`: a leak wherever it sits (today only `posts` was read).
#[tokio::test]
async fn another_users_rows_under_another_key_fail_bola_list() {
    let server = two_users(json!({ "posts": [A_POST()], "data": [B_POST()] })).await;
    let result = verdict(&server, "scope.bola-list").await;
    assert_eq!(result.status, Status::Fail, "{result:#?}");
    assert!(result.summary.contains("data[0]"), "{}", result.summary);

    let server = two_users(json!({ "posts": [A_POST()] })).await;
    let result = verdict(&server, "scope.bola-list").await;
    assert_eq!(result.status, Status::Pass, "{result:#?}");
}

/// B's post refused with 404, but the refusal carries B's row (no title,
/// its owner under `user_id`): not a refusal.
#[tokio::test]
async fn a_refusal_by_id_that_carries_the_other_users_row_fails_bola_by_id() {
    for (answer, leaks) in [
        (
            json!({ "error": "NotFound", "post": { "id": 7, "user_id": "b", "body": "..." } }),
            true,
        ),
        (json!({ "error": "NotFound", "id": 7 }), false),
    ] {
        let server = two_users(json!({ "posts": [A_POST()] })).await;
        Mock::given(method("GET"))
            .and(path("/api/posts/7"))
            .respond_with(ResponseTemplate::new(404).set_body_json(answer))
            .mount(&server)
            .await;
        let result = verdict(&server, "scope.bola-by-id").await;
        let expected = if leaks { Status::Fail } else { Status::Pass };
        assert_eq!(result.status, expected, "{result:#?}");
    }
}

/// The write naming B refused with B's own rows in the refusal: not a
/// refusal, whatever the control write does.
#[tokio::test]
async fn a_refused_write_that_carries_the_other_users_rows_fails_write_as_other() {
    for (refusal, leaks) in [
        (json!({ "error": "Forbidden", "data": [B_POST()] }), true),
        (json!({ "error": "Forbidden", "author_id": "b" }), false),
    ] {
        let server = two_users(json!({ "posts": [A_POST()] })).await;
        Mock::given(method("POST"))
            .and(path("/api/posts"))
            .and(body_partial_json(json!({ "author_id": "b" })))
            .respond_with(ResponseTemplate::new(403).set_body_json(refusal))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/posts"))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({ "id": 9, "title": "mine", "author_id": "a" })),
            )
            .with_priority(2)
            .mount(&server)
            .await;
        let result = verdict(&server, "scope.write-as-other-rejected").await;
        let expected = if leaks { Status::Fail } else { Status::Pass };
        assert_eq!(result.status, expected, "{result:#?}");
    }
}

/// The data plane: scoped queries answer their owner's rows under `rows`;
/// `unscoped` answers the unscoped ones, `scoped_to_b` the query for B.
async fn data_plane(unscoped: Value, scoped_to_b: Value) -> MockServer {
    let server = two_users(json!({ "posts": [A_POST()] })).await;
    for (owner, answer) in [("a", json!({ "rows": [A_POST()] })), ("b", scoped_to_b)] {
        Mock::given(method("POST"))
            .and(path("/v1/query"))
            .and(body_partial_json(
                json!({ "where": { "author_id": owner } }),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v1/query"))
        .respond_with(ResponseTemplate::new(403).set_body_json(unscoped))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn rows_in_an_unscoped_refusal_or_another_owner_under_user_id_fail_unscoped_query() {
    const CHECK: &str = "scope.unscoped-query-rejected";
    let refusal = || json!({ "error": "UnscopedQuery" });
    let faithful_b = || json!({ "rows": [B_POST()] });
    // Every row under `data` of a 403.
    let server = data_plane(
        json!({ "error": "UnscopedQuery", "data": [A_POST(), B_POST()] }),
        faithful_b(),
    )
    .await;
    let result = verdict(&server, CHECK).await;
    assert_eq!(result.status, Status::Fail, "{result:#?}");
    // A's row in B's scoped answer, its owner under `user_id`.
    let server = data_plane(
        refusal(),
        json!({ "rows": [B_POST(), { "id": 3, "title": "a's notes", "user_id": "a" }] }),
    )
    .await;
    let result = verdict(&server, CHECK).await;
    assert_eq!(result.status, Status::Fail, "{result:#?}");
    // Faithful.
    let server = data_plane(refusal(), faithful_b()).await;
    let result = verdict(&server, CHECK).await;
    assert_eq!(result.status, Status::Pass, "{result:#?}");
}
