//! The wrangler-built reference Worker (`fixtures/wrangler-worker`): its
//! declaration read from `wrangler.jsonc` (env `production`) against what a
//! stand-in serves, written here by hand; `verify` with `recipe =
//! "wrangler"` passing a faithful deployment, failing a byte flip and a
//! nondeterministic build (bisected to the build path).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use flareproof::checks::verify as checks;
use flareproof::cloudflare::standin::StandIn;
use flareproof::cloudflare::{Client, Credentials, RetryPolicy, Scenario, fetch_live};
use flareproof::compare::{Bundle, DeployedBinding, Module, compare_settings};
use flareproof::model::{Report, Secret, Status};
use flareproof::rebuild::{Recipe, Variation, run_recipe};
use flareproof::target::load_verify;

use crate::support::{REFERENCE_ACCOUNT, ensure_installed, fixtures_dir};

const TOKEN: &str = "cf-test-token-Wr4ngl3rRefQ8pLs2Vx";
const TOKEN_ENV: &str = "FP_TEST_WRANGLER_TOKEN";
const ACCOUNT_ENV: &str = "FP_TEST_WRANGLER_ACCOUNT";

/// What `env.production` of `fixtures/wrangler-worker/wrangler.jsonc` must
/// deploy as, written out by hand (not read with flareproof's parser).
const SCRIPT: &str = "wrangler-ref-prod";
const COMPATIBILITY_DATE: &str = "2025-09-01";
const MAIN_MODULE: &str = "index.js";
const BANNER_MODULE: &str = "ef6d15dbc0280df7507a4eae08757236a8a86cd2-banner.txt";

fn expected_bindings() -> Vec<DeployedBinding> {
    let b = |name: &str, kind: &str, target: Option<&str>| DeployedBinding {
        name: name.into(),
        kind: kind.into(),
        target: target.map(str::to_owned),
        value: None,
    };
    let v = |name: &str, kind: &str, value: serde_json::Value| DeployedBinding {
        value: Some(value),
        ..b(name, kind, None)
    };
    vec![
        b("AUDIT", "service", Some("audit-log")),
        b("DB", "d1", Some("4e1c28a9-5b3d-4f6e-9a7b-8c9d0e1f2a3b")),
        v("GREETING", "plain_text", serde_json::json!("hello")),
        v("RETRIES", "json", serde_json::json!(3)),
        b(
            "SESSIONS",
            "kv_namespace",
            Some("5c1e0d7e2b3a4f6a9b8c7d6e5f4a3b2c"),
        ),
        v("STAGE", "plain_text", serde_json::json!("production")),
    ]
}

fn fixture() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fixtures_dir().join("wrangler-worker");
        ensure_installed(&dir, &|e| eprintln!("{e}")).expect("wrangler fixture installs");
        dir
    })
    .clone()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What "was deployed": one wrangler build, run with a command written
/// here (not the preset) and collected with the non-artifacts named here.
fn deployed_bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let recipe = Recipe {
            source: fixture(),
            command: [
                "npx",
                "--no-install",
                "wrangler",
                "deploy",
                "--dry-run",
                "--env",
                "production",
                "--outdir",
                "{out}",
            ]
            .map(str::to_owned)
            .to_vec(),
            env: [("WRANGLER_SEND_METRICS", "false")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            non_artifacts: vec!["README.md".into(), "index.js.map".into()],
            link: vec!["node_modules".into()],
            main_module: Some(MAIN_MODULE.into()),
            hard_link: true,
        };
        let tmp = tempfile::tempdir().unwrap();
        std::thread::spawn(move || {
            runtime()
                .block_on(run_recipe(&recipe, &Variation::baseline(), tmp.path()))
                .expect("the wrangler fixture builds")
                .bundle
        })
        .join()
        .unwrap()
    })
}

fn faithful() -> Scenario {
    let mut s = Scenario::single(
        REFERENCE_ACCOUNT,
        SCRIPT,
        Secret::new(TOKEN),
        deployed_bundle().clone(),
        COMPATIBILITY_DATE,
        &["nodejs_compat".to_owned()],
        expected_bindings(),
    );
    // Its ingress: the env's custom domain, no workers.dev, no previews.
    s.custom_domains = vec!["auth.example.com".to_owned()];
    // It bundles no npm package (wrangler is a dev dependency).
    for v in &mut s.versions {
        v.package_dependencies = Some(Vec::new());
    }
    s
}

