//! Attack families as data: a target lenient through a channel no single
//! exemplar tried is caught by the generated variants.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{mount_sign_in, run_checks, stand_in_target};
use flareproof::model::Status;
use flareproof::target::{Limit, Target};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const WINDOW_S: u64 = 2;
const ANONYMOUS: u64 = 3;
const FREE: u64 = 5;

/// A fixed-window limiter on `GET /api/ping`: users by their session
/// cookie at the free limit, everyone else by address at the anonymous
/// one. `lenient` names the channels it wrongly trusts: an `x-client-ip`
/// header choosing the anonymous key, a `plan=admin` cookie lifting the
/// limit. Neither is among the exemplars the checks sent before their
/// payloads were generated.
struct Limiter {
    lenient: bool,
    counts: Mutex<HashMap<(String, u64), u64>>,
}

fn cookie<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    let header = request.headers.get("cookie")?.to_str().ok()?;
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

impl Respond for Limiter {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.lenient && cookie(request, "plan") == Some("admin") {
            return ResponseTemplate::new(200).set_body_json(json!({ "pong": true }));
        }
        let (key, limit) = match cookie(request, "session_token") {
            Some(token) => (format!("user:{token}"), FREE),
            None => {
                let spoofed = request
                    .headers
                    .get("x-client-ip")
                    .and_then(|v| v.to_str().ok())
                    .filter(|_| self.lenient);
                (format!("ip:{}", spoofed.unwrap_or("local")), ANONYMOUS)
            }
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let window_ms = WINDOW_S * 1000;
        let index = now_ms / window_ms;
        let count = {
            let mut counts = self.counts.lock().unwrap();
            let c = counts.entry((key, index)).or_insert(0);
            *c += 1;
            *c
        };
        if count > limit {
            let remaining_ms = (index + 1) * window_ms - now_ms;
            ResponseTemplate::new(429)
                .insert_header("retry-after", remaining_ms.div_ceil(1000).to_string())
        } else {
            ResponseTemplate::new(200).set_body_json(json!({ "pong": true }))
        }
    }
}

async fn stand_in(lenient: bool) -> MockServer {
    let server = MockServer::start().await;
    for (email, id) in [("a@example.test", "a"), ("b@example.test", "b")] {
        mount_sign_in(&server, email, id).await;
    }
    Mock::given(method("GET"))
        .and(path("/api/ping"))
        .respond_with(Limiter {
            lenient,
            counts: Mutex::new(HashMap::new()),
        })
        .mount(&server)
        .await;
    server
}

fn target_for(server: &MockServer) -> Target {
    let mut target = stand_in_target(server, "", |_| "not-a-real-password".to_owned());
    target.profile.window_s = WINDOW_S;
    // Every probe of a batch must fit in one 2 s window.
    target.budget.max_rps = 400;
    target.profile.limits.anonymous = Limit::Count(ANONYMOUS);
    target.profile.limits.free = Limit::Count(FREE);
    target
}

const CHECKS: [&str; 2] = [
    "ratelimit.key-not-spoofable",
    "ratelimit.tier-not-from-client",
];

/// A limiter keyed on `X-Client-IP` and lifted by a `plan=admin` cookie
/// fails both checks, each naming the channel; the same limiter without
/// them passes both (so the failures are about the channels).
#[tokio::test]
async fn generated_channels_catch_a_limiter_no_exemplar_tried() {
    let lenient = stand_in(true).await;
    let honest = stand_in(false).await;
    let (lenient, honest) = tokio::join!(
        run_checks(target_for(&lenient), &CHECKS),
        run_checks(target_for(&honest), &CHECKS)
    );
    for result in &honest {
        assert_eq!(result.status, Status::Pass, "{result:#?}");
    }
    let by_id = |id: &str| lenient.iter().find(|r| r.id.as_str() == id).unwrap();
    let spoof = by_id("ratelimit.key-not-spoofable");
    assert_eq!(spoof.status, Status::Fail, "{spoof:#?}");
    assert!(spoof.summary.contains("x-client-ip"), "{}", spoof.summary);
    let claim = by_id("ratelimit.tier-not-from-client");
    assert_eq!(claim.status, Status::Fail, "{claim:#?}");
    assert!(claim.summary.contains("plan=admin"), "{}", claim.summary);
}

const SERVICE_KEY: &str = "sk-stand-in-0123456789abcdef";

/// A data plane that takes `check` for the service key, beside sign-ins for
/// A and B; the control query (the real key, scoped to A) answers A's rows.
async fn data_plane(check: fn(Option<&str>) -> bool) -> MockServer {
    struct Query(fn(Option<&str>) -> bool);
    impl Respond for Query {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let auth = request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if (self.0)(auth) {
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "rows": [{ "id": 1, "author_id": "a" }] }))
            } else {
                ResponseTemplate::new(401).set_body_json(json!({ "error": "MissingServiceKey" }))
            }
        }
    }
    let server = stand_in(false).await;
    Mock::given(method("POST"))
        .and(path("/v1/query"))
        .respond_with(Query(check))
        .mount(&server)
        .await;
    server
}

fn data_target(server: &MockServer) -> Target {
    stand_in_target(
        server,
        "[data]\nservice_key_env = \"KEY\"\n",
        |name| match name {
            "KEY" => SERVICE_KEY.to_owned(),
            _ => "not-a-real-password".to_owned(),
        },
    )
}

/// Data planes that accept any Bearer, compare by prefix or loosely, each
/// answering 401 without any Authorization (the one request the check sent
/// before its variants were generated), fail scope.service-key-required;
/// the exact comparison passes. The key appears in no result.
#[tokio::test]
async fn a_lenient_service_key_comparison_fails_service_key_required() {
    const CHECK: &str = "scope.service-key-required";
    let exact: fn(Option<&str>) -> bool = |a| a == Some(&format!("Bearer {SERVICE_KEY}"));
    let any_bearer: fn(Option<&str>) -> bool = |a| a.is_some_and(|a| a.starts_with("Bearer"));
    let prefix: fn(Option<&str>) -> bool = |a| {
        a.and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| !t.is_empty() && SERVICE_KEY.starts_with(t))
    };
    let loose: fn(Option<&str>) -> bool =
        |a| a.is_some_and(|a| a.eq_ignore_ascii_case(&format!("Bearer {SERVICE_KEY}")));
    for (name, check, want) in [
        ("exact", exact, Status::Pass),
        ("any Bearer", any_bearer, Status::Fail),
        ("prefix", prefix, Status::Fail),
        ("case-insensitive", loose, Status::Fail),
    ] {
        let server = data_plane(check).await;
        let result = &run_checks(data_target(&server), &[CHECK]).await[0];
        assert_eq!(result.status, want, "{name}: {result:#?}");
        let shown = serde_json::to_string(result).unwrap();
        assert!(!shown.contains(SERVICE_KEY), "{name}: the key leaked");
        assert!(
            !shown.contains(&SERVICE_KEY[..SERVICE_KEY.len() - 1]),
            "{name}: the cut key leaked"
        );
    }
}
