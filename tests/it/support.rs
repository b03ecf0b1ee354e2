//! Shared test support: starting the reference Worker and building targets.
//! Tests take the test bench from here, never from `flareproof::testbench`
//! directly.

use std::sync::{Arc, Condvar, Mutex};

use flareproof::checks::Ctx;
use flareproof::conform::{Conform, Selection};
use flareproof::model::{Report, Status};
use flareproof::plan::Plan;
use flareproof::probe::{Probe, Redactor};
use flareproof::target::Target;
use flareproof::testbench::Events;

pub use flareproof::testbench::demo::{
    REFERENCE_ACCOUNT, options as demo_options, reference_scenario, reference_verify_target,
};
pub use flareproof::testbench::fixture::{
    Fixture, FixtureInfo, FixtureOptions, ensure_installed, fixtures_dir,
};

/// The reference Worker's verify target, for tests that judge checks on
/// their own (its API base is never used: they read a wiremock stand-in).
pub fn reference_target() -> flareproof::target::VerifyTarget {
    reference_verify_target(&fixtures_dir(), url::Url::parse("http://x.test/").unwrap())
}

/// Reference Workers alive at once across the whole test binary: each is a
/// workerd plus scrypt sign-ins, and the machine has 2 cores.
const MAX_LIVE_FIXTURES: usize = 2;

static LIVE: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A started reference Worker holding one of the live-fixture slots.
pub struct Running {
    fixture: Fixture,
}

impl std::ops::Deref for Running {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.fixture
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.fixture.stop();
        let (count, freed) = &LIVE;
        *count.lock().unwrap() -= 1;
        freed.notify_one();
    }
}

pub fn start(options: FixtureOptions) -> Running {
    let (count, freed) = &LIVE;
    let mut live = count.lock().unwrap();
    while *live >= MAX_LIVE_FIXTURES {
        live = freed.wait(live).unwrap();
    }
    *live += 1;
    drop(live);
    match Fixture::start(&options, &events()) {
        Ok(fixture) => Running { fixture },
        Err(e) => {
            *count.lock().unwrap() -= 1;
            freed.notify_one();
            panic!("fixture did not start: {}", flareproof::error_chain(&e))
        }
    }
}

/// The test bench's events on stderr (the test harness captures it); the
/// launcher's lines only with `FLAREPROOF_FIXTURE_LOG` set.
pub fn events() -> Events {
    let chatter = std::env::var_os("FLAREPROOF_FIXTURE_LOG").is_some();
    Events::new(move |event| {
        if chatter || !event.is_chatter() {
            eprintln!("{event}");
        }
    })
}

pub fn faults(list: &[&str]) -> FixtureOptions {
    FixtureOptions {
        faults: list.iter().map(|s| s.to_string()).collect(),
        ..FixtureOptions::default()
    }
}

pub fn target(fixture: &Fixture) -> Target {
    flareproof::testbench::demo::target_for(fixture.info(), 604_800).expect("fixture target")
}

pub fn ctx(fixture: &Fixture) -> Ctx {
    let target = Arc::new(target(fixture));
    let redactor = Arc::new(Redactor::new());
    Ctx::standalone(
        target.clone(),
        Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        Probe::new(target.budget, redactor).unwrap(),
    )
}

pub async fn conform(fixture: &Fixture, only: &[&str]) -> Report {
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let conform = Conform {
        target: Arc::new(target(fixture)),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: Selection::new(&only, &[]).unwrap(),
        progress: Arc::new(flareproof::progress::Silent),
    };
    conform.run().await.expect("conform runs").0
}

/// The ids with a given status.
pub fn ids_with(report: &Report, status: Status) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.to_string())
        .collect()
}

/// The `[target]`, `[data]` and `[accounts.*]` sections for a running
/// reference Worker; secrets are named `{prefix}_SERVICE_KEY` and
/// `{prefix}_<ROLE>_PASSWORD` (see [`conform_env`]).
pub fn conform_config(info: &FixtureInfo, prefix: &str) -> String {
    let mut config = format!(
        "[target]\nbase_url = \"{}\"\norigin = \"{}\"\n[data]\nservice_key_env = \"{prefix}_SERVICE_KEY\"\n",
        info.url, info.origin
    );
    for (role, account) in &info.accounts {
        config.push_str(&format!(
            "[accounts.{role}]\nemail = \"{}\"\npassword_env = \"{prefix}_{}_PASSWORD\"\n",
            account.email,
            role.to_uppercase()
        ));
    }
    config
}