fn write_config(dir: &Path, api_base: &str, extra: &str) -> PathBuf {
    let text = format!(
        "# written by tests/it/wrangler.rs\n[verify]\nsource = \"{}\"\nrecipe = \"wrangler\"\n\
         wrangler = \"wrangler.jsonc\"\nwrangler_env = \"production\"\napi_base = \"{api_base}\"\n\
         api_token_env = \"{TOKEN_ENV}\"\naccount_id_env = \"{ACCOUNT_ENV}\"\n{extra}\n",
        fixture().display()
    );
    fs_err::create_dir_all(dir).unwrap();
    let path = dir.join("flareproof.toml");
    fs_err::write(&path, text).unwrap();
    path
}

fn verify_cli(dir: &Path, api_base: &str, extra: &str) -> (Output, Report, String) {
    let config = write_config(dir, api_base, extra);
    let out = dir.join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_flareproof"))
        .args(["verify", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .env(TOKEN_ENV, TOKEN)
        .env(ACCOUNT_ENV, REFERENCE_ACCOUNT)
        .output()
        .unwrap();
    let text = fs_err::read_to_string(out.join("report.json")).unwrap_or_else(|_| {
        panic!(
            "no report.json; stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    for shown in [&text, &String::from_utf8_lossy(&output.stdout).into_owned()] {
        assert!(!shown.contains(TOKEN), "the API token leaked");
    }
    (output, serde_json::from_str(&text).unwrap(), text)
}

fn ids(report: &Report, status: Status) -> Vec<&str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.as_str())
        .collect()
}

fn summary<'a>(report: &'a Report, id: &str) -> &'a str {
    &report
        .checks
        .iter()
        .find(|c| c.id.as_str() == id)
        .unwrap()
        .summary
}

#[test]
fn the_declaration_read_from_wrangler_jsonc_equals_what_the_stand_in_serves() {
    let rt = runtime();
    let scenario = faithful();
    let standin = rt.block_on(StandIn::start(scenario.clone())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), standin.api_base().as_str(), "");
    let (_, target) = load_verify(&config).unwrap();

    assert_eq!(
        target.script, scenario.script,
        "name + env.production's own name"
    );
    let client = Client::new(
        &standin.api_base(),
        Credentials {
            account_id: REFERENCE_ACCOUNT.into(),
            token: Secret::new(TOKEN),
        },
        RetryPolicy::default(),
    )
    .unwrap();
    let live = rt.block_on(fetch_live(&client, &target.script)).unwrap();
    let deployed = live.versions[0].settings.as_ref().unwrap();
    let comparison = compare_settings(&target.declared, deployed);
    assert!(comparison.matches(), "{:?}", comparison.differences);
    // And not vacuously: every served binding is declared, by hand-written
    // name, type and target.
    let declared: Vec<DeployedBinding> = target
        .declared
        .bindings
        .iter()
        .map(|b| DeployedBinding {
            name: b.name.clone(),
            kind: b.kind.clone(),
            target: b.target.clone(),
            value: b.value.clone(),
        })
        .collect();
    assert_eq!(declared, expected_bindings());
    assert_eq!(
        target.declared.compatibility_date.as_deref(),
        Some(COMPATIBILITY_DATE)
    );
    let values: Vec<_> = target
        .declared
        .bindings
        .iter()
        .map(|b| (b.name.as_str(), b.value.clone()))
        .collect();
    assert_eq!(
        values,
        [
            ("AUDIT", None),
            ("DB", None),
            ("GREETING", Some(serde_json::json!("hello"))),
            ("RETRIES", Some(serde_json::json!(3))),
            ("SESSIONS", None),
            ("STAGE", Some(serde_json::json!("production"))),
        ]
    );
    // Observers as served: none.
    let observers = live.observers.as_ref().unwrap();
    assert_eq!(target.observers.tail_consumers, observers.tail_consumers);
    assert_eq!(target.observers.logpush, observers.logpush);
    assert_eq!(
        target.observers.log_destinations,
        observers.log_destinations
    );
    assert!(!target.observers.observability);
    // Ingress: the custom domain, and no workers.dev (set) nor previews
    // (wrangler's default once there is a route).
    assert_eq!(target.ingress.custom_domains, ["auth.example.com"]);
    assert!(target.ingress.routes.is_empty());
    assert!(!target.ingress.workers_dev && !target.ingress.preview_urls);
    // The preset: wrangler for that environment, offline.
    let command = target.recipe.command.join(" ");
    assert!(command.starts_with("npx --no-install wrangler deploy --dry-run --outdir {out}"));
    assert!(command.ends_with("--env production"), "{command}");
    assert_eq!(target.recipe.env["WRANGLER_SEND_METRICS"], "false");
    assert_eq!(target.recipe.main_module.as_deref(), Some(MAIN_MODULE));
    assert!(
        target.recipe.hard_link,
        "wrangler's esbuild follows symlinks"
    );
}

