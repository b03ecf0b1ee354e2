//! A target cannot bend the record through what it asks the run to
//! redact. The target signs accounts in with a session cookie whose value
//! is the deployed module's sha256, and on every answer sets cookies named
//! and valued like the record's structure: enum tags (`medium`,
//! `exchange`, `measurement`), verdict words (`fail`, `FAILED`, `PASSED`),
//! a check id and the live version's id, some under names that say they
//! are credentials (so the run learns them). An `audit --sign-key` of it
//! (verify through the Cloudflare API stand-in, whose one module has that
//! digest) must write every format and both signed statements such that:
//! each deserializes; no structural field (ids, statuses, severities, enum
//! tags, digests, version ids, verdicts) was rewritten; the digests are the
//! module's; the statements say what the report says; and both signatures
//! verify over the bytes written.

use std::process::Command;

use flareproof::attestation::dsse::{Envelope, SigningKey};
use flareproof::cloudflare::Scenario;
use flareproof::cloudflare::standin::StandIn;
use flareproof::compare::{Bundle, Module};
use flareproof::model::{Evidence, Report, Secret};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MODULE: &str = "export default {}";
const TOKEN: &str = "cf-tags-token-0123456789abcdef";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const SCRIPT: &str = "flarelink-auth";
/// `Scenario::single`'s version id.
const VERSION: &str = "9b3c2d1e-4f5a-4b6c-8d7e-1f2a3b4c5d6e";

fn digest() -> String {
    flareproof::compare::sha256_hex(MODULE.as_bytes())
}

/// The cookies set on every answer: `name=value`, each a word of the
/// record's structure.
fn tag_cookies() -> Vec<String> {
    [
        ("medium", "exchange"),
        ("pass", "FAILED"),
        ("verdict", "PASSED"),
        ("status", "measurement"),
        ("kind", "cookie.httponly"),
        // Credential-named: learned, so masked wherever free text holds it.
        ("auth_state", "exchange"),
        ("__Secure-refresh_token", VERSION),
        ("sid", "PASSED"),
        ("access_level", "medium"),
    ]
    .iter()
    .map(|(n, v)| format!("{n}={v}; Path=/; Secure; HttpOnly; SameSite=Lax"))
    .collect()
}

