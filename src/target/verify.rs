//! The `[verify]` section resolved for a verify run, and loading a config
//! for `verify` alone.

use std::path::Path;

use url::Url;

use crate::compare::DeclaredSettings;
use crate::rebuild::Recipe;

use super::error::TargetError;
use super::schema::{ProfileSection, TargetConfig, VerifyOnlyConfig, VerifySection};

/// Observers the config allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredObservers {
    pub tail_consumers: Vec<String>,
    pub logpush: bool,
    pub log_destinations: Vec<String>,
    /// Streaming tail consumer services (`script-settings`).
    pub streaming_tail_consumers: Vec<String>,
    /// Workers Observability trace export destinations.
    pub trace_destinations: Vec<String>,
    /// Whether Workers Observability (logs and traces kept by Cloudflare)
    /// may be on.
    pub observability: bool,
}

/// Every way traffic may reach the script, as declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredIngress {
    /// Zone route patterns (`auth.example.com/*`).
    pub routes: Vec<String>,
    /// Custom domain hostnames (`auth.example.com`).
    pub custom_domains: Vec<String>,
    /// Whether the script may be on its `workers.dev` subdomain.
    pub workers_dev: bool,
    /// Whether preview URLs (one per uploaded version) may be on.
    pub preview_urls: bool,
    /// A zone whose routes are read too (`/zones/{id}/workers/routes`).
    pub zone_id: Option<String>,
}

/// What the live versions' provenance is compared with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredProvenance {
    /// The source's lockfile (absolute); `None`: none found or declared.
    pub lockfile: Option<std::path::PathBuf>,
}

/// The resolved `[verify]` section. Holds no secret: the token is read by
/// [`VerifyTarget::credentials`] when verify runs.
#[derive(Debug, Clone)]
pub struct VerifyTarget {
    pub recipe: Recipe,
    pub bisect: bool,
    pub script: String,
    pub declared: DeclaredSettings,
    pub observers: DeclaredObservers,
    pub ingress: DeclaredIngress,
    pub provenance: DeclaredProvenance,
    pub api_base: Url,
    pub api_token_env: String,
    pub account_id_env: String,
    /// `[target].base_url` when the config has a `[target]` (audit, or
    /// verify with a full config): `verify.ingress` checks its host is one
    /// of the live ingress.
    pub base_url: Option<Url>,
}

impl VerifySection {
    /// Resolves the source folder against the config file's folder.
    pub fn resolve(self, config_path: &str) -> Result<VerifyTarget, TargetError> {
        self.validate(config_path)?;
        let base = Path::new(config_path)
            .parent()
            .unwrap_or_else(|| Path::new(""));
        let source = base.join(&self.source);
        let source = std::path::absolute(&source).map_err(|source_err| TargetError::Read {
            path: source.display().to_string(),
            source: source_err,
        })?;
        // Declared, else the first lockfile present in the source folder.
        let lockfile = self
            .lockfile
            .map(|l| source.join(l))
            .or_else(|| crate::compare::find_lockfile(&source));
        Ok(VerifyTarget {
            recipe: Recipe {
                source,
                command: self.recipe,
                env: self.env,
                non_artifacts: self.non_artifacts,
                link: self.link,
                main_module: self.main_module,
            },
            bisect: self.bisect,
            script: self.script,
            declared: DeclaredSettings {
                compatibility_date: self.compatibility_date,
                compatibility_flags: self.compatibility_flags,
                bindings: self.bindings,
                placement: self.placement.map(toml_to_json),
                limits: self.limits.map(toml_to_json),
                cache_options: self.cache_options.map(toml_to_json),
                usage_model: self.usage_model,
            },
            observers: DeclaredObservers {
                tail_consumers: self.tail_consumers,
                logpush: self.logpush,
                log_destinations: self.log_destinations,
                streaming_tail_consumers: self.streaming_tail_consumers.unwrap_or_default(),
                trace_destinations: self.trace_destinations.unwrap_or_default(),
                observability: self.observability.unwrap_or(false),
            },
            ingress: DeclaredIngress {
                routes: self.routes.unwrap_or_default(),
                custom_domains: self.custom_domains.unwrap_or_default(),
                workers_dev: self.workers_dev.unwrap_or(false),
                preview_urls: self.preview_urls.unwrap_or(false),
                zone_id: self.zone_id,
            },
            provenance: DeclaredProvenance { lockfile },
            api_base: self.api_base,
            api_token_env: self.api_token_env,
            account_id_env: self.account_id_env,
            base_url: None,
        })
    }
}

/// A TOML value as JSON (the API's settings are JSON).
fn toml_to_json(value: toml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Loads the `[verify]` section of a config and the profile it runs under.
pub fn load_verify(path: &Path) -> Result<(ProfileSection, VerifyTarget), TargetError> {
    let shown = path.display().to_string();
    let text = fs_err::read_to_string(path).map_err(|source| TargetError::Read {
        path: shown.clone(),
        source,
    })?;
    let parse_err = |source| TargetError::Parse {
        path: shown.clone(),
        source: Box::new(source),
    };
    let table: toml::Table = toml::from_str(&text).map_err(parse_err)?;
    let (profile, section, base_url) = if table.contains_key("target") {
        let config = TargetConfig::parse(&shown, &text)?;
        let section = config.verify.ok_or_else(|| TargetError::Invalid {
            path: shown.clone(),
            problem: "there is no `[verify]` section".to_owned(),
        })?;
        (config.profile, section, Some(config.target.base_url))
    } else {
        let config: VerifyOnlyConfig = toml::from_str(&text).map_err(parse_err)?;
        (config.profile, config.verify, None)
    };
    let mut target = section.resolve(&shown)?;
    target.base_url = base_url;
    Ok((profile, target))
}
