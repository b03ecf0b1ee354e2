//! The Worker's wrangler config (`wrangler.jsonc`, `wrangler.json`,
//! `wrangler.toml`) read as the declaration: what `wrangler deploy` (4.86)
//! would make the deployment, in the terms the Cloudflare API reports it.
//!
//! Environment rules follow workers-sdk's config normalisation
//! (`packages/workers-utils/src/config/validation.ts` at `wrangler@4.86.0`):
//! with `wrangler_env` set, inheritable keys (compatibility settings, routes,
//! `workers_dev`, `preview_urls`, limits, placement, logpush, observability,
//! …) come from `env.<name>` when it sets them and from the top level
//! otherwise; bindings (vars, secrets, KV, D1, services, …) and tail
//! consumers are never inherited; the script name is `<name>-<env>` unless
//! the environment sets its own `name`. `workers_dev` defaults to "no
//! routes", and so does `preview_urls` (the API's default, which wrangler
//! leaves to it).
//!
//! Every binding kind wrangler defines is mapped to the binding `type` the
//! API lists (as wrangler's `create-worker-upload-form.ts` sends it), with
//! its target read through the same fields as the deployed side
//! ([`TARGET_FIELDS`]). A key this module does not
//! know is an error naming it: it might define bindings that would then go
//! undeclared.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::compare::DeclaredBinding;

/// What a wrangler config declares for one environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WranglerDeclaration {
    /// The script name, with the environment's suffix.
    pub script: Option<String>,
    /// `main`, as written (relative to the config's folder).
    pub main: Option<String>,
    pub compatibility_date: Option<String>,
    pub compatibility_flags: Vec<String>,
    pub bindings: Vec<DeclaredBinding>,
    /// Zone route patterns.
    pub routes: Vec<String>,
    /// Routes with `custom_domain: true`.
    pub custom_domains: Vec<String>,
    pub workers_dev: bool,
    pub preview_urls: bool,
    /// The one zone the routes name by `zone_id`, if they name exactly one.
    pub zone_id: Option<String>,
    pub tail_consumers: Vec<String>,
    pub streaming_tail_consumers: Vec<String>,
    pub logpush: bool,
    /// `observability.enabled` (or its logs or traces enabled).
    pub observability: bool,
    pub log_destinations: Vec<String>,
    pub trace_destinations: Vec<String>,
    /// `placement` as the API reports it; `None` when unset or `mode = "off"`.
    pub placement: Option<Value>,
    pub limits: Option<Value>,
    /// `cache` (the API's `cache_options`).
    pub cache_options: Option<Value>,
    /// Whether source maps are uploaded (they are modules then).
    pub upload_source_maps: bool,
}

/// Keys that may be set in an environment and fall back to the top level.
const INHERITABLE: &[&str] = &[
    "name",
    "account_id",
    "compatibility_date",
    "compatibility_flags",
    "main",
    "find_additional_modules",
    "preserve_file_names",
    "base_dir",
    "workers_dev",
    "preview_urls",
    "routes",
    "route",
    "tsconfig",
    "jsx_factory",
    "jsx_fragment",
    "migrations",
    "triggers",
    "limits",
    "rules",
    "build",
    "no_bundle",
    "minify",
    "keep_names",
    "first_party_worker",
    "logfwdr",
    "logpush",
    "upload_source_maps",
    "placement",
    "assets",
    "observability",
    "cache",
    "compliance_region",
    "python_modules",
    "previews",
];

/// Keys never inherited by an environment: bindings and what is like them.
const NOT_INHERITABLE: &[&str] = &[
    "define",
    "vars",
    "secrets",
    "durable_objects",
    "workflows",
    "cloudchamber",
    "containers",
    "kv_namespaces",
    "send_email",
    "queues",
    "r2_buckets",
    "d1_databases",
    "vectorize",
    "ai_search_namespaces",
    "ai_search",
    "hyperdrive",
    "services",
    "analytics_engine_datasets",
    "browser",
    "ai",
    "images",
    "media",
    "stream",
    "version_metadata",
    "unsafe",
    "mtls_certificates",
    "tail_consumers",
    "streaming_tail_consumers",
    "dispatch_namespaces",
    "pipelines",
    "secrets_store_secrets",
    "artifacts",
    "unsafe_hello_world",
    "flagship",
    "ratelimits",
    "worker_loaders",
    "vpc_services",
    "vpc_networks",
];

