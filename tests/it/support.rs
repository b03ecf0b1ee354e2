//! Shared test support: starting the reference Worker and building targets.

use std::sync::{Arc, Condvar, Mutex};

use flareproof::checks::Ctx;
use flareproof::conform::{Conform, Selection};
use flareproof::fixture::{Fixture, FixtureOptions};
use flareproof::model::{Report, Status};
use flareproof::plan::Plan;
use flareproof::probe::{Probe, Redactor};
use flareproof::target::Target;

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
    match Fixture::start(&options) {
        Ok(fixture) => Running { fixture },
        Err(e) => {
            *count.lock().unwrap() -= 1;
            freed.notify_one();
            panic!("fixture did not start: {}", flareproof::error_chain(&e))
        }
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
