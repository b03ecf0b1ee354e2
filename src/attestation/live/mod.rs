//! The record of what was live when verify ran, kept in its attestation,
//! and the drift between two such records: what `attestation verify`
//! reports when the deployment is read again later.
//!
//! A [`LiveRecord`] holds, for every version with traffic, its share, its
//! modules (name, sha256, content type) and entry module and its settings
//! (compatibility date and flags, bindings: type and target, the sha256 of a
//! `plain_text`/`json` value, a secret by name and type only), and for the
//! script its observers, its script-level settings and its ingress. Every
//! list is sorted, so two reads of one deployment make equal records. A part
//! that could not be read is [`Readable::Unreadable`] with the reason, never
//! an empty list: empty would later compare equal to a real "none".

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloudflare::ingress::{self, Part};
use crate::cloudflare::{ApiError, Live, Observers, SCRIPTS_READ, VersionData};
use crate::compare::{
    Bundle, DeployedBinding, DeployedScriptSettings, DeployedSettings, SECRET_TYPES, sha256_hex,
};

mod drift;
#[cfg(test)]
mod tests;

pub use drift::{Drift, DriftKind};

/// One part of the record: what the API said, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readable<T> {
    Read(T),
    /// Why it could not be read (the API's error, and for a refused token
    /// the permission the endpoint needs).
    Unreadable(String),
}

impl<T> Readable<T> {
    fn of<U>(part: &Result<U, Arc<ApiError>>, permission: &str, f: impl FnOnce(&U) -> T) -> Self {
        match part {
            Ok(value) => Readable::Read(f(value)),
            Err(e) => Readable::Unreadable(unreadable(e, permission)),
        }
    }

    pub fn read(&self) -> Option<&T> {
        match self {
            Readable::Read(v) => Some(v),
            Readable::Unreadable(_) => None,
        }
    }
}

/// Why a part could not be read; a refused token names the permission.
fn unreadable(e: &ApiError, permission: &str) -> String {
    let mut why = crate::error_chain(e);
    if e.is_auth() || e.status() == Some(403) {
        why.push_str(&format!(
            " (the API token needs the \"{permission}\" permission)"
        ));
    }
    why
}

