//! The recorded response shapes (`fixtures/cloudflare-api/`), filled in from
//! a [`Scenario`]: what a stand-in Cloudflare API serves.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use crate::compare::{Bundle, DeployedBinding};
use crate::model::Secret;

use super::multipart;
use super::provenance::PackageDependency;

const DEPLOYMENTS: &str = include_str!("../../fixtures/cloudflare-api/deployments.json");
const VERSION: &str = include_str!("../../fixtures/cloudflare-api/version.json");
const VERSION_MODULES: &str = include_str!("../../fixtures/cloudflare-api/version-modules.json");
const SETTINGS: &str = include_str!("../../fixtures/cloudflare-api/settings.json");
const SCRIPT_SETTINGS: &str = include_str!("../../fixtures/cloudflare-api/script-settings.json");
const TAILS: &str = include_str!("../../fixtures/cloudflare-api/tails.json");
const ERROR: &str = include_str!("../../fixtures/cloudflare-api/error.json");
const ROUTES: &str = include_str!("../../fixtures/cloudflare-api/routes.json");
const DOMAINS: &str = include_str!("../../fixtures/cloudflare-api/domains.json");
const SUBDOMAIN: &str = include_str!("../../fixtures/cloudflare-api/subdomain.json");
const ACCOUNT_SUBDOMAIN: &str =
    include_str!("../../fixtures/cloudflare-api/account-subdomain.json");
const ZONE_ROUTES: &str = include_str!("../../fixtures/cloudflare-api/zone-routes.json");

/// Replaces every string value that is exactly `"{{name}}"` by `vars[name]`.
fn fill(template: &str, vars: &BTreeMap<&str, Value>) -> Value {
    fn walk(value: &mut Value, vars: &BTreeMap<&str, Value>) {
        match value {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("{{").and_then(|s| s.strip_suffix("}}"))
                    && let Some(v) = vars.get(name)
                {
                    *value = v.clone();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, vars)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, vars)),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(template).expect("recorded shapes are valid JSON");
    walk(&mut value, vars);
    value
}

/// One version of a scenario's deployment.
#[derive(Debug, Clone)]
pub struct ScenarioVersion {
    pub id: String,
    /// Share of traffic, 0–100.
    pub percentage: f64,
    pub bundle: Bundle,
    pub compatibility_date: String,
    pub compatibility_flags: Vec<String>,
    pub bindings: Vec<DeployedBinding>,
    /// The client that created it (`metadata.source`, the beta `source`).
    pub source: String,
    /// `annotations["workers/triggered_by"]`; `None`: not annotated.
    pub triggered_by: Option<String>,
    /// `annotations["workers/message"]`.
    pub message: Option<String>,
    /// The beta answer's `package_dependencies`; `None`: the field is absent.
    pub package_dependencies: Option<Vec<PackageDependency>>,
}

/// What a stand-in Cloudflare account holds for one script.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub account_id: String,
    pub script: String,
    /// The only token the stand-in accepts.
    pub token: Secret,
    pub deployment_id: String,
    /// The active deployment's versions.
    pub versions: Vec<ScenarioVersion>,
    /// Services receiving the script's tail events.
    pub tail_consumers: Vec<String>,
    pub logpush: bool,
    /// Destinations of Workers Logs (`observability.logs.destinations`).
    pub log_destinations: Vec<String>,
    /// Ids of open streaming tail sessions.
    pub tails: Vec<String>,
    /// Whether the beta `?include=modules` endpoint answers; when false it
    /// 404s and clients must fall back to the script download.
    pub beta_modules: bool,
    /// The script's route patterns (`…/scripts/{s}/routes`).
    pub routes: Vec<String>,
    /// Custom domain hostnames attached to the script.
    pub custom_domains: Vec<String>,
    /// Custom domains of other Workers in the account: `(hostname, service)`.
    pub other_domains: Vec<(String, String)>,
    /// `…/scripts/{s}/subdomain` `enabled`.
    pub workers_dev: bool,
    /// `…/scripts/{s}/subdomain` `previews_enabled`.
    pub previews_enabled: bool,
    /// The account's `workers.dev` subdomain.
    pub account_subdomain: String,
    /// The zone whose routes `/zones/{z}/workers/routes` serves.
    pub zone_id: String,
    /// That zone's routes: `(pattern, script)`.
    pub zone_routes: Vec<(String, Option<String>)>,
    /// Streaming tail consumer services (`/script-settings` only).
    pub streaming_tail_consumers: Vec<String>,
    /// Workers Observability trace destinations.
    pub trace_destinations: Vec<String>,
    /// Whether Workers Observability keeps logs (and traces, when there is
    /// a trace destination) with Cloudflare.
    pub observability: bool,
    /// `placement` in `/settings`; `None`: `{}`.
    pub placement: Option<Value>,
    /// `limits` in `/settings`.
    pub limits: Value,
    /// `cache_options` in `/settings`; `None`: `null`.
    pub cache_options: Option<Value>,
    /// `usage_model` in `/settings`.
    pub usage_model: String,
}

