//! `watch`: a cheap read of what is live, repeated; what changed between two
//! reads; the state a cron run keeps between runs.
//!
//! One poll reads the active deployment (id, versions, their shares), the
//! script-level settings and observers, which change without a new version
//! (a version's own settings are immutable, so they change only with a new
//! version, which a poll sees as one), and every way traffic reaches the
//! script (routes, custom domains, `workers.dev` and preview URLs, the
//! account's subdomain when either is on, and a declared zone's routes),
//! which changes without a deployment too: preview URLs switched on make
//! every uploaded version reachable. That is at most [`POLL_REQUESTS`] = 9
//! requests: `…/deployments`, `…/settings`, `…/script-settings`, `…/tails`,
//! `…/routes`, `…/workers/domains`, `…/subdomain`, `…/workers/subdomain`
//! and the zone's `…/workers/routes`. The modules are never downloaded by a
//! poll; a change is verified by a full `verify` run.
//!
//! The API allows 1,200 requests per 5 minutes per user. Polls may spend at
//! most half of that ([`POLL_BUDGET`] = 600 per 5 minutes), leaving the rest
//! for the verify runs a change starts (about 15 requests each) and for the
//! account's other API clients (wrangler, the deploy job): 9 requests every
//! [`MIN_INTERVAL`] = 5 s is 540 per 5 minutes, so shorter intervals are
//! clamped to 5 s; the default 60 s spends at most 45. A failed poll is
//! retried after an exponential backoff ([`backoff`]), so an outage costs
//! less, not more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attestation::{IngressRecord, ObserversRecord, ScriptSettingsRecord};
use crate::cloudflare::{ApiError, Client, parse_deployment, settings};

/// The most requests one poll sends (each may be retried by the client on
/// 429/5xx): 4 for the deployment, settings and observers, up to 5 for the
/// ingress (the account subdomain only when `workers.dev` or previews are
/// on, the zone's routes only when a zone is declared).
pub const POLL_REQUESTS: u64 = 9;
/// The Cloudflare API's limit: requests per [`RATE_WINDOW`].
pub const RATE_LIMIT: u64 = 1200;
/// The window of [`RATE_LIMIT`].
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// The share of [`RATE_LIMIT`] polls may spend: half.
pub const POLL_BUDGET: u64 = RATE_LIMIT / 2;
/// The shortest interval: [`POLL_REQUESTS`] per interval stays within
/// [`POLL_BUDGET`] per [`RATE_WINDOW`], and never below 1 s.
pub const MIN_INTERVAL: Duration = Duration::from_secs(max(
    1,
    (RATE_WINDOW.as_secs() * POLL_REQUESTS).div_ceil(POLL_BUDGET),
));
// Polls leave at least half of the limit to everything else.
const _: () = assert!(POLL_BUDGET * 2 <= RATE_LIMIT);
/// The longest wait between two tries after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// The `format` of a state file this build writes and reads.
pub const STATE_FORMAT: u32 = 1;

const fn max(a: u64, b: u64) -> u64 {
    if a > b { a } else { b }
}

/// The interval a watch polls at: what was asked, clamped to
/// [`MIN_INTERVAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub asked: Duration,
    pub every: Duration,
}

impl Interval {
    pub fn clamp(asked_secs: u64) -> Interval {
        let asked = Duration::from_secs(asked_secs);
        Interval {
            asked,
            every: asked.max(MIN_INTERVAL),
        }
    }

    pub fn clamped(&self) -> bool {
        self.every != self.asked
    }

    /// Requests per [`RATE_WINDOW`] polls spend at this interval.
    pub fn requests_per_window(&self) -> u64 {
        RATE_WINDOW.as_secs() * POLL_REQUESTS / self.every.as_secs().max(1)
    }
}

/// The wait before the next try after `failures` failed tries in a row
/// (1 for the first): the interval doubled per failure after the first,
/// capped at [`MAX_BACKOFF`] (or the interval, when that is longer).
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let wait = interval.saturating_mul(1u32 << doublings);
    wait.min(MAX_BACKOFF.max(interval))
}

/// A version of the active deployment and its share of traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionShare {
    pub version_id: String,
    /// 0–100.
    pub percentage: f64,
}