/// What was live for one script of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRecord {
    pub account_id: String,
    pub script: String,
    /// The active deployment and its versions with traffic.
    pub deployment: Readable<DeploymentRecord>,
    pub observers: Readable<ObserversRecord>,
    /// Placement, limits, cache options, usage model (`/settings`).
    pub script_settings: Readable<ScriptSettingsRecord>,
    pub ingress: IngressRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: Option<String>,
    /// Every version with a share above 0 %, sorted by version id.
    pub versions: Vec<LiveVersionRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveVersionRecord {
    pub version_id: String,
    /// 0–100.
    pub percentage: f64,
    pub modules: Readable<ModulesRecord>,
    pub settings: Readable<VersionSettingsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModulesRecord {
    pub main_module: Option<String>,
    /// Sorted by name.
    pub modules: Vec<ModuleRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    pub name: String,
    pub sha256: String,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSettingsRecord {
    pub compatibility_date: Option<String>,
    /// Sorted.
    pub compatibility_flags: Vec<String>,
    /// Sorted by name, then type.
    pub bindings: Vec<BindingRecord>,
}

/// A binding as recorded: never a value, only the sha256 of a
/// `plain_text`/`json` one; a secret by name and type only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BindingRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: Option<String>,
    /// sha256 of the value as canonical JSON (object keys sorted).
    pub value_sha256: Option<String>,
}

/// Everything that receives the Worker's request data besides the Worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserversRecord {
    pub tail_consumers: Vec<String>,
    pub streaming_tail_consumers: Vec<String>,
    pub logpush: bool,
    pub log_destinations: Vec<String>,
    pub trace_destinations: Vec<String>,
    /// Workers Observability keeps logs or traces with Cloudflare.
    pub observability: bool,
    /// Open streaming tail sessions.
    pub tails: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSettingsRecord {
    pub placement: Option<Value>,
    pub limits: Option<Value>,
    pub cache_options: Option<Value>,
    pub usage_model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRecord {
    /// Sorted.
    pub routes: Readable<Vec<RouteRecord>>,
    /// Sorted.
    pub custom_domains: Readable<Vec<DomainRecord>>,
    pub workers_dev: Readable<WorkersDevRecord>,
    /// Read only when `workers.dev` or preview URLs are on.
    pub account_subdomain: Option<Readable<String>>,
    /// Read only when the config names a zone.
    pub zone_routes: Option<ZoneRoutesRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteRecord {
    pub pattern: String,
    pub script: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DomainRecord {
    pub hostname: String,
    pub service: String,
    pub environment: Option<String>,
    pub zone_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkersDevRecord {
    pub enabled: bool,
    pub previews_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRoutesRecord {
    pub zone_id: String,
    pub routes: Readable<Vec<RouteRecord>>,
}

/// `value` as JSON text with every object's keys sorted, so its digest does
/// not depend on how a map kept its keys.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // A `Map` built in sorted order serializes in that order whichever way
    // it keeps its keys.
    sorted(value).to_string()
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items.dedup();
    items
}

fn binding(b: &DeployedBinding) -> BindingRecord {
    let secret = SECRET_TYPES.contains(&b.kind.as_str());
    BindingRecord {
        name: b.name.clone(),
        kind: b.kind.clone(),
        target: if secret { None } else { b.target.clone() },
        value_sha256: if secret {
            None
        } else {
            b.value
                .as_ref()
                .map(|v| sha256_hex(canonical(v).as_bytes()))
        },
    }
}

fn version_settings(s: &DeployedSettings) -> VersionSettingsRecord {
    VersionSettingsRecord {
        compatibility_date: s.compatibility_date.clone(),
        compatibility_flags: sorted(s.compatibility_flags.clone()),
        bindings: sorted(s.bindings.iter().map(binding).collect()),
    }
}

fn modules(bundle: &Bundle) -> ModulesRecord {
    ModulesRecord {
        main_module: bundle.main_module.clone(),
        modules: bundle
            .modules()
            .iter()
            .map(|m| ModuleRecord {
                name: m.name.clone(),
                sha256: m.sha256(),
                content_type: m.content_type.clone(),
            })
            .collect(),
    }
}

fn version(v: &VersionData) -> LiveVersionRecord {
    LiveVersionRecord {
        version_id: v.live.version_id.clone(),
        percentage: v.live.percentage,
        modules: Readable::of(&v.modules, SCRIPTS_READ, |(b, _)| modules(b)),
        settings: Readable::of(&v.settings, SCRIPTS_READ, version_settings),
    }
}

fn observers(o: &Observers) -> ObserversRecord {
    ObserversRecord::of(o)
}

impl ObserversRecord {
    /// The observers as read, every list sorted (also what `watch` polls).
    pub fn of(o: &Observers) -> ObserversRecord {
        ObserversRecord {
            tail_consumers: sorted(o.tail_consumers.clone()),
            streaming_tail_consumers: sorted(o.streaming_tail_consumers.clone()),
            logpush: o.logpush,
            log_destinations: sorted(o.log_destinations.clone()),
            trace_destinations: sorted(o.trace_destinations.clone()),
            observability: o.observability,
            tails: sorted(o.tails.clone()),
        }
    }
}

fn script_settings(s: &DeployedScriptSettings) -> ScriptSettingsRecord {
    ScriptSettingsRecord::of(s)
}

impl ScriptSettingsRecord {
    /// The script-level settings as read (also what `watch` polls).
    pub fn of(s: &DeployedScriptSettings) -> ScriptSettingsRecord {
        ScriptSettingsRecord {
            placement: s.placement.clone(),
            limits: s.limits.clone(),
            cache_options: s.cache_options.clone(),
            usage_model: s.usage_model.clone(),
        }
    }
}

fn routes(list: &[ingress::Route]) -> Vec<RouteRecord> {
    sorted(
        list.iter()
            .map(|r| RouteRecord {
                pattern: r.pattern.clone(),
                script: r.script.clone(),
            })
            .collect(),
    )
}

fn routes_part(part: &Part<Vec<ingress::Route>>, label: &str) -> Readable<Vec<RouteRecord>> {
    Readable::of(part, ingress::permission(label), |r| routes(r))
}

impl IngressRecord {
    /// What was read of the script's ingress, as an attestation records it.
    pub fn of(i: &ingress::Ingress) -> Self {
        ingress_record(i)
    }
}

fn ingress_record(i: &ingress::Ingress) -> IngressRecord {
    IngressRecord {
        routes: routes_part(&i.routes, ingress::ROUTES),
        custom_domains: Readable::of(
            &i.custom_domains,
            ingress::permission(ingress::DOMAINS),
            |d| {
                sorted(
                    d.iter()
                        .map(|d| DomainRecord {
                            hostname: d.hostname.clone(),
                            service: d.service.clone(),
                            environment: d.environment.clone(),
                            zone_name: d.zone_name.clone(),
                        })
                        .collect(),
                )
            },
        ),
        workers_dev: Readable::of(
            &i.workers_dev,
            ingress::permission(ingress::SUBDOMAIN),
            |w| WorkersDevRecord {
                enabled: w.enabled,
                previews_enabled: w.previews_enabled,
            },
        ),
        account_subdomain: i.account_subdomain.as_ref().map(|s| {
            Readable::of(
                s,
                ingress::permission(ingress::ACCOUNT_SUBDOMAIN),
                Clone::clone,
            )
        }),
        zone_routes: i.zone_routes.as_ref().map(|(zone, part)| ZoneRoutesRecord {
            zone_id: zone.clone(),
            routes: routes_part(part, ingress::ZONE_ROUTES),
        }),
    }
}

impl LiveRecord {
    /// The record of what the API said is live.
    pub fn of(account_id: &str, script: &str, live: &Live) -> LiveRecord {
        let mut versions: Vec<LiveVersionRecord> = live
            .versions
            .iter()
            .filter(|v| v.live.percentage > 0.0)
            .map(version)
            .collect();
        versions.sort_by(|a, b| a.version_id.cmp(&b.version_id));
        LiveRecord {
            account_id: account_id.to_owned(),
            script: script.to_owned(),
            deployment: Readable::Read(DeploymentRecord {
                id: live.deployment.id.clone(),
                versions,
            }),
            observers: Readable::of(&live.observers, SCRIPTS_READ, observers),
            script_settings: Readable::of(&live.script_settings, SCRIPTS_READ, script_settings),
            ingress: ingress_record(&live.ingress),
        }
    }

    /// The record when the active deployment could not be read (nothing
    /// else is read then): every part unreadable for that reason.
    pub fn unreadable(
        account_id: &str,
        script: &str,
        zone_id: Option<&str>,
        error: &ApiError,
    ) -> LiveRecord {
        let why = unreadable(error, SCRIPTS_READ);
        fn not_read<T>(why: &str) -> Readable<T> {
            Readable::Unreadable(format!("not read: {why}"))
        }
        LiveRecord {
            account_id: account_id.to_owned(),
            script: script.to_owned(),
            deployment: Readable::Unreadable(why.clone()),
            observers: not_read(&why),
            script_settings: not_read(&why),
            ingress: IngressRecord {
                routes: not_read(&why),
                custom_domains: not_read(&why),
                workers_dev: not_read(&why),
                account_subdomain: None,
                zone_routes: zone_id.map(|z| ZoneRoutesRecord {
                    zone_id: z.to_owned(),
                    routes: not_read(&why),
                }),
            },
        }
    }
}
