//! `flareproof init`: answered on a pseudo-terminal as a person would, and
//! non-interactively from flags; the file it writes loads with the parsers
//! every run uses and never holds a secret.

use std::path::Path;
use std::process::Command;

use flareproof::target::{TargetConfig, load_verify};

const WRANGLER: &str = r#"// the tenant's wrangler config
{
  "name": "acme-auth",
  "main": "src/index.js",
  "compatibility_date": "2025-09-01",
  "routes": [{ "pattern": "login.acme.test", "custom_domain": true }],
}
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wrangler.jsonc"), WRANGLER).unwrap();
    dir
}

fn loads(path: &Path) {
    let config = TargetConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.accounts.len(), 4);
    let (_, verify) = load_verify(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verify.script, "acme-auth");
}

#[test]
fn init_on_a_terminal_asks_what_wrangler_does_not_say_and_refuses_a_secret() {
    let dir = project();
    let mut command = Command::new(env!("CARGO_BIN_EXE_flareproof"));
    command.arg("init").current_dir(dir.path());
    let mut p = rexpect::session::spawn_command(command, Some(10_000)).unwrap();
    p.exp_string("read wrangler.jsonc (script `acme-auth`)")
        .unwrap();
    // The base URL's default is the custom domain: accepted with Enter.
    p.exp_string("base URL (where conform sends its requests) [https://login.acme.test/]: ")
        .unwrap();
    p.send_line("").unwrap();
    p.exp_string("trusted Origin").unwrap();
    p.send_line("https://app.acme.test/login").unwrap();
    p.exp_string("no path").unwrap();
    p.send_line("https://app.acme.test").unwrap();
    for role in ["free", "free2", "pro", "admin"] {
        p.exp_string(&format!("`{role}` test account: ")).unwrap();
        p.send_line(&format!("{role}@acme.test")).unwrap();
        p.exp_string(&format!("[FLAREPROOF_{}_PASSWORD]: ", role.to_uppercase()))
            .unwrap();
        if role == "free" {
            // A password typed where a variable's name is asked: refused,
            // and not echoed back.
            p.send_line("hunter2!").unwrap();
            let said = p.exp_string("again").unwrap();
            assert!(said.contains("never the secret"), "{said}");
            p.exp_string("]: ").unwrap();
            p.send_line("ACME_FREE_PASSWORD").unwrap();
        } else {
            p.send_line("").unwrap();
        }
    }
    p.exp_string("service key [FLAREPROOF_SERVICE_KEY]: ")
        .unwrap();
    p.send_line("").unwrap();
    p.exp_string("window, in seconds [60]: ").unwrap();
    p.send_line("30").unwrap();
    for _ in 0..4 {
        p.exp_string("]: ").unwrap();
        p.send_line("").unwrap();
    }
    p.exp_string("wrote flareproof.toml").unwrap();
    p.exp_eof().unwrap();
    let status = p.process().wait().unwrap();
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    let path = dir.path().join("flareproof.toml");
    loads(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    let config = TargetConfig::load(&path).unwrap();
    assert_eq!(config.accounts["free"].password_env, "ACME_FREE_PASSWORD");
    assert_eq!(
        config.accounts["pro"].password_env,
        "FLAREPROOF_PRO_PASSWORD"
    );
    assert_eq!(config.profile.window_s, 30);
    assert!(
        text.contains("base_url = \"https://login.acme.test/\""),
        "{text}"
    );
    assert!(
        text.contains("origin = \"https://app.acme.test\""),
        "{text}"
    );
    // It never overwrites without --force.
    let again = Command::new(env!("CARGO_BIN_EXE_flareproof"))
        .args(["init", "--non-interactive"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn init_without_a_terminal_names_every_missing_value_then_writes_from_flags() {
    let dir = project();
    let init = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_flareproof"))
            .arg("init")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = init(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for flag in [
        "--origin",
        "--free-email",
        "--free2-email",
        "--pro-email",
        "--admin-email",
    ] {
        assert!(stderr.contains(&format!("`{flag}`")), "{flag}: {stderr}");
    }
    // The base URL has the wrangler config's custom domain as its default.
    assert!(!stderr.contains("`--base-url`"), "{stderr}");
    assert!(!dir.path().join("flareproof.toml").exists());
    // A secret where a name is asked is refused naming the flag.
    let mut flags = vec![
        "--origin",
        "https://app.acme.test",
        "--free-email",
        "f@acme.test",
        "--free2-email",
        "f2@acme.test",
        "--pro-email",
        "p@acme.test",
        "--admin-email",
        "a@acme.test",
    ];
    let mut bad = flags.clone();
    bad.extend(["--service-key-env", "s3cr3t-value"]);
    let out = init(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`--service-key-env`"), "{stderr}");
    assert!(!dir.path().join("flareproof.toml").exists());
    flags.extend(["--limit-free", "120"]);
    let out = init(&flags);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("flareproof.toml");
    loads(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("free = 120"), "{text}");
    // And the result is a config `conform --dry-run` accepts.
    let out = Command::new(env!("CARGO_BIN_EXE_flareproof"))
        .args(["conform", "--dry-run"])
        .current_dir(dir.path())
        .envs(
            [
                "FLAREPROOF_FREE_PASSWORD",
                "FLAREPROOF_FREE2_PASSWORD",
                "FLAREPROOF_PRO_PASSWORD",
                "FLAREPROOF_ADMIN_PASSWORD",
                "FLAREPROOF_SERVICE_KEY",
            ]
            .map(|v| (v, "x")),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("target: https://login.acme.test/"));
}