async fn answer(mut stream: TcpStream) {
    let Some(req) = crate::echo::read_request(&mut stream).await else {
        return;
    };
    let signing_in = req.path.ends_with("/sign-in/email") || req.path.ends_with("/sign-up/email");
    let signed_in = req.headers.iter().any(|(n, v)| {
        n == "cookie" && v.contains(&format!("__Secure-better-auth.session_token={}", digest()))
    });
    let mut cookies = tag_cookies();
    let (status, body) = if signing_in {
        cookies.push(format!(
            "__Secure-better-auth.session_token={}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=3600",
            digest()
        ));
        ("200 OK", r#"{"user":{"id":"u-1"}}"#.to_owned())
    } else if req.path.ends_with("/get-session") {
        let body = if signed_in {
            r#"{"session":{"id":"s"},"user":{"id":"u-1"}}"#
        } else {
            "null"
        };
        ("200 OK", body.to_owned())
    } else if signed_in {
        (
            "200 OK",
            format!(r#"{{"note":"medium exchange FAILED {}"}}"#, digest()),
        )
    } else {
        ("401 Unauthorized", r#"{"error":"medium"}"#.to_owned())
    };
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\n");
    for c in cookies {
        out.push_str(&format!("set-cookie: {c}\r\n"));
    }
    out.push_str(&format!(
        "connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    let _ = stream.write_all(out.as_bytes()).await;
}

/// Every string of `value` at a key that is not free text, with its path.
fn structural_strings(value: &Value, path: &str, free: &[&str], out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                structural_strings(v, &format!("{path}[{i}]"), free, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if !free.contains(&k.as_str()) {
                    structural_strings(v, &format!("{path}.{k}"), free, out);
                }
            }
        }
        _ => {}
    }
}

/// The free-text keys of the report and the statements: what redaction may
/// change.
const FREE_TEXT: [&str; 12] = [
    "summary",
    "text",
    "label",
    "url",
    "value",
    "body",
    "error",
    "unified",
    "unreadable",
    "base_url",
    "vantages",
    "vantage",
];

fn assert_unbent(name: &str, json: &Value) {
    let mut strings = Vec::new();
    structural_strings(json, "", &FREE_TEXT, &mut strings);
    let bent: Vec<_> = strings
        .iter()
        .filter(|(_, s)| s.contains("[redacted]"))
        .collect();
    assert!(bent.is_empty(), "{name}: structure rewritten: {bent:#?}");
}

fn parse_json(dir: &std::path::Path, file: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} does not parse: {e}"))
}

#[test]
fn cookies_valued_like_the_records_structure_bend_no_output() {
    let port = crate::support::serve_raw(answer);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bundle = Bundle::new(
        Some("worker.js".to_owned()),
        vec![Module {
            name: "worker.js".to_owned(),
            content_type: Some("application/javascript+module".to_owned()),
            bytes: MODULE.as_bytes().to_vec(),
        }],
    );
    let scenario = Scenario::single(
        ACCOUNT,
        SCRIPT,
        Secret::new(TOKEN.to_owned()),
        bundle,
        "2025-09-01",
        &[],
        Vec::new(),
    );
    let standin = rt.block_on(StandIn::start(scenario)).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let source = dir.join("src");
    std::fs::create_dir_all(&source).unwrap();
    let key = SigningKey::generate_p256();
    std::fs::write(dir.join("key.pem"), key.to_pkcs8_pem().as_bytes()).unwrap();
    let config = format!(
        "[target]\nbase_url = \"http://127.0.0.1:{port}\"\norigin = \"https://app.tags.test\"\n\
         [profile]\nwindow_s = 2\nrevocation_bound_s = 1\n\
         [accounts.free]\nemail = \"free@tags.test\"\npassword_env = \"FP_TAGS_PASSWORD\"\n\
         [accounts.free2]\nemail = \"free2@tags.test\"\npassword_env = \"FP_TAGS_PASSWORD\"\n\
         [budget]\nmax_requests = 400\nmax_rps = 50\n\
         [verify]\nsource = \"{}\"\n\
         recipe = [\"sh\", \"-c\", \"printf '{MODULE}' > {{out}}/worker.js\"]\n\
         script = \"{SCRIPT}\"\ncompatibility_date = \"2025-09-01\"\ncompatibility_flags = []\n\
         bindings = []\napi_base = \"{}\"\n\
         api_token_env = \"FP_TAGS_CF_TOKEN\"\naccount_id_env = \"FP_TAGS_CF_ACCOUNT\"\n",
        source.display(),
        standin.api_base()
    );
    let config_path = dir.join("tags.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = dir.join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    cmd.args(["audit", "--config"])
        .arg(&config_path)
        .arg("--out")
        .arg(&out)
        .arg("--sign-key")
        .arg(dir.join("key.pem"))
        .args(["--only", "cookie.*", "--only", "verify.*"]);
    for format in ["json", "junit", "sarif", "markdown", "html", "har"] {
        cmd.args(["--format", format]);
    }
    cmd.env("FP_TAGS_PASSWORD", "tags-password-1")
        .env("FP_TAGS_CF_TOKEN", TOKEN)
        .env("FP_TAGS_CF_ACCOUNT", ACCOUNT);
    let ran = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&ran.stderr).into_owned();
    assert!(matches!(ran.status.code(), Some(0..=2)), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The report deserializes and validates (diff loads both sides against
    // the committed schema), and says the run signed in and saw the tags.
    let text = std::fs::read_to_string(out.join("report.json")).expect(&stderr);
    let report: Report = serde_json::from_str(&text).expect("report.json deserializes");
    let same = Command::new(env!("CARGO_BIN_EXE_flareproof"))
        .arg("diff")
        .arg(&out)
        .arg(&out)
        .arg("--out")
        .arg(dir.join("diffed"))
        .output()
        .unwrap();
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    let exchanges: Vec<_> = report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .filter_map(|e| match e {
            Evidence::Exchange(x) => Some(x),
            _ => None,
        })
        .collect();
    let tagged = exchanges.iter().any(|x| {
        x.response.as_ref().is_some_and(|r| {
            r.headers
                .iter()
                .any(|h| h.name == "set-cookie" && h.value.starts_with("verdict="))
        })
    });
    assert!(tagged, "no exchange recorded the tag cookies");
    let verify_checks = report
        .checks
        .iter()
        .filter(|c| c.id.area() == "verify")
        .count();
    let cookie_checks = report
        .checks
        .iter()
        .filter(|c| c.id.area() == "cookie")
        .count();
    assert!(verify_checks > 0 && cookie_checks > 0, "{text}");

    // The module's digest, learned as the session token, is still every
    // digest the record holds.
    let digests: Vec<_> = report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .filter_map(|e| match e {
            Evidence::Digest(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(!digests.is_empty(), "no module digest recorded: {text}");
    for d in &digests {
        assert_eq!(d.deployed_sha256.as_deref(), Some(digest().as_str()));
        assert_eq!(d.rebuilt_sha256.as_deref(), Some(digest().as_str()));
    }
    // The session token (the digest) is masked where it is free text.
    assert!(
        !exchanges.iter().any(|x| x
            .response
            .as_ref()
            .and_then(|r| r.body.as_deref())
            .is_some_and(|b| b.contains(&digest()))),
        "the learned session token was not masked in a body"
    );

    // No structural field of any JSON output holds a mask.
    let report_json: Value = serde_json::from_str(&text).unwrap();
    assert_unbent("report.json", &report_json);
    for file in ["report.sarif", "exchanges.har"] {
        parse_json(&out, file);
    }
    for file in ["junit.xml", "summary.md", "report.html"] {
        let body = std::fs::read_to_string(out.join(file)).unwrap();
        for check in &report.checks {
            assert!(
                body.contains(check.id.as_str()),
                "{file} lacks {}",
                check.id
            );
        }
    }

    // Both statements: their envelopes verify over exactly the bytes
    // written, they are unbent, and say what the report says.
    let public = key.verifying_key();
    for (statement, envelope) in [
        ("attestation.json", "attestation.dsse.json"),
        ("attestation.vsa.json", "attestation.vsa.dsse.json"),
    ] {
        let bytes = std::fs::read(out.join(statement)).unwrap();
        let env = Envelope::parse(&std::fs::read(out.join(envelope)).unwrap()).unwrap();
        let payload = env
            .verify(&public)
            .unwrap_or_else(|e| panic!("{envelope}: {e}"));
        assert_eq!(payload, bytes, "{envelope} is not over {statement}");
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_unbent(statement, &json);
    }
    // And as a CI gate checks them: a good signature; exit 0 for a pass, 1
    // for a failed result (0 when a failed result is what is checked).
    std::fs::write(dir.join("pub.pem"), key.public_key_pem()).unwrap();
    for envelope in ["attestation.dsse.json", "attestation.vsa.dsse.json"] {
        for allow in [false, true] {
            let mut check = Command::new(env!("CARGO_BIN_EXE_flareproof"));
            check
                .args(["attestation", "verify"])
                .arg(out.join(envelope))
                .arg("--key")
                .arg(dir.join("pub.pem"));
            if allow {
                check.arg("--allow-failed-result");
            }
            let ran = check.output().unwrap();
            let expected = if allow || report.verdict.as_str() == "pass" {
                0
            } else {
                1
            };
            assert_eq!(
                ran.status.code(),
                Some(expected),
                "{envelope}: {}{}",
                String::from_utf8_lossy(&ran.stdout),
                String::from_utf8_lossy(&ran.stderr)
            );
        }
    }
    let audit = parse_json(&out, "attestation.json");
    let predicate = &audit["predicate"];
    assert_eq!(predicate["verdict"], report.verdict.as_str());
    let attested: Vec<(String, String)> = predicate["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reported: Vec<(String, String)> = report
        .checks
        .iter()
        .map(|c| (c.id.to_string(), c.status.to_string()))
        .collect();
    assert_eq!(attested, reported);
    let live = &predicate["verify"]["live"];
    assert_eq!(
        live["deployment"]["read"]["versions"][0]["version_id"],
        VERSION
    );
    assert_eq!(
        live["deployment"]["read"]["versions"][0]["modules"]["read"]["modules"][0]["sha256"],
        digest().as_str()
    );
    let vsa = parse_json(&out, "attestation.vsa.json");
    let expected = if report.verdict.as_str() == "pass" {
        "PASSED"
    } else {
        "FAILED"
    };
    assert_eq!(vsa["predicate"]["verificationResult"], expected);
    drop(standin);
}
