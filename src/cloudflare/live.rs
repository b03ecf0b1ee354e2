//! What is live: the active deployment, each version with its share, its
//! modules and settings, and the script's observers.

use std::sync::Arc;

use base64::Engine;
use serde_json::Value;

use crate::compare::{
    Bundle, DeployedBinding, DeployedScriptSettings, DeployedSettings, Module, VALUE_TYPES,
};

use super::client::Client;
use super::error::ApiError;
use super::ingress::{Ingress, fetch_ingress};
use super::multipart;
use super::provenance::{Provenance, provenance_of};

/// A version in the active deployment and its share of traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveVersion {
    pub version_id: String,
    /// 0–100.
    pub percentage: f64,
}

/// The active deployment: the first entry of the deployments list.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub id: Option<String>,
    /// Largest share first; ties by version id.
    pub versions: Vec<LiveVersion>,
}

/// Where a version's modules were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModulesSource {
    /// `workers/workers/{s}/versions/{id}?include=modules` (beta).
    Versions,
    /// `workers/scripts/{s}/content/v2` (multipart, `cf-entrypoint`).
    Download,
}

impl ModulesSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ModulesSource::Versions => "versions API (?include=modules)",
            ModulesSource::Download => "script download (content/v2)",
        }
    }
}

/// One live version: its share, settings and modules, each read on its own.
#[derive(Debug, Clone)]
pub struct VersionData {
    pub live: LiveVersion,
    pub settings: Result<DeployedSettings, Arc<ApiError>>,
    pub modules: Result<(Bundle, ModulesSource), Arc<ApiError>>,
    /// Parsed from the same two answers as `settings` and `modules`.
    pub provenance: Result<Provenance, Arc<ApiError>>,
}

/// Everything that receives the Worker's request data besides the Worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observers {
    /// Services named as tail consumers.
    pub tail_consumers: Vec<String>,
    pub logpush: bool,
    /// Workers Logs export destinations.
    pub log_destinations: Vec<String>,
    /// Ids of open streaming tail sessions.
    pub tails: Vec<String>,
    /// Streaming tail consumer services (`/script-settings`).
    pub streaming_tail_consumers: Vec<String>,
    /// Workers Observability trace export destinations.
    pub trace_destinations: Vec<String>,
    /// Workers Observability keeps logs or traces with Cloudflare.
    pub observability: bool,
    /// What each settings endpoint said (the fields above are their union).
    pub said: Vec<String>,
    /// Where `/settings` and `/script-settings` disagree.
    pub disagreements: Vec<String>,
}

/// What the API says is live.
#[derive(Debug, Clone)]
pub struct Live {
    pub deployment: Deployment,
    /// In the deployment's order (largest share first).
    pub versions: Vec<VersionData>,
    pub observers: Result<Observers, Arc<ApiError>>,
    /// Routes, custom domains, `workers.dev` and preview URLs; each part
    /// read on its own.
    pub ingress: Ingress,
    /// Placement, limits, cache options and usage model (`/settings`).
    pub script_settings: Result<DeployedScriptSettings, Arc<ApiError>>,
}

fn shape(url: &str, problem: impl Into<String>) -> ApiError {
    ApiError::Shape {
        url: url.to_owned(),
        problem: problem.into(),
    }
}

/// Fields a binding keeps its target in, by binding type.
pub const TARGET_FIELDS: [&str; 12] = [
    "id",
    "database_id",
    "namespace_id",
    "bucket_name",
    "service",
    "queue_name",
    "index_name",
    "dataset",
    "class_name",
    "workflow_name",
    "namespace",
    "certificate_id",
];

