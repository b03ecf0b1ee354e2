//! The target config from text to a resolved target: schema, validation,
//! secrets and verify loading.

use super::*;

const EXAMPLE: &str = r#"
[target]
base_url = "https://auth.acme.test"
vantages = ["https://auth.acme.test", "https://edge2.acme.test"]
origin = "https://app.acme.test"
[profile]
suite = "flarelink-auth/v1"
window_s = 60
revocation_bound_s = 60
max_session_age_s = 604800
limits = { anonymous = 10, free = 60, pro = 300, admin = "unlimited" }
[accounts.free]
email = "free@acme.test"
password_env = "FP_FREE"
[data]
service_key_env = "FP_KEY"
[budget]
max_requests = 5000
max_rps = 50
"#;

fn env(var: &str) -> Option<String> {
    match var {
        "FP_FREE" => Some("pw-free".into()),
        "FP_KEY" => Some("sk-123".into()),
        _ => None,
    }
}

#[test]
fn example_config_resolves() {
    let target = TargetConfig::parse("t.toml", EXAMPLE)
        .unwrap()
        .resolve("t.toml", env)
        .unwrap();
    assert_eq!(target.vantages.len(), 2, "base_url is not repeated");
    assert_eq!(target.profile.limits.admin.count(), None);
    assert_eq!(target.profile.limits.pro.count(), Some(300));
    assert_eq!(target.account("free").unwrap().password.expose(), "pw-free");
    assert_eq!(target.service_key.unwrap().expose(), "sk-123");
    assert_eq!(target.paths.sign_in, "/api/auth/sign-in/email");
    // What a run may hold of answers: derived from the body cap, or set.
    assert_eq!(target.budget.kept_bytes(), 64 * 1024 * 1024);
    let set = EXAMPLE.replace("max_rps = 50", "max_rps = 50\nmax_kept_bytes = 33554432");
    let target = TargetConfig::parse("t.toml", &set)
        .unwrap()
        .resolve("t.toml", env)
        .unwrap();
    assert_eq!(target.budget.kept_bytes(), 32 * 1024 * 1024);
}

#[test]
fn a_missing_secret_names_the_variable_not_a_value() {
    let err = TargetConfig::parse("t.toml", EXAMPLE)
        .unwrap()
        .resolve("t.toml", |_| None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("FP_FREE") && msg.contains("accounts.free.password_env"),
        "{msg}"
    );
}

const VERIFY: &str = r#"
[verify]
source = "worker"
recipe = ["node", "build.mjs", "--outdir", "{out}"]
link = ["node_modules"]
script = "auth-worker"
compatibility_date = "2025-09-01"
compatibility_flags = ["nodejs_compat"]
bindings = [{ name = "DB", type = "d1" }, { name = "SESSIONS", type = "kv_namespace", target = "ns-1" }]
"#;

#[test]
fn a_verify_section_resolves_next_to_the_config_without_secrets() {
    let text = format!("{EXAMPLE}{VERIFY}");
    let target = TargetConfig::parse("conf/t.toml", &text)
        .unwrap()
        .resolve("conf/t.toml", env)
        .unwrap();
    let verify = target.verify.unwrap();
    assert!(verify.recipe.source.is_absolute());
    assert!(verify.recipe.source.ends_with("conf/worker"));
    assert_eq!(verify.declared.bindings[1].target.as_deref(), Some("ns-1"));
    assert_eq!(verify.api_token_env, "CLOUDFLARE_API_TOKEN");
    assert!(verify.bisect);
    let err = verify.credentials("conf/t.toml", |_| None).unwrap_err();
    assert!(err.to_string().contains("CLOUDFLARE_ACCOUNT_ID"), "{err}");
    let creds = verify
        .credentials("conf/t.toml", |v| Some(format!("{v}-value")))
        .unwrap();
    assert_eq!(creds.token.expose(), "CLOUDFLARE_API_TOKEN-value");
    assert!(!format!("{creds:?}").contains("CLOUDFLARE_API_TOKEN-value"));
}

#[test]
fn verify_only_configs_load_and_bad_sections_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.toml");
    fs_err::write(&path, VERIFY).unwrap();
    let (profile, verify) = load_verify(&path).unwrap();
    assert_eq!(profile.suite, "flarelink-auth/v1");
    assert_eq!(verify.script, "auth-worker");
    fs_err::write(&path, format!("{VERIFY}surprise = 1\n")).unwrap();
    let chain = crate::error_chain(&load_verify(&path).unwrap_err());
    assert!(chain.contains("surprise"), "{chain}");
    fs_err::write(&path, VERIFY.replace("auth-worker", "auth/worker")).unwrap();
    let chain = crate::error_chain(&load_verify(&path).unwrap_err());
    assert!(chain.contains("verify.script"), "{chain}");
    fs_err::write(&path, EXAMPLE).unwrap();
    let chain = crate::error_chain(&load_verify(&path).unwrap_err());
    assert!(chain.contains("no `[verify]`"), "{chain}");
}

#[test]
fn malformed_configs_are_errors_that_say_what_is_wrong() {
    let cases = [
        ("[target]\norigin='x'\n", "base_url"),
        ("[target]\nbase_url='ftp://x'\norigin='o'\n", "http(s)"),
        (
            "[target]\nbase_url='https://x'\norigin='o'\n[budget]\nmax_rps=0\n",
            "max_rps",
        ),
        (
            "[target]\nbase_url='https://x'\norigin='o'\n[budget]\nmax_body_bytes=100\nmax_kept_bytes=99\n",
            "max_kept_bytes",
        ),
        (
            "[target]\nbase_url='https://x'\norigin='o'\n[accounts.root]\nemail='e'\npassword_env='P'\n",
            "unknown account",
        ),
        (
            "[target]\nbase_url='https://x'\norigin='o'\nsurprise=1\n",
            "surprise",
        ),
        (
            "[target]\nbase_url='https://x'\norigin='o'\n[profile]\nlimits={anonymous=1,free=1,pro=1,admin='lots'}\n",
            "admin",
        ),
    ];
    for (text, needle) in cases {
        let err = TargetConfig::parse("t.toml", text).unwrap_err();
        let chain = crate::error_chain(&err);
        assert!(chain.contains(needle), "{needle:?} not in {chain:?}");
    }
}