/// The field a binding type keeps its target in (upload metadata names).
fn target_field(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "d1" => "id",
        "kv_namespace" => "namespace_id",
        "r2_bucket" => "bucket_name",
        "service" => "service",
        "queue" => "queue_name",
        "vectorize" => "index_name",
        "analytics_engine" => "dataset",
        "durable_object_namespace" => "class_name",
        _ => return None,
    })
}

impl Scenario {
    /// One version at 100 % serving `bundle` with the given settings.
    pub fn single(
        account_id: &str,
        script: &str,
        token: Secret,
        bundle: Bundle,
        compatibility_date: &str,
        compatibility_flags: &[String],
        bindings: Vec<DeployedBinding>,
    ) -> Scenario {
        Scenario {
            account_id: account_id.to_owned(),
            script: script.to_owned(),
            token,
            deployment_id: "5a1e7c3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c".to_owned(),
            versions: vec![ScenarioVersion {
                id: "9b3c2d1e-4f5a-4b6c-8d7e-1f2a3b4c5d6e".to_owned(),
                percentage: 100.0,
                bundle,
                compatibility_date: compatibility_date.to_owned(),
                compatibility_flags: compatibility_flags.to_vec(),
                bindings,
                source: "wrangler".to_owned(),
                triggered_by: Some("upload".to_owned()),
                message: None,
                package_dependencies: None,
            }],
            tail_consumers: Vec::new(),
            logpush: false,
            log_destinations: Vec::new(),
            tails: Vec::new(),
            beta_modules: true,
            routes: Vec::new(),
            custom_domains: Vec::new(),
            other_domains: vec![("www.example.test".to_owned(), "marketing-site".to_owned())],
            workers_dev: false,
            previews_enabled: false,
            account_subdomain: "flarelink".to_owned(),
            zone_id: "0da42c8d2132a9ddaf714f9e7c920711".to_owned(),
            zone_routes: Vec::new(),
            streaming_tail_consumers: Vec::new(),
            trace_destinations: Vec::new(),
            observability: false,
            placement: None,
            limits: json!({ "cpu_ms": 50 }),
            cache_options: None,
            usage_model: "standard".to_owned(),
        }
    }

