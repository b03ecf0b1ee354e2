//! `demo`: the whole job against the reference Worker on this machine, with
//! short windows so it takes seconds; and the reference Worker's targets
//! (conform and verify), which the tests and benchmarks share.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::Events;
use super::fixture::{Fixture, FixtureError, FixtureInfo, FixtureOptions};

use crate::attestation::Statement;
use crate::cloudflare::standin::StandIn;
use crate::cloudflare::{ApiError, Credentials, PackageDependency, RetryPolicy, Scenario};
use crate::compare::{Bundle, DeclaredBinding, DeclaredSettings, DeployedBinding, Lockfile};
use crate::conform::{Conform, ConformError, Selection};
use crate::diff::{Change, Diff};
use crate::model::{Report, Secret};
use crate::plan::{Plan, PlanError};
use crate::probe::{Probe, Redactor};
use crate::rebuild::{RebuildError, Recipe, Variation, run_recipe};
use crate::target::{
    Account, Budget, DeclaredIngress, DeclaredObservers, Limit, Limits, Paths, ProfileSection,
    Target, Unlimited, VerifyTarget,
};
use crate::verify::{Verify, VerifyRun};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Conform(#[from] ConformError),
    #[error("parse the reference Worker's URL `{url}`")]
    Url {
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("wait for the reference Worker's task")]
    Join(#[source] tokio::task::JoinError),
    #[error("build the reference Worker to deploy on the stand-in")]
    Deploy(#[source] RebuildError),
    #[error("start the stand-in Cloudflare API")]
    StandIn(#[source] std::io::Error),
    #[error(transparent)]
    Verify(#[from] ApiError),
}

/// The stand-in account the demo deploys the reference Worker to.
pub const REFERENCE_ACCOUNT: &str = "f1a2e3b4c5d6e7f8a9b0c1d2e3f4a5b6";
/// The reference Worker's script name on the stand-in.
pub const REFERENCE_SCRIPT: &str = "flarelink-auth";
/// The reference Worker's one custom domain on the stand-in: the host the
/// demo's conform target (the reference Worker on this machine) has.
pub const REFERENCE_DOMAIN: &str = "127.0.0.1";

/// The `TRUSTED_ORIGIN` `launch.mjs` gives the reference Worker by default.
pub const REFERENCE_TRUSTED_ORIGIN: &str = "https://app.flareproof.test";

/// The `[verify]` target of the reference Worker in `fixtures`: its
/// deterministic esbuild recipe and the settings `launch.mjs` runs it with.
pub fn reference_verify_target(fixtures: &Path, api_base: url::Url) -> VerifyTarget {
    let mut target = VerifyTarget {
        recipe: Recipe {
            source: fixtures.to_path_buf(),
            command: ["node", "build.mjs", "--outdir", "{out}"]
                .map(str::to_owned)
                .to_vec(),
            env: BTreeMap::new(),
            non_artifacts: vec!["README.md".to_owned()],
            // The second reference Worker (and its own node_modules) sits
            // in the same folder: linked, not copied into every build.
            link: ["node_modules", "wrangler-worker"]
                .map(str::to_owned)
                .to_vec(),
            main_module: None,
            hard_link: false,
        },
        bisect: true,
        script: REFERENCE_SCRIPT.to_owned(),
        declared: DeclaredSettings {
            compatibility_date: Some("2025-09-01".to_owned()),
            compatibility_flags: vec!["nodejs_compat".to_owned()],
            bindings: reference_bindings()
                .into_iter()
                .map(|b| DeclaredBinding {
                    name: b.name,
                    kind: b.kind,
                    target: b.target,
                    // Declared, so a changed value fails: plain_text and
                    // json values are compared only when declared.
                    value: b.value,
                })
                .collect(),
            ..DeclaredSettings::default()
        },
        observers: DeclaredObservers::default(),
        ingress: DeclaredIngress {
            custom_domains: vec![REFERENCE_DOMAIN.to_owned()],
            ..DeclaredIngress::default()
        },
        provenance: Default::default(),
        api_base,
        api_token_env: "CLOUDFLARE_API_TOKEN".to_owned(),
        account_id_env: "CLOUDFLARE_ACCOUNT_ID".to_owned(),
        base_url: None,
    };
    target.provenance.lockfile = Some(fixtures.join("package-lock.json"));
    target
}

/// The bindings `launch.mjs` gives the reference Worker, as the API would
/// report them.
pub fn reference_bindings() -> Vec<DeployedBinding> {
    let b = |name: &str, kind: &str, target: Option<&str>| DeployedBinding {
        name: name.to_owned(),
        kind: kind.to_owned(),
        target: target.map(str::to_owned),
        value: None,
    };
    vec![
        b("BETTER_AUTH_SECRET", "secret_text", None),
        b("DB", "d1", Some("flareproof-auth-db")),
        b("SERVICE_KEY", "secret_text", None),
        b("SESSIONS", "kv_namespace", Some("flareproof-sessions")),
        DeployedBinding {
            value: Some(serde_json::json!(REFERENCE_TRUSTED_ORIGIN)),
            ..b("TRUSTED_ORIGIN", "plain_text", None)
        },
    ]
}

/// The npm packages a wrangler build of the reference Worker reports
/// (`package_dependencies`): its runtime dependencies at the versions
/// `fixtures/package-lock.json` pins.
pub fn reference_dependencies() -> Vec<PackageDependency> {
    let lock = Lockfile::parse(
        Path::new("fixtures/package-lock.json"),
        include_bytes!("../../fixtures/package-lock.json"),
    )
    .expect("the fixture lockfile parses");
    ["better-auth", "hono"]
        .iter()
        .map(|name| PackageDependency {
            name: (*name).to_owned(),
            package_json_version: lock.constraints.get(*name).cloned(),
            installed_version: lock
                .version(name)
                .expect("the fixture lockfile pins the Worker's dependencies")
                .to_owned(),
        })
        .collect()
}

/// A faithful deployment of `bundle` as the reference Worker, for the
/// stand-in: one version at 100 % with the declared settings.
pub fn reference_scenario(bundle: Bundle, token: Secret) -> Scenario {
    let mut scenario = Scenario::single(
        REFERENCE_ACCOUNT,
        REFERENCE_SCRIPT,
        token,
        bundle,
        "2025-09-01",
        &["nodejs_compat".to_owned()],
        reference_bindings(),
    );
    for v in &mut scenario.versions {
        v.package_dependencies = Some(reference_dependencies());
    }
    scenario.custom_domains = vec![REFERENCE_DOMAIN.to_owned()];
    scenario
}

/// Builds the reference Worker once (what "was deployed"), serves it from a
/// stand-in Cloudflare API, and verifies it.
pub async fn verify_reference(fixtures: &Path, plan: Arc<Plan>) -> Result<VerifyRun, DemoError> {
    let tmp = tempfile::tempdir().map_err(|e| DemoError::Deploy(RebuildError::Temp(e)))?;
    let token = Secret::new(format!(
        "demo-{}",
        crate::compare::sha256_hex(tmp.path().display().to_string().as_bytes())
    ));
    let placeholder = url::Url::parse("http://127.0.0.1/").expect("a valid URL");
    let mut target = reference_verify_target(fixtures, placeholder.clone());
    let deployed = run_recipe(&target.recipe, &Variation::baseline(), tmp.path())
        .await
        .map_err(DemoError::Deploy)?;
    let standin = StandIn::start(reference_scenario(deployed.bundle, token.clone()))
        .await
        .map_err(DemoError::StandIn)?;
    target.api_base = standin.api_base();
    // The demo's conform target: the reference Worker on this machine.
    target.base_url = Some(placeholder);
    let verify = Verify {
        target,
        plan,
        credentials: Credentials {
            account_id: REFERENCE_ACCOUNT.to_owned(),
            token,
        },
        retry: RetryPolicy::default(),
    };
    Ok(verify.run().await?)
}

/// The fixture settings the demo runs with: two edges and short windows.
pub fn options() -> FixtureOptions {
    FixtureOptions {
        edges: Some(2),
        window_s: Some(5),
        limit_anonymous: Some(5),
        limit_free: Some(20),
        limit_pro: Some(15),
        revocation_lag_ms: Some(300),
        faults: Vec::new(),
    }
}

/// A target config for a running fixture, with its secrets in hand.
pub fn target_for(info: &FixtureInfo, max_session_age_s: u64) -> Result<Target, DemoError> {
    let parse = |url: &str| {
        url::Url::parse(url).map_err(|source| DemoError::Url {
            url: url.to_owned(),
            source,
        })
    };
    let vantages = info
        .edges
        .iter()
        .map(|e| parse(e))
        .collect::<Result<Vec<_>, _>>()?;
    let accounts = info
        .accounts
        .iter()
        .map(|(role, a)| {
            (
                role.clone(),
                Account {
                    role: role.clone(),
                    email: a.email.clone(),
                    password: a.password.clone(),
                },
            )
        })
        .collect();
    Ok(Target {
        base_url: parse(&info.url)?,
        vantages,
        origin: info.origin.clone(),
        session_cookie: None,
        profile: ProfileSection {
            window_s: info.window_s,
            // The reference Worker's lag is 300 ms; the rest of the bound is
            // room for a loaded machine, whose slow polls would otherwise
            // leave the bound inside the measurement's bracket (`error`).
            revocation_bound_s: 5,
            max_session_age_s,
            limits: Limits {
                anonymous: Limit::Count(info.limit_anonymous),
                free: Limit::Count(info.limit_free),
                pro: Limit::Count(info.limit_pro),
                admin: Limit::Unlimited(Unlimited::Unlimited),
            },
            ..ProfileSection::default()
        },
        accounts,
        service_key: Some(info.service_key.clone()),
        budget: Budget {
            max_requests: 3000,
            max_rps: 500,
            max_body_bytes: 8 * 1024 * 1024,
            max_kept_bytes: None,
        },
        paths: Paths::default(),
        verify: None,
    })
}

/// The one fault of the demo's "vendor Worker": the reference Worker
/// started with it is what `demo` compares with the clean reference
/// Worker. Cheap and clear: the session cookie loses one attribute, and
/// one check (its own) fails.
pub const VENDOR_FAULT: &str = "cookie.httponly";

/// What a demo run produced.
pub struct DemoRun {
    pub report: Report,
    /// The clean run's conform part as conform reported it (no verify
    /// checks): the reference Worker's report of the conform suite, what a
    /// [`VendorRun`] is compared with.
    pub reference: Report,
    /// The plan it ran, for the audit attestation.
    pub plan: Arc<Plan>,
    /// The attestation of the verify part.
    pub attestation: Statement,
    /// What the verify part checked, as a URI (the stand-in's account,
    /// script and deployment).
    pub resource_uri: String,
    pub fixture_ready: Duration,
    pub requests: usize,
    /// What the conform run learned to redact (the fixture's passwords and
    /// service key, every session token); [`run_vendor`] learns into it too.
    pub redactor: Arc<Redactor>,
}

/// A conform run against the reference Worker started with one fault.
pub struct VendorRun {
    /// The fault's id.
    pub fault: String,
    pub report: Report,
    pub fixture_ready: Duration,
    pub requests: usize,
}

/// Starts the reference Worker with `options`, runs the conform suite
/// against it, stops it.
async fn conform_fixture(
    options: FixtureOptions,
    events: Events,
    plan: Arc<Plan>,
    redactor: Arc<Redactor>,
) -> Result<(Report, Probe, Duration), DemoError> {
    let fixture = tokio::task::spawn_blocking(move || Fixture::start(&options, &events))
        .await
        .map_err(DemoError::Join)??;
    let conformed = async {
        let target = Arc::new(target_for(fixture.info(), 604_800)?);
        let conform = Conform {
            target,
            plan,
            selection: Selection::all(),
            progress: Arc::new(crate::progress::Silent),
        };
        Ok::<_, DemoError>(conform.run_pinned(None, redactor).await?)
    }
    .await;
    let fixture_ready = fixture.spawn_to_ready();
    // Stopped on every path, the run's error too.
    tokio::task::spawn_blocking(move || drop(fixture))
        .await
        .map_err(DemoError::Join)?;
    let (report, probe) = conformed?;
    Ok((report, probe, fixture_ready))
}

/// Starts the reference Worker, runs everything flareproof can do against
/// it, stops it, and returns the report. `events` hears of the npm install
/// and the launcher's lines.
pub async fn run(events: Events) -> Result<DemoRun, DemoError> {
    let started_at = crate::now_rfc3339();
    let started = std::time::Instant::now();
    let dir = super::fixture::fixtures_dir();
    {
        let dir = dir.clone();
        let events = events.clone();
        tokio::task::spawn_blocking(move || {
            super::fixture::ensure_installed(&dir, &|e| events.emit(e))
        })
        .await
        .map_err(DemoError::Join)??;
    }
    let plan = Arc::new(Plan::builtin("flarelink-auth/v1")?);
    let redactor = Arc::new(Redactor::new());
    let conforming = conform_fixture(options(), events, plan.clone(), redactor.clone());
    let (conformed, verified) = tokio::join!(conforming, verify_reference(&dir, plan.clone()));
    let (conform_report, probe, fixture_ready) = conformed?;
    let verified = verified?;
    let report = crate::audit::merge(
        "demo",
        &plan,
        verified.report,
        conform_report.clone(),
        started_at,
        started.elapsed().as_millis() as u64,
    );
    Ok(DemoRun {
        report,
        reference: conform_report,
        plan,
        attestation: verified.attestation,
        resource_uri: verified.resource_uri,
        fixture_ready,
        requests: probe.governor().sent_count(),
        redactor,
    })
}

/// The conform suite once more, against the reference Worker started with
/// the demo's settings and one fault (`fault`, a reference fault of the
/// Worker: see `node fixtures/launch.mjs --faults`): a "vendor Worker" to
/// compare with the clean run's [`DemoRun::reference`]. Conform only, and
/// after the clean run (two conform runs at once on a small machine leave
/// the rate-limit checks unable to observe). The Worker is stopped before
/// it returns. Its secrets and session tokens are learned into `redactor`.
pub async fn run_vendor(
    events: Events,
    plan: Arc<Plan>,
    fault: &str,
    redactor: Arc<Redactor>,
) -> Result<VendorRun, DemoError> {
    let options = FixtureOptions {
        faults: vec![fault.to_owned()],
        ..options()
    };
    let (report, probe, fixture_ready) = conform_fixture(options, events, plan, redactor).await?;
    Ok(VendorRun {
        fault: fault.to_owned(),
        report,
        fixture_ready,
        requests: probe.governor().sent_count(),
    })
}

/// The checks of `plan` whose reference fault is `fault`: the ones a run
/// under it must fail.
pub fn checks_of_fault<'a>(plan: &'a Plan, fault: &str) -> Vec<&'a str> {
    plan.checks
        .iter()
        .filter(|c| c.fault.as_ref().is_some_and(|f| f.id == fault))
        .map(|c| c.id.as_str())
        .collect()
}

/// Whether a comparison of the clean reference Worker (BASE) with one
/// under `fault` (NEW) shows the fault: every check of `plan` whose
/// reference fault it is fails in NEW and did not fail in BASE (a new
/// failure). A fault no check names shows nothing.
pub fn shows_fault(plan: &Plan, diff: &Diff, fault: &str) -> bool {
    let expected = checks_of_fault(plan, fault);
    let new_failures: Vec<&str> = diff
        .rows_of(Change::NewFailure)
        .map(|r| r.label.split(" @ ").next().unwrap_or(&r.label))
        .collect();
    !expected.is_empty() && expected.iter().all(|id| new_failures.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Loaded, compare};
    use crate::model::{CheckId, CheckResult, Status, Subject};

    fn report(statuses: &[(&str, Status)]) -> Loaded {
        let checks = statuses
            .iter()
            .map(|(id, status)| CheckResult {
                id: CheckId::new(*id).unwrap(),
                title: String::new(),
                status: *status,
                summary: String::new(),
                severity: None,
                level: None,
                help: String::new(),
                requirements: vec![],
                evidence: vec![],
                duration_ms: 0,
                version: None,
                target: None,
            })
            .collect();
        let subject = Subject {
            base_url: Some("http://127.0.0.1:1/".to_owned()),
            vantages: vec![],
            script: None,
        };
        Loaded {
            path: "report.json".to_owned(),
            report: Report::new(
                "conform",
                "flarelink-auth/v1",
                subject,
                "2025-01-01T00:00:00Z".to_owned(),
                1,
                checks,
            ),
        }
    }

    fn shows(base: &[(&str, Status)], new: &[(&str, Status)], fault: &str) -> bool {
        let plan = Plan::builtin("flarelink-auth/v1").unwrap();
        shows_fault(&plan, &compare(report(base), report(new)).unwrap(), fault)
    }

    use Status::{Error, Fail, Pass};

    #[test]
    fn the_vendor_fault_is_a_worker_fault_of_exactly_one_check_the_suite_names() {
        let plan = Plan::builtin("flarelink-auth/v1").unwrap();
        assert_eq!(checks_of_fault(&plan, VENDOR_FAULT), [VENDOR_FAULT]);
        let check = plan
            .checks
            .iter()
            .find(|c| c.id.as_str() == VENDOR_FAULT)
            .unwrap();
        assert_eq!(
            check.fault.as_ref().unwrap().site,
            crate::plan::FaultSite::Worker,
            "the demo starts the reference Worker with it, so it is a switch of the Worker"
        );
        assert!(checks_of_fault(&plan, "no.such-fault").is_empty());
    }

    #[test]
    fn a_comparison_shows_the_fault_only_when_its_check_is_a_new_failure() {
        let clean = [("cookie.httponly", Pass), ("cookie.secure", Pass)];
        assert!(shows(
            &clean,
            &[("cookie.httponly", Fail), ("cookie.secure", Pass)],
            VENDOR_FAULT
        ));
        // Another check failing too still shows it.
        assert!(shows(
            &clean,
            &[("cookie.httponly", Fail), ("cookie.secure", Fail)],
            VENDOR_FAULT
        ));
        // The faulty Worker passing its fault's check shows nothing…
        assert!(!shows(&clean, &clean, VENDOR_FAULT));
        // …nor does a check that could not observe under it…
        assert!(!shows(
            &clean,
            &[("cookie.httponly", Error), ("cookie.secure", Pass)],
            VENDOR_FAULT
        ));
        // …nor a regression elsewhere…
        assert!(!shows(
            &clean,
            &[("cookie.httponly", Pass), ("cookie.secure", Fail)],
            VENDOR_FAULT
        ));
        // …nor a clean run that already failed it (no new failure)…
        let failing = [("cookie.httponly", Fail), ("cookie.secure", Pass)];
        assert!(!shows(&failing, &failing, VENDOR_FAULT));
        // …nor a fault no check of the suite names.
        assert!(!shows(
            &clean,
            &[("cookie.httponly", Fail), ("cookie.secure", Pass)],
            "no.such-fault"
        ));
    }
}
