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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloudflare::ingress::{self, Part};
use crate::cloudflare::{ApiError, Live, Observers, SCRIPTS_READ, VersionData};
use crate::compare::{
    Bundle, DeployedBinding, DeployedScriptSettings, DeployedSettings, SECRET_TYPES, sha256_hex,
};

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

    /// Every difference between what was attested and what is live now,
    /// each naming the version, module or setting. A version with traffic
    /// now that is not among the attested ones is a change; a part that
    /// could not be read (now, or when attested) is "could not tell", never
    /// "unchanged". A version attested but no longer receiving traffic, a
    /// new deployment id or another share are not drift (see
    /// [`LiveRecord::notes`]).
    pub fn drift(attested: &LiveRecord, now: &LiveRecord) -> Vec<Drift> {
        let mut out = Vec::new();
        if attested.account_id != now.account_id || attested.script != now.script {
            out.push(Drift::could_not_tell(
                "deployment",
                format!(
                    "the attestation is of script `{}` in account {}, the deployment read is of \
                     script `{}` in account {}",
                    attested.script, attested.account_id, now.script, now.account_id
                ),
            ));
            return out;
        }
        // Without the deployment nothing else was read: one reason, not one
        // per part.
        if let (_, Readable::Unreadable(_)) | (Readable::Unreadable(_), _) =
            (&attested.deployment, &now.deployment)
        {
            both(
                &mut out,
                "deployment",
                &attested.deployment,
                &now.deployment,
                |_, _, _| {},
            );
            return out;
        }
        both(
            &mut out,
            "deployment",
            &attested.deployment,
            &now.deployment,
            |out, a, n| {
                if n.versions.is_empty() {
                    out.push(Drift::could_not_tell(
                        "deployment",
                        "the active deployment gives no version a share of traffic",
                    ));
                }
                for version in &n.versions {
                    let part = format!("version {}", version.version_id);
                    let Some(was) = a
                        .versions
                        .iter()
                        .find(|v| v.version_id == version.version_id)
                    else {
                        out.push(Drift::changed(
                            &part,
                            format!(
                                "receives {}% of traffic and is not among the attested versions",
                                version.percentage
                            ),
                        ));
                        continue;
                    };
                    both(out, &part, &was.modules, &version.modules, |out, a, n| {
                        modules_drift(out, &part, a, n)
                    });
                    both(out, &part, &was.settings, &version.settings, |out, a, n| {
                        settings_drift(out, &part, a, n)
                    });
                }
            },
        );
        both(
            &mut out,
            "observers",
            &attested.observers,
            &now.observers,
            |out, a, n| fields(out, "observers", a, n),
        );
        both(
            &mut out,
            "script settings",
            &attested.script_settings,
            &now.script_settings,
            |out, a, n| fields(out, "script settings", a, n),
        );
        ingress_drift(&mut out, &attested.ingress, &now.ingress);
        out
    }

    /// What moved without being drift: another deployment id, another share
    /// of an attested version, an attested version without traffic now.
    pub fn notes(attested: &LiveRecord, now: &LiveRecord) -> Vec<String> {
        let (Some(a), Some(n)) = (attested.deployment.read(), now.deployment.read()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if a.id != n.id {
            let id = |d: &DeploymentRecord| d.id.clone().unwrap_or_else(|| "(no id)".to_owned());
            out.push(format!(
                "the active deployment is {} (attested: {})",
                id(n),
                id(a)
            ));
        }
        for was in &a.versions {
            match n.versions.iter().find(|v| v.version_id == was.version_id) {
                None => out.push(format!(
                    "attested version {} receives no traffic now (attested at {}%)",
                    was.version_id, was.percentage
                )),
                Some(v) if (v.percentage - was.percentage).abs() > 1e-9 => out.push(format!(
                    "version {} receives {}% of traffic (attested at {}%)",
                    v.version_id, v.percentage, was.percentage
                )),
                Some(_) => {}
            }
        }
        out
    }
}

/// Whether a drift is a change seen, or a part that could not be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    Changed,
    CouldNotTell,
}

/// One difference between the attested and the live deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub kind: DriftKind,
    /// What it is about: `version {id}`, `version {id} module `worker.js``,
    /// `observers.tail_consumers`, `ingress.routes`, …
    pub part: String,
    /// What differs, or why it could not be told.
    pub detail: String,
}