/// Keys only the top level has.
const TOP_LEVEL_ONLY: &[&str] = &[
    "$schema",
    "env",
    "legacy_env",
    "send_metrics",
    "dev",
    "site",
    "wasm_modules",
    "text_blobs",
    "data_blobs",
    "alias",
    "keep_vars",
    "pages_build_output_dir",
];

/// Parses a wrangler config by its file name: `.toml` with `toml`, `.json`
/// and `.jsonc` as JSON with comments and trailing commas (what wrangler's
/// own parser allows, nothing looser).
pub fn parse(path: &Path, text: &str) -> Result<Value, String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "toml" => {
            let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_value(table).map_err(|e| e.to_string())
        }
        "json" | "jsonc" => {
            let options = jsonc_parser::ParseOptions {
                allow_comments: true,
                allow_trailing_commas: true,
                allow_loose_object_property_names: false,
                allow_missing_commas: false,
                allow_single_quoted_strings: false,
                allow_hexadecimal_numbers: false,
                allow_unary_plus_numbers: false,
                allow_bare_decimal_point_numbers: false,
                allow_non_finite_numbers: false,
                allow_extended_string_escapes: false,
            };
            let value: Option<Value> =
                jsonc_parser::parse_to_serde_value(text, &options).map_err(|e| e.to_string())?;
            value.ok_or_else(|| "the file holds no value".to_owned())
        }
        other => Err(format!(
            "`{other}` is not a wrangler config extension (`.jsonc`, `.json` or `.toml`)"
        )),
    }
}

/// Reads the declaration for `env` (`None`: the top level) from a parsed
/// wrangler config.
pub fn declaration(config: &Value, env: Option<&str>) -> Result<WranglerDeclaration, String> {
    let top = config
        .as_object()
        .ok_or("the config is not a table of keys")?;
    check_keys(top, "the top level", true)?;
    let env_table = match env {
        None => None,
        Some(name) => {
            if top.get("legacy_env") == Some(&Value::Bool(false)) {
                return Err(
                    "`legacy_env = false` (service environments) is not supported: the script \
                     name and bindings would follow other rules"
                        .to_owned(),
                );
            }
            let table = top
                .get("env")
                .and_then(|e| e.get(name))
                .ok_or_else(|| format!("there is no environment `env.{name}`"))?
                .as_object()
                .ok_or_else(|| format!("`env.{name}` is not a table"))?;
            check_keys(table, &format!("`env.{name}`"), false)?;
            Some((name, table))
        }
    };
    let r = Resolved {
        top,
        env: env_table,
    };
    let script = match (r.env, top.get("name")) {
        (Some((_, table)), _) if table.contains_key("name") => {
            Some(r.string("name")?.unwrap_or_default())
        }
        (Some((env, _)), Some(_)) => r.string("name")?.map(|n| format!("{n}-{env}")),
        _ => r.string("name")?,
    };
    let mut d = WranglerDeclaration {
        script,
        ..WranglerDeclaration::default()
    };
    d.main = r.string("main")?;
    d.compatibility_date = r.string("compatibility_date")?;
    d.compatibility_flags = r.strings("compatibility_flags")?;

    let mut routes = Vec::new();
    if let Some(route) = r.inherited("route") {
        routes.push(route.clone());
    }
    if let Some(list) = r.inherited("routes") {
        routes.extend(
            list.as_array()
                .ok_or_else(|| r.shape("routes", "a list"))?
                .iter()
                .cloned(),
        );
    }
    let mut zones = BTreeSet::new();
    for route in &routes {
        match route {
            Value::String(p) => d.routes.push(p.clone()),
            Value::Object(o) => {
                let pattern = o
                    .get("pattern")
                    .and_then(Value::as_str)
                    .ok_or_else(|| r.shape("routes", "routes with a `pattern`"))?;
                if o.get("custom_domain").and_then(Value::as_bool) == Some(true) {
                    d.custom_domains.push(pattern.to_owned());
                } else {
                    d.routes.push(pattern.to_owned());
                }
                if let Some(zone) = o.get("zone_id").and_then(Value::as_str) {
                    zones.insert(zone.to_owned());
                }
            }
            _ => return Err(r.shape("routes", "strings or tables")),
        }
    }
    if zones.len() == 1 {
        d.zone_id = zones.pop_first();
    }
    let no_routes = routes.is_empty();
    d.workers_dev = r.boolean("workers_dev")?.unwrap_or(no_routes);
    d.preview_urls = r.boolean("preview_urls")?.unwrap_or(no_routes);

    d.tail_consumers = r.services("tail_consumers")?;
    d.streaming_tail_consumers = r.services("streaming_tail_consumers")?;
    d.logpush = r.boolean("logpush")?.unwrap_or(false);
    d.upload_source_maps = r.boolean("upload_source_maps")?.unwrap_or(false);
    if let Some(obs) = r.inherited("observability") {
        let enabled = |v: Option<&Value>| v.and_then(|v| v.get("enabled")).and_then(Value::as_bool);
        let (logs, traces) = (obs.get("logs"), obs.get("traces"));
        d.observability = enabled(Some(obs)).unwrap_or(false)
            || enabled(logs).unwrap_or(false)
            || enabled(traces).unwrap_or(false);
        let destinations = |v: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
            match v.and_then(|v| v.get("destinations")) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(list) => {
                    string_list(list).ok_or_else(|| r.shape(what, "a list of destination names"))
                }
            }
        };
        d.log_destinations = destinations(logs, "observability.logs.destinations")?;
        d.trace_destinations = destinations(traces, "observability.traces.destinations")?;
    }
    d.placement = match r.inherited("placement") {
        None => None,
        Some(p) if p.get("mode").and_then(Value::as_str) == Some("off") => None,
        Some(p) => Some(p.clone()),
    };
    d.limits = r.inherited("limits").cloned();
    d.cache_options = r.inherited("cache").cloned();
    d.bindings = bindings(&r)?;
    Ok(d)
}