fn bindings(url: &str, value: Option<&Value>) -> Result<Vec<DeployedBinding>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or_else(|| shape(url, "`bindings` is not a list"))?;
    let mut out = Vec::new();
    for b in list {
        let name = b["name"]
            .as_str()
            .ok_or_else(|| shape(url, "a binding has no `name`"))?;
        let kind = b["type"]
            .as_str()
            .ok_or_else(|| shape(url, format!("binding `{name}` has no `type`")))?;
        let target = TARGET_FIELDS
            .iter()
            .find_map(|f| b.get(*f).and_then(Value::as_str))
            .map(str::to_owned);
        // Only plain_text (`text`) and json (`json`) carry a value; nothing
        // else is read, so a secret's value never is.
        let value = match kind {
            "plain_text" => Some(
                b.get("text")
                    .filter(|t| t.is_string())
                    .cloned()
                    .ok_or_else(|| {
                        shape(
                            url,
                            format!("plain_text binding `{name}` has no string `text`"),
                        )
                    })?,
            ),
            "json" => Some(
                b.get("json")
                    .cloned()
                    .ok_or_else(|| shape(url, format!("json binding `{name}` has no `json`")))?,
            ),
            _ => None,
        };
        debug_assert!(value.is_none() || VALUE_TYPES.contains(&kind));
        out.push(DeployedBinding {
            name: name.to_owned(),
            kind: kind.to_owned(),
            target,
            value,
        });
    }
    out.sort();
    Ok(out)
}

pub(super) fn strings(
    url: &str,
    value: Option<&Value>,
    what: &str,
) -> Result<Vec<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| shape(url, format!("`{what}` holds a non-string")))
            })
            .collect(),
        Some(_) => Err(shape(url, format!("`{what}` is not a list"))),
    }
}

pub async fn deployment(client: &Client, script: &str) -> Result<Deployment, ApiError> {
    let url = client.account_url(&format!("workers/scripts/{script}/deployments"));
    let result: Value = client.get_json("deployments", &url).await?;
    parse_deployment(&url, script, &result)
}

/// The active deployment in the `result` of `GET …/scripts/{s}/deployments`
/// read from `url`.
pub fn parse_deployment(url: &str, script: &str, result: &Value) -> Result<Deployment, ApiError> {
    let url = url.to_owned();
    let list = result
        .get("deployments")
        .unwrap_or(result)
        .as_array()
        .ok_or_else(|| shape(&url, "`result.deployments` is not a list"))?;
    let first = list
        .first()
        .ok_or_else(|| shape(&url, format!("script `{script}` has no deployment")))?;
    let raw = first["versions"]
        .as_array()
        .ok_or_else(|| shape(&url, "the active deployment has no `versions`"))?;
    let mut versions = Vec::new();
    for v in raw {
        let version_id = v["version_id"]
            .as_str()
            .ok_or_else(|| shape(&url, "a version has no `version_id`"))?;
        let percentage = v["percentage"]
            .as_f64()
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| {
                shape(
                    &url,
                    format!("version {version_id} has no valid `percentage`"),
                )
            })?;
        versions.push(LiveVersion {
            version_id: version_id.to_owned(),
            percentage,
        });
    }
    if versions.is_empty() {
        return Err(shape(&url, "the active deployment lists no version"));
    }
    versions.sort_by(|a, b| {
        b.percentage
            .partial_cmp(&a.percentage)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.version_id.cmp(&b.version_id))
    });
    Ok(Deployment {
        id: first["id"].as_str().map(str::to_owned),
        versions,
    })
}

