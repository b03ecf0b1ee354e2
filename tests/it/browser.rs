//! The cookie checks judge what a browser would hold (RFC 6265bis §5.6),
//! after every response of the cookie session: sign-in, a get-session
//! refresh, an app route, sign-out. Stand-in targets whose Set-Cookies a
//! test chooses.

use crate::support::{run_checks, stand_in_target};
use flareproof::model::{CheckResult, Status};
use flareproof::plan::Plan;
use flareproof::target::Target;
use serde_json::json;
use wiremock::matchers::{header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SESSION: &str =
    "__Secure-session_token=tok-secret-1; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=600";
const DELETION: &str = "__Secure-session_token=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0";

const COOKIE_CHECKS: [&str; 7] = [
    "cookie.httponly",
    "cookie.secure",
    "cookie.samesite",
    "cookie.prefix",
    "cookie.domain",
    "cookie.max-age",
    "cookie.cleared-on-sign-out",
];

/// The Set-Cookie headers each response of the stand-in sends.
struct Answers<'a> {
    sign_in: &'a [&'a str],
    refresh: &'a [&'a str],
    sign_out: &'a [&'a str],
}

const FAITHFUL: Answers<'static> = Answers {
    sign_in: &[SESSION],
    refresh: &[],
    sign_out: &[DELETION],
};

fn with_cookies(status: u16, cookies: &[&str], body: serde_json::Value) -> ResponseTemplate {
    let mut r = ResponseTemplate::new(status).set_body_json(body);
    for c in cookies {
        r = r.append_header("set-cookie", *c);
    }
    r
}

/// An auth surface: sign-in and sign-out answer 200 with their cookies;
/// get-session accepts the session token (and answers the refresh's
/// cookies), anything else gets `null`; the app route lists nothing.
async fn stand_in(answers: &Answers<'_>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/auth/sign-in/email"))
        .respond_with(with_cookies(
            200,
            answers.sign_in,
            json!({ "user": { "id": "a" } }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .and(header_regex("cookie", r"(^|; )__Secure-session_token=tok"))
        .respond_with(with_cookies(
            200,
            answers.refresh,
            json!({ "session": { "id": "s" }, "user": { "id": "a" } }),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::Value::Null))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/posts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "posts": [] })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/auth/sign-out"))
        .respond_with(with_cookies(
            200,
            answers.sign_out,
            json!({ "success": true }),
        ))
        .mount(&server)
        .await;
    server
}

fn target_for(server: &MockServer) -> Target {
    stand_in_target(server, "", |_| "not-a-real-password".to_owned())
}

/// The cookie checks, through the conform runner, against `server`.
async fn run(server: &MockServer) -> Vec<CheckResult> {
    run_checks(target_for(server), &COOKIE_CHECKS).await
}

fn result<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.id.as_str() == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

/// Requests the stand-in received, by method and path.
async fn count(server: &MockServer, m: &str, p: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .count()
}

/// A faithful target passes every cookie check, on one shared session:
/// one sign-in, one refresh, one app-route GET, one sign-out.
#[tokio::test]
async fn a_faithful_stand_in_passes_every_cookie_check_on_one_session() {
    let server = stand_in(&FAITHFUL).await;
    let results = run(&server).await;
    assert_eq!(results.len(), COOKIE_CHECKS.len());
    for r in &results {
        assert_eq!(r.status, Status::Pass, "{r:#?}");
    }
    assert_eq!(count(&server, "POST", "/api/auth/sign-in/email").await, 1);
    assert_eq!(count(&server, "GET", "/api/auth/get-session").await, 1);
    assert_eq!(count(&server, "GET", "/api/posts").await, 1);
    assert_eq!(count(&server, "POST", "/api/auth/sign-out").await, 1);
    // The refresh and the app route carried the session as a browser sends it.
    let sent: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .filter_map(|r| r.headers.get("cookie"))
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter()
            .all(|c| c == "__Secure-session_token=tok-secret-1"),
        "{sent:?}"
    );
}

/// A deletion without Path, sent from /api/auth/sign-out, is scoped by the
/// browser to the default-path /api/auth: the session cookie at / survives.
/// (It passed when a missing Path was taken as Path=/.)
#[tokio::test]
async fn a_deletion_without_path_fails_cleared_on_sign_out() {
    let server = stand_in(&Answers {
        sign_out: &["__Secure-session_token=; HttpOnly; Secure; SameSite=Lax; Max-Age=0"],
        ..FAITHFUL
    })
    .await;
    let results = run(&server).await;
    let r = result(&results, "cookie.cleared-on-sign-out");
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    for needle in [
        "still holds `__Secure-session_token` on Path=/",
        "Path=/api/auth",
        "default-path",
    ] {
        assert!(r.summary.contains(needle), "{needle}: {}", r.summary);
    }
    assert!(!r.summary.contains("tok-secret"), "{}", r.summary);
}

/// Deletions a browser ignores: on another path, or breaking the prefix
/// rule the cookie kept; and none at all.
#[tokio::test]
async fn deletions_a_browser_ignores_fail_cleared_on_sign_out() {
    for (deletion, needle) in [
        (
            "__Secure-session_token=; Path=/api; Secure; Max-Age=0",
            "Path=/api,",
        ),
        (
            "__Secure-session_token=; Path=/; Max-Age=0",
            "__Secure- prefix without Secure",
        ),
        ("theme=; Path=/; Max-Age=0", "no Set-Cookie"),
    ] {
        let server = stand_in(&Answers {
            sign_out: &[deletion],
            ..FAITHFUL
        })
        .await;
        let results = run(&server).await;
        let r = result(&results, "cookie.cleared-on-sign-out");
        assert_eq!(r.status, Status::Fail, "{deletion}: {r:#?}");
        assert!(r.summary.contains(needle), "{needle}: {}", r.summary);
    }
}