    pub fn version(&self, id: &str) -> Option<&ScenarioVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// The version with the largest share (the one `/settings` reflects).
    pub fn primary(&self) -> Option<&ScenarioVersion> {
        self.versions.iter().max_by(|a, b| {
            a.percentage
                .partial_cmp(&b.percentage)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    }

    fn bindings_json(bindings: &[DeployedBinding]) -> Value {
        Value::Array(
            bindings
                .iter()
                .map(|b| {
                    let mut o = json!({ "name": b.name, "type": b.kind });
                    if let (Some(field), Some(target)) = (target_field(&b.kind), &b.target) {
                        o[field] = json!(target);
                    }
                    match (b.kind.as_str(), &b.value) {
                        ("plain_text", Some(v)) => o["text"] = v.clone(),
                        ("json", Some(v)) => o["json"] = v.clone(),
                        _ => {}
                    }
                    o
                })
                .collect(),
        )
    }

    fn number(&self, id: &str) -> usize {
        self.versions.iter().position(|v| v.id == id).unwrap_or(0) + 41
    }

    /// `GET …/scripts/{s}/deployments`.
    pub fn deployments_body(&self) -> Value {
        let versions: Vec<Value> = self
            .versions
            .iter()
            .map(|v| json!({ "percentage": v.percentage, "version_id": v.id }))
            .collect();
        fill(
            DEPLOYMENTS,
            &BTreeMap::from([
                ("deployment_id", json!(self.deployment_id)),
                ("versions", json!(versions)),
            ]),
        )
    }

    fn version_vars(&self, v: &ScenarioVersion) -> BTreeMap<&'static str, Value> {
        BTreeMap::from([
            ("version_id", json!(v.id)),
            ("number", json!(self.number(&v.id))),
            ("bindings", Self::bindings_json(&v.bindings)),
            ("etag", json!(v.bundle.aggregate_sha256())),
            ("compatibility_date", json!(v.compatibility_date)),
            ("compatibility_flags", json!(v.compatibility_flags)),
            ("source", json!(v.source)),
        ])
    }

    /// `GET …/scripts/{s}/versions/{id}`.
    pub fn version_body(&self, id: &str) -> Option<Value> {
        let v = self.version(id)?;
        Some(fill(VERSION, &self.version_vars(v)))
    }

    /// `GET …/workers/workers/{s}/versions/{id}?include=modules` (beta).
    pub fn version_modules_body(&self, id: &str) -> Option<Value> {
        let v = self.version(id)?;
        let mut vars = self.version_vars(v);
        let modules: Vec<Value> = v
            .bundle
            .modules()
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "content_type": m.content_type,
                    "content_base64": base64::engine::general_purpose::STANDARD.encode(&m.bytes),
                })
            })
            .collect();
        vars.insert("modules", json!(modules));
        vars.insert("main_module", json!(v.bundle.main_module));
        let mut annotations = serde_json::Map::new();
        for (key, value) in [
            ("workers/message", &v.message),
            ("workers/triggered_by", &v.triggered_by),
        ] {
            if let Some(value) = value {
                annotations.insert(key.to_owned(), json!(value));
            }
        }
        vars.insert("annotations", Value::Object(annotations));
        let dependencies: Option<Vec<Value>> = v.package_dependencies.as_ref().map(|deps| {
            deps.iter()
                .map(|d| {
                    json!({
                        "name": d.name,
                        "packageJsonVersion": d.package_json_version,
                        "installedVersion": d.installed_version,
                    })
                })
                .collect()
        });
        vars.insert("package_dependencies", json!(dependencies));
        let mut body = fill(VERSION_MODULES, &vars);
        if v.package_dependencies.is_none()
            && let Some(result) = body["result"].as_object_mut()
        {
            result.remove("package_dependencies");
        }
        Some(body)
    }

    /// `GET …/scripts/{s}/settings`: the script-level settings, which follow
    /// the version with the largest share.
    pub fn settings_body(&self) -> Value {
        let mut vars = self
            .primary()
            .map(|v| self.version_vars(v))
            .unwrap_or_default();
        self.observer_vars(&mut vars);
        vars.insert(
            "placement",
            self.placement.clone().unwrap_or_else(|| json!({})),
        );
        vars.insert("limits", self.limits.clone());
        vars.insert(
            "cache_options",
            self.cache_options.clone().unwrap_or(Value::Null),
        );
        vars.insert("usage_model", json!(self.usage_model));
        fill(SETTINGS, &vars)
    }

    /// The observers both settings endpoints report.
    fn observer_vars(&self, vars: &mut BTreeMap<&'static str, Value>) {
        vars.insert("logpush", json!(self.logpush));
        vars.insert(
            "tail_consumers",
            json!(
                self.tail_consumers
                    .iter()
                    .map(|s| json!({ "service": s }))
                    .collect::<Vec<_>>()
            ),
        );
        let logs = !self.log_destinations.is_empty() || self.observability;
        let traces = !self.trace_destinations.is_empty();
        vars.insert(
            "observability",
            json!({
                "enabled": logs || traces,
                "head_sampling_rate": 1,
                "logs": {
                    "enabled": logs,
                    "invocation_logs": true,
                    "persist": self.observability,
                    "destinations": self.log_destinations,
                },
                "traces": {
                    "enabled": traces,
                    "persist": self.observability,
                    "destinations": self.trace_destinations,
                },
            }),
        );
    }

    /// `GET …/scripts/{s}/script-settings`: the non-versioned settings.
    pub fn script_settings_body(&self) -> Value {
        let mut vars = BTreeMap::new();
        self.observer_vars(&mut vars);
        vars.insert(
            "streaming_tail_consumers",
            json!(
                self.streaming_tail_consumers
                    .iter()
                    .map(|s| json!({ "service": s }))
                    .collect::<Vec<_>>()
            ),
        );
        fill(SCRIPT_SETTINGS, &vars)
    }

    /// `GET …/scripts/{s}/tails`.
    pub fn tails_body(&self) -> Value {
        let tails: Vec<Value> = self
            .tails
            .iter()
            .map(|id| {
                json!({
                    "id": id,
                    "url": format!("wss://tail.developers.workers.dev/{id}"),
                    "expires_at": "2026-11-23T12:00:00Z",
                })
            })
            .collect();
        fill(TAILS, &BTreeMap::from([("tails", json!(tails))]))
    }

    fn route_json(i: usize, pattern: &str, script: Option<&str>) -> Value {
        let mut o = json!({
            "id": format!("{:032x}", 0x7e57_0000_u64 + i as u64),
            "pattern": pattern,
        });
        if let Some(s) = script {
            o["script"] = json!(s);
        }
        o
    }

    /// `GET …/scripts/{s}/routes`.
    pub fn routes_body(&self) -> Value {
        let routes: Vec<Value> = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, p)| Self::route_json(i, p, Some(&self.script)))
            .collect();
        fill(ROUTES, &BTreeMap::from([("routes", json!(routes))]))
    }

    /// `GET /accounts/{a}/workers/domains`: every Worker's custom domains
    /// (the stand-in ignores the `service` filter; clients filter too).
    pub fn domains_body(&self) -> Value {
        let ours = self
            .custom_domains
            .iter()
            .map(|h| (h.as_str(), self.script.as_str()));
        let theirs = self
            .other_domains
            .iter()
            .map(|(h, s)| (h.as_str(), s.as_str()));
        let domains: Vec<Value> = ours
            .chain(theirs)
            .enumerate()
            .map(|(i, (hostname, service))| {
                let zone_name = if hostname.parse::<std::net::IpAddr>().is_ok() {
                    hostname.to_owned()
                } else {
                    hostname
                        .rsplitn(3, '.')
                        .take(2)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join(".")
                };
                json!({
                    "id": format!("{:032x}", 0xd0_0000_u64 + i as u64),
                    "cert_id": format!("{:032x}", 0xce_0000_u64 + i as u64),
                    "environment": "production",
                    "hostname": hostname,
                    "service": service,
                    "zone_id": self.zone_id,
                    "zone_name": zone_name,
                })
            })
            .collect();
        fill(DOMAINS, &BTreeMap::from([("domains", json!(domains))]))
    }

    /// `GET …/scripts/{s}/subdomain`.
    pub fn subdomain_body(&self) -> Value {
        fill(
            SUBDOMAIN,
            &BTreeMap::from([
                ("enabled", json!(self.workers_dev)),
                ("previews_enabled", json!(self.previews_enabled)),
            ]),
        )
    }

    /// `GET /accounts/{a}/workers/subdomain`.
    pub fn account_subdomain_body(&self) -> Value {
        fill(
            ACCOUNT_SUBDOMAIN,
            &BTreeMap::from([("subdomain", json!(self.account_subdomain))]),
        )
    }

    /// `GET /zones/{z}/workers/routes`.
    pub fn zone_routes_body(&self) -> Value {
        let routes: Vec<Value> = self
            .zone_routes
            .iter()
            .enumerate()
            .map(|(i, (p, s))| Self::route_json(100 + i, p, s.as_deref()))
            .collect();
        fill(
            ZONE_ROUTES,
            &BTreeMap::from([("zone_routes", json!(routes))]),
        )
    }

    /// `GET …/scripts/{s}/content/v2`: content type, `cf-entrypoint`, body
    /// of the version with the largest share.
    pub fn content_v2(&self) -> Option<(String, String, Vec<u8>)> {
        let v = self.primary()?;
        let (ct, body) = multipart::encode(&v.bundle);
        Some((ct, v.bundle.main_module.clone().unwrap_or_default(), body))
    }
}

