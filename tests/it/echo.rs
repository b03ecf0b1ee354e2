//! The echo canary: a target that signs the accounts in and then echoes
//! every secret it received (the passwords of the sign-in bodies, the
//! session tokens it issued and saw in `Cookie`, the service key of
//! `Authorization`) back in response headers, bodies and a redirect
//! `Location`, raw, percent-, base64- and JSON-escaped; its Cloudflare API
//! stand-in refuses the API token and quotes it, in the same forms, in its
//! error details. No output of `conform` or `audit` (every report format,
//! the attestation, stdout, stderr) may hold any of them in any of those
//! encodings.
//!
//! Not covered by the assertions (nor by the redactor): encodings nested in
//! one another (base64 of a percent-encoded secret, percent of percent),
//! hex, and base64 of a secret shorter than 8 bytes embedded in a longer
//! base64 string.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Passwords with every character an encoding treats specially: space,
/// quote, slash, plus, ampersand, backslash, non-ASCII.
const PASSWORDS: [(&str, &str); 4] = [
    ("free", "Fr ee/pa+ss&wörd\"canary-1"),
    ("free2", "Fr2 ee/pa+ss&wörd\\canary-2"),
    ("pro", "Pro=pa ss/wörd+canary-3é"),
    ("admin", "Adm in/pa+ss?wörd#canary-4"),
];
const SERVICE_KEY: &str = "sk_echo/Canary+Key=5 svc-ünïcode";
const API_TOKEN: &str = "cf-echo/Token+canary=6 api-tökén";
/// The userinfo of the target's `base_url` (sent as HTTP Basic).
const URL_USER: &str = "echo-user";
const URL_PASSWORD: &str = "url/Pass+word=7 ü-canary";

/// The secrets the target saw and issued; the test asserts on all of them.
#[derive(Default)]
struct Seen {
    issued: Vec<String>,
    /// Requests that carried `Authorization: Basic` (the URL's userinfo).
    basic: usize,
}

