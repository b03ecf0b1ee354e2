//! Session semantics end to end: revocation judged on every route that
//! authenticates a session, the full cookie jar replayed, resurrection
//! watched for at least the bound, and per-identity buckets per user.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::support::{run_checks, stand_in_target};
use flareproof::model::{CheckResult, Status};
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{conform, demo_options, ids_with, start};

/// The session suite alone against the healthy demo Worker (two edges with
/// a 300 ms revocation lag, 5 s windows, a 5 s bound): every check passes.
/// Its wall time is printed (`--nocapture`), the suite being the run's
/// critical path.
#[tokio::test(flavor = "multi_thread")]
async fn the_session_suite_passes_against_the_healthy_demo_worker() {
    let fixture = tokio::task::spawn_blocking(|| start(demo_options()))
        .await
        .unwrap();
    let started = Instant::now();
    let report = conform(&fixture, &["session.*"]).await;
    let took = started.elapsed();
    eprintln!("session suite alone: {} ms", took.as_millis());
    for c in &report.checks {
        eprintln!(
            "  {} {:?} {} ms: {}",
            c.id, c.status, c.duration_ms, c.summary
        );
    }
    let passed = ids_with(&report, Status::Pass);
    assert_eq!(
        passed,
        [
            "session.revoked-on-sign-out",
            "session.revoke-all",
            "session.no-resurrection"
        ],
        "{report:#?}"
    );
}

/// How a stand-in Worker departs from the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Healthy,
    /// get-session honours revocation; `GET /api/me` still serves a revoked
    /// session (an app route with its own stale session lookup).
    AppRouteStale,
    /// Sign-in also sets a signed session cache cookie (`session_data`),
    /// and a request carrying it is taken at its word, revoked or not: the
    /// bare session cookie is refused after sign-out, the browser's jar is
    /// not.
    CacheCookie,
    /// `GET /api/me` answers this status to the control account's session
    /// (a filter, or its bucket spent), while revoked tokens get 401.
    AppControlAnswers(u16),
    /// The rate-limit bucket is keyed on the session, not on the user.
    BucketPerSession,
}

#[derive(Default)]
struct State {
    /// email -> user id
    users: BTreeMap<String, String>,
    /// session token -> (user id, email, revoked)
    sessions: BTreeMap<String, (String, String, bool)>,
    next: u32,
    /// bucket key -> (window index, count)
    buckets: BTreeMap<String, (u64, u64)>,
}

/// A stand-in auth Worker with real session state: sign-up (which signs
/// in), sign-in, sign-out, revoke-sessions, get-session, `GET /api/me` and
/// a metered `GET /api/ping` (a fixed window of `WINDOW_S`, `LIMIT`
/// requests, per user unless the mode says otherwise).
#[derive(Clone)]
struct StandIn {
    mode: Mode,
    state: Arc<Mutex<State>>,
}

const WINDOW_S: u64 = 2;
const LIMIT: u64 = 3;

