//! The binary: `list`, `conform` exit codes and errors, `demo`; what the
//! error printer writes for the common failures (insta snapshots); the
//! library never prints.

use std::path::Path;
use std::process::{Command, Output};

use flareproof::plan::Plan;

use crate::support::{FixtureInfo, FixtureOptions, faults, start};

fn flareproof() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flareproof"))
}

/// The exit code and stderr of a run (and its stdout when `with_stdout`),
/// with `dir` shown as `[tmp]`, ports as `[port]` and times as `[s]`.
fn printed(out: &Output, dir: &Path, with_stdout: bool) -> String {
    let mut text = format!("exit code: {:?}\n", out.status.code());
    if with_stdout {
        text.push_str("--- stdout\n");
        text.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    text.push_str("--- stderr\n");
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let dir = dir.display().to_string();
    text.replace(&dir, "[tmp]")
}

fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.add_filter(r"in \d+\.\d s\b", "in [s] s");
    settings
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A `[target]` on a closed port with every account, the passwords and
/// service key named `FP_SNAPSHOT_*`.
fn closed_target(port: u16) -> String {
    let mut config = format!(
        "[target]\nbase_url = \"http://127.0.0.1:{port}\"\norigin = \"https://app.a.test\"\n\
         [data]\nservice_key_env = \"FP_SNAPSHOT_SERVICE_KEY\"\n"
    );
    for role in ["free", "free2", "pro", "admin"] {
        config.push_str(&format!(
            "[accounts.{role}]\nemail = \"{role}@a.test\"\npassword_env = \"FP_SNAPSHOT_PASSWORD\"\n"
        ));
    }
    config
}

#[test]
fn list_prints_every_check_id_with_its_requirement_ids() {
    let out = flareproof().arg("list").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    assert!(!plan.checks.is_empty());
    for check in &plan.checks {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(check.id.as_str()))
            .unwrap_or_else(|| panic!("{} is not listed", check.id));
        for requirement in &check.requirements {
            assert!(
                line.contains(requirement.as_str()),
                "{line} lacks {requirement}"
            );
        }
    }
}

fn conform_command(info: &FixtureInfo, dir: &std::path::Path) -> Command {
    let mut cmd = crate::support::conform_in(info, dir, "");
    cmd.arg("--out")
        .arg(dir.join("out"))
        .args(["--only", "cookie.*"]);
    cmd
}

