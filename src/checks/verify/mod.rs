//! The `verify.*` checks: pure functions from what the rebuild produced
//! and what the Cloudflare API said to findings with evidence.

use crate::cloudflare::{ApiError, Live, Observers, VersionData};
use crate::compare::{Bundle, ModulesComparison, compare_modules, compare_settings};
use crate::error_chain;
use crate::model::{CheckResult, Evidence, Exchange, Finding, Measurement, TextDiff};
use crate::plan::Plan;
use crate::rebuild::{Rebuild, RebuildError};
use crate::target::{DeclaredObservers, VerifyTarget};

mod provenance;
pub use provenance::{PROVENANCE, provenance};

pub const REBUILD_DETERMINISTIC: &str = "verify.rebuild-deterministic";
pub const MODULES_MATCH: &str = "verify.modules-match";
pub const SETTINGS_MATCH: &str = "verify.settings-match";
pub const NO_UNDECLARED_OBSERVERS: &str = "verify.no-undeclared-observers";
pub const LIVE_VERSIONS: &str = "verify.live-versions";
pub const INGRESS: &str = "verify.ingress";

mod ingress;
pub use ingress::{host_matches, ingress, normalize_pattern};

mod settings;

/// The check ids this module decides, in plan order.
pub const IDS: [&str; 7] = [
    REBUILD_DETERMINISTIC,
    MODULES_MATCH,
    SETTINGS_MATCH,
    NO_UNDECLARED_OBSERVERS,
    INGRESS,
    LIVE_VERSIONS,
    PROVENANCE,
];

/// Everything the checks judge.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub target: &'a VerifyTarget,
    pub rebuild: Result<&'a Rebuild, &'a RebuildError>,
    pub live: Result<&'a Live, &'a ApiError>,
    /// The API exchanges, token redacted.
    pub exchanges: &'a [Exchange],
    pub rebuild_ms: u64,
    pub fetch_ms: u64,
    /// `target.base_url` when there is one (audit, verify with a full
    /// config): `verify.ingress` checks it is one of the live ingress.
    pub base_url: Option<&'a url::Url>,
}

/// Decides every verify check.
pub fn run(inputs: &Inputs<'_>, plan: &Plan) -> Vec<CheckResult> {
    let both = inputs.rebuild_ms.max(inputs.fetch_ms);
    vec![
        plan.conclude(
            REBUILD_DETERMINISTIC,
            rebuild_deterministic(inputs.rebuild),
            inputs.rebuild_ms,
        ),
        plan.conclude(MODULES_MATCH, modules_match(inputs), both),
        plan.conclude(SETTINGS_MATCH, settings_match(inputs), inputs.fetch_ms),
        plan.conclude(
            NO_UNDECLARED_OBSERVERS,
            no_undeclared_observers(inputs),
            inputs.fetch_ms,
        ),
        plan.conclude(INGRESS, ingress(inputs), inputs.fetch_ms),
        plan.conclude(LIVE_VERSIONS, live_versions(inputs), both),
        plan.conclude(PROVENANCE, provenance(inputs), inputs.fetch_ms),
    ]
}

fn exchanges<'a>(inputs: &'a Inputs<'_>, labels: &[String]) -> Vec<&'a Exchange> {
    inputs
        .exchanges
        .iter()
        .filter(|e| labels.contains(&e.label))
        .collect()
}

