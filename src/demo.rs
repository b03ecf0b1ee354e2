//! `demo`: the whole job against the reference Worker on this machine, with
//! short windows so it takes seconds.

use std::sync::Arc;
use std::time::Duration;

use crate::conform::{Conform, ConformError, Selection};
use crate::fixture::{Fixture, FixtureError, FixtureInfo, FixtureOptions};
use crate::model::Report;
use crate::plan::{Plan, PlanError};
use crate::target::{Account, Budget, Limit, Limits, Paths, ProfileSection, Target, Unlimited};

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
    #[error("the fixture task stopped unexpectedly")]
    Join(#[source] tokio::task::JoinError),
}

/// The fixture settings the demo runs with: two edges and short windows.
pub fn options() -> FixtureOptions {
    FixtureOptions {
        edges: Some(2),
        window_s: Some(3),
        limit_anonymous: Some(5),
        limit_free: Some(8),
        limit_pro: Some(12),
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
            revocation_bound_s: 2,
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
            max_requests: 2000,
            max_rps: 200,
        },
        paths: Paths::default(),
        verify: None,
    })
}

/// What a demo run produced.
pub struct DemoRun {
    pub report: Report,
    pub fixture_ready: Duration,
    pub requests: usize,
}

/// Starts the reference Worker, runs everything flareproof can do against
/// it, stops it, and returns the report.
pub async fn run() -> Result<DemoRun, DemoError> {
    let fixture = tokio::task::spawn_blocking(|| Fixture::start(&options()))
        .await
        .map_err(DemoError::Join)??;
    let plan = Arc::new(Plan::builtin("flarelink-auth/v1")?);
    let target = Arc::new(target_for(fixture.info(), 604_800)?);
    let conform = Conform {
        target,
        plan,
        selection: Selection::all(),
    };
    let outcome = conform.run().await;
    let fixture_ready = fixture.spawn_to_ready();
    tokio::task::spawn_blocking(move || drop(fixture))
        .await
        .map_err(DemoError::Join)?;
    let (mut report, probe) = outcome?;
    report.command = "demo".to_owned();
    Ok(DemoRun {
        report,
        fixture_ready,
        requests: probe.governor().sent_count(),
    })
}