/// Two Set-Cookies of the session cookie in the sign-in: the browser keeps
/// the second, which has no HttpOnly. (It passed when the first one was
/// judged.)
#[tokio::test]
async fn a_session_cookie_set_twice_is_judged_as_the_browser_keeps_it() {
    let server = stand_in(&Answers {
        sign_in: &[
            SESSION,
            "__Secure-session_token=tok; Path=/; Secure; SameSite=Lax; Max-Age=600",
        ],
        ..FAITHFUL
    })
    .await;
    let results = run(&server).await;
    let r = result(&results, "cookie.httponly");
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    assert!(
        r.summary.contains("from sign-in) has no HttpOnly"),
        "{}",
        r.summary
    );
    for id in [
        "cookie.secure",
        "cookie.samesite",
        "cookie.cleared-on-sign-out",
    ] {
        assert_eq!(result(&results, id).status, Status::Pass, "{id}");
    }
}

/// A get-session refresh that re-sets the session cookie without Secure
/// fails cookie.secure (and the prefix rule it breaks, which makes a browser
/// refuse it). (It passed when only the sign-in was judged.)
#[tokio::test]
async fn a_refresh_that_drops_secure_fails_secure() {
    let server = stand_in(&Answers {
        refresh: &["__Secure-session_token=tok2; Path=/; HttpOnly; SameSite=Lax; Max-Age=600"],
        ..FAITHFUL
    })
    .await;
    let results = run(&server).await;
    let r = result(&results, "cookie.secure");
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    assert!(
        r.summary
            .contains("from the get-session refresh) has no Secure"),
        "{}",
        r.summary
    );
    let p = result(&results, "cookie.prefix");
    assert_eq!(p.status, Status::Fail, "{p:#?}");
    assert!(p.summary.contains("a browser refuses it"), "{}", p.summary);
    assert_eq!(result(&results, "cookie.httponly").status, Status::Pass);
    // The browser kept the sign-in's cookie and sign-out deleted it.
    assert_eq!(
        result(&results, "cookie.cleared-on-sign-out").status,
        Status::Pass
    );
}

/// An unprefixed refresh cookie the browser does store, with a lifetime
/// above the bound in a date form only the browser's parser reads.
#[tokio::test]
async fn a_refresh_with_a_far_expiry_fails_max_age() {
    let server = stand_in(&Answers {
        refresh: &["__Secure-session_token=tok; Path=/; HttpOnly; Secure; SameSite=Lax; Expires=Fri Jan 01 2100 00:00:00 GMT+0000"],
        ..FAITHFUL
    })
    .await;
    let results = run(&server).await;
    let r = result(&results, "cookie.max-age");
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    assert!(r.summary.contains("get-session refresh"), "{}", r.summary);
}

/// A sign-in whose session cookie a browser refuses (the __Secure- prefix
/// without Secure): cookie.secure and cookie.prefix fail on it; sign-out is
/// still judged, as for a browser that had accepted it.
#[tokio::test]
async fn a_refused_session_cookie_fails_its_rules_and_sign_out_is_still_judged() {
    let server = stand_in(&Answers {
        sign_in: &["__Secure-session_token=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=600"],
        sign_out: &["__Secure-session_token=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"],
        ..FAITHFUL
    })
    .await;
    let results = run(&server).await;
    for id in ["cookie.secure", "cookie.prefix"] {
        let r = result(&results, id);
        assert_eq!(r.status, Status::Fail, "{r:#?}");
        assert!(
            r.summary.contains("a browser refused this Set-Cookie"),
            "{}",
            r.summary
        );
    }
    let r = result(&results, "cookie.cleared-on-sign-out");
    assert_eq!(r.status, Status::Pass, "{r:#?}");
    assert!(
        r.evidence.iter().any(|e| matches!(
            e,
            flareproof::model::Evidence::Note { text } if text.contains("as for a browser that had accepted it")
        )),
        "{r:#?}"
    );
}

/// Against the reference Worker (better-auth): healthy, every cookie check
/// passes on the browser model; each cookie attribute fault fails its own
/// check (and the ones the plan declares inseparable) and no other, and
/// sign-out stays judged under them.
#[tokio::test(flavor = "multi_thread")]
async fn the_reference_worker_is_judged_as_a_browser_holds_its_cookies() {
    use super::support::{conform, faults, ids_with, start};
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    for fault in [
        None,
        Some("cookie.secure"),
        Some("cookie.domain"),
        Some("cookie.cleared-on-sign-out"),
    ] {
        let options = faults(fault.as_slice());
        let fixture = tokio::task::spawn_blocking(move || start(options))
            .await
            .unwrap();
        let report = conform(&fixture, &COOKIE_CHECKS).await;
        let failed = ids_with(&report, Status::Fail);
        let errors = ids_with(&report, Status::Error);
        // The fault's own check and those the plan declares inseparable
        // from it, as the fault sweep expects.
        let mut expected: Vec<String> = match fault.and_then(|id| plan.check(id)) {
            Some(check) => std::iter::once(check.id.to_string())
                .chain(check.inseparable_from.iter().map(|c| c.to_string()))
                .collect(),
            None => Vec::new(),
        };
        expected.sort();
        let mut failed_sorted = failed.clone();
        failed_sorted.sort();
        let why: Vec<String> = report
            .checks
            .iter()
            .filter(|c| c.status != Status::Pass)
            .map(|c| format!("{} {:?}: {}", c.id, c.status, c.summary))
            .collect();
        assert!(errors.is_empty(), "{fault:?}: {why:#?}");
        assert_eq!(failed_sorted, expected, "{fault:?}: {why:#?}");
    }
}