async fn version_settings(
    client: &Client,
    script: &str,
    version: &str,
) -> Result<(DeployedSettings, Raw), ApiError> {
    let url = client.account_url(&format!("workers/scripts/{script}/versions/{version}"));
    let result: Value = client.get_json(&format!("version {version}"), &url).await?;
    let resources = result
        .get("resources")
        .ok_or_else(|| shape(&url, "the version has no `resources`"))?;
    let runtime = resources.get("script_runtime");
    let settings = DeployedSettings {
        compatibility_date: runtime
            .and_then(|r| r.get("compatibility_date"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        compatibility_flags: strings(
            &url,
            runtime.and_then(|r| r.get("compatibility_flags")),
            "compatibility_flags",
        )?,
        bindings: bindings(&url, resources.get("bindings"))?,
    };
    Ok((settings, (url, result)))
}

/// An answer's URL and `result`, kept for [`provenance_of`].
type Raw = (String, Value);

async fn version_modules(
    client: &Client,
    script: &str,
    version: &str,
) -> Result<(Bundle, Raw), ApiError> {
    let url = client.account_url(&format!(
        "workers/workers/{script}/versions/{version}?include=modules"
    ));
    let result: Value = client
        .get_json(&format!("modules of version {version}"), &url)
        .await?;
    let list = result["modules"]
        .as_array()
        .ok_or_else(|| shape(&url, "the version has no `modules` list"))?;
    let mut modules = Vec::new();
    for m in list {
        let name = m["name"]
            .as_str()
            .ok_or_else(|| shape(&url, "a module has no `name`"))?;
        let b64 = m["content_base64"]
            .as_str()
            .ok_or_else(|| shape(&url, format!("module `{name}` has no `content_base64`")))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|source| ApiError::Base64 {
                module: name.to_owned(),
                version: version.to_owned(),
                source,
            })?;
        if modules.iter().any(|x: &Module| x.name == name) {
            return Err(shape(&url, format!("module `{name}` is listed twice")));
        }
        modules.push(Module::new(name, m["content_type"].as_str(), bytes));
    }
    if modules.is_empty() {
        return Err(shape(&url, "the version has no module"));
    }
    let main = result["main_module"]
        .as_str()
        .ok_or_else(|| shape(&url, "the version has no `main_module`"))?;
    if !modules.iter().any(|m| m.name == main) {
        return Err(shape(
            &url,
            format!("`main_module` `{main}` is not among the modules"),
        ));
    }
    let bundle = Bundle::new(Some(main.to_owned()), modules);
    Ok((bundle, (url, result)))
}

async fn download(client: &Client, script: &str) -> Result<Bundle, ApiError> {
    let url = client.account_url(&format!("workers/scripts/{script}/content/v2"));
    let response = client
        .get("script download", &url, "multipart/form-data")
        .await?;
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let entrypoint = header("cf-entrypoint");
    multipart::parse(&content_type, entrypoint.as_deref(), response.body.clone())
        .await
        .map_err(|source| ApiError::Multipart { url, source })
}

/// The beta endpoint, or the script download when the beta endpoint is not
/// there (404/405/501) and the deployment has one version (the download
/// cannot tell versions apart).
async fn modules(
    client: &Client,
    script: &str,
    version: &str,
    single: bool,
) -> Result<(Bundle, ModulesSource, Option<Raw>), ApiError> {
    match version_modules(client, script, version).await {
        Ok((bundle, raw)) => Ok((bundle, ModulesSource::Versions, Some(raw))),
        Err(e) if single && matches!(e.status(), Some(404 | 405 | 501)) => download(client, script)
            .await
            .map(|b| (b, ModulesSource::Download, None)),
        Err(e) => Err(e),
    }
}

/// Reads what is live for `script`: the active deployment first, then every
/// version's settings and modules and the observers, concurrently. Only a
/// failure to read the deployment is an `Err`; the other reads fail on their
/// own and leave the rest usable.
pub async fn fetch_live(client: &Client, script: &str) -> Result<Live, ApiError> {
    fetch_live_in_zone(client, script, None).await
}

/// [`fetch_live`], reading the routes of zone `zone_id` too.
pub async fn fetch_live_in_zone(
    client: &Client,
    script: &str,
    zone_id: Option<&str>,
) -> Result<Live, ApiError> {
    let deployment = deployment(client, script).await?;
    let single = deployment.versions.len() == 1;
    let per_version = deployment.versions.iter().map(|live| async move {
        let (settings, modules) = tokio::join!(
            version_settings(client, script, &live.version_id),
            modules(client, script, &live.version_id, single),
        );
        let (settings, modules) = (settings.map_err(Arc::new), modules.map_err(Arc::new));
        let beta = match &modules {
            Ok((_, _, Some((url, v)))) => Ok((url.as_str(), v)),
            Ok((_, _, None)) => Err("the beta versions endpoint was not there, so the modules \
                                     came from the script download (content/v2), which reports \
                                     no annotations or package_dependencies"
                .to_owned()),
            Err(e) => Err(format!(
                "the beta versions endpoint could not be read: {}",
                crate::error_chain(e.as_ref())
            )),
        };
        let detail = settings.as_ref().map(|(_, (url, v))| (url.as_str(), v));
        let provenance = provenance_of(detail, beta);
        VersionData {
            live: live.clone(),
            settings: settings.map(|(s, _)| s),
            modules: modules.map(|(b, s, _)| (b, s)),
            provenance,
        }
    });
    let (versions, (observers, script_settings), ingress) = tokio::join!(
        futures_util::future::join_all(per_version),
        super::settings::read(client, script),
        fetch_ingress(client, script, zone_id),
    );
    Ok(Live {
        deployment,
        versions,
        observers,
        script_settings,
        ingress,
    })
}