/// An error envelope (`success: false`).
pub fn error_body(code: u32, message: &str) -> Value {
    fill(
        ERROR,
        &BTreeMap::from([("code", json!(code)), ("message", json!(message))]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Module;

    #[test]
    fn every_placeholder_is_filled() {
        let bundle = Bundle::new(
            Some("worker.js".into()),
            vec![Module::new(
                "worker.js",
                Some("application/javascript+module"),
                b"x".to_vec(),
            )],
        );
        let s = Scenario::single(
            "acc",
            "auth",
            Secret::new("t"),
            bundle,
            "2025-09-01",
            &["nodejs_compat".into()],
            vec![DeployedBinding {
                name: "DB".into(),
                kind: "d1".into(),
                target: Some("db".into()),
                value: None,
            }],
        );
        let id = s.versions[0].id.clone();
        for body in [
            s.deployments_body(),
            s.version_body(&id).unwrap(),
            s.version_modules_body(&id).unwrap(),
            s.settings_body(),
            s.script_settings_body(),
            s.tails_body(),
            s.routes_body(),
            s.domains_body(),
            s.subdomain_body(),
            s.account_subdomain_body(),
            s.zone_routes_body(),
            error_body(10000, "Authentication error"),
        ] {
            let text = body.to_string();
            assert!(!text.contains("{{"), "{text}");
        }
        assert_eq!(
            s.version_body(&id).unwrap()["result"]["resources"]["bindings"][0]["id"],
            "db"
        );
    }
}