impl Drift {
    fn changed(part: &str, detail: impl Into<String>) -> Drift {
        Drift {
            kind: DriftKind::Changed,
            part: part.to_owned(),
            detail: detail.into(),
        }
    }

    fn could_not_tell(part: &str, detail: impl Into<String>) -> Drift {
        Drift {
            kind: DriftKind::CouldNotTell,
            part: part.to_owned(),
            detail: detail.into(),
        }
    }

    pub fn is_change(&self) -> bool {
        self.kind == DriftKind::Changed
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DriftKind::Changed => write!(f, "{}: {}", self.part, self.detail),
            DriftKind::CouldNotTell => write!(f, "{}: could not tell: {}", self.part, self.detail),
        }
    }
}

/// Compares two readings of one part with `f` when both were read.
fn both<T>(
    out: &mut Vec<Drift>,
    part: &str,
    attested: &Readable<T>,
    now: &Readable<T>,
    f: impl FnOnce(&mut Vec<Drift>, &T, &T),
) {
    match (attested, now) {
        (Readable::Read(a), Readable::Read(n)) => f(out, a, n),
        (_, Readable::Unreadable(why)) => out.push(Drift::could_not_tell(
            part,
            format!("it could not be read now: {why}"),
        )),
        (Readable::Unreadable(why), _) => out.push(Drift::could_not_tell(
            part,
            format!("the attestation could not record it: {why}"),
        )),
    }
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    const MAX: usize = 200;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Field by field through their JSON form; lists as what was added and
/// removed.
fn fields<T: Serialize>(out: &mut Vec<Drift>, part: &str, attested: &T, now: &T) {
    let as_map = |v: &T| match serde_json::to_value(v) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (a, n) = (as_map(attested), as_map(now));
    let keys: BTreeSet<&String> = a.keys().chain(n.keys()).collect();
    for key in keys {
        let (was, is) = (
            a.get(key).unwrap_or(&Value::Null),
            n.get(key).unwrap_or(&Value::Null),
        );
        if was == is {
            continue;
        }
        let detail = match (was, is) {
            (Value::Array(was), Value::Array(is)) => {
                let list = |items: Vec<&Value>| {
                    items
                        .iter()
                        .map(|v| shown(v))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let added: Vec<&Value> = is.iter().filter(|v| !was.contains(v)).collect();
                let removed: Vec<&Value> = was.iter().filter(|v| !is.contains(v)).collect();
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("added {}", list(added)));
                }
                if !removed.is_empty() {
                    parts.push(format!("removed {}", list(removed)));
                }
                if parts.is_empty() {
                    parts.push(format!(
                        "{} → {}",
                        shown(&Value::Array(was.clone())),
                        shown(&Value::Array(is.clone()))
                    ));
                }
                parts.join("; ")
            }
            _ => format!("{} → {} (attested → now)", shown(was), shown(is)),
        };
        out.push(Drift::changed(&format!("{part}.{key}"), detail));
    }
}

fn modules_drift(out: &mut Vec<Drift>, version: &str, a: &ModulesRecord, n: &ModulesRecord) {
    if a.main_module != n.main_module {
        let name = |m: &Option<String>| m.clone().unwrap_or_else(|| "(none)".to_owned());
        out.push(Drift::changed(
            &format!("{version} main module"),
            format!(
                "`{}` → `{}` (attested → now)",
                name(&a.main_module),
                name(&n.main_module)
            ),
        ));
    }
    for m in &n.modules {
        let part = format!("{version} module `{}`", m.name);
        match a.modules.iter().find(|x| x.name == m.name) {
            None => out.push(Drift::changed(
                &part,
                format!(
                    "added (sha256 {}), not among the attested modules",
                    m.sha256
                ),
            )),
            Some(was) => {
                if was.sha256 != m.sha256 {
                    out.push(Drift::changed(
                        &part,
                        format!("sha256 {} → {} (attested → now)", was.sha256, m.sha256),
                    ));
                }
                if was.content_type != m.content_type {
                    let ct = |c: &Option<String>| c.clone().unwrap_or_else(|| "(none)".to_owned());
                    out.push(Drift::changed(
                        &part,
                        format!(
                            "content type {} → {} (attested → now)",
                            ct(&was.content_type),
                            ct(&m.content_type)
                        ),
                    ));
                }
            }
        }
    }
    for was in &a.modules {
        if !n.modules.iter().any(|m| m.name == was.name) {
            out.push(Drift::changed(
                &format!("{version} module `{}`", was.name),
                "removed (attested, not live now)",
            ));
        }
    }
}

