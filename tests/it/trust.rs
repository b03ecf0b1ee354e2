//! Nothing the target says about itself is trusted where it can be
//! measured: a window's start is bracketed by polls, not read from
//! `Retry-After`; a row is another owner's by its values, wherever the
//! answer puts it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flareproof::conform::{Conform, Selection};
use flareproof::model::{CheckResult, Status};
use flareproof::plan::Plan;
use flareproof::progress::Silent;
use flareproof::target::{Target, TargetConfig};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The checks `only`, through the conform runner, against `target`.
async fn run_on(target: Target, only: &[&str]) -> Vec<CheckResult> {
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let conform = Conform {
        target: Arc::new(target),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: Selection::new(&only, &[]).unwrap(),
        progress: Arc::new(Silent),
    };
    let (report, _) = conform.run().await.unwrap();
    report
        .checks
        .into_iter()
        .filter(|c| only.iter().any(|id| id == c.id.as_str()))
        .collect()
}

fn target(server: &MockServer, extra: &str) -> Target {
    let config = format!(
        "[target]\nbase_url = \"{}\"\norigin = \"https://app.example.test\"\n\
         [accounts.free]\nemail = \"a@example.test\"\npassword_env = \"PW\"\n\
         [accounts.free2]\nemail = \"b@example.test\"\npassword_env = \"PW\"\n\
         [accounts.pro]\nemail = \"p@example.test\"\npassword_env = \"PW\"\n\
         [data]\nservice_key_env = \"KEY\"\n{extra}",
        server.uri()
    );
    TargetConfig::parse("stand-in.toml", &config)
        .unwrap()
        .resolve("stand-in.toml", |_| Some("not-a-real-secret".to_owned()))
        .unwrap()
}

/// Signs in `email` as user `id` with the session token `tok-<id>`, a
/// session get-session accepts.
async fn account(server: &MockServer, email: &str, id: &str) {
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
        .mount(server)
        .await;
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
    let result = run_on(target(&server, &pro_limit(4, 3, 5)), &["ratelimit.pro"])
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

/// An honest Retry-After (seconds to the window's end, rounded up) only
/// schedules the polls: they start before the moment it names, so the new
/// window is met within a poll of its start (never later than waiting out
/// Retry-After would), and the count passes.
#[tokio::test]
async fn an_honest_retry_after_is_polled_through_and_the_count_passes() {
    let limiter = FixedWindow::new(3, 2, false);
    let server = limited(&limiter).await;
    let result = run_on(target(&server, &pro_limit(3, 2, 10)), &["ratelimit.pro"])
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
