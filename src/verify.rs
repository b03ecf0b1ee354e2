//! `verify`: rebuild the Worker and read what is live, concurrently; compare;
//! conclude the `verify.*` checks; attest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::attestation::{
    BundleRecord, DeploymentRecord, LiveRecord, PREDICATE_TYPE, Predicate, RecipeRecord,
    ResourceDescriptor, STATEMENT_TYPE, Statement, VersionRecord, check_records,
};
use crate::checks::verify::{self as checks, Inputs};
use crate::cloudflare::{ApiError, Client, Credentials, Live, RetryPolicy, fetch_live_in_zone};
use crate::model::{Report, Subject};
use crate::plan::Plan;
use crate::probe::Redactor;
use crate::rebuild::{Rebuild, RebuildError, rebuild};
use crate::target::VerifyTarget;

/// Everything a verify run needs, before it runs.
#[derive(Debug, Clone)]
pub struct Verify {
    pub target: VerifyTarget,
    pub plan: Arc<Plan>,
    pub credentials: Credentials,
    pub retry: RetryPolicy,
}

/// What a verify run produced.
#[derive(Debug)]
pub struct VerifyRun {
    pub report: Report,
    pub attestation: Statement,
    /// What was verified, as a URI: the account's script and its active
    /// deployment (see [`crate::attestation::resource_uri`]).
    pub resource_uri: String,
    /// The first API read that failed, for the binary's hint.
    pub api_error: Option<Arc<ApiError>>,
    /// Wall time of the rebuild (both builds, and bisection if any).
    pub rebuild_time: Duration,
    /// Wall time of the API reads.
    pub fetch_time: Duration,
}

impl Verify {
    /// Runs verify. Only an unusable API base URL is an `Err`; a failed
    /// rebuild or API read becomes `error` results in the report.
    pub async fn run(&self) -> Result<VerifyRun, ApiError> {
        let started_at = crate::now_rfc3339();
        let started = Instant::now();
        let client = Client::new(&self.target.api_base, self.credentials.clone(), self.retry)?;
        let rebuilding = async {
            let t = Instant::now();
            let r = rebuild(&self.target.recipe, self.target.bisect).await;
            (r, t.elapsed())
        };
        let fetching = async {
            let t = Instant::now();
            let zone = self.target.ingress.zone_id.as_deref();
            let r = fetch_live_in_zone(&client, &self.target.script, zone).await;
            (r, t.elapsed())
        };
        let ((rebuilt, rebuild_time), (live, fetch_time)) = tokio::join!(rebuilding, fetching);
        let live = live.map_err(Arc::new);
        let exchanges = client.transcript();
        let inputs = Inputs {
            target: &self.target,
            rebuild: rebuilt.as_ref(),
            live: live.as_ref().map_err(|e| e.as_ref()),
            exchanges: &exchanges,
            rebuild_ms: rebuild_time.as_millis() as u64,
            fetch_ms: fetch_time.as_millis() as u64,
            base_url: self.target.base_url.as_ref(),
        };
        let results = checks::run(&inputs, &self.plan);
        let mut report = Report::new(
            "verify",
            &self.plan.id,
            Subject {
                base_url: None,
                vantages: Vec::new(),
                script: Some(self.target.script.clone()),
            },
            started_at,
            started.elapsed().as_millis() as u64,
            results,
        );
        report.parameters = Some(self.plan.parameters(None));
        let redactor = Redactor::new();
        redactor.learn(&self.credentials.token);
        // The token, wherever it might have landed (an API error message
        // that echoes it, a module that embeds it).
        redactor.redact(&mut report);
        // Built from the scrubbed report: its summaries are the only text
        // that came from outside.
        let mut attestation = attest(&self.target, &report, rebuilt.as_ref(), live.as_ref());
        // The record of what is live, scrubbed like the report (an API
        // error it quotes as the reason a part was unreadable).
        let record = match &live {
            Ok(l) => LiveRecord::of(&self.credentials.account_id, &self.target.script, l),
            Err(e) => LiveRecord::unreadable(
                &self.credentials.account_id,
                &self.target.script,
                self.target.ingress.zone_id.as_deref(),
                e,
            ),
        };
        let mut record = record;
        redactor.redact(&mut record);
        attestation.predicate.live = Some(record);
        let resource_uri = crate::attestation::resource_uri(
            &self.target.api_base,
            &self.credentials.account_id,
            &self.target.script,
            attestation
                .predicate
                .deployment
                .as_ref()
                .and_then(|d| d.id.as_deref()),
        );
        Ok(VerifyRun {
            report,
            attestation,
            resource_uri,
            api_error: first_api_error(&live),
            rebuild_time,
            fetch_time,
        })
    }
}

fn first_api_error(live: &Result<Live, Arc<ApiError>>) -> Option<Arc<ApiError>> {
    let live = match live {
        Ok(l) => l,
        Err(e) => return Some(e.clone()),
    };
    live.versions
        .iter()
        .find_map(|v| {
            v.modules
                .as_ref()
                .err()
                .or(v.settings.as_ref().err())
                .cloned()
        })
        .or_else(|| live.observers.as_ref().err().cloned())
}

fn attest(
    target: &VerifyTarget,
    report: &Report,
    rebuilt: Result<&Rebuild, &RebuildError>,
    live: Result<&Live, &Arc<ApiError>>,
) -> Statement {
    let rebuilt = rebuilt.ok();
    let subject = rebuilt
        .map(|r| {
            r.first
                .bundle
                .modules()
                .iter()
                .map(|m| ResourceDescriptor {
                    name: m.name.clone(),
                    digest: BTreeMap::from([("sha256".to_owned(), m.sha256())]),
                })
                .collect()
        })
        .unwrap_or_default();
    Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject,
        predicate_type: PREDICATE_TYPE.to_owned(),
        predicate: Predicate {
            verdict: report.verdict,
            profile: report.profile.clone(),
            script: target.script.clone(),
            started_at: report.started_at.clone(),
            tool: report.tool.clone(),
            source_revision: rebuilt.and_then(|r| r.revision.clone()),
            recipe: RecipeRecord {
                command: target.recipe.command.clone(),
                env: target.recipe.env.keys().cloned().collect(),
                non_artifacts: target.recipe.non_artifacts.clone(),
                link: target.recipe.link.clone(),
                variations: rebuilt
                    .map(|r| vec![r.first.variation.describe(), r.second.variation.describe()])
                    .unwrap_or_default(),
            },
            toolchain: rebuilt.map(|r| r.toolchain.clone()),
            bundle: rebuilt.map(|r| BundleRecord {
                main_module: r.first.bundle.main_module.clone(),
                aggregate_sha256: r.first.bundle.aggregate_sha256(),
            }),
            deployment: live.ok().map(|l| DeploymentRecord {
                id: l.deployment.id.clone(),
                versions: l
                    .deployment
                    .versions
                    .iter()
                    .map(|v| VersionRecord {
                        version_id: v.version_id.clone(),
                        percentage: v.percentage,
                    })
                    .collect(),
            }),
            checks: check_records(report),
            live: None,
        },
    }
}
