//! The `[verify]` section resolved for a verify run, and loading a config
//! for `verify` alone.

use std::path::Path;

use url::Url;

use crate::compare::DeclaredSettings;
use crate::rebuild::{Recipe, WranglerPreset};

use super::error::TargetError;
use super::schema::{ProfileSection, RecipeSpec, TargetConfig, VerifyOnlyConfig, VerifySection};
use super::validate::check_script_name;
use super::wrangler::{self, WranglerDeclaration, main_module};

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
    /// Resolves the source folder against the config file's folder, reads
    /// the wrangler config when one is named, and lays the `[verify]` keys
    /// that are set over what it declares.
    pub fn resolve(self, config_path: &str) -> Result<VerifyTarget, TargetError> {
        self.validate(config_path)?;
        let base = Path::new(config_path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let source = base.join(&self.source);
        let source = std::path::absolute(&source).map_err(|source_err| TargetError::Read {
            path: source.display().to_string(),
            source: source_err,
        })?;
        let wrangler = match &self.wrangler {
            None => WranglerDeclaration::default(),
            Some(rel) => read_wrangler(&source.join(rel), self.wrangler_env.as_deref())?,
        };
        // Declared, else the first lockfile present in the source folder.
        let lockfile = self
            .lockfile
            .map(|l| source.join(l))
            .or_else(|| crate::compare::find_lockfile(&source));
        let mut recipe = Recipe {
            source,
            command: Vec::new(),
            env: self.env,
            non_artifacts: self.non_artifacts,
            link: self.link,
            main_module: self.main_module,
            hard_link: self.hard_link.unwrap_or(false),
        };
        match self.recipe {
            RecipeSpec::Command(command) => recipe.command = command,
            RecipeSpec::Preset(_) => {
                let preset = WranglerPreset {
                    config: self.wrangler.as_ref().map(|p| p.display().to_string()),
                    env: self.wrangler_env.clone(),
                    upload_source_maps: wrangler.upload_source_maps,
                    main_module: wrangler.main.as_deref().and_then(main_module),
                }
                .recipe();
                recipe.command = preset.command;
                for (k, v) in preset.env {
                    recipe.env.entry(k).or_insert(v);
                }
                let mut non_artifacts = preset.non_artifacts;
                non_artifacts.append(&mut recipe.non_artifacts);
                recipe.non_artifacts = non_artifacts;
                if recipe.link.is_empty() {
                    recipe.link = preset.link;
                }
                recipe.main_module = recipe.main_module.or(preset.main_module);
                recipe.hard_link = self.hard_link.unwrap_or(preset.hard_link);
            }
        }
        let script = self
            .script
            .or(wrangler.script)
            .ok_or_else(|| TargetError::Invalid {
                path: config_path.to_owned(),
                problem: "`verify.script` is not set, and the wrangler config has no `name`"
                    .to_owned(),
            })?;
        check_script_name(&script).map_err(|problem| TargetError::Invalid {
            path: config_path.to_owned(),
            problem,
        })?;
        let or_json =
            |v: Option<toml::Value>, w: Option<serde_json::Value>| v.map(toml_to_json).or(w);
        Ok(VerifyTarget {
            recipe,
            bisect: self.bisect,
            script,
            declared: DeclaredSettings {
                compatibility_date: self.compatibility_date.or(wrangler.compatibility_date),
                compatibility_flags: self
                    .compatibility_flags
                    .unwrap_or(wrangler.compatibility_flags),
                bindings: self.bindings.unwrap_or(wrangler.bindings),
                placement: or_json(self.placement, wrangler.placement),
                limits: or_json(self.limits, wrangler.limits),
                cache_options: or_json(self.cache_options, wrangler.cache_options),
                usage_model: self.usage_model,
            },
            observers: DeclaredObservers {
                tail_consumers: self.tail_consumers.unwrap_or(wrangler.tail_consumers),
                logpush: self.logpush.unwrap_or(wrangler.logpush),
                log_destinations: self.log_destinations.unwrap_or(wrangler.log_destinations),
                streaming_tail_consumers: self
                    .streaming_tail_consumers
                    .unwrap_or(wrangler.streaming_tail_consumers),
                trace_destinations: self
                    .trace_destinations
                    .unwrap_or(wrangler.trace_destinations),
                observability: self.observability.unwrap_or(wrangler.observability),
            },
            ingress: DeclaredIngress {
                routes: self.routes.unwrap_or(wrangler.routes),
                custom_domains: self.custom_domains.unwrap_or(wrangler.custom_domains),
                workers_dev: self.workers_dev.unwrap_or(wrangler.workers_dev),
                preview_urls: self.preview_urls.unwrap_or(wrangler.preview_urls),
                zone_id: self.zone_id.or(wrangler.zone_id),
            },
            provenance: DeclaredProvenance { lockfile },
            api_base: self.api_base,
            api_token_env: self.api_token_env,
            account_id_env: self.account_id_env,
            base_url: None,
        })
    }
}