fn percent(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

/// `verify.rebuild-deterministic`.
pub fn rebuild_deterministic(rebuild: Result<&Rebuild, &RebuildError>) -> Finding {
    let rebuild = match rebuild {
        Ok(r) => r,
        Err(e) => return Finding::error(format!("the recipe could not run: {}", error_chain(e))),
    };
    let mut evidence = vec![
        Evidence::note(format!("build 1: {}", rebuild.first.variation.describe())),
        Evidence::note(format!("build 2: {}", rebuild.second.variation.describe())),
    ];
    for (i, build) in [&rebuild.first, &rebuild.second].iter().enumerate() {
        evidence.push(Evidence::Measurement(Measurement {
            name: format!("build {} wall time", i + 1),
            value: build.duration.as_millis() as f64,
            unit: "ms".to_owned(),
            bound: None,
            vantage: None,
            trial: None,
            censored: false,
            resolution: None,
            slowest_observation: None,
        }));
    }
    for m in rebuild.first.bundle.modules() {
        evidence.push(Evidence::note(format!(
            "build 1 module `{}` ({}, {} bytes): sha256 {}",
            m.name,
            m.content_type.as_deref().unwrap_or("no content type"),
            m.bytes.len(),
            m.sha256()
        )));
    }
    let finding = match &rebuild.difference {
        None => Finding::pass(format!(
            "{} module(s) came out byte-identical from two builds that varied the build path, \
             TZ, LC_ALL, umask, HOME, SOURCE_DATE_EPOCH and environment order (aggregate sha256 {})",
            rebuild.first.bundle.modules().len(),
            rebuild.first.bundle.aggregate_sha256()
        )),
        Some(difference) => {
            let c = &difference.comparison;
            let what = match c.differing.first() {
                Some(d) => format!(
                    "`{}` differs between the two builds from byte {}",
                    d.name, d.offset
                ),
                None => format!("the two builds differ: {}", c.describe()),
            };
            let mut finding = Finding::fail(format!("{what}; {}", difference.exposure.describe()));
            for d in &c.differing {
                finding = finding.with(Evidence::Diff(TextDiff {
                    subject: format!("{} (build 1 vs build 2)", d.name),
                    offset: d.offset,
                    unified: d
                        .diff
                        .replace("rebuilt/", "build-1/")
                        .replace("deployed/", "build-2/"),
                }));
            }
            if !c.missing.is_empty() || !c.extra.is_empty() {
                finding = finding.with(Evidence::note(c.describe()));
            }
            finding
        }
    };
    evidence.into_iter().fold(finding, Finding::with)
}

/// The evidence of one bundle comparison: digest rows, diffs, aggregates.
fn comparison_evidence(mut finding: Finding, c: &ModulesComparison) -> Finding {
    for row in &c.rows {
        finding = finding.with(Evidence::Digest(row.clone()));
    }
    for d in &c.differing {
        finding = finding.with(Evidence::Diff(TextDiff {
            subject: d.name.clone(),
            offset: d.offset,
            unified: d.diff.clone(),
        }));
    }
    finding.with(Evidence::note(format!(
        "aggregate sha256 over the sorted module list: rebuilt {}, deployed {}; entry module: \
         rebuilt {}, deployed {}",
        c.rebuilt_aggregate,
        c.deployed_aggregate,
        c.rebuilt_main.as_deref().unwrap_or("-"),
        c.deployed_main.as_deref().unwrap_or("-"),
    )))
}

fn rebuilt<'a>(inputs: &'a Inputs<'_>) -> Result<&'a Bundle, Finding> {
    inputs.rebuild.map(|r| &r.first.bundle).map_err(|e| {
        Finding::error(format!(
            "nothing to compare with: the rebuild failed ({})",
            error_chain(e)
        ))
    })
}

fn live<'a>(inputs: &'a Inputs<'_>) -> Result<&'a Live, Finding> {
    inputs.live.map_err(|e| {
        Finding::error(format!(
            "the active deployment could not be read: {}",
            error_chain(e)
        ))
        .with_exchanges(exchanges(inputs, &["deployments".to_owned()]))
    })
}

fn modules_labels(v: &VersionData) -> Vec<String> {
    vec![
        "deployments".to_owned(),
        format!("modules of version {}", v.live.version_id),
        "script download".to_owned(),
    ]
}

/// `verify.modules-match`: the version with the largest share.
pub fn modules_match(inputs: &Inputs<'_>) -> Finding {
    let (rebuilt, live) = match (rebuilt(inputs), live(inputs)) {
        (Ok(r), Ok(l)) => (r, l),
        (Err(f), _) | (_, Err(f)) => return f,
    };
    let Some(primary) = live.versions.first() else {
        return Finding::error("the active deployment lists no version");
    };
    let context = exchanges(inputs, &modules_labels(primary));
    let (deployed, source) = match &primary.modules {
        Ok(m) => m,
        Err(e) => {
            return Finding::error(format!(
                "the modules of version {} could not be read: {}",
                primary.live.version_id,
                error_chain(e.as_ref())
            ))
            .with_exchanges(context);
        }
    };
    let c = compare_modules(rebuilt, deployed);
    let who = format!(
        "version {} ({} of traffic, read from the {})",
        primary.live.version_id,
        percent(primary.live.percentage),
        source.as_str()
    );
    // Content types and the entry module are verify.settings-match's.
    let finding = if c.bytes_match() {
        Finding::pass(format!("{who}: {}", c.describe_bytes()))
    } else {
        Finding::fail(format!("{who}: {}", c.describe_bytes()))
    };
    comparison_evidence(finding, &c).with_exchanges(context)
}

/// Why a read failed; a refused token names the permission it needs.
fn unreadable(e: &ApiError) -> String {
    let chain = error_chain(e);
    if e.is_auth() {
        format!("{chain} (the token needs the \"Workers Scripts Read\" permission on this account)")
    } else {
        chain
    }
}

/// `verify.settings-match`: the version with the largest share, and the
/// script's settings. See [`crate::checks::verify::settings`].
pub fn settings_match(inputs: &Inputs<'_>) -> Finding {
    let live = match live(inputs) {
        Ok(l) => l,
        Err(f) => return f,
    };
    let Some(primary) = live.versions.first() else {
        return Finding::error("the active deployment lists no version");
    };
    let mut labels = modules_labels(primary);
    labels.push(format!("version {}", primary.live.version_id));
    labels.push("settings".to_owned());
    let context = exchanges(inputs, &labels);
    settings::judge(
        &inputs.target.declared,
        primary,
        &live.script_settings,
        rebuilt(inputs).ok(),
    )
    .with_exchanges(context)
}

fn undeclared(observers: &Observers, declared: &DeclaredObservers) -> Vec<String> {
    let mut out = Vec::new();
    for consumer in &observers.tail_consumers {
        let service = consumer.split(" (").next().unwrap_or(consumer);
        if !declared
            .tail_consumers
            .iter()
            .any(|d| d == consumer || d == service)
        {
            out.push(format!("tail consumer `{consumer}`"));
        }
    }
    if observers.logpush && !declared.logpush {
        out.push("Logpush is on".to_owned());
    }
    for dest in &observers.log_destinations {
        if !declared.log_destinations.contains(dest) {
            out.push(format!("Workers Logs destination `{dest}`"));
        }
    }
    for tail in &observers.tails {
        out.push(format!("open streaming tail session {tail}"));
    }
    out.extend(settings::undeclared_observers(observers, declared));
    out
}

/// `verify.no-undeclared-observers`.
pub fn no_undeclared_observers(inputs: &Inputs<'_>) -> Finding {
    let context = exchanges(
        inputs,
        &[
            "settings".to_owned(),
            "script-settings".to_owned(),
            "tails".to_owned(),
        ],
    );
    let live = match live(inputs) {
        Ok(l) => l,
        Err(f) => return f,
    };
    let observers = match &live.observers {
        Ok(o) => o,
        Err(e) => {
            return Finding::error(format!(
                "the script's observers could not be read: {}",
                unreadable(e.as_ref())
            ))
            .with_exchanges(context);
        }
    };
    let seen = Evidence::note(format!(
        "deployed (both settings endpoints together): tail consumers [{}], streaming tail \
         consumers [{}], logpush {}, observability keeps data {}, log destinations [{}], trace \
         destinations [{}], open tails [{}]",
        observers.tail_consumers.join(", "),
        observers.streaming_tail_consumers.join(", "),
        observers.logpush,
        observers.observability,
        observers.log_destinations.join(", "),
        observers.trace_destinations.join(", "),
        observers.tails.join(", ")
    ));
    let found = undeclared(observers, &inputs.target.observers);
    let finding = if found.is_empty() {
        Finding::pass(
            "no tail consumer, streaming tail consumer, Logpush, log or trace destination, \
             Workers Observability storage or open tail beyond the declared ones",
        )
    } else {
        Finding::fail(format!(
            "undeclared observer(s) receive request data: {}",
            found.join("; ")
        ))
    };
    let finding = observers
        .said
        .iter()
        .chain(&observers.disagreements)
        .fold(finding, |f, n| f.with(Evidence::note(n.clone())));
    finding.with(seen).with_exchanges(context)
}

/// `verify.live-versions`: every version other than the largest share with a
/// non-zero share must match the rebuild and the declared settings.
pub fn live_versions(inputs: &Inputs<'_>) -> Finding {
    let live = match live(inputs) {
        Ok(l) => l,
        Err(f) => return f,
    };
    let shares: Vec<String> = live
        .versions
        .iter()
        .map(|v| format!("{} at {}", v.live.version_id, percent(v.live.percentage)))
        .collect();
    let split = Evidence::note(format!(
        "active deployment {}: {}",
        live.deployment.id.as_deref().unwrap_or("(no id)"),
        shares.join(", ")
    ));
    let others: Vec<&VersionData> = live
        .versions
        .iter()
        .skip(1)
        .filter(|v| v.live.percentage > 0.0)
        .collect();
    let deployments = exchanges(inputs, &["deployments".to_owned()]);
    if others.is_empty() {
        return Finding::pass(format!(
            "one version receives all traffic ({}); verify.modules-match and \
             verify.settings-match judge it",
            live.versions
                .first()
                .map(|v| v.live.version_id.as_str())
                .unwrap_or("-")
        ))
        .with(split)
        .with_exchanges(deployments);
    }
    let rebuilt = match rebuilt(inputs) {
        Ok(r) => r,
        Err(f) => return f.with(split),
    };
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    let mut evidence = vec![split];
    let mut labels = vec!["deployments".to_owned()];
    for v in &others {
        let id = &v.live.version_id;
        labels.extend(modules_labels(v).into_iter().skip(1));
        labels.push(format!("version {id}"));
        let who = format!("version {id} ({})", percent(v.live.percentage));
        match &v.modules {
            Err(e) => errors.push(format!(
                "{who}: modules unreadable: {}",
                error_chain(e.as_ref())
            )),
            Ok((deployed, _)) => {
                let c = compare_modules(rebuilt, deployed);
                if !c.matches() {
                    failed.push(format!("{who}: {}", c.describe()));
                    for row in &c.rows {
                        evidence.push(Evidence::Digest(row.clone()));
                    }
                    for d in &c.differing {
                        evidence.push(Evidence::Diff(TextDiff {
                            subject: format!("{} (version {id})", d.name),
                            offset: d.offset,
                            unified: d.diff.clone(),
                        }));
                    }
                }
            }
        }
        match &v.settings {
            Err(e) => errors.push(format!(
                "{who}: settings unreadable: {}",
                error_chain(e.as_ref())
            )),
            Ok(settings) => {
                let c = compare_settings(&inputs.target.declared, settings);
                if !c.matches() {
                    failed.push(format!("{who}: {}", c.differences.join("; ")));
                }
            }
        }
    }
    let finding = if !failed.is_empty() {
        Finding::fail(format!(
            "traffic reaches an unverified version: {}",
            failed.join(" | ")
        ))
    } else if !errors.is_empty() {
        Finding::error(errors.join(" | "))
    } else {
        Finding::pass(format!(
            "the other {} version(s) with traffic match the rebuild and the declared settings too",
            others.len()
        ))
    };
    let context = exchanges(inputs, &labels);
    evidence
        .into_iter()
        .fold(finding, Finding::with)
        .with_exchanges(context)
}