/// The active deployment as the deployments list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRecord {
    pub id: Option<String>,
    pub created_on: Option<String>,
    /// The client that made it (`wrangler`, `api`, `dash`, …).
    pub source: Option<String>,
    /// `workers/triggered_by`, `workers/message`, … (string values only).
    pub annotations: BTreeMap<String, String>,
    /// Largest share first; ties by version id.
    pub versions: Vec<VersionShare>,
}

/// What one poll saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    pub deployment: DeploymentRecord,
    /// The script's observers and settings, recorded as an attestation's
    /// live record holds them (the same normalisation).
    pub observers: ObserversRecord,
    pub settings: ScriptSettingsRecord,
    /// Every way traffic reaches the script, as an attestation's live
    /// record holds it; absent in a state file written before watch read
    /// it (a poll then sees it as changed, and verifies).
    #[serde(default)]
    pub ingress: Option<IngressRecord>,
}

fn shape(url: &str, problem: impl Into<String>) -> ApiError {
    ApiError::Shape {
        url: url.to_owned(),
        problem: problem.into(),
    }
}

/// What the deployments list says about the active deployment besides its
/// versions.
struct Metadata {
    created_on: Option<String>,
    source: Option<String>,
    annotations: BTreeMap<String, String>,
}

/// `created_on`, `source` and `annotations` of the active deployment: absent
/// fields are `None`/empty, a field of another type is a shape error.
fn metadata(url: &str, result: &Value) -> Result<Metadata, ApiError> {
    let first = result
        .get("deployments")
        .unwrap_or(result)
        .get(0)
        .ok_or_else(|| shape(url, "`result.deployments` is empty"))?;
    let text = |key: &str| match first.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(shape(
            url,
            format!("the active deployment's `{key}` is not a string"),
        )),
    };
    let mut annotations = BTreeMap::new();
    match first.get("annotations") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                match value {
                    Value::String(s) => {
                        annotations.insert(key.clone(), s.clone());
                    }
                    Value::Null => {}
                    _ => {
                        return Err(shape(
                            url,
                            format!("the active deployment's annotation `{key}` is not a string"),
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(shape(
                url,
                "the active deployment's `annotations` is not an object",
            ));
        }
    }
    Ok(Metadata {
        created_on: text("created_on")?,
        source: text("source")?,
        annotations,
    })
}

/// One poll: the active deployment and the script-level settings and
/// observers, [`POLL_REQUESTS`] requests sent at once. Any read that fails
/// or answers an unexpected shape fails the poll: a poll that saw only part
/// of what is live cannot say nothing changed.
pub async fn poll(
    client: &Client,
    script: &str,
    zone_id: Option<&str>,
) -> Result<Observation, Arc<ApiError>> {
    let url = client.account_url(&format!("workers/scripts/{script}/deployments"));
    let (deployments, (observers, deployed), ingress) = tokio::join!(
        client.get_json::<Value>("deployments", &url),
        settings::read(client, script),
        crate::cloudflare::ingress::fetch_ingress(client, script, zone_id),
    );
    if let Some(e) = ingress.first_error() {
        return Err(e);
    }
    let result = deployments.map_err(Arc::new)?;
    let deployment = parse_deployment(&url, script, &result).map_err(Arc::new)?;
    let Metadata {
        created_on,
        source,
        annotations,
    } = metadata(&url, &result).map_err(Arc::new)?;
    let observers = observers?;
    let deployed = deployed?;
    Ok(Observation {
        deployment: DeploymentRecord {
            id: deployment.id,
            created_on,
            source,
            annotations,
            versions: deployment
                .versions
                .into_iter()
                .map(|v| VersionShare {
                    version_id: v.version_id,
                    percentage: v.percentage,
                })
                .collect(),
        },
        observers: ObserversRecord::of(&observers),
        settings: ScriptSettingsRecord::of(&deployed),
        ingress: Some(IngressRecord::of(&ingress)),
    })
}

/// One thing that differs between two polls.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Nothing was recorded before.
    FirstSeen,
    /// Another deployment is active.
    Deployment {
        from: Option<String>,
        to: Option<String>,
    },
    /// A version receives traffic that did not.
    VersionAdded { version_id: String, percentage: f64 },
    /// A version no longer receives traffic.
    VersionRemoved { version_id: String },
    /// A version's share changed.
    Percentage {
        version_id: String,
        from: f64,
        to: f64,
    },
    /// A script-level setting (placement, limits, cache options, usage
    /// model).
    Setting {
        field: String,
        from: Value,
        to: Value,
    },
    /// An observer (tail consumers, Logpush, log or trace destinations,
    /// observability, open tails).
    Observer {
        field: String,
        from: Value,
        to: Value,
    },
    /// A way traffic reaches the script (routes, custom domains,
    /// `workers.dev` and preview URLs, the account subdomain, zone routes).
    Ingress {
        field: String,
        from: Value,
        to: Value,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = |id: &Option<String>| id.clone().unwrap_or_else(|| "(no id)".to_owned());
        match self {
            Change::FirstSeen => write!(f, "first seen (nothing recorded)"),
            Change::Deployment { from, to } => {
                write!(f, "new deployment {} (was {})", id(to), id(from))
            }
            Change::VersionAdded {
                version_id,
                percentage,
            } => write!(f, "new version {version_id} at {percentage}%"),
            Change::VersionRemoved { version_id } => {
                write!(f, "version {version_id} no longer deployed")
            }
            Change::Percentage {
                version_id,
                from,
                to,
            } => write!(f, "version {version_id} from {from}% to {to}%"),
            Change::Setting { field, from, to } => {
                write!(f, "setting `{field}` from {from} to {to}")
            }
            Change::Observer { field, from, to } => {
                write!(f, "observer `{field}` from {from} to {to}")
            }
            Change::Ingress { field, from, to } => {
                write!(f, "ingress `{field}` from {from} to {to}")
            }
        }
    }
}