fn settings_drift(
    out: &mut Vec<Drift>,
    version: &str,
    a: &VersionSettingsRecord,
    n: &VersionSettingsRecord,
) {
    if a.compatibility_date != n.compatibility_date {
        let d = |d: &Option<String>| d.clone().unwrap_or_else(|| "(none)".to_owned());
        out.push(Drift::changed(
            &format!("{version} compatibility_date"),
            format!(
                "{} → {} (attested → now)",
                d(&a.compatibility_date),
                d(&n.compatibility_date)
            ),
        ));
    }
    let flags = |from: &[String], to: &[String]| -> Vec<String> {
        to.iter().filter(|f| !from.contains(f)).cloned().collect()
    };
    let added = flags(&a.compatibility_flags, &n.compatibility_flags);
    let removed = flags(&n.compatibility_flags, &a.compatibility_flags);
    for (what, list) in [("added", added), ("removed", removed)] {
        for flag in list {
            out.push(Drift::changed(
                &format!("{version} compatibility flag `{flag}`"),
                what,
            ));
        }
    }
    let key = |b: &BindingRecord| b.name.clone();
    let was: BTreeMap<String, &BindingRecord> = a.bindings.iter().map(|b| (key(b), b)).collect();
    let is: BTreeMap<String, &BindingRecord> = n.bindings.iter().map(|b| (key(b), b)).collect();
    for (name, b) in &is {
        let part = format!("{version} binding `{name}`");
        match was.get(name) {
            None => out.push(Drift::changed(
                &part,
                format!("added ({})", describe_binding(b)),
            )),
            Some(w) if w != b => fields(out, &part, *w, *b),
            Some(_) => {}
        }
    }
    for (name, w) in &was {
        if !is.contains_key(name) {
            out.push(Drift::changed(
                &format!("{version} binding `{name}`"),
                format!("removed (attested: {})", describe_binding(w)),
            ));
        }
    }
}

fn describe_binding(b: &BindingRecord) -> String {
    let mut out = format!("type {}", b.kind);
    if let Some(t) = &b.target {
        out.push_str(&format!(", target {t}"));
    }
    if let Some(v) = &b.value_sha256 {
        out.push_str(&format!(", value sha256 {v}"));
    }
    out
}

fn set_drift<T: PartialEq>(
    out: &mut Vec<Drift>,
    part: &str,
    a: &[T],
    n: &[T],
    describe: impl Fn(&T) -> String,
) {
    for x in n.iter().filter(|x| !a.contains(x)) {
        out.push(Drift::changed(part, format!("{} added", describe(x))));
    }
    for x in a.iter().filter(|x| !n.contains(x)) {
        out.push(Drift::changed(part, format!("{} removed", describe(x))));
    }
}

fn route(r: &RouteRecord) -> String {
    match &r.script {
        Some(s) => format!("route `{}` (script `{s}`)", r.pattern),
        None => format!("route `{}` (no script)", r.pattern),
    }
}

