//! Shared test support: starting the reference Worker and building targets.

use std::sync::Arc;

use flareproof::checks::Ctx;
use flareproof::conform::{Conform, Selection};
use flareproof::fixture::{Fixture, FixtureOptions};
use flareproof::model::{Report, Status};
use flareproof::plan::Plan;
use flareproof::probe::{Probe, Redactor};
use flareproof::target::Target;

pub fn start(options: FixtureOptions) -> Fixture {
    match Fixture::start(&options) {
        Ok(f) => f,
        Err(e) => panic!("fixture did not start: {}", flareproof::error_chain(&e)),
    }
}

pub fn faults(list: &[&str]) -> FixtureOptions {
    FixtureOptions {
        faults: list.iter().map(|s| s.to_string()).collect(),
        ..FixtureOptions::default()
    }
}

pub fn target(fixture: &Fixture) -> Target {
    flareproof::demo::target_for(fixture.info(), 604_800).expect("fixture target")
}

pub fn ctx(fixture: &Fixture) -> Ctx {
    let target = Arc::new(target(fixture));
    let redactor = Arc::new(Redactor::new());
    Ctx {
        probe: Probe::new(target.budget, redactor).unwrap(),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        target,
    }
}

pub async fn conform(fixture: &Fixture, only: &[&str]) -> Report {
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let conform = Conform {
        target: Arc::new(target(fixture)),
        plan: Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
        selection: Selection::new(&only, &[]).unwrap(),
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
