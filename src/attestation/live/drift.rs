//! The drift between two [`LiveRecord`]s: what `attestation verify`
//! reports when the deployment is read again later.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::*;

impl LiveRecord {
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