#[test]
fn conform_exits_0_on_the_reference_worker_and_1_on_a_fault_naming_the_check() {
    let (healthy, faulty) = std::thread::scope(|s| {
        let a = s.spawn(|| start(FixtureOptions::default()));
        let b = s.spawn(|| start(faults(&["cookie.samesite"])));
        (a.join().unwrap(), b.join().unwrap())
    });
    let dir = tempfile::tempdir().unwrap();

    let ok = conform_command(healthy.info(), &dir.path().join("ok"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = conform_command(faulty.info(), &dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(stdout.contains("FAIL cookie.samesite"), "{stdout}");
    let report = std::fs::read(dir.path().join("bad/out/report.json")).unwrap();
    crate::schema::validate(&report);
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["verdict"], "fail");
    let samesite = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cookie.samesite")
        .unwrap();
    assert_eq!(samesite["status"], "fail");
    assert!(!samesite["evidence"].as_array().unwrap().is_empty());
}

#[test]
fn config_errors_exit_2_and_name_what_is_wrong_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flareproof.toml");
    std::fs::write(
        &config,
        "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://a.test\"\n\
         [accounts.free]\nemail = \"f@a.test\"\npassword_env = \"FP_UNSET_PASSWORD_VAR\"\n",
    )
    .unwrap();
    let out = flareproof()
        .args(["conform", "--config"])
        .arg(&config)
        .env_remove("FP_UNSET_PASSWORD_VAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FP_UNSET_PASSWORD_VAR") && stderr.contains("hint:"),
        "{stderr}"
    );

    // A selection that leaves nothing to check is refused, not a pass.
    std::fs::write(
        &config,
        "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://a.test\"\n",
    )
    .unwrap();
    // `verify.*` names checks of the plan, but none that conform runs.
    for only in ["cookie.no-such-check", "verify.*"] {
        let out = flareproof()
            .args(["conform", "--only", only, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--only {only}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("leave no check to run"), "{stderr}");
    }

    std::fs::write(&config, "[target]\nbase_url = 7\n").unwrap();
    let out = flareproof()
        .args(["conform", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("parse config") && stderr.contains("base_url"),
        "{stderr}"
    );
}

#[test]
fn demo_exits_0_and_writes_a_schema_valid_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = flareproof()
        .arg("demo")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = std::fs::read(dir.path().join("demo/report.json")).unwrap();
    crate::schema::validate(&report);
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["command"], "demo");
    // It signs with a key it generates into its folder (readable by its
    // owner only) and prints the command that checks the signature.
    let demo = dir.path().join("demo");
    let private = demo.join("signing-key.pem");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the private key is readable by others: {mode:o}"
    );
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("flareproof attestation verify "))
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| panic!("no attestation verify command printed:\n{stderr}"));
    let (envelope, key) = line.split_once(" --key ").expect("FILE --key PUBLIC");
    let public = std::fs::read_to_string(key.trim()).unwrap();
    let public =
        flareproof::attestation::dsse::VerifyingKey::from_public_key_pem(&public, "demo").unwrap();
    let envelope = std::fs::read(envelope.trim()).unwrap();
    let envelope = flareproof::attestation::dsse::Envelope::parse(&envelope).unwrap();
    let payload = envelope
        .verify(&public)
        .expect("the demo's envelope checks");
    assert_eq!(
        payload,
        std::fs::read(demo.join("attestation.json")).unwrap()
    );
    // The command it printed checks it too.
    let args: Vec<&str> = line.split_whitespace().collect();
    let checked = flareproof()
        .args(["attestation", "verify"])
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    // The same run compares the reference Worker with a "vendor Worker"
    // (the reference Worker with one fault): the summary names the fault's
    // check as the one new failure, and the demo still exits 0.
    let fault = flareproof::testbench::demo::VENDOR_FAULT;
    let summary = stderr
        .lines()
        .find_map(|l| l.split_once("against the reference Worker (BASE): "))
        .map(|(head, summary)| {
            assert!(head.contains(&format!("fault `{fault}`")), "{head}");
            summary.to_owned()
        })
        .unwrap_or_else(|| panic!("no vendor-vs-reference summary printed:\n{stderr}"));
    assert!(
        summary.starts_with(&format!("regression: 1 new failure ({fault});")),
        "{summary}"
    );
    let vs = demo.join("vs-reference");
    let md = std::fs::read_to_string(vs.join("diff.md")).unwrap();
    assert!(md.contains("## New failures (1)"), "{md}");
    let first_row = md
        .lines()
        .find(|l| l.starts_with("| `"))
        .unwrap_or_else(|| panic!("no check row in diff.md:\n{md}"));
    assert!(
        first_row.starts_with(&format!("| `{fault}` ")) && first_row.contains("❌ fail"),
        "the fault's check is listed first, as a failure: {first_row}"
    );
    assert!(vs.join("diff.html").exists());
    // Both sides are conform reports of the suite, so the diff is fair:
    // no verify check (the clean run has them, the vendor run does not).
    for (file, verdict) in [("reference.json", "pass"), ("report.json", "fail")] {
        let bytes = std::fs::read(vs.join(file)).unwrap();
        crate::schema::validate(&bytes);
        let report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(report["command"], "conform", "{file}");
        assert_eq!(report["verdict"], verdict, "{file}");
        let ids: Vec<&str> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&fault), "{file}: {ids:?}");
        assert!(
            !ids.iter().any(|id| id.starts_with("verify.")),
            "{file}: {ids:?}"
        );
    }
    // The command it printed reproduces the comparison: a regression, 1.
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("flareproof diff "))
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| panic!("no flareproof diff command printed:\n{stderr}"));
    let args: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        args.iter().map(std::path::Path::new).collect::<Vec<_>>(),
        [vs.join("reference.json"), vs.join("report.json")]
    );
    let again = flareproof().arg("diff").args(&args).output().unwrap();
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{again_err}");
    assert!(again_err.contains(&summary), "{again_err}");
}

