//! The conform suites against the reference Worker: all pass when it is
//! healthy, and each fault fails its own check and no other.

use std::collections::BTreeSet;
use std::sync::Arc;

use flareproof::checks::{cookie, scope};
use flareproof::fixture::FixtureOptions;
use flareproof::model::Status;
use flareproof::plan::Plan;
use tokio::sync::Semaphore;

use crate::support::{conform, faults, ids_with, start};

/// Fixtures started at once by a fault sweep (2 cores).
const PARALLEL_FIXTURES: usize = 3;

#[tokio::test(flavor = "multi_thread")]
async fn the_cookie_and_scope_suites_pass_against_the_healthy_reference_worker() {
    let fixture = tokio::task::spawn_blocking(|| start(FixtureOptions::default()))
        .await
        .unwrap();
    let report = conform(&fixture, &["cookie.*", "scope.*"]).await;
    let expected: Vec<String> = cookie::IDS
        .iter()
        .chain(&scope::IDS)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(ids_with(&report, Status::Pass), expected, "{report:#?}");
    let leaked = flareproof::report::json::render(&report);
    let text = String::from_utf8(leaked).unwrap();
    for (role, account) in &fixture.info().accounts {
        assert!(
            !text.contains(account.password.expose()),
            "{role}'s password is in the report"
        );
    }
    assert!(!text.contains(fixture.info().service_key.expose()));
    for (i, _) in text.match_indices("session_token=") {
        let after = &text[i + "session_token=".len()..];
        assert!(
            after.starts_with("[redacted]") || after.starts_with(';') || after.starts_with('"'),
            "a session token is in the report: {}",
            &after[..after.len().min(40)]
        );
    }
}

/// The checks a fault may fail: its own and those the plan declares
/// inseparable from it.
fn expected_failures(plan: &Plan, id: &str) -> BTreeSet<String> {
    let mut expected = BTreeSet::from([id.to_owned()]);
    if let Some(check) = plan.check(id) {
        expected.extend(check.inseparable_from.iter().map(|c| c.to_string()));
    }
    expected
}

/// For each fault id: a reference Worker with that fault, a conform run over
/// `selection`, and the fault's own check must fail with evidence while no
/// other check fails (except those the plan declares inseparable) or errs.
async fn sweep(ids: &'static [&'static str], selection: &'static [&'static str]) {
    let plan = Arc::new(Plan::builtin("flarelink-auth/v1").unwrap());
    let slots = Arc::new(Semaphore::new(PARALLEL_FIXTURES));
    let mut runs = tokio::task::JoinSet::new();
    for &id in ids {
        let slots = slots.clone();
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let fixture = tokio::task::spawn_blocking(move || start(faults(&[id])))
                .await
                .unwrap();
            let report = conform(&fixture, selection).await;
            (id, report)
        });
    }
    let mut problems = Vec::new();
    while let Some(run) = runs.join_next().await {
        let (id, report) = run.unwrap();
        let failed: BTreeSet<String> = ids_with(&report, Status::Fail).into_iter().collect();
        let errors = ids_with(&report, Status::Error);
        let expected = expected_failures(&plan, id);
        if !failed.contains(id) || !failed.is_subset(&expected) || !errors.is_empty() {
            problems.push(format!(
                "FAULTS={id}: failed {failed:?} (expected {expected:?}), errors {errors:?}"
            ));
        }
        let own = report.checks.iter().find(|c| c.id.as_str() == id).unwrap();
        if own.evidence.is_empty() || own.summary.is_empty() {
            problems.push(format!(
                "FAULTS={id}: the failure carries no evidence or summary"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_cookie_fault_fails_its_check_and_no_other() {
    sweep(&cookie::IDS, &["cookie.*", "scope.*"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_scope_fault_fails_its_check_and_no_other() {
    sweep(&scope::IDS, &["cookie.*", "scope.*"]).await;
}