/// What changed from `old` to `new`, in a stable order: the deployment,
/// versions (added, removed, share), then script-level settings and
/// observers by field name. Empty: nothing changed.
pub fn diff(old: &Observation, new: &Observation) -> Vec<Change> {
    let mut changes = Vec::new();
    let (a, b) = (&old.deployment, &new.deployment);
    if a.id != b.id {
        changes.push(Change::Deployment {
            from: a.id.clone(),
            to: b.id.clone(),
        });
    }
    let share = |d: &DeploymentRecord| -> BTreeMap<String, f64> {
        d.versions
            .iter()
            .map(|v| (v.version_id.clone(), v.percentage))
            .collect()
    };
    let (was, now) = (share(a), share(b));
    for (version_id, percentage) in &now {
        match was.get(version_id) {
            None => changes.push(Change::VersionAdded {
                version_id: version_id.clone(),
                percentage: *percentage,
            }),
            Some(from) if from != percentage => changes.push(Change::Percentage {
                version_id: version_id.clone(),
                from: *from,
                to: *percentage,
            }),
            Some(_) => {}
        }
    }
    for version_id in was.keys().filter(|v| !now.contains_key(*v)) {
        changes.push(Change::VersionRemoved {
            version_id: version_id.clone(),
        });
    }
    field_changes(
        &old.observers,
        &new.observers,
        &mut changes,
        |field, from, to| Change::Observer { field, from, to },
    );
    field_changes(
        &old.settings,
        &new.settings,
        &mut changes,
        |field, from, to| Change::Setting { field, from, to },
    );
    // A record without ingress (an older state file) has every field null:
    // each one read now is a change.
    field_changes(
        &old.ingress,
        &new.ingress,
        &mut changes,
        |field, from, to| Change::Ingress { field, from, to },
    );
    changes
}

/// A change per field that differs between two records of one kind.
fn field_changes<T: Serialize>(
    was: &T,
    now: &T,
    changes: &mut Vec<Change>,
    change: impl Fn(String, Value, Value) -> Change,
) {
    let fields = |s: &T| match serde_json::to_value(s) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (was, now) = (fields(was), fields(now));
    let keys: std::collections::BTreeSet<&String> = was.keys().chain(now.keys()).collect();
    for key in keys {
        let from = was.get(key).cloned().unwrap_or(Value::Null);
        let to = now.get(key).cloned().unwrap_or(Value::Null);
        if from != to {
            changes.push(change(key.clone(), from, to));
        }
    }
}