#[test]
fn printed_errors_for_a_missing_config_a_bad_key_and_a_missing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let conform = |config: &Path| {
        flareproof()
            .arg("conform")
            .arg("--config")
            .arg(config)
            .arg("--out")
            .arg(dir.path().join("out"))
            .env_remove("FP_SNAPSHOT_PASSWORD")
            .env("FP_SNAPSHOT_SERVICE_KEY", "k")
            .output()
            .unwrap()
    };
    let missing = conform(&dir.path().join("missing.toml"));
    let bad_key = dir.path().join("bad-key.toml");
    std::fs::write(
        &bad_key,
        "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://app.a.test\"\n\
         base_uri = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    let bad_key = conform(&bad_key);
    let no_secret = dir.path().join("no-secret.toml");
    std::fs::write(&no_secret, closed_target(9)).unwrap();
    let no_secret = conform(&no_secret);
    redacted().bind(|| {
        insta::assert_snapshot!("missing_config", printed(&missing, dir.path(), false));
        insta::assert_snapshot!("bad_config_key", printed(&bad_key, dir.path(), false));
        insta::assert_snapshot!("missing_secret", printed(&no_secret, dir.path(), false));
    });
    assert!(
        !dir.path().join("out").exists(),
        "no report when nothing ran"
    );
}

#[test]
fn printed_outcome_for_an_unreachable_target() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flareproof.toml");
    std::fs::write(&config, closed_target(closed_port())).unwrap();
    let out = flareproof()
        .args(["conform", "--only", "cookie.secure", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("FP_SNAPSHOT_PASSWORD", "a password")
        .env("FP_SNAPSHOT_SERVICE_KEY", "a service key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    redacted().bind(|| {
        insta::assert_snapshot!("unreachable_target", printed(&out, dir.path(), true));
    });
}

