//! A hostile target cannot crash, hang or exhaust the harness: a raw HTTP
//! server (wiremock cannot send these bytes) answers every route with
//! something a careless client trips on, and a whole `conform` run against
//! it must end by itself, within its budget, with a report and no panic.

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
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kb=%M"])
        .arg(env!("CARGO_BIN_EXE_flareproof"))
        .args(["conform", "--quiet", "--config"])
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .env("FP_HOSTILE_PASSWORD", "hostile-password-canary")
        .env("FP_HOSTILE_KEY", "hostile-key-canary")
        .output()
        .expect("the binary runs under /usr/bin/time");
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
    let rss_kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kb="))
        .and_then(|v| v.trim().parse().ok())
        .expect("time reports the peak RSS");
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
