//! The revocation watch is paced in real time: a target that answers
//! get-session slower than the poll interval (a Worker busy hashing other
//! checks' passwords, a loaded machine) neither makes the watch burst the
//! polls it missed nor stretches it past `observe_after_refusal_ms`, and the
//! watch still lasts at least that long after the refusal.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{run_checks, stand_in_target};
use flareproof::model::{CheckResult, Status};
use flareproof::plan::Plan;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How long the stand-in takes to answer get-session.
const SLOW: Duration = Duration::from_millis(250);

#[derive(Default)]
struct State {
    /// session token -> (user, revoked)
    sessions: BTreeMap<String, (String, bool)>,
    /// When a session was revoked (the sign-out or revoke-sessions).
    revoked_at: BTreeMap<String, Instant>,
    next: u32,
    /// Every get-session that presented a revoked token: (token, when
    /// received).
    replays: Vec<(String, Instant)>,
    /// When set, a revoked token is accepted again this long after its
    /// revocation (a stale replica writing it back).
    resurrect_after: Option<Duration>,
}

#[derive(Clone)]
struct SlowSessions(Arc<Mutex<State>>);

fn token(req: &Request) -> Option<String> {
    req.headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "session_token")
        .map(|(_, v)| v.to_owned())
}

impl Respond for SlowSessions {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let email = body["email"].as_str().unwrap_or_default().to_owned();
        let token = token(req);
        let resurrect_after = state.resurrect_after;
        let live = |state: &State, t: &str| -> Option<String> {
            let (user, revoked) = state.sessions.get(t)?;
            let back = resurrect_after
                .zip(state.revoked_at.get(t))
                .is_some_and(|(after, at)| at.elapsed() >= after);
            (!revoked || back).then(|| user.clone())
        };
        let user = token.as_deref().and_then(|t| live(&state, t));
        match (req.method.as_str(), req.url.path()) {
            ("POST", "/api/auth/sign-up/email" | "/api/auth/sign-in/email") => {
                state.next += 1;
                let t = format!("tok{}", state.next);
                state.sessions.insert(t.clone(), (email.clone(), false));
                ResponseTemplate::new(200)
                    .append_header(
                        "set-cookie",
                        format!("session_token={t}; Path=/; HttpOnly; Secure; SameSite=Lax")
                            .as_str(),
                    )
                    .set_body_json(json!({ "user": { "id": email } }))
            }
            ("POST", "/api/auth/sign-out") => {
                if let Some(t) = token {
                    if let Some(s) = state.sessions.get_mut(&t) {
                        s.1 = true;
                    }
                    state.revoked_at.insert(t, Instant::now());
                }
                ResponseTemplate::new(200).set_body_json(json!({ "success": true }))
            }
            ("POST", "/api/auth/revoke-sessions") => {
                let Some(user) = user else {
                    return ResponseTemplate::new(401);
                };
                let now = Instant::now();
                let mine: Vec<String> = state
                    .sessions
                    .iter()
                    .filter(|(_, s)| s.0 == user)
                    .map(|(t, _)| t.clone())
                    .collect();
                for t in mine {
                    state.sessions.get_mut(&t).unwrap().1 = true;
                    state.revoked_at.insert(t, now);
                }
                ResponseTemplate::new(200).set_body_json(json!({ "status": true }))
            }
            ("GET", "/api/auth/get-session") => {
                if let Some(t) = &token
                    && state.revoked_at.contains_key(t)
                {
                    state.replays.push((t.clone(), Instant::now()));
                }
                let answer = match user {
                    Some(user) => json!({ "session": { "id": token }, "user": { "id": user } }),
                    None => serde_json::Value::Null,
                };
                ResponseTemplate::new(200)
                    .set_body_json(answer)
                    .set_delay(SLOW)
            }
            ("GET", "/api/me") => match user {
                Some(user) => {
                    ResponseTemplate::new(200).set_body_json(json!({ "user": { "id": user } }))
                }
                None => ResponseTemplate::new(401),
            },
            _ => ResponseTemplate::new(404),
        }
    }
}

/// `session.no-resurrection` (both kinds of trial) against the slow
/// stand-in: its result, the run's wall time and the stand-in's state.
async fn run(resurrect_after: Option<Duration>) -> (CheckResult, Duration, Arc<Mutex<State>>) {
    let state = Arc::new(Mutex::new(State {
        resurrect_after,
        ..State::default()
    }));
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(SlowSessions(state.clone()))
        .mount(&server)
        .await;
    // A rate cap that leaves the poll interval at the suite's 100 ms.
    let profile = "[profile]\nwindow_s = 2\nrevocation_bound_s = 1\n\
         limits = { anonymous = 100, free = 100, pro = 100, admin = \"unlimited\" }\n\
         [budget]\nmax_rps = 500\nmax_requests = 5000\n";
    let target = stand_in_target(&server, profile, |_| "not-a-real-password".to_owned());
    let started = Instant::now();
    let mut results = run_checks(target, &["session.no-resurrection"]).await;
    (results.remove(0), started.elapsed(), state)
}

fn observe_ms() -> u64 {
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    // The stand-in's bound (1 s) is below it.
    plan.params.observe_after_refusal_ms
}

/// Every get-session answer takes 250 ms, 2.5 x the poll interval. The
/// watch of each refused token lasts observe_after_refusal_ms after its
/// refusal in real time and a little more, not the interval's count of
/// polls at the target's pace (which took 2.5 x as long: the watch ran for
/// ~10 s of a 4 s observation, the run's longest chain stretched by a slow
/// moment of the target), and the polls of one token never come faster
/// than the interval to make up for the slow ones.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_target_does_not_stretch_the_resurrection_watch() {
    let (result, wall, state) = run(None).await;
    assert_eq!(result.status, Status::Pass, "{result:#?}");
    let observe = Duration::from_millis(observe_ms());
    // Sign-ups, priming (slow too) and the watch: the watch is bounded by
    // the observation, one slow poll after it and the priming's slow polls.
    assert!(
        wall < observe + Duration::from_millis(2500),
        "the session checks took {wall:?} for a {observe:?} watch"
    );
    let state = state.lock().unwrap();
    let mut by_token: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for (t, at) in &state.replays {
        by_token.entry(t).or_default().push(*at);
    }
    assert!(by_token.len() >= 6, "{} tokens replayed", by_token.len());
    for (t, replays) in &by_token {
        let revoked = state.revoked_at[*t];
        let last = *replays.last().unwrap();
        // Watched at least the observation after the revocation (the
        // refusal is the first replay, sent right after it).
        assert!(
            last.duration_since(revoked) >= observe,
            "{t}: last replay {:?} after its revocation",
            last.duration_since(revoked)
        );
        // One poll at a time, at the target's pace: no burst of missed
        // polls (received closer together than the stand-in takes to
        // answer would mean several in flight).
        for pair in replays.windows(2) {
            let gap = pair[1].duration_since(pair[0]);
            assert!(
                gap + Duration::from_millis(20) >= SLOW,
                "{t}: two replays {gap:?} apart"
            );
        }
    }
}

/// The same slow target bringing a revoked token back just before the
/// watch's end: caught, a fail. The real-time pacing does not cut the watch
/// short.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_back_at_the_end_of_the_watch_still_fails() {
    let back = Duration::from_millis(observe_ms() - 150);
    let (result, _, _) = run(Some(back)).await;
    assert_eq!(result.status, Status::Fail, "{result:#?}");
    assert!(
        result.summary.contains("accepted again"),
        "{}",
        result.summary
    );
}