/// `%XX` for every byte but RFC 3986 unreserved ones.
fn pct(s: &str, lower: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded`: space is `+`.
fn form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn json(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap();
    quoted[1..quoted.len() - 1].to_owned()
}

/// JSON with every non-ASCII character and `/` escaped (`\u00e9`, `\/`).
fn json_ascii(s: &str) -> String {
    let mut out = String::new();
    for c in json(s).chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out
}

/// Base64 of `pad` bytes, the secret, then two more: what a target sends
/// when it encodes the secret inside a longer value.
fn embedded(s: &str, pad: usize, url_safe: bool) -> String {
    let mut bytes = vec![b'{'; pad];
    bytes.extend_from_slice(s.as_bytes());
    bytes.extend_from_slice(b"}}");
    if url_safe {
        URL_SAFE.encode(bytes)
    } else {
        STANDARD.encode(bytes)
    }
}

/// The characters of [`embedded`] that only the secret's bytes decide
/// (whole 3-byte groups inside it): what must never appear.
fn embedded_core(s: &str, pad: usize, url_safe: bool) -> String {
    let outer = embedded(s, pad, url_safe);
    let first = pad.div_ceil(3);
    let end = (pad + s.len()) / 3;
    outer[first * 4..end * 4].to_owned()
}

/// Every form the target echoes a secret in.
fn echo_forms(s: &str) -> Vec<(&'static str, String)> {
    vec![
        ("raw", s.to_owned()),
        ("pct", pct(s, false)),
        ("pct-lower", pct(s, true)),
        ("form", form(s)),
        ("b64", STANDARD.encode(s)),
        ("b64-nopad", STANDARD_NO_PAD.encode(s)),
        ("b64url", URL_SAFE.encode(s)),
        ("b64url-nopad", URL_SAFE_NO_PAD.encode(s)),
        ("b64-in-1", embedded(s, 1, false)),
        ("b64-in-2", embedded(s, 2, false)),
        ("b64url-in-1", embedded(s, 1, true)),
        ("b64url-in-2", embedded(s, 2, true)),
        ("json", json(s)),
        ("json-ascii", json_ascii(s)),
    ]
}

/// Every form that must not appear in an output.
fn forbidden_forms(s: &str) -> Vec<(&'static str, String)> {
    let mut forms: Vec<(&'static str, String)> = echo_forms(s)
        .into_iter()
        .filter(|(label, _)| !label.contains("-in-"))
        .collect();
    for (label, pad, url_safe) in [
        ("b64-in-1 core", 1, false),
        ("b64-in-2 core", 2, false),
        ("b64url-in-1 core", 1, true),
        ("b64url-in-2 core", 2, true),
    ] {
        forms.push((label, embedded_core(s, pad, url_safe)));
    }
    forms
}

/// A request: its path, headers and body.
pub(crate) struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub(crate) async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(1024 * 1024)];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request {
        path: path.split('?').next().unwrap_or("").to_owned(),
        headers,
        body,
    })
}

/// The secrets a request carried.
fn secrets_in(req: &Request) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body)
        && let Some(pw) = body["password"].as_str()
    {
        out.push(pw.to_owned());
    }
    for (name, value) in &req.headers {
        match name.as_str() {
            "cookie" => out.extend(
                value
                    .split(';')
                    .filter_map(|p| p.trim().split_once('=').map(|(_, v)| v.to_owned())),
            ),
            "authorization" => out.push(
                value
                    .split_once(' ')
                    .map_or(value.as_str(), |(_, v)| v)
                    .to_owned(),
            ),
            _ => {}
        }
    }
    out.retain(|s| s.len() >= 6);
    out
}

async fn answer(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let Some(req) = read_request(&mut stream).await else {
        return;
    };
    let mut secrets = secrets_in(&req);
    if req
        .headers
        .iter()
        .any(|(n, v)| n == "authorization" && v.starts_with("Basic "))
    {
        seen.lock().unwrap().basic += 1;
    }
    let signing_in = req.path.ends_with("/sign-in/email") || req.path.ends_with("/sign-up/email");
    let mut set_cookie = None;
    if signing_in {
        let mut seen = seen.lock().unwrap();
        let n = seen.issued.len();
        // better-auth's shape, `<token>.<signature>`, with `+`, `/`, `=`.
        let token = format!("EchoTok{n:03}+Canary/Sess{n:03}.Sig{n:03}/Mac+Zz=");
        seen.issued.push(token.clone());
        set_cookie = Some(format!(
            "__Secure-session_token={token}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=3600"
        ));
        secrets.push(token);
    }
    let mut echoes = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        for (label, value) in echo_forms(s) {
            echoes.push((format!("x-echo-{i}-{label}"), value));
        }
    }
    let echo_json: serde_json::Map<String, serde_json::Value> = echoes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    // A text body that JSON parsing cannot normalise: each form verbatim.
    let text: String = echoes.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    let (status, content_type, body) = if req.path.starts_with("/client/v4/") {
        // The Cloudflare API stand-in refuses the token and quotes it, in
        // every form, in its error messages.
        let errors: Vec<serde_json::Value> = echoes
            .iter()
            .map(|(k, v)| serde_json::json!({ "code": 10000, "message": format!("{k}: {v}") }))
            .collect();
        let body = serde_json::json!({ "success": false, "errors": errors, "messages": [] });
        ("403 Forbidden", "application/json", body.to_string())
    } else if signing_in {
        let body = serde_json::json!({
            "user": { "id": format!("u-{}", seen.lock().unwrap().issued.len()) },
            "echo": echo_json,
        });
        ("200 OK", "application/json", body.to_string())
    } else if req.path.ends_with("/get-session") {
        let signed_in = req.headers.iter().any(|(n, _)| n == "cookie");
        let body = if signed_in {
            serde_json::json!({
                "session": { "id": "s", "userId": "u" },
                "user": { "id": "u" },
                "echo": echo_json,
            })
            .to_string()
        } else {
            "null".to_owned()
        };
        ("200 OK", "application/json", body)
    } else if req.path.starts_with("/api/auth/") {
        ("200 OK", "text/plain", text)
    } else {
        ("302 Found", "text/plain", text)
    };
    let mut out: Vec<u8> = format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n").into();
    if let Some(c) = set_cookie {
        out.extend_from_slice(format!("set-cookie: {c}\r\n").as_bytes());
    }
    for (name, value) in &echoes {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(s) = secrets.first() {
        let location = format!(
            "https://echo:{}@callback.flareproof.invalid/back?s={}&f={}&b={}#{}",
            pct(s, false),
            pct(s, false),
            form(s),
            URL_SAFE_NO_PAD.encode(s),
            s
        );
        out.extend_from_slice(format!("location: {location}\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let _ = stream.write_all(&out).await;
}

/// Starts the echo target on a thread of its own; its port.
fn start(seen: Arc<Mutex<Seen>>) -> u16 {
    crate::support::serve_raw(move |stream| answer(stream, seen.clone()))
}

/// `&quot;`-style entities back to characters, so that a secret an HTML or
/// XML report escaped is still found.
fn unescape_markup(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every string a JSON document holds, decoded, one per line.
fn json_strings(text: &str) -> String {
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| {
                out.push_str(k);
                out.push('\n');
                walk(v, out);
            }),
            _ => {}
        }
    }
    let mut out = String::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        walk(&v, &mut out);
    }
    out
}

/// Every leak: `output: secret #i in form`.
fn leaks(outputs: &[(String, String)], secrets: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (name, text) in outputs {
        let views = [
            text.clone(),
            unescape_markup(text),
            json_strings(text),
            json_strings(&unescape_markup(text)),
        ];
        for (i, secret) in secrets.iter().enumerate() {
            for (form, value) in forbidden_forms(secret) {
                if views.iter().any(|v| v.contains(&value)) {
                    found.insert(format!("{name}: secret #{i} {form}"));
                }
            }
        }
    }
    found
}

fn config(port: u16, dir: &std::path::Path, audit: bool) -> std::path::PathBuf {
    let mut config = format!(
        "[target]\nbase_url = \"http://{URL_USER}:{}@127.0.0.1:{port}\"\norigin = \"https://app.echo.test\"\n\
         [profile]\nwindow_s = 2\nrevocation_bound_s = 1\n\
         [data]\nservice_key_env = \"FP_ECHO_SERVICE_KEY\"\n\
         [budget]\nmax_requests = 400\nmax_rps = 50\n",
        pct(URL_PASSWORD, false)
    );
    for (role, _) in PASSWORDS {
        config.push_str(&format!(
            "[accounts.{role}]\nemail = \"{role}@echo.test\"\npassword_env = \"FP_ECHO_{}_PASSWORD\"\n",
            role.to_uppercase()
        ));
    }
    if audit {
        // A recipe that builds one module without Node.js; the API it reads
        // the deployment from is the echo target's stand-in.
        let source = dir.join("src");
        std::fs::create_dir_all(&source).unwrap();
        config.push_str(&format!(
            "[verify]\nsource = \"{}\"\n\
             recipe = [\"sh\", \"-c\", \"printf 'export default {{}}' > {{out}}/worker.js\"]\n\
             script = \"flarelink-auth\"\n\
             api_base = \"http://127.0.0.1:{port}/client/v4\"\n\
             api_token_env = \"FP_ECHO_CF_TOKEN\"\naccount_id_env = \"FP_ECHO_CF_ACCOUNT\"\n",
            source.display()
        ));
    }
    let path = dir.join("echo.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Runs `command` (`conform` or `audit`) against a fresh echo target with
/// every report format; asserts that no output holds a secret.
fn run_against_the_echo_target(command: &str) {
    let audit = command == "audit";
    let seen = Arc::new(Mutex::new(Seen::default()));
    let port = start(seen.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = config(port, dir.path(), audit);
    let out_dir = dir.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    cmd.args([command, "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out_dir)
        .args([
            "--only",
            "cookie.*",
            "--only",
            "scope.*",
            "--only",
            "session.*",
        ]);
    for format in ["json", "junit", "sarif", "markdown", "html", "har"] {
        cmd.args(["--format", format]);
    }
    cmd.env("FP_ECHO_SERVICE_KEY", SERVICE_KEY)
        .env("FP_ECHO_CF_TOKEN", API_TOKEN)
        .env("FP_ECHO_CF_ACCOUNT", "0123456789abcdef0123456789abcdef");
    for (role, password) in PASSWORDS {
        cmd.env(
            format!("FP_ECHO_{}_PASSWORD", role.to_uppercase()),
            password,
        );
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(matches!(out.status.code(), Some(1 | 2)), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let mut outputs = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        ("stderr".to_owned(), stderr.clone()),
    ];
    let mut files = vec![
        "report.json",
        "junit.xml",
        "report.sarif",
        "summary.md",
        "report.html",
        "exchanges.har",
    ];
    if audit {
        files.push("attestation.json");
    }
    for file in files {
        let text = std::fs::read_to_string(out_dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}; stderr: {stderr}"));
        outputs.push((file.to_owned(), text));
    }

    // What reads the report back writes it again: `merge` (every format)
    // and `diff` (Markdown and HTML) of this run.
    let merged = dir.path().join("merged");
    let mut merge = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    merge.arg("merge").arg(&out_dir).arg("--out").arg(&merged);
    for format in ["junit", "sarif", "markdown", "html", "har"] {
        merge.args(["--format", format]);
    }
    let ran = merge.output().unwrap();
    assert!(
        matches!(ran.status.code(), Some(1 | 2)) && merged.join("report.json").exists(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let diffed = dir.path().join("diffed");
    let ran_diff = Command::new(env!("CARGO_BIN_EXE_flareproof"))
        .arg("diff")
        .arg(&out_dir)
        .arg(merged.join("report.json"))
        .arg("--out")
        .arg(&diffed)
        .output()
        .unwrap();
    for (name, ran) in [("merge", &ran), ("diff", &ran_diff)] {
        outputs.push((
            format!("{name} stdout"),
            String::from_utf8_lossy(&ran.stdout).into_owned(),
        ));
        outputs.push((
            format!("{name} stderr"),
            String::from_utf8_lossy(&ran.stderr).into_owned(),
        ));
    }
    for file in [
        "report.json",
        "junit.xml",
        "report.sarif",
        "summary.md",
        "report.html",
        "exchanges.har",
    ] {
        let text = std::fs::read_to_string(merged.join(file)).unwrap();
        outputs.push((format!("merged/{file}"), text));
    }
    for file in ["diff.md", "diff.html"] {
        let text = std::fs::read_to_string(diffed.join(file)).unwrap_or_else(|e| {
            panic!(
                "diff {file}: {e}: {}",
                String::from_utf8_lossy(&ran_diff.stderr)
            )
        });
        outputs.push((format!("diffed/{file}"), text));
    }

    let issued = seen.lock().unwrap().issued.clone();
    assert!(
        seen.lock().unwrap().basic > 0,
        "the target never saw the URL's userinfo as HTTP Basic"
    );
    assert!(
        issued.len() >= 2,
        "the target issued {} session(s): the run did not get far enough to test redaction",
        issued.len()
    );
    let mut secrets: Vec<String> = PASSWORDS.iter().map(|(_, p)| p.to_string()).collect();
    secrets.push(SERVICE_KEY.to_owned());
    secrets.push(API_TOKEN.to_owned());
    let pair = format!("{URL_USER}:{URL_PASSWORD}");
    secrets.push(URL_PASSWORD.to_owned());
    secrets.push(STANDARD.encode(&pair));
    secrets.push(pair);
    secrets.extend(issued);
    // The report did record the echoing exchanges: the redaction is what
    // keeps the secrets out, not the lack of evidence.
    let report = &outputs[2].1;
    assert!(report.contains("x-echo-0-b64url-in-2"), "no echo recorded");
    let har = &outputs
        .iter()
        .find(|(n, _)| n == "exchanges.har")
        .unwrap()
        .1;
    assert!(har.contains("x-echo-0-b64url-in-2"), "no echo in the HAR");
    if audit {
        // The API's refusal, quoting the token, was read and printed.
        assert!(stderr.contains("HTTP 403"), "{stderr}");
        assert!(stderr.contains("x-echo-0-b64url-in-2"), "{stderr}");
    }

    let leaks = leaks(&outputs, &secrets);
    assert!(
        leaks.is_empty(),
        "{command}: {} leak(s):\n{}",
        leaks.len(),
        leaks.iter().cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn no_conform_output_holds_a_secret_the_target_echoes_in_any_encoding() {
    run_against_the_echo_target("conform");
}

/// `audit` adds the attestation, and the API token, which the API stand-in
/// quotes in its error details (printed on stderr).
#[test]
fn no_audit_output_holds_a_secret_the_target_or_the_api_echoes() {
    run_against_the_echo_target("audit");
}