#[test]
fn verify_passes_the_faithful_wrangler_worker_and_fails_a_byte_flip_or_another_text_module_on_modules_match()
 {
    let rt = runtime();
    let bundle = deployed_bundle();
    assert!(
        bundle.module(BANNER_MODULE).is_some(),
        "the additional module"
    );
    let mut flipped = faithful();
    let m = flipped.versions[0].bundle.module_mut(MAIN_MODULE).unwrap();
    let at = m.bytes.len() / 2;
    m.bytes[at] ^= 0x01;
    // A deployment whose text module was changed: wrangler names it by its
    // content's SHA-1, so the API lists another name.
    let mut banner = faithful();
    let b = &mut banner.versions[0].bundle;
    b.remove(BANNER_MODULE).unwrap();
    b.insert(Module::new(
        "0d6a3c1f4e8b2a7d9c5e1f3a6b8d0c2e4f6a8b1d-banner.txt",
        Some("text/plain"),
        b"a different banner\n".to_vec(),
    ));
    let cases = [
        ("faithful", faithful()),
        ("byte flip", flipped),
        ("other banner", banner),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let standins: Vec<StandIn> = cases
        .iter()
        .map(|(_, s)| rt.block_on(StandIn::start(s.clone())).unwrap())
        .collect();
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .zip(&standins)
            .map(|((name, _), standin)| {
                let dir = tmp.path().join(name.replace(' ', "-"));
                let base = standin.api_base().to_string();
                scope.spawn(move || verify_cli(&dir, &base, ""))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (output, report, _) = &runs[0];
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "faithful: {stderr}");
    assert_eq!(ids(report, Status::Fail), Vec::<&str>::new());
    for id in [
        checks::MODULES_MATCH,
        checks::REBUILD_DETERMINISTIC,
        checks::SETTINGS_MATCH,
        checks::NO_UNDECLARED_OBSERVERS,
        checks::LIVE_VERSIONS,
    ] {
        assert!(
            ids(report, Status::Pass).contains(&id),
            "{id}: {}",
            summary(report, id)
        );
    }
    let (output, report, _) = &runs[1];
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(ids(report, Status::Fail), vec![checks::MODULES_MATCH]);
    let s = summary(report, checks::MODULES_MATCH);
    assert!(
        s.contains(&format!("`{MAIN_MODULE}` differs from byte {at}")),
        "{s}"
    );
    let (output, report, _) = &runs[2];
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(ids(report, Status::Fail), vec![checks::MODULES_MATCH]);
    let s = summary(report, checks::MODULES_MATCH);
    assert!(
        s.contains(BANNER_MODULE)
            && s.contains("0d6a3c1f4e8b2a7d9c5e1f3a6b8d0c2e4f6a8b1d-banner.txt"),
        "both names: {s}"
    );
}

#[test]
fn a_nondeterministic_wrangler_build_fails_rebuild_deterministic_bisected_to_the_build_path() {
    let rt = runtime();
    let standin = rt.block_on(StandIn::start(faithful())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (output, report, _) = verify_cli(
        tmp.path(),
        standin.api_base().as_str(),
        "env = { WRANGLER_REF_STAMP = \"path\" }",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        ids(&report, Status::Fail).contains(&checks::REBUILD_DETERMINISTIC),
        "{:?}",
        ids(&report, Status::Fail)
    );
    let s = summary(&report, checks::REBUILD_DETERMINISTIC);
    assert!(
        s.contains(&format!("`{MAIN_MODULE}` differs between the two builds")),
        "{s}"
    );
    assert!(s.contains("exposed by varying build path alone"), "{s}");
}