/// `flareproof conform --config DIR/flareproof.toml` against a running
/// reference Worker: the config is [`conform_config`] and `extra` (more
/// sections), its secrets set on the command; the caller adds the rest.
pub fn conform_in(info: &FixtureInfo, dir: &std::path::Path, extra: &str) -> std::process::Command {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("flareproof.toml");
    std::fs::write(&config, conform_config(info, "FP_RUN") + extra).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flareproof"));
    cmd.arg("conform").arg("--config").arg(&config);
    conform_env(&mut cmd, info, "FP_RUN");
    cmd
}

/// The secrets [`conform_config`] names, set on a command.
pub fn conform_env(cmd: &mut std::process::Command, info: &FixtureInfo, prefix: &str) {
    cmd.env(format!("{prefix}_SERVICE_KEY"), info.service_key.expose());
    for (role, account) in &info.accounts {
        cmd.env(
            format!("{prefix}_{}_PASSWORD", role.to_uppercase()),
            account.password.expose(),
        );
    }
}

/// A `[verify]` section for the reference Worker in `fixtures`, read
/// through the API at `api_base` with the token and account in the named
/// variables.
pub fn verify_section(
    fixtures: &std::path::Path,
    recipe: &str,
    api_base: &str,
    token_env: &str,
    account_env: &str,
) -> String {
    format!(
        r#"[verify]
source = "{fixtures}"
recipe = {recipe}
link = ["node_modules", "wrangler-worker"]
non_artifacts = ["README.md"]
script = "flarelink-auth"
compatibility_date = "2025-09-01"
compatibility_flags = ["nodejs_compat"]
bindings = [
  {{ name = "BETTER_AUTH_SECRET", type = "secret_text" }},
  {{ name = "DB", type = "d1", target = "flareproof-auth-db" }},
  {{ name = "SERVICE_KEY", type = "secret_text" }},
  {{ name = "SESSIONS", type = "kv_namespace", target = "flareproof-sessions" }},
  {{ name = "TRUSTED_ORIGIN", type = "plain_text" }},
]
custom_domains = ["127.0.0.1"]
api_base = "{api_base}"
api_token_env = "{token_env}"
account_id_env = "{account_env}"
"#,
        fixtures = fixtures.display(),
    )
}

/// A stand-in target at `server`: `free` is a@example.test and `free2`
/// b@example.test, then `extra` (more TOML: accounts, `[data]`,
/// `[profile]`); every secret the config names resolves to `secret(name)`.
pub fn stand_in_target(
    server: &wiremock::MockServer,
    extra: &str,
    secret: impl Fn(&str) -> String,
) -> Target {
    let config = format!(
        "[target]\nbase_url = \"{}\"\norigin = \"https://app.example.test\"\n\
         [accounts.free]\nemail = \"a@example.test\"\npassword_env = \"PW\"\n\
         [accounts.free2]\nemail = \"b@example.test\"\npassword_env = \"PW\"\n{extra}",
        server.uri()
    );
    flareproof::target::TargetConfig::parse("stand-in.toml", &config)
        .unwrap()
        .resolve("stand-in.toml", |name| Some(secret(name)))
        .unwrap()
}

/// The checks `only`, through the conform runner, against `target`: their
/// results, in the plan's order.
pub async fn run_checks(target: Target, only: &[&str]) -> Vec<flareproof::model::CheckResult> {
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let conform = Conform {
        target: Arc::new(target),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: Selection::new(&only, &[]).unwrap(),
        progress: Arc::new(flareproof::progress::Silent),
    };
    let (report, _) = conform.run().await.unwrap();
    report
        .checks
        .into_iter()
        .filter(|c| only.iter().any(|id| id == c.id.as_str()))
        .collect()
}

/// Mounts a sign-in of `email` as user `id`, setting the session cookie
/// `session_token=tok-<id>`.
pub async fn mount_sign_in(server: &wiremock::MockServer, email: &str, id: &str) {
    use wiremock::matchers::{body_partial_json, method, path};
    wiremock::Mock::given(method("POST"))
        .and(path("/api/auth/sign-in/email"))
        .and(body_partial_json(serde_json::json!({ "email": email })))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header(
                    "set-cookie",
                    format!("session_token=tok-{id}; Path=/; HttpOnly; Secure; SameSite=Lax"),
                )
                .set_body_json(serde_json::json!({ "user": { "id": id } })),
        )
        .mount(server)
        .await;
}

/// Serves raw TCP on 127.0.0.1 from a thread and runtime of its own (so a
/// target that stalls cannot starve the test's runtime), each connection
/// handed to `answer`; the port.
pub fn serve_raw<F, Fut>(answer: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream));
            }
        });
    });
    rx.recv().unwrap()
}