/// A verify run's outcome that a state file records: only a verdict is
/// recorded; a run that could not tell leaves the state as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
        }
    }
}

/// The verdict of the last verify run of what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedVerdict {
    pub verdict: Outcome,
    /// The run's folder (`report.json`, `attestation.json`, …).
    pub report: String,
    /// RFC 3339, UTC.
    pub verified_at: String,
}

/// What a watch keeps between polls, and a cron run between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    pub script: String,
    /// When it was seen (RFC 3339, UTC).
    pub seen_at: String,
    pub observed: Observation,
    pub last_verify: RecordedVerdict,
}

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("read the state file `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read the state file `{path}`: it is not a watch state (left as it is)")]
    Malformed {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "read the state file `{path}`: format {found}, this flareproof reads format \
         {STATE_FORMAT} (left as it is)"
    )]
    Format { path: String, found: u32 },
    #[error(
        "read the state file `{path}`: it records script `{found}`, the config names \
         `{expected}` (left as it is)"
    )]
    Script {
        path: String,
        found: String,
        expected: String,
    },
    #[error("write the state file `{path}`")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the state file: `None` when there is none (a first run); any
/// other problem (unreadable, not a state, another format or script) is an
/// error, never a first run.
pub fn load_state(path: &Path, script: &str) -> Result<Option<WatchState>, StateError> {
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: shown,
                source,
            });
        }
    };
    // The format first, so that a newer format is named as such.
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes)
        && let Some(found) = map.get("format").and_then(Value::as_u64)
        && found != u64::from(STATE_FORMAT)
    {
        return Err(StateError::Format {
            path: shown,
            found: u32::try_from(found).unwrap_or(u32::MAX),
        });
    }
    let state: WatchState =
        serde_json::from_slice(&bytes).map_err(|source| StateError::Malformed {
            path: shown.clone(),
            source,
        })?;
    if state.script != script {
        return Err(StateError::Script {
            path: shown,
            found: state.script,
            expected: script.to_owned(),
        });
    }
    Ok(Some(state))
}

