//! A hostile target cannot crash, hang or exhaust the harness: a raw HTTP
//! server (wiremock cannot send these bytes) answers every route with
//! something a careless client trips on, and a whole `conform` run against
//! it must end by itself, within its budget, with a report and no panic.
//! And a target that is correct but answers its metered route with 8 MiB
//! bodies (wiremock) cannot make a rate-limit measurement, hundreds of
//! requests, hold them: the run's peak memory stays bounded.

use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The body get-session announces and streams: far over the 8 MiB cap.
const HUGE_BODY: u64 = 300 * 1024 * 1024;

/// Reads a request head and its body (by Content-Length); the path.
async fn request_path(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(1024 * 1024)];
    stream.read_exact(&mut body).await.ok()?;
    let path = head.split_whitespace().nth(1)?.to_owned();
    Some(path.split('?').next().unwrap_or("").to_owned())
}

async fn answer(mut stream: TcpStream) {
    let Some(path) = request_path(&mut stream).await else {
        return;
    };
    let mut out: Vec<u8> = Vec::new();
    match path.as_str() {
        "/api/auth/sign-in/email" | "/api/auth/sign-up/email" => {
            out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n");
            // A multi-byte character right after the prefix, junk, and one
            // session cookie so that the checks get further.
            out.extend_from_slice("set-cookie: __hosté-session=1; Secure; Path=/\r\n".as_bytes());
            out.extend_from_slice(b"set-cookie: ;;;=;\r\n");
            out.extend_from_slice(b"set-cookie: =\r\n");
            out.extend_from_slice(b"set-cookie: a=b; Max-Age=99999999999999999999999; Expires=Thu, 01 Jan 99999 00:00:00 GMT\r\n");
            out.extend_from_slice(
                b"set-cookie: __Secure-session_token=tok; Secure; HttpOnly; SameSite=Lax; Path=/\r\n",
            );
            let body = br#"{"user":{"id":"u"}}"#;
            out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        }
        "/api/auth/get-session" => {
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUGE_BODY}\r\n\r\n"
                )
                .as_bytes(),
            );
            if stream.write_all(&out).await.is_err() {
                return;
            }
            let chunk = vec![b'['; 64 * 1024];
            let mut sent = 0;
            while sent < HUGE_BODY {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len() as u64;
            }
            return;
        }
        "/api/ping" | "/api/me" => {
            out.extend_from_slice(
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 18446744073709551616\r\nratelimit: \"x\";r=99999999999999999999999;t=-1\r\ncontent-length: 0\r\n\r\n",
            );
        }
        "/api/posts" => {
            // One byte every 2 s.
            let head =
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            for _ in 0..64 {
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            return;
        }
        _ => {
            out.extend_from_slice(
                b"HTTP/1.1 302 Found\r\nlocation: https://attacker.flareproof.invalid/steal\r\ncontent-length: 0\r\n\r\n",
            );
        }
    }
    let _ = stream.write_all(&out).await;
}

/// `flareproof conform --quiet --config CONFIG --out OUT`.
fn conform(config: &std::path::Path, out: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    cmd.args(["conform", "--quiet", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out);
    cmd
}

/// Runs `cmd` under `/usr/bin/time`, in a process of its own: its output
/// and its peak resident set in KiB.
fn measured(cmd: &mut Command) -> (std::process::Output, u64) {
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "peak-rss-kb=%M"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => timed.env(name, value),
            None => timed.env_remove(name),
        };
    }
    let out = timed.output().expect("the binary runs under /usr/bin/time");
    let rss_kb = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kb="))
        .and_then(|v| v.trim().parse().ok())
        .expect("time reports the peak RSS");
    (out, rss_kb)
}

/// Starts the hostile server on a thread of its own; its port.
fn start() -> u16 {
    crate::support::serve_raw(answer)
}

#[test]
fn a_hostile_target_ends_the_run_with_a_report_no_panic_and_bounded_memory() {
    let port = start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[target]\nbase_url = \"http://127.0.0.1:{port}\"\norigin = \"https://app.a.test\"\n\
         [profile]\nwindow_s = 2\nrevocation_bound_s = 1\n\
         [data]\nservice_key_env = \"FP_HOSTILE_KEY\"\n\
         [budget]\nmax_requests = 600\nmax_rps = 50\n"
    );
    for role in ["free", "free2", "pro", "admin"] {
        config.push_str(&format!(
            "[accounts.{role}]\nemail = \"{role}@a.test\"\npassword_env = \"FP_HOSTILE_PASSWORD\"\n"
        ));
    }
    let path = dir.path().join("hostile.toml");
    std::fs::write(&path, config).unwrap();
    let out_dir = dir.path().join("out");
    let started = Instant::now();
    let (out, rss_kb) = measured(
        conform(&path, &out_dir)
            .env("FP_HOSTILE_PASSWORD", "hostile-password-canary")
            .env("FP_HOSTILE_KEY", "hostile-key-canary"),
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(1 | 2)),
        "exit {code:?}; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("a report"))
            .expect("the report is JSON");
    assert_ne!(report["verdict"], "pass");
    assert!(!report["checks"].as_array().unwrap().is_empty());
    assert!(rss_kb < 256 * 1024, "peak RSS {rss_kb} KiB is over 256 MiB");
    let text =
        String::from_utf8_lossy(&std::fs::read(out_dir.join("report.json")).unwrap()).into_owned();
    for secret in ["hostile-password-canary", "hostile-key-canary"] {
        assert!(!text.contains(secret), "{secret} is in the report");
    }
    if let Some(dump) = std::env::var_os("FLAREPROOF_TEST_DUMP") {
        let _ = std::fs::copy(
            out_dir.join("report.json"),
            std::path::Path::new(&dump).join("hostile.json"),
        );
    }
    eprintln!(
        "hostile run: exit {code:?} in {:.1} s, peak RSS {} MiB",
        took.as_secs_f64(),
        rss_kb / 1024
    );
    // Bounded: the budget's requests at its rate cap, plus one request
    // timeout per check for the drip, never a hang.
    assert!(took < Duration::from_secs(240), "took {took:?}");
}