/// Every key must be one wrangler 4.86 knows (and so one whose meaning for
/// the declaration is decided here).
fn check_keys(table: &Map<String, Value>, place: &str, top: bool) -> Result<(), String> {
    for key in table.keys() {
        let known = INHERITABLE.contains(&key.as_str())
            || NOT_INHERITABLE.contains(&key.as_str())
            || (top && TOP_LEVEL_ONLY.contains(&key.as_str()));
        if !known {
            return Err(format!(
                "unknown key `{key}` in {place}: it is not a wrangler 4.86 config key, and it \
                 might define bindings that would go undeclared"
            ));
        }
    }
    Ok(())
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The top level and the chosen environment, with wrangler's lookup rules.
struct Resolved<'a> {
    top: &'a Map<String, Value>,
    env: Option<(&'a str, &'a Map<String, Value>)>,
}

impl<'a> Resolved<'a> {
    fn place(&self) -> String {
        match self.env {
            Some((name, _)) => format!("env.{name}"),
            None => "the top level".to_owned(),
        }
    }

    fn shape(&self, key: &str, want: &str) -> String {
        format!("`{key}` ({}) must be {want}", self.place())
    }

    /// An inheritable key: the environment's, else the top level's.
    fn inherited(&self, key: &str) -> Option<&'a Value> {
        self.env
            .and_then(|(_, t)| t.get(key))
            .or_else(|| self.top.get(key))
            .filter(|v| !v.is_null())
    }

    /// A key that is not inherited: the environment's only, when one is
    /// chosen (top-level-only keys are read from the top level).
    fn own(&self, key: &str) -> Option<&'a Value> {
        let table = match self.env {
            Some((_, t)) if !TOP_LEVEL_ONLY.contains(&key) => t,
            _ => self.top,
        };
        table.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        self.inherited(key)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.shape(key, "a string"))
            })
            .transpose()
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.inherited(key) {
            None => Ok(Vec::new()),
            Some(v) => string_list(v).ok_or_else(|| self.shape(key, "a list of strings")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        self.inherited(key)
            .map(|v| v.as_bool().ok_or_else(|| self.shape(key, "true or false")))
            .transpose()
    }

    /// `[{ service = "…" }]` (tail consumers): the service names.
    fn services(&self, key: &str) -> Result<Vec<String>, String> {
        let Some(list) = self.own(key) else {
            return Ok(Vec::new());
        };
        list.as_array()
            .ok_or_else(|| self.shape(key, "a list"))?
            .iter()
            .map(|c| {
                c.get("service")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| self.shape(key, "a list of `{ service = \"…\" }`"))
            })
            .collect()
    }
}