/// Writes the state file atomically: a temporary file in the same folder,
/// synced, then renamed over `path`. A reader sees the old file or the new
/// one, never part of one.
pub fn save_state(path: &Path, state: &WatchState) -> Result<(), StateError> {
    let shown = path.display().to_string();
    let err = |source| StateError::Write {
        path: shown.clone(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| err(std::io::Error::other(e)))?;
    bytes.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".flareproof-state-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(err)?;
    use std::io::Write as _;
    tmp.write_all(&bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// A path component from an id the API sent: letters, digits, `-` and `_`
/// kept, anything else `_`, at most 64 characters; `unknown` when empty. A
/// deployment id is never trusted to be a safe file name.
pub fn safe_component(id: Option<&str>) -> String {
    let cleaned: String = id
        .unwrap_or("")
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

/// `20261201T181500Z`: a UTC time as a run folder's prefix.
pub fn folder_time(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// RFC 3339, UTC, whole seconds.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    let at = at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| folder_time(at))
}

/// A new run folder under `out`: `<UTC time>-<deployment id>`, with `-2`,
/// `-3`, … when two runs start in the same second.
pub fn run_folder(out: &Path, at: time::OffsetDateTime, deployment_id: Option<&str>) -> PathBuf {
    let base = format!("{}-{}", folder_time(at), safe_component(deployment_id));
    let mut candidate = out.join(&base);
    let mut n = 2;
    while candidate.exists() {
        candidate = out.join(format!("{base}-{n}"));
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::Readable;
    use crate::attestation::live::{DomainRecord, RouteRecord, WorkersDevRecord};

    fn observation() -> Observation {
        Observation {
            deployment: DeploymentRecord {
                id: Some("d1".into()),
                created_on: Some("2026-11-20T09:14:03Z".into()),
                source: Some("wrangler".into()),
                annotations: BTreeMap::from([(
                    "workers/triggered_by".to_owned(),
                    "upload".to_owned(),
                )]),
                versions: vec![VersionShare {
                    version_id: "v1".into(),
                    percentage: 100.0,
                }],
            },
            observers: ObserversRecord {
                tail_consumers: vec![],
                streaming_tail_consumers: vec![],
                logpush: false,
                log_destinations: vec![],
                trace_destinations: vec![],
                observability: false,
                tails: vec![],
            },
            settings: ScriptSettingsRecord {
                placement: None,
                limits: Some(serde_json::json!({"cpu_ms": 50})),
                cache_options: None,
                usage_model: Some("standard".into()),
            },
            ingress: Some(IngressRecord {
                routes: Readable::Read(vec![]),
                custom_domains: Readable::Read(vec![DomainRecord {
                    hostname: "auth.example.com".into(),
                    service: "auth".into(),
                    environment: Some("production".into()),
                    zone_name: Some("example.com".into()),
                }]),
                workers_dev: Readable::Read(WorkersDevRecord {
                    enabled: false,
                    previews_enabled: false,
                }),
                account_subdomain: None,
                zone_routes: None,
            }),
        }
    }

    #[test]
    fn preview_urls_switched_on_or_a_new_route_are_ingress_changes() {
        let old = observation();
        let mut new = observation();
        let ingress = new.ingress.as_mut().unwrap();
        ingress.workers_dev = Readable::Read(WorkersDevRecord {
            enabled: false,
            previews_enabled: true,
        });
        ingress.account_subdomain = Some(Readable::Read("acme".into()));
        ingress.routes = Readable::Read(vec![RouteRecord {
            pattern: "old.example.com/*".into(),
            script: Some("auth".into()),
        }]);
        let fields: Vec<String> = diff(&old, &new)
            .into_iter()
            .map(|c| match c {
                Change::Ingress { field, .. } => field,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(fields, ["account_subdomain", "routes", "workers_dev"]);
        let text = diff(&old, &new)[2].to_string();
        assert!(
            text.contains("ingress `workers_dev`") && text.contains("\"previews_enabled\":true"),
            "{text}"
        );
    }

    #[test]
    fn a_state_recorded_before_ingress_was_polled_sees_it_as_changed() {
        let mut old = observation();
        old.ingress = None;
        let text = serde_json::to_string(&old).unwrap();
        let text = text.replace(",\"ingress\":null", "");
        assert!(!text.contains("ingress"), "{text}");
        let read: Observation = serde_json::from_str(&text).unwrap();
        assert_eq!(read.ingress, None);
        let changes = diff(&read, &observation());
        assert!(
            !changes.is_empty() && changes.iter().all(|c| matches!(c, Change::Ingress { .. })),
            "{changes:?}"
        );
    }

    #[test]
    fn the_same_observation_has_no_change() {
        assert_eq!(diff(&observation(), &observation()), vec![]);
    }

    #[test]
    fn a_new_deployment_names_its_id_and_versions() {
        let old = observation();
        let mut new = observation();
        new.deployment.id = Some("d2".into());
        new.deployment.versions = vec![
            VersionShare {
                version_id: "v1".into(),
                percentage: 90.0,
            },
            VersionShare {
                version_id: "v2".into(),
                percentage: 10.0,
            },
        ];
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                Change::Deployment {
                    from: Some("d1".into()),
                    to: Some("d2".into())
                },
                Change::Percentage {
                    version_id: "v1".into(),
                    from: 100.0,
                    to: 90.0
                },
                Change::VersionAdded {
                    version_id: "v2".into(),
                    percentage: 10.0
                },
            ]
        );
        assert_eq!(changes[2].to_string(), "new version v2 at 10%");
        let json = serde_json::to_value(&changes[0]).unwrap();
        assert_eq!(json["change"], "deployment");
        assert_eq!(json["to"], "d2");
    }

    #[test]
    fn a_removed_version_is_named() {
        let old = observation();
        let mut new = observation();
        new.deployment.versions[0].version_id = "v3".into();
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::VersionAdded {
                    version_id: "v3".into(),
                    percentage: 100.0
                },
                Change::VersionRemoved {
                    version_id: "v1".into()
                },
            ]
        );
    }

    #[test]
    fn settings_and_observers_changes_are_told_apart_without_a_new_deployment() {
        let old = observation();
        let mut new = observation();
        new.observers.tail_consumers = vec!["log-collector".into()];
        new.settings.placement = Some(serde_json::json!({"mode": "smart"}));
        new.observers.tails = vec!["t1".into()];
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                Change::Observer {
                    field: "tail_consumers".into(),
                    from: serde_json::json!([]),
                    to: serde_json::json!(["log-collector"])
                },
                Change::Observer {
                    field: "tails".into(),
                    from: serde_json::json!([]),
                    to: serde_json::json!(["t1"])
                },
                Change::Setting {
                    field: "placement".into(),
                    from: Value::Null,
                    to: serde_json::json!({"mode": "smart"})
                },
            ]
        );
        assert!(
            changes[0].to_string().contains("log-collector"),
            "{}",
            changes[0]
        );
    }

    #[test]
    fn annotations_alone_are_not_a_change() {
        // They belong to the deployment, which cannot change them in place.
        let old = observation();
        let mut new = observation();
        new.deployment.annotations.clear();
        assert_eq!(diff(&old, &new), vec![]);
    }

    #[test]
    fn the_interval_is_clamped_to_the_budget_and_one_second() {
        assert_eq!(MIN_INTERVAL, Duration::from_secs(5));
        for asked in [0, 1, 4] {
            let i = Interval::clamp(asked);
            assert_eq!(i.every, MIN_INTERVAL, "{asked}");
            assert!(i.clamped());
        }
        let i = Interval::clamp(60);
        assert_eq!(i.every, Duration::from_secs(60));
        assert!(!i.clamped());
        assert_eq!(i.requests_per_window(), 45);
        // At the floor, polls spend at most the budget: half the limit.
        assert!(Interval::clamp(0).requests_per_window() <= POLL_BUDGET);
        assert!(Interval::clamp(4).requests_per_window() <= POLL_BUDGET);
        // u64::MAX seconds does not overflow anything.
        assert_eq!(Interval::clamp(u64::MAX).requests_per_window(), 0);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(2), 1), s(2));
        assert_eq!(backoff(s(2), 2), s(4));
        assert_eq!(backoff(s(2), 4), s(16));
        assert_eq!(backoff(s(2), 40), MAX_BACKOFF);
        assert_eq!(backoff(s(3600), 5), s(3600));
        assert_eq!(backoff(Duration::MAX, u32::MAX), Duration::MAX);
    }

    #[test]
    fn ids_from_the_wire_make_safe_folder_names() {
        assert_eq!(safe_component(Some("5a1e7c3b-2d4f")), "5a1e7c3b-2d4f");
        assert_eq!(safe_component(Some("../../etc/passwd")), "______etc_passwd");
        assert_eq!(safe_component(Some("")), "unknown");
        assert_eq!(safe_component(None), "unknown");
        assert_eq!(safe_component(Some(&"a".repeat(500))).len(), 64);
        assert_eq!(safe_component(Some("é/\0")), "___");
        let at = time::macros::datetime!(2026-12-01 18:15:00 UTC);
        assert_eq!(folder_time(at), "20261201T181500Z");
        assert_eq!(rfc3339(at), "2026-12-01T18:15:00Z");
    }

    #[test]
    fn a_state_round_trips_and_a_bad_one_is_an_error_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load_state(&path, "w").unwrap().is_none());
        let state = WatchState {
            format: STATE_FORMAT,
            script: "w".into(),
            seen_at: "2026-12-01T18:15:00Z".into(),
            observed: observation(),
            last_verify: RecordedVerdict {
                verdict: Outcome::Pass,
                report: "reports/x".into(),
                verified_at: "2026-12-01T18:15:09Z".into(),
            },
        };
        save_state(&path, &state).unwrap();
        assert_eq!(load_state(&path, "w").unwrap(), Some(state.clone()));
        // Only the state file is left: the temporary file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = load_state(&path, "other").unwrap_err();
        assert!(matches!(err, StateError::Script { .. }), "{err}");
        for bad in ["", "{", "[]", "{\"format\": 1}", "null"] {
            std::fs::write(&path, bad).unwrap();
            let err = load_state(&path, "w").unwrap_err();
            assert!(matches!(err, StateError::Malformed { .. }), "{bad}: {err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
        }
        std::fs::write(&path, "{\"format\": 7}").unwrap();
        let err = load_state(&path, "w").unwrap_err();
        assert!(err.to_string().contains("format 7"), "{err}");
    }
}