fn ingress_drift(out: &mut Vec<Drift>, a: &IngressRecord, n: &IngressRecord) {
    both(out, "ingress.routes", &a.routes, &n.routes, |out, a, n| {
        set_drift(out, "ingress.routes", a, n, route)
    });
    both(
        out,
        "ingress.custom_domains",
        &a.custom_domains,
        &n.custom_domains,
        |out, a, n| {
            set_drift(out, "ingress.custom_domains", a, n, |d| {
                format!("custom domain `{}` (service `{}`)", d.hostname, d.service)
            })
        },
    );
    both(
        out,
        "ingress.workers_dev",
        &a.workers_dev,
        &n.workers_dev,
        |out, a, n| fields(out, "ingress.workers_dev", a, n),
    );
    if let (Some(a), Some(n)) = (&a.account_subdomain, &n.account_subdomain) {
        both(out, "ingress.account_subdomain", a, n, |out, a, n| {
            if a != n {
                out.push(Drift::changed(
                    "ingress.account_subdomain",
                    format!("`{a}` → `{n}` (attested → now)"),
                ));
            }
        });
    }
    match (&a.zone_routes, &n.zone_routes) {
        (None, None) => {}
        (Some(a), Some(n)) if a.zone_id == n.zone_id => {
            let part = format!("ingress.zone_routes ({})", n.zone_id);
            both(out, &part, &a.routes, &n.routes, |out, x, y| {
                set_drift(out, &part, x, y, route)
            });
        }
        (a, n) => {
            let zone = |z: &Option<ZoneRoutesRecord>| {
                z.as_ref()
                    .map(|z| format!("zone {}", z.zone_id))
                    .unwrap_or_else(|| "no zone".to_owned())
            };
            out.push(Drift::could_not_tell(
                "ingress.zone_routes",
                format!(
                    "the attestation read the routes of {}, the config now names {}",
                    zone(a),
                    zone(n)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LiveRecord {
        LiveRecord {
            account_id: "acc".into(),
            script: "auth".into(),
            deployment: Readable::Read(DeploymentRecord {
                id: Some("dep-1".into()),
                versions: vec![LiveVersionRecord {
                    version_id: "v1".into(),
                    percentage: 100.0,
                    modules: Readable::Read(ModulesRecord {
                        main_module: Some("worker.js".into()),
                        modules: vec![ModuleRecord {
                            name: "worker.js".into(),
                            sha256: "aa".repeat(32),
                            content_type: Some("application/javascript+module".into()),
                        }],
                    }),
                    settings: Readable::Read(VersionSettingsRecord {
                        compatibility_date: Some("2025-09-01".into()),
                        compatibility_flags: vec!["nodejs_compat".into()],
                        bindings: vec![
                            BindingRecord {
                                name: "SECRET".into(),
                                kind: "secret_text".into(),
                                target: None,
                                value_sha256: None,
                            },
                            BindingRecord {
                                name: "TRUSTED_ORIGIN".into(),
                                kind: "plain_text".into(),
                                target: None,
                                value_sha256: Some(sha256_hex(b"\"https://a.test\"")),
                            },
                        ],
                    }),
                }],
            }),
            observers: Readable::Read(ObserversRecord {
                tail_consumers: vec![],
                streaming_tail_consumers: vec![],
                logpush: false,
                log_destinations: vec![],
                trace_destinations: vec![],
                observability: false,
                tails: vec![],
            }),
            script_settings: Readable::Read(ScriptSettingsRecord {
                placement: None,
                limits: Some(serde_json::json!({ "cpu_ms": 50 })),
                cache_options: None,
                usage_model: Some("standard".into()),
            }),
            ingress: IngressRecord {
                routes: Readable::Read(vec![]),
                custom_domains: Readable::Read(vec![DomainRecord {
                    hostname: "auth.example.test".into(),
                    service: "auth".into(),
                    environment: Some("production".into()),
                    zone_name: Some("example.test".into()),
                }]),
                workers_dev: Readable::Read(WorkersDevRecord {
                    enabled: false,
                    previews_enabled: false,
                }),
                account_subdomain: None,
                zone_routes: None,
            },
        }
    }

    fn deployment(r: &mut LiveRecord) -> &mut DeploymentRecord {
        match &mut r.deployment {
            Readable::Read(d) => d,
            Readable::Unreadable(_) => unreachable!(),
        }
    }

    fn settings(r: &mut LiveRecord) -> &mut VersionSettingsRecord {
        match &mut deployment(r).versions[0].settings {
            Readable::Read(s) => s,
            Readable::Unreadable(_) => unreachable!(),
        }
    }

    fn modules(r: &mut LiveRecord) -> &mut ModulesRecord {
        match &mut deployment(r).versions[0].modules {
            Readable::Read(m) => m,
            Readable::Unreadable(_) => unreachable!(),
        }
    }

    fn only_change(attested: &LiveRecord, now: &LiveRecord) -> Drift {
        let drift = LiveRecord::drift(attested, now);
        assert_eq!(drift.len(), 1, "{drift:#?}");
        assert!(drift[0].is_change(), "{drift:#?}");
        drift[0].clone()
    }

    #[test]
    fn equal_records_have_no_drift_and_survive_a_json_round_trip() {
        let a = record();
        assert!(LiveRecord::drift(&a, &a.clone()).is_empty());
        let text = serde_json::to_string(&a).unwrap();
        let back: LiveRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
        assert!(LiveRecord::drift(&back, &a).is_empty());
        assert!(LiveRecord::notes(&back, &a).is_empty());
    }

    #[test]
    fn a_version_with_traffic_not_attested_is_a_change_naming_it() {
        let a = record();
        let mut n = record();
        let mut new = deployment(&mut n).versions[0].clone();
        new.version_id = "v2".into();
        new.percentage = 10.0;
        deployment(&mut n).versions[0].percentage = 90.0;
        deployment(&mut n).versions.push(new);
        let d = only_change(&a, &n);
        assert_eq!(d.part, "version v2");
        assert!(d.detail.contains("10%") && d.detail.contains("not among the attested"));
        // The share of the attested version moved: a note, not drift.
        let notes = LiveRecord::notes(&a, &n).join("\n");
        assert!(notes.contains("version v1 receives 90%"), "{notes}");
    }

    #[test]
    fn a_new_deployment_of_the_same_versions_is_a_note_not_drift() {
        let a = record();
        let mut n = record();
        deployment(&mut n).id = Some("dep-2".into());
        assert!(LiveRecord::drift(&a, &n).is_empty());
        assert_eq!(
            LiveRecord::notes(&a, &n),
            vec!["the active deployment is dep-2 (attested: dep-1)".to_owned()]
        );
    }

    #[test]
    fn each_module_change_is_one_drift_naming_version_and_module() {
        let a = record();
        let mut n = record();
        modules(&mut n).modules[0].sha256 = "bb".repeat(32);
        let d = only_change(&a, &n);
        assert_eq!(d.part, "version v1 module `worker.js`");
        assert!(d.detail.contains(&"bb".repeat(32)), "{}", d.detail);

        let mut n = record();
        modules(&mut n).modules[0].content_type = Some("application/javascript".into());
        let d = only_change(&a, &n);
        assert!(d.detail.contains("content type"), "{}", d.detail);

        let mut n = record();
        modules(&mut n).modules.push(ModuleRecord {
            name: "extra.js".into(),
            sha256: "cc".repeat(32),
            content_type: None,
        });
        assert_eq!(only_change(&a, &n).part, "version v1 module `extra.js`");

        let mut n = record();
        modules(&mut n).main_module = Some("other.js".into());
        assert_eq!(only_change(&a, &n).part, "version v1 main module");
    }

    #[test]
    fn each_settings_change_is_one_drift_naming_the_setting() {
        let a = record();
        let mut n = record();
        settings(&mut n).bindings[1].value_sha256 = Some(sha256_hex(b"\"https://evil.test\""));
        let d = only_change(&a, &n);
        assert_eq!(d.part, "version v1 binding `TRUSTED_ORIGIN`.value_sha256");

        let mut n = record();
        settings(&mut n).bindings.push(BindingRecord {
            name: "EXFIL".into(),
            kind: "service".into(),
            target: Some("collector".into()),
            value_sha256: None,
        });
        let d = only_change(&a, &n);
        assert_eq!(d.part, "version v1 binding `EXFIL`");
        assert!(d.detail.contains("added") && d.detail.contains("collector"));

        let mut n = record();
        settings(&mut n).bindings.remove(0);
        let d = only_change(&a, &n);
        assert_eq!(d.part, "version v1 binding `SECRET`");
        assert!(d.detail.contains("removed"));

        let mut n = record();
        settings(&mut n)
            .compatibility_flags
            .push("streams_enable_constructors".into());
        assert_eq!(
            only_change(&a, &n).part,
            "version v1 compatibility flag `streams_enable_constructors`"
        );

        let mut n = record();
        settings(&mut n).compatibility_date = Some("2026-01-01".into());
        assert_eq!(only_change(&a, &n).part, "version v1 compatibility_date");

        let mut n = record();
        if let Readable::Read(s) = &mut n.script_settings {
            s.placement = Some(serde_json::json!({ "mode": "smart" }));
        }
        let d = only_change(&a, &n);
        assert_eq!(d.part, "script settings.placement");
        assert!(d.detail.contains("smart"), "{}", d.detail);
    }

    #[test]
    fn each_observer_and_ingress_change_is_one_drift_naming_it() {
        let a = record();
        let mut n = record();
        if let Readable::Read(o) = &mut n.observers {
            o.tail_consumers.push("log-collector".into());
        }
        let d = only_change(&a, &n);
        assert_eq!(d.part, "observers.tail_consumers");
        assert!(d.detail.contains("added \"log-collector\""), "{}", d.detail);

        let mut n = record();
        if let Readable::Read(o) = &mut n.observers {
            o.observability = true;
        }
        assert_eq!(only_change(&a, &n).part, "observers.observability");

        let mut n = record();
        n.ingress.routes = Readable::Read(vec![RouteRecord {
            pattern: "auth.example.test/*".into(),
            script: Some("auth".into()),
        }]);
        let d = only_change(&a, &n);
        assert_eq!(d.part, "ingress.routes");
        assert!(d.detail.contains("auth.example.test/*") && d.detail.contains("added"));

        let mut n = record();
        n.ingress.custom_domains = Readable::Read(vec![]);
        let d = only_change(&a, &n);
        assert!(d.detail.contains("auth.example.test") && d.detail.contains("removed"));

        let mut n = record();
        n.ingress.workers_dev = Readable::Read(WorkersDevRecord {
            enabled: true,
            previews_enabled: false,
        });
        assert_eq!(only_change(&a, &n).part, "ingress.workers_dev.enabled");
    }

    #[test]
    fn an_unreadable_part_is_could_not_tell_never_unchanged() {
        let a = record();
        let mut n = record();
        n.observers = Readable::Unreadable("HTTP 403".into());
        let d = LiveRecord::drift(&a, &n);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DriftKind::CouldNotTell);
        assert_eq!(d[0].part, "observers");
        assert!(d[0].detail.contains("HTTP 403"));
        // Unreadable on both sides is not "equal".
        let mut b = record();
        b.observers = Readable::Unreadable("HTTP 403".into());
        let d = LiveRecord::drift(&b, &n);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DriftKind::CouldNotTell);
        // Unreadable when attested, readable now: could not tell either.
        let d = LiveRecord::drift(&b, &a);
        assert_eq!(d[0].kind, DriftKind::CouldNotTell);
        assert!(d[0].detail.contains("attestation could not record"));

        let mut n = record();
        deployment(&mut n).versions[0].modules = Readable::Unreadable("HTTP 500".into());
        let d = LiveRecord::drift(&a, &n);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].kind, d[0].part.as_str()),
            (DriftKind::CouldNotTell, "version v1")
        );

        let error = ApiError::Unauthorized {
            url: "https://api.test/x".into(),
            status: 403,
            detail: String::new(),
        };
        let n = LiveRecord::unreadable("acc", "auth", None, &error);
        let d = LiveRecord::drift(&a, &n);
        assert_eq!(d.len(), 1, "one reason, not one per part: {d:#?}");
        assert_eq!(
            (d[0].kind, d[0].part.as_str()),
            (DriftKind::CouldNotTell, "deployment")
        );
        assert!(
            d[0].detail.contains("Workers Scripts Read"),
            "{}",
            d[0].detail
        );
    }

    #[test]
    fn a_deployment_that_serves_no_version_is_could_not_tell_not_unchanged() {
        let a = record();
        let mut n = record();
        deployment(&mut n).versions.clear();
        let d = LiveRecord::drift(&a, &n);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].kind, DriftKind::CouldNotTell);
    }

    #[test]
    fn another_account_or_script_is_could_not_tell() {
        let a = record();
        let mut n = record();
        n.account_id = "other".into();
        let d = LiveRecord::drift(&a, &n);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DriftKind::CouldNotTell);
        assert!(d[0].detail.contains("other"));
    }

    #[test]
    fn a_binding_records_a_value_digest_never_a_value_and_a_secret_by_name() {
        let plain = binding(&DeployedBinding {
            name: "ORIGIN".into(),
            kind: "plain_text".into(),
            target: None,
            value: Some(serde_json::json!("https://a.test")),
        });
        assert_eq!(
            plain.value_sha256.as_deref(),
            Some(sha256_hex(b"\"https://a.test\"").as_str())
        );
        let secret = binding(&DeployedBinding {
            name: "KEY".into(),
            kind: "secret_text".into(),
            target: Some("leak".into()),
            value: Some(serde_json::json!("hunter2")),
        });
        assert_eq!((secret.target, secret.value_sha256), (None, None));
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("https://a.test"), "{text}");
        // Key order does not change a json value's digest.
        let x: Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":3}}"#).unwrap();
        let y: Value = serde_json::from_str(r#"{"a":{"c":3,"d":2},"b":1}"#).unwrap();
        assert_eq!(canonical(&x), canonical(&y));
    }
}