#[test]
fn printed_error_for_a_refused_api_token() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                flareproof::cloudflare::error_body(10000, "Authentication error"),
            ))
            .mount(&server)
            .await;
        server
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/worker.js"), "export default {};\n").unwrap();
    let config = dir.path().join("flareproof.toml");
    std::fs::write(
        &config,
        format!(
            r#"[verify]
source = "src"
recipe = ["sh", "-c", "cp worker.js \"$1/\"", "sh", "{{out}}"]
bisect = false
script = "flarelink-auth"
api_base = "{}/client/v4"
api_token_env = "FP_SNAPSHOT_CF_TOKEN"
account_id_env = "FP_SNAPSHOT_CF_ACCOUNT"
"#,
            server.uri()
        ),
    )
    .unwrap();
    let out = flareproof()
        .args(["verify", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("FP_SNAPSHOT_CF_TOKEN", "cf-refused-token-Hn4Qx")
        .env("FP_SNAPSHOT_CF_ACCOUNT", "f1a2e3b4c5d6e7f8a9b0c1d2e3f4a5b6")
        .output()
        .unwrap();
    let text = printed(&out, dir.path(), false);
    assert!(!text.contains("cf-refused-token"), "{text}");
    redacted().bind(|| {
        insta::assert_snapshot!("refused_api_token", text);
    });
}

#[test]
fn list_prints_the_suite_a_config_or_a_suite_file_names() {
    let default = flareproof().arg("list").output().unwrap();
    assert!(default.status.success());

    let dir = tempfile::tempdir().unwrap();
    let builtin = dir.path().join("builtin.toml");
    std::fs::write(
        &builtin,
        "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://a.test\"\n\
         [profile]\nsuite = \"flarelink-auth/v1\"\n",
    )
    .unwrap();
    let listed = flareproof()
        .args(["list", "--config"])
        .arg(&builtin)
        .output()
        .unwrap();
    assert_eq!(
        listed.stdout, default.stdout,
        "the config names the default"
    );

    // No secret is read to list a config's suite.
    let with_accounts = dir.path().join("with-accounts.toml");
    std::fs::write(
        &with_accounts,
        format!("{}[profile]\nsuite = \"acme-auth/v9\"\n", closed_target(9)),
    )
    .unwrap();
    let unknown = flareproof()
        .args(["list", "--config"])
        .arg(&with_accounts)
        .env_remove("FP_SNAPSHOT_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.starts_with("error: no built-in plan for profile `acme-auth/v9`")
            && stderr.contains("hint:"),
        "{stderr}"
    );

    let suite = dir.path().join("suite.toml");
    std::fs::write(
        &suite,
        r#"id = "acme-auth/v1"
title = "Two checks"
contract = "ACME.md"
[params]
revocation_trials = 1
poll_interval_ms = 100
observe_after_refusal_ms = 1000
ratelimit_tolerance = 0
admin_factor = 2
[[check]]
id = "cookie.secure"
area = "cookie"
title = "Secure"
severity = "high"
level = "must"
requirements = ["acme:cookie"]
help = "Set Secure."
[[check]]
id = "session.revoked-on-sign-out"
area = "session"
title = "Revoked"
severity = "high"
level = "must"
requirements = ["acme:revocation", "acme:sign-out"]
help = "Revoke."
"#,
    )
    .unwrap();
    let custom = flareproof()
        .args(["list", "--suite"])
        .arg(&suite)
        .output()
        .unwrap();
    assert!(custom.status.success());
    assert_eq!(
        String::from_utf8(custom.stdout).unwrap(),
        "cookie.secure                acme:cookie\n\
         session.revoked-on-sign-out  acme:revocation, acme:sign-out\n"
    );
    let builtin_file = flareproof()
        .args(["list", "--suite", "suites/flarelink-auth-v1.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(builtin_file.stdout, default.stdout);
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_library_never_prints_and_knows_nothing_of_the_command_line() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let library: Vec<_> = files
        .iter()
        .filter(|p| !p.starts_with(src.join("bin")))
        .collect();
    assert!(library.len() > 10, "{library:?}");
    for path in library {
        let text = std::fs::read_to_string(path).unwrap();
        for word in [
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "dbg!(",
            "clap",
            "indicatif",
        ] {
            assert!(
                !text.contains(word),
                "{} contains `{word}`: the library returns data or emits events; \
                 printing and the command line are the binary's (src/bin/)",
                path.display()
            );
        }
    }
    // Nothing of the verification library uses its test bench.
    for path in files.iter().filter(|p| {
        !p.starts_with(src.join("bin"))
            && !p.starts_with(src.join("testbench"))
            && **p != src.join("lib.rs")
    }) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains("testbench"),
            "{} uses the test bench",
            path.display()
        );
    }
}

/// Every exit code is decided by `Exit` (src/bin/flareproof/exit.rs): no
/// other file of the binary makes a process status, and the library
/// answers with verdicts, never exit codes. A command line that does not
/// parse exits 2, `--help` and `--version` 0.
#[test]
fn every_exit_code_is_decided_in_one_place() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let exit = src.join("bin/flareproof/exit.rs");
    for path in files.iter().filter(|p| **p != exit) {
        let text = std::fs::read_to_string(path).unwrap();
        let binary = path.starts_with(src.join("bin"));
        for word in ["exit_code", "ExitCode::from", "process::exit", "-> u8"] {
            assert!(
                !text.contains(word) || (word == "-> u8" && !binary),
                "{} contains `{word}`: exit codes are `Exit`'s, in {}",
                path.display(),
                exit.display()
            );
        }
    }
    for (args, code) in [
        (&["frobnicate"][..], 2),
        (&["conform"][..], 2),
        (&["--help"][..], 0),
        (&["attestation", "verify", "--help"][..], 0),
        (&["--version"][..], 0),
    ] {
        let out = flareproof().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

/// `conform --dry-run` prints the checks, the budget and the expected
/// duration, and sends nothing: a listener standing in for the target
/// accepts no connection, where the same run without `--dry-run` (the
/// control) connects to it at once.
#[test]
fn conform_dry_run_prints_the_plan_and_sends_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                accepted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flareproof.toml");
    std::fs::write(
        &config,
        format!(
            "{}[budget]\nmax_requests = 900\nmax_rps = 30\n",
            closed_target(port)
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        flareproof()
            .args(["conform", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(dir.path().join("out"))
            .args(extra)
            .env("FP_SNAPSHOT_PASSWORD", "a password")
            .env("FP_SNAPSHOT_SERVICE_KEY", "a service key")
            .output()
            .unwrap()
    };
    let out = run(&["--dry-run", "--skip", "session.*"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    for check in plan.checks.iter().filter(|c| c.area != "verify") {
        let listed = stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(check.id.as_str()));
        assert_eq!(listed, check.area != "session", "{}: {stdout}", check.id);
    }
    assert!(
        stdout.contains("at most 900 requests, at most 30 per second"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("target: http://127.0.0.1:{port}/")),
        "{stdout}"
    );
    assert!(stdout.contains("expected duration: about"), "{stdout}");
    assert!(!stdout.contains("a password"), "{stdout}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "the dry run connected");
    assert!(
        !dir.path().join("out").exists(),
        "the dry run wrote a report"
    );
    // The control: the same config, run for real, reaches the listener.
    let _ = run(&["--only", "cookie.secure"]);
    assert!(
        accepted.load(Ordering::SeqCst) > 0,
        "the listener saw no connection"
    );
}