/// Every answer of the metered route: 8 MiB, the default
/// `budget.max_body_bytes`, so each is read whole.
const METERED_BODY: usize = 8 * 1024 * 1024;
/// The pro limit and window of the metered stand-in.
const PRO_LIMIT: u32 = 60;
const WINDOW_S: u64 = 4;

/// A correct fixed-window limiter on GET /api/ping (one bucket: only pro
/// sends there), its windows starting at its first request, with an
/// honest `Retry-After`; every answer, 200 or 429, is 8 MiB.
struct Metered {
    body: bytes::Bytes,
    /// The first request, the current window's index, its requests.
    state: std::sync::Mutex<(Option<Instant>, u64, u32)>,
}

impl wiremock::Respond for Metered {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        let now = Instant::now();
        let window = Duration::from_secs(WINDOW_S);
        let mut state = self.state.lock().unwrap();
        let start = *state.0.get_or_insert(now);
        let index = (now - start).as_secs() / WINDOW_S;
        if index != state.1 {
            *state = (Some(start), index, 0);
        }
        state.2 += 1;
        let answer = if state.2 <= PRO_LIMIT {
            wiremock::ResponseTemplate::new(200)
        } else {
            let end = start + window * (index as u32 + 1);
            let retry_after = (end - now).as_secs_f64().ceil().max(1.0) as u64;
            wiremock::ResponseTemplate::new(429)
                .insert_header("retry-after", retry_after.to_string())
        };
        answer.set_body_raw(self.body.to_vec(), "application/octet-stream")
    }
}

/// A metered route answering 8 MiB to every request: the rate-limit
/// measurement (spend, polls for the reset, a counted window: well over a
/// hundred requests) keeps none of those bodies, so the run's peak RSS stays
/// far under what they add up to (over a GiB), and the report is written.
#[tokio::test]
async fn a_metered_route_answering_8_mib_bodies_leaves_the_run_s_memory_bounded() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    crate::support::mount_sign_in(&server, "p@example.test", "p").await;
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .and(header("cookie", "session_token=tok-p"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({ "session": { "id": "s" }, "user": { "id": "p" } }),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/ping"))
        .respond_with(Metered {
            body: bytes::Bytes::from(vec![b'm'; METERED_BODY]),
            state: std::sync::Mutex::new((None, 0, 0)),
        })
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[target]\nbase_url = \"{}\"\norigin = \"https://app.example.test\"\n\
         [profile]\nwindow_s = {WINDOW_S}\n\
         [profile.limits]\nanonymous = 10\nfree = 20\npro = {PRO_LIMIT}\nadmin = \"unlimited\"\n\
         [accounts.pro]\nemail = \"p@example.test\"\npassword_env = \"FP_METERED_PASSWORD\"\n\
         [budget]\nmax_rps = 40\n",
        server.uri()
    );
    let path = dir.path().join("metered.toml");
    std::fs::write(&path, config).unwrap();
    let out_dir = dir.path().join("out");
    let mut cmd = conform(&path, &out_dir);
    cmd.args(["--only", "ratelimit.pro"])
        .env("FP_METERED_PASSWORD", "metered-password");
    let started = Instant::now();
    let (out, rss_kb) = tokio::task::spawn_blocking(move || measured(&mut cmd))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("a report"))
            .expect("the report is JSON");
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "ratelimit.pro")
        .expect("ratelimit.pro is reported")
        .clone();
    let pings = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/ping")
        .count();
    eprintln!(
        "metered run: exit {:?} in {:.1} s, {pings} answers of 8 MiB, peak RSS {} MiB; ratelimit.pro: {} ({})",
        out.status.code(),
        started.elapsed().as_secs_f64(),
        rss_kb / 1024,
        check["status"],
        check["summary"]
    );
    // The measurement ran: over a hundred 8 MiB answers were read.
    assert!(
        pings > 2 * PRO_LIMIT as usize,
        "only {pings} metered requests"
    );
    assert!(rss_kb < 256 * 1024, "peak RSS {rss_kb} KiB is over 256 MiB");
    // Memory is no reason for the verdict: the target is correct.
    let summary = check["summary"].as_str().unwrap_or_default();
    assert!(!summary.contains("max_kept_bytes"), "{summary}");
}