/// Reads the wrangler config at `path` for `env`.
fn read_wrangler(path: &Path, env: Option<&str>) -> Result<WranglerDeclaration, TargetError> {
    let shown = path.display().to_string();
    let text = fs_err::read_to_string(path).map_err(|source| TargetError::Read {
        path: shown.clone(),
        source,
    })?;
    let invalid = |problem: String| TargetError::Invalid {
        path: shown.clone(),
        problem,
    };
    let value = wrangler::parse(path, &text).map_err(&invalid)?;
    wrangler::declaration(&value, env).map_err(invalid)
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

#[cfg(test)]
mod tests {
    use super::*;

    const WRANGLER_TOML: &str = r#"
        name = "auth"
        main = "src/worker.ts"
        compatibility_date = "2025-09-01"
        compatibility_flags = ["nodejs_compat"]
        logpush = false
        [env.production]
        routes = [{ pattern = "auth.example.com", custom_domain = true }]
        kv_namespaces = [{ binding = "SESSIONS", id = "k1" }]
        tail_consumers = [{ service = "tail-sink" }]
    "#;

    fn load(verify: &str, wrangler: Option<&str>) -> Result<VerifyTarget, TargetError> {
        let tmp = tempfile::tempdir().unwrap();
        if let Some(w) = wrangler {
            fs_err::write(tmp.path().join("wrangler.toml"), w).unwrap();
        }
        let path = tmp.path().join("flareproof.toml");
        fs_err::write(&path, format!("[verify]\nsource = \".\"\n{verify}")).unwrap();
        load_verify(&path).map(|(_, t)| t)
    }

    #[test]
    fn verify_keys_that_are_set_override_the_wrangler_config_and_the_rest_comes_from_it() {
        let base =
            "recipe = \"wrangler\"\nwrangler = \"wrangler.toml\"\nwrangler_env = \"production\"\n";
        let t = load(base, Some(WRANGLER_TOML)).unwrap();
        assert_eq!(t.script, "auth-production");
        assert_eq!(t.declared.compatibility_flags, ["nodejs_compat"]);
        assert_eq!(t.declared.bindings.len(), 1);
        assert_eq!(t.observers.tail_consumers, ["tail-sink"]);
        assert!(!t.observers.logpush);
        assert_eq!(t.ingress.custom_domains, ["auth.example.com"]);
        assert!(!t.ingress.workers_dev, "a route: no workers.dev by default");
        assert_eq!(t.recipe.main_module.as_deref(), Some("worker.js"));
        assert_eq!(t.recipe.non_artifacts, ["README.md", "**/*.map"]);
        assert!(
            t.recipe
                .command
                .join(" ")
                .ends_with("--config {src}/wrangler.toml --env production")
        );

        let overridden = format!(
            "{base}script = \"auth-blue\"\ncompatibility_flags = []\nlogpush = true\n\
             tail_consumers = []\nworkers_dev = true\nbindings = [{{ name = \"DB\", type = \"d1\" }}]\n\
             non_artifacts = [\"stats.json\"]\nenv = {{ WRANGLER_SEND_METRICS = \"true\" }}\n"
        );
        let t = load(&overridden, Some(WRANGLER_TOML)).unwrap();
        assert_eq!(t.script, "auth-blue");
        assert!(
            t.declared.compatibility_flags.is_empty(),
            "set, though empty"
        );
        assert_eq!(
            t.declared.compatibility_date.as_deref(),
            Some("2025-09-01"),
            "not set: wrangler's"
        );
        assert_eq!(t.declared.bindings.len(), 1);
        assert_eq!(t.declared.bindings[0].name, "DB");
        assert!(t.observers.logpush);
        assert!(t.observers.tail_consumers.is_empty());
        assert!(t.ingress.workers_dev);
        assert_eq!(t.ingress.custom_domains, ["auth.example.com"]);
        assert_eq!(
            t.recipe.non_artifacts,
            ["README.md", "**/*.map", "stats.json"]
        );
        assert_eq!(t.recipe.env["WRANGLER_SEND_METRICS"], "true");
    }

    #[test]
    fn a_config_without_wrangler_loads_as_before() {
        let t = load(
            "recipe = [\"node\", \"build.mjs\", \"--outdir\", \"{out}\"]\nscript = \"w\"\n",
            None,
        )
        .unwrap();
        assert_eq!(t.script, "w");
        assert_eq!(t.recipe.command, ["node", "build.mjs", "--outdir", "{out}"]);
        assert!(t.recipe.non_artifacts.is_empty() && t.recipe.main_module.is_none());
        assert!(t.declared.bindings.is_empty() && t.declared.compatibility_flags.is_empty());
        assert!(!t.observers.logpush && !t.ingress.workers_dev);
    }

    #[test]
    fn a_wrangler_declaration_that_cannot_be_read_is_an_error_naming_why() {
        let err = load("recipe = [\"true\"]\n", None).unwrap_err().to_string();
        assert!(err.contains("`verify.script` is not set"), "{err}");
        let err = load("recipe = \"make\"\nscript = \"w\"\n", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("preset `make`"), "{err}");
        let err = load(
            "recipe = \"wrangler\"\nwrangler = \"wrangler.toml\"\n",
            Some("name = \"w\"\n[[magic]]\nbinding = \"M\"\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("wrangler.toml") && err.contains("`magic`"),
            "{err}"
        );
        let err = load(
            "recipe = \"wrangler\"\nwrangler = \"wrangler.toml\"\nwrangler_env = \"staging\"\n",
            Some(WRANGLER_TOML),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("env.staging"), "{err}");
        let err = load(
            "recipe = \"wrangler\"\nwrangler = \"wrangler.toml\"\n",
            Some("name = \"not a name\"\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a Worker script name"), "{err}");
    }
}