/// How one wrangler binding key turns into API bindings.
enum Kind {
    /// A list of tables; `name_key` names the binding; `fields` copies
    /// config fields to API fields.
    List {
        api_type: &'static str,
        name_key: &'static str,
        fields: &'static [(&'static str, &'static str)],
    },
    /// One table with a `binding` name.
    Single { api_type: &'static str },
}

/// Wrangler's binding keys and the API types they become
/// (`create-worker-upload-form.ts`).
const LISTS: &[(&str, Kind)] = &[
    (
        "kv_namespaces",
        Kind::List {
            api_type: "kv_namespace",
            name_key: "binding",
            fields: &[("id", "namespace_id")],
        },
    ),
    (
        "d1_databases",
        Kind::List {
            api_type: "d1",
            name_key: "binding",
            fields: &[("database_id", "id")],
        },
    ),
    (
        "r2_buckets",
        Kind::List {
            api_type: "r2_bucket",
            name_key: "binding",
            fields: &[("bucket_name", "bucket_name")],
        },
    ),
    (
        "services",
        Kind::List {
            api_type: "service",
            name_key: "binding",
            fields: &[("service", "service")],
        },
    ),
    (
        "send_email",
        Kind::List {
            api_type: "send_email",
            name_key: "name",
            fields: &[],
        },
    ),
    (
        "workflows",
        Kind::List {
            api_type: "workflow",
            name_key: "binding",
            fields: &[("name", "workflow_name"), ("class_name", "class_name")],
        },
    ),
    (
        "vectorize",
        Kind::List {
            api_type: "vectorize",
            name_key: "binding",
            fields: &[("index_name", "index_name")],
        },
    ),
    (
        "ai_search_namespaces",
        Kind::List {
            api_type: "ai_search_namespace",
            name_key: "binding",
            fields: &[("namespace", "namespace")],
        },
    ),
    (
        "ai_search",
        Kind::List {
            api_type: "ai_search",
            name_key: "binding",
            fields: &[("instance_name", "instance_name")],
        },
    ),
    (
        "hyperdrive",
        Kind::List {
            api_type: "hyperdrive",
            name_key: "binding",
            fields: &[("id", "id")],
        },
    ),
    (
        "analytics_engine_datasets",
        Kind::List {
            api_type: "analytics_engine",
            name_key: "binding",
            fields: &[("dataset", "dataset")],
        },
    ),
    (
        "dispatch_namespaces",
        Kind::List {
            api_type: "dispatch_namespace",
            name_key: "binding",
            fields: &[("namespace", "namespace")],
        },
    ),
    (
        "mtls_certificates",
        Kind::List {
            api_type: "mtls_certificate",
            name_key: "binding",
            fields: &[("certificate_id", "certificate_id")],
        },
    ),
    (
        "pipelines",
        Kind::List {
            api_type: "pipelines",
            name_key: "binding",
            fields: &[("pipeline", "pipeline")],
        },
    ),
    (
        "secrets_store_secrets",
        Kind::List {
            api_type: "secrets_store_secret",
            name_key: "binding",
            fields: &[("store_id", "store_id"), ("secret_name", "secret_name")],
        },
    ),
    (
        "artifacts",
        Kind::List {
            api_type: "artifacts",
            name_key: "binding",
            fields: &[("namespace", "namespace")],
        },
    ),
    (
        "unsafe_hello_world",
        Kind::List {
            api_type: "unsafe_hello_world",
            name_key: "binding",
            fields: &[],
        },
    ),
    (
        "flagship",
        Kind::List {
            api_type: "flagship",
            name_key: "binding",
            fields: &[("app_id", "app_id")],
        },
    ),
    (
        "ratelimits",
        Kind::List {
            api_type: "ratelimit",
            name_key: "name",
            fields: &[("namespace_id", "namespace_id")],
        },
    ),
    (
        "worker_loaders",
        Kind::List {
            api_type: "worker_loader",
            name_key: "binding",
            fields: &[],
        },
    ),
    (
        "vpc_services",
        Kind::List {
            api_type: "vpc_service",
            name_key: "binding",
            fields: &[("service_id", "service_id")],
        },
    ),
    (
        "vpc_networks",
        Kind::List {
            api_type: "vpc_network",
            name_key: "binding",
            fields: &[("tunnel_id", "tunnel_id"), ("network_id", "network_id")],
        },
    ),
    (
        "browser",
        Kind::Single {
            api_type: "browser",
        },
    ),
    ("ai", Kind::Single { api_type: "ai" }),
    ("images", Kind::Single { api_type: "images" }),
    ("stream", Kind::Single { api_type: "stream" }),
    ("media", Kind::Single { api_type: "media" }),
    (
        "version_metadata",
        Kind::Single {
            api_type: "version_metadata",
        },
    ),
];

// The fields a listed binding keeps its target in, first found wins: the
// list `src/cloudflare/live.rs` reads deployed bindings with, so both sides
// name a binding's target alike.
use crate::cloudflare::TARGET_FIELDS;

/// A binding as the API would list it, read into a declared binding: its
/// target through the same fields the deployed side reads.
fn declared(api: &Map<String, Value>) -> DeclaredBinding {
    let name = api["name"].as_str().unwrap_or_default().to_owned();
    let kind = api["type"].as_str().unwrap_or_default().to_owned();
    let target = TARGET_FIELDS
        .iter()
        .find_map(|f| api.get(*f).and_then(Value::as_str))
        .map(str::to_owned);
    DeclaredBinding {
        name,
        kind,
        target,
        value: None,
    }
}

fn api_binding(name: &str, api_type: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("type".into(), json!(api_type));
    m
}

fn bindings(r: &Resolved) -> Result<Vec<DeclaredBinding>, String> {
    let mut out = Vec::new();
    if let Some(vars) = r.own("vars") {
        let vars = vars.as_object().ok_or_else(|| r.shape("vars", "a table"))?;
        for (name, value) in vars {
            let kind = if value.is_string() {
                "plain_text"
            } else {
                "json"
            };
            let mut b = declared(&api_binding(name, kind));
            b.value = Some(value.clone());
            out.push(b);
        }
    }
    if let Some(secrets) = r.own("secrets") {
        let required = match secrets.get("required") {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => {
                string_list(list).ok_or_else(|| r.shape("secrets.required", "a list of names"))?
            }
        };
        for name in required {
            out.push(declared(&api_binding(&name, "secret_text")));
        }
    }
    if let Some(dos) = r.own("durable_objects") {
        let list = match dos.get("bindings") {
            None | Some(Value::Null) => &[][..],
            Some(v) => v
                .as_array()
                .ok_or_else(|| r.shape("durable_objects.bindings", "a list"))?,
        };
        for b in list {
            let name = b.get("name").and_then(Value::as_str).ok_or_else(|| {
                r.shape("durable_objects.bindings", "a list of tables with a `name`")
            })?;
            let mut api = api_binding(name, "durable_object_namespace");
            for field in ["class_name", "script_name", "environment"] {
                if let Some(v) = b.get(field) {
                    api.insert(field.into(), v.clone());
                }
            }
            out.push(declared(&api));
        }
    }
    if let Some(queues) = r.own("queues") {
        let list = match queues.get("producers") {
            None | Some(Value::Null) => &[][..],
            Some(v) => v
                .as_array()
                .ok_or_else(|| r.shape("queues.producers", "a list"))?,
        };
        for b in list {
            let name = b
                .get("binding")
                .and_then(Value::as_str)
                .ok_or_else(|| r.shape("queues.producers", "a list of tables with a `binding`"))?;
            let mut api = api_binding(name, "queue");
            if let Some(q) = b.get("queue") {
                api.insert("queue_name".into(), q.clone());
            }
            out.push(declared(&api));
        }
    }
    if let Some(logfwdr) = r.inherited("logfwdr") {
        let list = match logfwdr.get("bindings") {
            None | Some(Value::Null) => &[][..],
            Some(v) => v
                .as_array()
                .ok_or_else(|| r.shape("logfwdr.bindings", "a list"))?,
        };
        for b in list {
            let name = b
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| r.shape("logfwdr.bindings", "a list of tables with a `name`"))?;
            out.push(declared(&api_binding(name, "logfwdr")));
        }
    }
    if let Some(assets) = r.inherited("assets")
        && let Some(name) = assets.get("binding").and_then(Value::as_str)
    {
        out.push(declared(&api_binding(name, "assets")));
    }
    for (key, api_type) in [
        ("wasm_modules", "wasm_module"),
        ("text_blobs", "text_blob"),
        ("data_blobs", "data_blob"),
    ] {
        if let Some(table) = r.own(key) {
            let table = table
                .as_object()
                .ok_or_else(|| r.shape(key, "a table of names"))?;
            for name in table.keys() {
                out.push(declared(&api_binding(name, api_type)));
            }
        }
    }
    if let Some(unsafe_) = r.own("unsafe")
        && let Some(list) = unsafe_.get("bindings").filter(|v| !v.is_null())
    {
        for b in list
            .as_array()
            .ok_or_else(|| r.shape("unsafe.bindings", "a list"))?
        {
            let (Some(name), Some(_)) = (
                b.get("name").and_then(Value::as_str),
                b.get("type").and_then(Value::as_str),
            ) else {
                return Err(r.shape(
                    "unsafe.bindings",
                    "a list of tables with a `name` and a `type`",
                ));
            };
            let mut api = b.as_object().cloned().unwrap_or_default();
            api.insert("name".into(), json!(name));
            out.push(declared(&api));
        }
    }
    for (key, kind) in LISTS {
        let Some(value) = r.own(key) else { continue };
        match kind {
            Kind::List {
                api_type,
                name_key,
                fields,
            } => {
                let list = value.as_array().ok_or_else(|| r.shape(key, "a list"))?;
                for b in list {
                    let name = b.get(*name_key).and_then(Value::as_str).ok_or_else(|| {
                        r.shape(key, &format!("a list of tables with a `{name_key}`"))
                    })?;
                    let mut api = api_binding(name, api_type);
                    for (from, to) in *fields {
                        if let Some(v) = b.get(*from) {
                            api.insert((*to).into(), v.clone());
                        }
                    }
                    out.push(declared(&api));
                }
            }
            Kind::Single { api_type } => {
                let name = value
                    .get("binding")
                    .and_then(Value::as_str)
                    .ok_or_else(|| r.shape(key, "a table with a `binding`"))?;
                out.push(declared(&api_binding(name, api_type)));
            }
        }
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = out.iter().find(|b| !seen.insert(b.name.clone())) {
        return Err(format!(
            "the binding name `{}` is used twice ({})",
            dup.name,
            r.place()
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The output module wrangler writes for `main` (`src/index.ts` ->
/// `index.js`).
pub fn main_module(main: &str) -> Option<String> {
    let stem = Path::new(main).file_stem()?.to_str()?;
    Some(format!("{stem}.js"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonc(text: &str) -> Value {
        parse(Path::new("wrangler.jsonc"), text).unwrap()
    }

    fn b(name: &str, kind: &str, target: Option<&str>) -> DeclaredBinding {
        DeclaredBinding {
            name: name.into(),
            kind: kind.into(),
            target: target.map(str::to_owned),
            value: None,
        }
    }

    const CONFIG: &str = r#"
        // comments are allowed
        {
          "name": "auth",
          "main": "src/index.ts",
          "compatibility_date": "2025-09-01",
          "compatibility_flags": ["nodejs_compat"],
          /* block comment */
          "vars": { "TOP_ONLY": "x" },
          "kv_namespaces": [{ "binding": "TOP_KV", "id": "k0" }],
          "observability": { "enabled": true, "logs": { "destinations": ["sink"] } },
          "placement": { "mode": "smart" },
          "env": {
            "production": {
              "vars": { "STAGE": "prod", "RETRIES": 3, "FLAGS": { "a": true } },
              "secrets": { "required": ["BETTER_AUTH_SECRET"] },
              "kv_namespaces": [{ "binding": "SESSIONS", "id": "k1" }],
              "d1_databases": [{ "binding": "DB", "database_name": "auth", "database_id": "d1" }],
              "routes": [
                { "pattern": "auth.example.com", "custom_domain": true },
                { "pattern": "example.com/auth/*", "zone_id": "z1" },
              ],
              "tail_consumers": [{ "service": "tail-sink" }],
            },
            "staging": { "name": "auth-stage" },
          },
        }
    "#;

    #[test]
    fn an_environment_inherits_settings_but_not_bindings_and_its_name_gains_the_suffix() {
        let d = declaration(&jsonc(CONFIG), Some("production")).unwrap();
        assert_eq!(d.script.as_deref(), Some("auth-production"));
        assert_eq!(d.compatibility_date.as_deref(), Some("2025-09-01"));
        assert_eq!(d.compatibility_flags, ["nodejs_compat"]);
        assert!(d.observability);
        assert_eq!(d.log_destinations, ["sink"]);
        assert_eq!(d.placement, Some(json!({"mode": "smart"})));
        let names: Vec<&str> = d.bindings.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "BETTER_AUTH_SECRET",
                "DB",
                "FLAGS",
                "RETRIES",
                "SESSIONS",
                "STAGE"
            ],
            "TOP_ONLY and TOP_KV are not inherited"
        );
        let by = |n: &str| d.bindings.iter().find(|b| b.name == n).unwrap().clone();
        assert_eq!(by("DB"), b("DB", "d1", Some("d1")));
        assert_eq!(by("SESSIONS"), b("SESSIONS", "kv_namespace", Some("k1")));
        assert_eq!(
            by("BETTER_AUTH_SECRET"),
            b("BETTER_AUTH_SECRET", "secret_text", None)
        );
        assert_eq!(by("STAGE").kind, "plain_text");
        assert_eq!(by("STAGE").value, Some(json!("prod")));
        assert_eq!(by("RETRIES").kind, "json");
        assert_eq!(by("FLAGS").value, Some(json!({"a": true})));
        assert_eq!(d.custom_domains, ["auth.example.com"]);
        assert_eq!(d.routes, ["example.com/auth/*"]);
        assert_eq!(d.zone_id.as_deref(), Some("z1"));
        assert!(!d.workers_dev && !d.preview_urls, "routes: off by default");
        assert_eq!(d.tail_consumers, ["tail-sink"]);

        let staging = declaration(&jsonc(CONFIG), Some("staging")).unwrap();
        assert_eq!(
            staging.script.as_deref(),
            Some("auth-stage"),
            "its own name"
        );
        assert!(staging.bindings.is_empty());
        assert!(staging.tail_consumers.is_empty(), "not inherited");
        assert!(staging.workers_dev && staging.preview_urls, "no routes: on");

        let top = declaration(&jsonc(CONFIG), None).unwrap();
        assert_eq!(top.script.as_deref(), Some("auth"));
        let names: Vec<&str> = top.bindings.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["TOP_KV", "TOP_ONLY"]);
    }

    #[test]
    fn an_unknown_key_or_environment_is_an_error_naming_it() {
        let err = declaration(
            &jsonc(r#"{ "name": "w", "env": { "p": { "magic_buckets": [{ "binding": "M" }] } } }"#),
            Some("p"),
        )
        .unwrap_err();
        assert!(
            err.contains("`magic_buckets`") && err.contains("env.p"),
            "{err}"
        );
        let err = declaration(&jsonc(r#"{ "name": "w", "kv_stores": [] }"#), None).unwrap_err();
        assert!(err.contains("`kv_stores`"), "{err}");
        let err = declaration(&jsonc(r#"{ "name": "w" }"#), Some("production")).unwrap_err();
        assert!(err.contains("env.production"), "{err}");
        let err = declaration(&jsonc(r#"{ "kv_namespaces": [{ "id": "x" }] }"#), None).unwrap_err();
        assert!(
            err.contains("kv_namespaces") && err.contains("`binding`"),
            "{err}"
        );
    }

    #[test]
    fn jsonc_allows_comments_and_trailing_commas_but_nothing_looser() {
        let v = jsonc("{ // c\n \"a\": [1, 2,], /* d */ }");
        assert_eq!(v, json!({"a": [1, 2]}));
        for loose in [
            "{ a: 1 }",
            "{ \"a\": 'x' }",
            "{ \"a\": 0x1 }",
            "{ \"a\": 1 \"b\": 2 }",
        ] {
            assert!(
                parse(Path::new("wrangler.jsonc"), loose).is_err(),
                "{loose} must not parse"
            );
        }
        assert!(parse(Path::new("wrangler.yaml"), "{}").is_err());
    }

    #[test]
    fn wrangler_toml_reads_the_same_as_its_jsonc() {
        let toml = r#"
            name = "auth"
            main = "src/index.ts"
            compatibility_date = "2025-09-01"
            compatibility_flags = ["nodejs_compat"]
            placement = { mode = "smart" }
            [vars]
            TOP_ONLY = "x"
            [[kv_namespaces]]
            binding = "TOP_KV"
            id = "k0"
            [observability]
            enabled = true
            logs = { destinations = ["sink"] }
            [env.production]
            vars = { STAGE = "prod", RETRIES = 3, FLAGS = { a = true } }
            secrets = { required = ["BETTER_AUTH_SECRET"] }
            kv_namespaces = [{ binding = "SESSIONS", id = "k1" }]
            d1_databases = [{ binding = "DB", database_name = "auth", database_id = "d1" }]
            routes = [
              { pattern = "auth.example.com", custom_domain = true },
              { pattern = "example.com/auth/*", zone_id = "z1" },
            ]
            tail_consumers = [{ service = "tail-sink" }]
            [env.staging]
            name = "auth-stage"
        "#;
        let from_toml = parse(Path::new("wrangler.toml"), toml).unwrap();
        for env in [Some("production"), Some("staging"), None] {
            assert_eq!(
                declaration(&from_toml, env).unwrap(),
                declaration(&jsonc(CONFIG), env).unwrap(),
                "{env:?}"
            );
        }
    }

    #[test]
    fn every_binding_kind_maps_to_the_api_type() {
        let d = declaration(
            &jsonc(
                r#"{
                  "name": "w",
                  "r2_buckets": [{ "binding": "R2", "bucket_name": "b" }],
                  "services": [{ "binding": "SVC", "service": "s" }],
                  "queues": { "producers": [{ "binding": "Q", "queue": "q" }], "consumers": [{ "queue": "q" }] },
                  "durable_objects": { "bindings": [{ "name": "DO", "class_name": "Room" }] },
                  "analytics_engine_datasets": [{ "binding": "AE", "dataset": "ds" }],
                  "vectorize": [{ "binding": "VEC", "index_name": "idx" }],
                  "hyperdrive": [{ "binding": "HD", "id": "h" }],
                  "ai": { "binding": "AI" },
                  "browser": { "binding": "BR" },
                  "version_metadata": { "binding": "VM" },
                  "send_email": [{ "name": "MAIL" }],
                  "mtls_certificates": [{ "binding": "MTLS", "certificate_id": "c" }],
                  "workflows": [{ "binding": "WF", "name": "flow", "class_name": "Flow" }],
                  "assets": { "directory": "public", "binding": "ASSETS" },
                  "dispatch_namespaces": [{ "binding": "DISPATCH", "namespace": "ns" }],
                  "ratelimits": [{ "name": "RL", "namespace_id": "1001", "simple": { "limit": 1, "period": 60 } }],
                  "unsafe": { "bindings": [{ "name": "U", "type": "secret_key" }] },
                }"#,
            ),
            None,
        )
        .unwrap();
        let got: Vec<(String, String, Option<String>)> = d
            .bindings
            .into_iter()
            .map(|b| (b.name, b.kind, b.target))
            .collect();
        let want = [
            ("AE", "analytics_engine", Some("ds")),
            ("AI", "ai", None),
            ("ASSETS", "assets", None),
            ("BR", "browser", None),
            ("DISPATCH", "dispatch_namespace", Some("ns")),
            ("DO", "durable_object_namespace", Some("Room")),
            ("HD", "hyperdrive", Some("h")),
            ("MAIL", "send_email", None),
            ("MTLS", "mtls_certificate", Some("c")),
            ("Q", "queue", Some("q")),
            ("R2", "r2_bucket", Some("b")),
            ("RL", "ratelimit", Some("1001")),
            ("SVC", "service", Some("s")),
            ("U", "secret_key", None),
            ("VEC", "vectorize", Some("idx")),
            ("VM", "version_metadata", None),
            ("WF", "workflow", Some("Flow")),
        ];
        let want: Vec<(String, String, Option<String>)> = want
            .iter()
            .map(|(n, k, t)| (n.to_string(), k.to_string(), t.map(str::to_owned)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_main_module_is_named_after_main() {
        assert_eq!(main_module("src/index.ts").as_deref(), Some("index.js"));
        assert_eq!(main_module("worker.mjs").as_deref(), Some("worker.js"));
    }
}