fn cookies(req: &Request) -> BTreeMap<String, String> {
    req.headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl StandIn {
    /// The session the request authenticates as: (token, user id, email).
    fn session(&self, state: &State, req: &Request) -> Option<(String, String, String)> {
        let jar = cookies(req);
        if self.mode == Mode::CacheCookie
            && let Some(token) = jar
                .get("session_data")
                .and_then(|c| c.strip_prefix("cache-"))
            && let Some((user, email, _)) = state.sessions.get(token)
        {
            return Some((token.to_owned(), user.clone(), email.clone()));
        }
        let token = jar.get("session_token")?;
        let (user, email, revoked) = state.sessions.get(token)?;
        (!revoked).then(|| (token.clone(), user.clone(), email.clone()))
    }

    fn signed_in(&self, state: &mut State, email: &str) -> ResponseTemplate {
        let user = state
            .users
            .entry(email.to_owned())
            .or_insert_with(|| format!("u-{email}"))
            .clone();
        state.next += 1;
        let token = format!("tok{}", state.next);
        state
            .sessions
            .insert(token.clone(), (user.clone(), email.to_owned(), false));
        let mut answer = ResponseTemplate::new(200)
            .append_header(
                "set-cookie",
                format!("session_token={token}; Path=/; HttpOnly; Secure; SameSite=Lax").as_str(),
            )
            .set_body_json(json!({ "user": { "id": user } }));
        if self.mode == Mode::CacheCookie {
            answer = answer.append_header(
                "set-cookie",
                format!("session_data=cache-{token}; Path=/; HttpOnly; Secure; SameSite=Lax")
                    .as_str(),
            );
        }
        answer
    }
}

impl Respond for StandIn {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let email = body["email"].as_str().unwrap_or_default().to_owned();
        let session = self.session(&state, req);
        let unauthorized = || ResponseTemplate::new(401).set_body_json(json!({ "error": "no" }));
        match (req.method.as_str(), req.url.path()) {
            ("POST", "/api/auth/sign-up/email" | "/api/auth/sign-in/email") => {
                self.signed_in(&mut state, &email)
            }
            ("POST", "/api/auth/sign-out") => {
                if let Some(token) = cookies(req).get("session_token")
                    && let Some(s) = state.sessions.get_mut(token)
                {
                    s.2 = true;
                }
                ResponseTemplate::new(200).set_body_json(json!({ "success": true }))
            }
            ("POST", "/api/auth/revoke-sessions") => {
                let Some((_, user, _)) = session else {
                    return unauthorized();
                };
                for s in state.sessions.values_mut().filter(|s| s.0 == user) {
                    s.2 = true;
                }
                ResponseTemplate::new(200).set_body_json(json!({ "status": true }))
            }
            ("GET", "/api/auth/get-session") => match session {
                Some((token, user, _)) => ResponseTemplate::new(200)
                    .set_body_json(json!({ "session": { "id": token }, "user": { "id": user } })),
                None => ResponseTemplate::new(200).set_body_json(serde_json::Value::Null),
            },
            ("GET", "/api/me") => {
                let token = cookies(req).get("session_token").cloned();
                let known = token.and_then(|t| state.sessions.get(&t).cloned());
                match (self.mode, session, known) {
                    (Mode::AppControlAnswers(status), Some((_, _, email)), _)
                        if email.contains("-control-") =>
                    {
                        ResponseTemplate::new(status).insert_header("retry-after", "1")
                    }
                    (_, Some((_, user, _)), _)
                    | (Mode::AppRouteStale, None, Some((user, _, _))) => {
                        ResponseTemplate::new(200).set_body_json(json!({ "user": { "id": user } }))
                    }
                    _ => unauthorized(),
                }
            }
            ("GET", "/api/ping") => {
                let key = match (self.mode, session) {
                    (Mode::BucketPerSession, Some((token, _, _))) => format!("session:{token}"),
                    (_, Some((_, user, _))) => format!("user:{user}"),
                    (_, None) => "ip".to_owned(),
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                let window = (now / WINDOW_S as f64) as u64;
                let bucket = state.buckets.entry(key).or_insert((window, 0));
                if bucket.0 != window {
                    *bucket = (window, 0);
                }
                bucket.1 += 1;
                if bucket.1 > LIMIT {
                    let left = ((window + 1) as f64 * WINDOW_S as f64 - now)
                        .ceil()
                        .max(1.0);
                    ResponseTemplate::new(429)
                        .insert_header("retry-after", format!("{left}").as_str())
                } else {
                    ResponseTemplate::new(200).set_body_json(json!({ "ok": true }))
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

async fn stand_in(mode: Mode) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(StandIn {
            mode,
            state: Arc::default(),
        })
        .mount(&server)
        .await;
    server
}

/// The checks `only` through the conform runner against a stand-in in
/// `mode`, with a 1 s revocation bound and small rate limits.
async fn run(mode: Mode, only: &[&str]) -> Vec<CheckResult> {
    let server = stand_in(mode).await;
    let profile = format!(
        "[profile]\nwindow_s = {WINDOW_S}\nrevocation_bound_s = 1\n\
         limits = {{ anonymous = {LIMIT}, free = {LIMIT}, pro = {LIMIT}, admin = \"unlimited\" }}\n"
    );
    let target = stand_in_target(&server, &profile, |_| "not-a-real-password".to_owned());
    run_checks(target, only).await
}

fn verdict<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|c| c.id.as_str() == id).unwrap()
}

/// The stand-in's own control: played straight, every session check
/// passes, and the revoked tokens were replayed at the app route too.
#[tokio::test]
async fn the_healthy_stand_in_passes_the_session_suite() {
    let results = run(
        Mode::Healthy,
        &[
            "session.revoked-on-sign-out",
            "session.revoke-all",
            "session.no-resurrection",
        ],
    )
    .await;
    assert_eq!(results.len(), 3);
    for c in &results {
        assert_eq!(c.status, Status::Pass, "{c:#?}");
    }
    let revoked = verdict(&results, "session.revoked-on-sign-out");
    assert!(
        revoked.summary.contains("GET /api/me"),
        "{}",
        revoked.summary
    );
}

/// get-session refuses the signed-out token at once, but the app route
/// still serves it after the bound: a revocation that does not hold where
/// the session is used. It passed when only get-session was polled.
#[tokio::test]
async fn a_revoked_token_the_app_route_still_serves_fails_revocation() {
    let results = run(
        Mode::AppRouteStale,
        &["session.revoked-on-sign-out", "session.revoke-all"],
    )
    .await;
    for id in ["session.revoked-on-sign-out", "session.revoke-all"] {
        let c = verdict(&results, id);
        assert_eq!(c.status, Status::Fail, "{c:#?}");
        assert!(
            c.summary.contains("accepted at GET /api/me"),
            "{}",
            c.summary
        );
    }
}

/// A signed session cache cookie that the target trusts without looking
/// the session up: the bare session cookie is refused after sign-out, but
/// the jar the browser held (or someone stole) still signs in. It passed
/// when only the session cookie was replayed.
#[tokio::test]
async fn a_cache_cookie_that_outlives_sign_out_fails_revocation() {
    let results = run(Mode::CacheCookie, &["session.revoked-on-sign-out"]).await;
    let c = verdict(&results, "session.revoked-on-sign-out");
    assert_eq!(c.status, Status::Fail, "{c:#?}");
    assert!(c.summary.contains("still accepted"), "{}", c.summary);
}

/// The revoked token gets 401 at the app route, but so does (or a 429 or
/// 403 goes to) the never-revoked control beside it: the refusal proves
/// nothing, so the check is an `error`, never a pass. It passed when the
/// app route was not polled.
#[tokio::test]
async fn a_refused_app_route_control_is_an_error_not_a_pass() {
    for status in [429, 403] {
        let results = run(
            Mode::AppControlAnswers(status),
            &["session.revoked-on-sign-out"],
        )
        .await;
        let c = verdict(&results, "session.revoked-on-sign-out");
        assert_eq!(c.status, Status::Error, "{status}: {c:#?}");
        assert!(
            c.summary.contains("could not tell whether the app route"),
            "{status}: {}",
            c.summary
        );
    }
}

/// A bucket keyed on the session id: free's second session (a sign-in of
/// its own) is allowed while the first session's bucket is exhausted, so
/// the user is not limited at all. It passed when only free2 was probed.
#[tokio::test]
async fn a_bucket_per_session_fails_per_identity() {
    let results = run(Mode::BucketPerSession, &["ratelimit.per-identity"]).await;
    let c = verdict(&results, "ratelimit.per-identity");
    assert_eq!(c.status, Status::Fail, "{c:#?}");
    assert!(c.summary.contains("second session"), "{}", c.summary);
}

/// The same stand-in keyed on the user: per-identity passes, the second
/// session refused beside free2 allowed.
#[tokio::test]
async fn a_bucket_per_user_passes_per_identity() {
    let results = run(Mode::Healthy, &["ratelimit.per-identity"]).await;
    let c = verdict(&results, "ratelimit.per-identity");
    assert_eq!(c.status, Status::Pass, "{c:#?}");
}
