//! The target config (`flareproof.toml`): what to check and how hard.
//!
//! The file names secrets only by environment variable; [`TargetConfig::resolve`]
//! reads them into [`Secret`]s. Nothing here prints a secret.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use url::Url;

use crate::cloudflare::Credentials;
use crate::compare::{DeclaredBinding, DeclaredSettings};
use crate::model::Secret;
use crate::rebuild::Recipe;

/// The accounts a conform run signs in as.
pub const ACCOUNT_ROLES: [&str; 4] = ["free", "free2", "pro", "admin"];

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("read config `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parse config `{path}`")]
    Parse {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("config `{path}`: {problem}")]
    Invalid { path: String, problem: String },
    #[error("config `{path}`: environment variable `{var}` (named by `{key}`) is not set or empty")]
    MissingSecret {
        path: String,
        key: String,
        var: String,
    },
}

/// A per-tier limit: a number of requests per window, or `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    Count(u64),
    Unlimited(Unlimited),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlimited {
    Unlimited,
}

impl Limit {
    pub fn count(self) -> Option<u64> {
        match self {
            Limit::Count(n) => Some(n),
            Limit::Unlimited(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub anonymous: Limit,
    pub free: Limit,
    pub pro: Limit,
    pub admin: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            anonymous: Limit::Count(10),
            free: Limit::Count(60),
            pro: Limit::Count(300),
            admin: Limit::Unlimited(Unlimited::Unlimited),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    pub base_url: Url,
    #[serde(default)]
    pub vantages: Vec<Url>,
    pub origin: String,
    /// The session cookie's name (with or without its `__Host-`/`__Secure-`
    /// prefix); by default the cookie whose name ends in `session_token`.
    #[serde(default)]
    pub session_cookie: Option<String>,
}

fn default_suite() -> String {
    "flarelink-auth/v1".to_owned()
}
fn default_window_s() -> u64 {
    60
}
fn default_revocation_bound_s() -> u64 {
    60
}
fn default_max_session_age_s() -> u64 {
    604_800
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    #[serde(default = "default_suite")]
    pub suite: String,
    #[serde(default = "default_window_s")]
    pub window_s: u64,
    #[serde(default = "default_revocation_bound_s")]
    pub revocation_bound_s: u64,
    #[serde(default = "default_max_session_age_s")]
    pub max_session_age_s: u64,
    #[serde(default)]
    pub limits: Limits,
}

impl Default for ProfileSection {
    fn default() -> Self {
        ProfileSection {
            suite: default_suite(),
            window_s: default_window_s(),
            revocation_bound_s: default_revocation_bound_s(),
            max_session_age_s: default_max_session_age_s(),
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    pub email: String,
    pub password_env: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub service_key_env: String,
}

fn default_max_requests() -> u64 {
    5000
}
fn default_max_rps() -> u32 {
    50
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default = "default_max_requests")]
    pub max_requests: u64,
    #[serde(default = "default_max_rps")]
    pub max_rps: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_requests: default_max_requests(),
            max_rps: default_max_rps(),
        }
    }
}

/// The contract's paths; a target may rename any of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub sign_up: String,
    pub sign_in: String,
    pub sign_out: String,
    pub get_session: String,
    pub revoke_sessions: String,
    pub me: String,
    pub ping: String,
    pub posts: String,
    pub query: String,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            sign_up: "/api/auth/sign-up/email".into(),
            sign_in: "/api/auth/sign-in/email".into(),
            sign_out: "/api/auth/sign-out".into(),
            get_session: "/api/auth/get-session".into(),
            revoke_sessions: "/api/auth/revoke-sessions".into(),
            me: "/api/me".into(),
            ping: "/api/ping".into(),
            posts: "/api/posts".into(),
            query: "/v1/query".into(),
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub target: TargetSection,
    #[serde(default)]
    pub profile: ProfileSection,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountSection>,
    pub data: Option<DataSection>,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub paths: Paths,
    /// What `verify` rebuilds and what the deployment must be; optional,
    /// conform-only configs leave it out.
    #[serde(default)]
    pub verify: Option<VerifySection>,
}

/// An account with its password read from the environment.
#[derive(Debug, Clone)]
pub struct Account {
    pub role: String,
    pub email: String,
    pub password: Secret,
}

/// A validated target with its secrets resolved.
#[derive(Debug, Clone)]
pub struct Target {
    pub base_url: Url,
    /// Every vantage point, `base_url` first, no duplicates.
    pub vantages: Vec<Url>,
    pub origin: String,
    pub session_cookie: Option<String>,
    pub profile: ProfileSection,
    pub accounts: BTreeMap<String, Account>,
    pub service_key: Option<Secret>,
    pub budget: Budget,
    pub paths: Paths,
    /// The resolved `[verify]` section, if the config has one.
    pub verify: Option<VerifyTarget>,
}

impl Target {
    pub fn account(&self, role: &str) -> Option<&Account> {
        self.accounts.get(role)
    }
}

impl TargetConfig {
    pub fn load(path: &Path) -> Result<TargetConfig, TargetError> {
        let text = fs_err::read_to_string(path).map_err(|source| TargetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<TargetConfig, TargetError> {
        let config: TargetConfig = toml::from_str(text).map_err(|source| TargetError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &str) -> Result<(), TargetError> {
        let invalid = |problem: String| TargetError::Invalid {
            path: path.to_owned(),
            problem,
        };
        for url in std::iter::once(&self.target.base_url).chain(&self.target.vantages) {
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(invalid(format!(
                    "`{url}` is not an http(s) URL with a host"
                )));
            }
        }
        if self.target.origin.trim().is_empty() {
            return Err(invalid("`target.origin` is empty".to_owned()));
        }
        if self.profile.window_s == 0 {
            return Err(invalid("`profile.window_s` must be at least 1".to_owned()));
        }
        if self.budget.max_rps == 0 || self.budget.max_requests == 0 {
            return Err(invalid(
                "`budget.max_rps` and `budget.max_requests` must be at least 1".to_owned(),
            ));
        }
        if let Some(verify) = &self.verify {
            verify.validate(path)?;
        }
        if let Some(role) = self
            .accounts
            .keys()
            .find(|r| !ACCOUNT_ROLES.contains(&r.as_str()))
        {
            return Err(invalid(format!(
                "unknown account `{role}` (known: {})",
                ACCOUNT_ROLES.join(", ")
            )));
        }
        Ok(())
    }

    /// Reads the secrets the config names from the environment.
    pub fn resolve(
        self,
        path: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, TargetError> {
        let secret = |key: String, var: &str| {
            env(var)
                .filter(|v| !v.is_empty())
                .map(Secret::new)
                .ok_or_else(|| TargetError::MissingSecret {
                    path: path.to_owned(),
                    key,
                    var: var.to_owned(),
                })
        };
        let mut accounts = BTreeMap::new();
        for (role, section) in self.accounts {
            let password = secret(
                format!("accounts.{role}.password_env"),
                &section.password_env,
            )?;
            accounts.insert(
                role.clone(),
                Account {
                    role,
                    email: section.email,
                    password,
                },
            );
        }
        let service_key = match &self.data {
            Some(data) => Some(secret(
                "data.service_key_env".to_owned(),
                &data.service_key_env,
            )?),
            None => None,
        };
        let mut vantages = vec![self.target.base_url.clone()];
        for v in self.target.vantages {
            if !vantages.contains(&v) {
                vantages.push(v);
            }
        }
        Ok(Target {
            base_url: self.target.base_url,
            vantages,
            origin: self.target.origin,
            session_cookie: self.target.session_cookie,
            profile: self.profile,
            accounts,
            service_key,
            budget: self.budget,
            paths: self.paths,
            verify: match self.verify {
                Some(section) => Some(section.resolve(path)?),
                None => None,
            },
        })
    }
}

fn default_api_base() -> Url {
    Url::parse("https://api.cloudflare.com/client/v4").expect("a valid URL")
}
fn default_api_token_env() -> String {
    "CLOUDFLARE_API_TOKEN".to_owned()
}
fn default_account_id_env() -> String {
    "CLOUDFLARE_ACCOUNT_ID".to_owned()
}
fn default_true() -> bool {
    true
}

/// The `[verify]` section: what to rebuild, and what the deployment must be.
///
/// ```toml
/// [verify]
/// source = "fixtures"                 # the Worker's source folder, relative to this file
/// recipe = ["node", "build.mjs", "--outdir", "{out}"]  # {out}: output folder, {src}: source copy
/// env = { NODE_ENV = "production" }   # extra environment for the recipe (it runs with a clean one)
/// non_artifacts = ["README.md"]       # globs of output files that are not upload modules
/// link = ["node_modules"]             # top-level entries symlinked into each copy, not copied
/// main_module = "worker.js"           # only when the output has no manifest.json
/// bisect = true                       # on a rebuild difference, find the variation that exposes it
/// script = "auth-worker"              # the Worker's script name
/// compatibility_date = "2025-09-01"
/// compatibility_flags = ["nodejs_compat"]
/// bindings = [{ name = "DB", type = "d1" }, { name = "SESSIONS", type = "kv_namespace", target = "<namespace id>" }]
/// tail_consumers = []                 # tail consumer services the deployment may have
/// logpush = false                     # whether Logpush may be on
/// log_destinations = []               # Workers Logs export destinations it may have
/// api_base = "https://api.cloudflare.com/client/v4"
/// api_token_env = "CLOUDFLARE_API_TOKEN"    # needs "Workers Scripts Read"
/// account_id_env = "CLOUDFLARE_ACCOUNT_ID"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySection {
    pub source: std::path::PathBuf,
    pub recipe: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub non_artifacts: Vec<String>,
    #[serde(default)]
    pub link: Vec<String>,
    #[serde(default)]
    pub main_module: Option<String>,
    #[serde(default = "default_true")]
    pub bisect: bool,
    pub script: String,
    #[serde(default)]
    pub compatibility_date: Option<String>,
    #[serde(default)]
    pub compatibility_flags: Vec<String>,
    #[serde(default)]
    pub bindings: Vec<DeclaredBinding>,
    #[serde(default)]
    pub tail_consumers: Vec<String>,
    #[serde(default)]
    pub logpush: bool,
    #[serde(default)]
    pub log_destinations: Vec<String>,
    #[serde(default = "default_api_base")]
    pub api_base: Url,
    #[serde(default = "default_api_token_env")]
    pub api_token_env: String,
    #[serde(default = "default_account_id_env")]
    pub account_id_env: String,
}

/// Observers the config allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredObservers {
    pub tail_consumers: Vec<String>,
    pub logpush: bool,
    pub log_destinations: Vec<String>,
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
    pub api_base: Url,
    pub api_token_env: String,
    pub account_id_env: String,
}

impl VerifySection {
    fn validate(&self, path: &str) -> Result<(), TargetError> {
        let invalid = |problem: String| TargetError::Invalid {
            path: path.to_owned(),
            problem,
        };
        if self.recipe.is_empty() {
            return Err(invalid("`verify.recipe` is empty".to_owned()));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.script) {
            return Err(invalid(format!(
                "`verify.script` `{}` is not a Worker script name (letters, digits, `-`, `_`)",
                self.script
            )));
        }
        if !matches!(self.api_base.scheme(), "http" | "https") || self.api_base.host().is_none() {
            return Err(invalid(format!(
                "`verify.api_base` `{}` is not an http(s) URL with a host",
                self.api_base
            )));
        }
        if let Some(link) = self
            .link
            .iter()
            .find(|l| l.is_empty() || l.contains('/') && l.trim_end_matches('/').contains('/'))
        {
            return Err(invalid(format!(
                "`verify.link` entry `{link}` must be a top-level name in the source folder"
            )));
        }
        Ok(())
    }

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
            },
            observers: DeclaredObservers {
                tail_consumers: self.tail_consumers,
                logpush: self.logpush,
                log_destinations: self.log_destinations,
            },
            api_base: self.api_base,
            api_token_env: self.api_token_env,
            account_id_env: self.account_id_env,
        })
    }
}

impl VerifyTarget {
    /// Reads the API token and account id from the environment variables
    /// the config names.
    pub fn credentials(
        &self,
        config_path: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, TargetError> {
        let read = |key: &str, var: &str| {
            env(var)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| TargetError::MissingSecret {
                    path: config_path.to_owned(),
                    key: key.to_owned(),
                    var: var.to_owned(),
                })
        };
        Ok(Credentials {
            account_id: read("verify.account_id_env", &self.account_id_env)?
                .trim()
                .to_owned(),
            token: Secret::new(read("verify.api_token_env", &self.api_token_env)?.trim()),
        })
    }
}

/// A config for `verify`: `[verify]`, with `[profile]` optional. A config
/// that also has `[target]` is read (and checked) whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyOnlyConfig {
    verify: VerifySection,
    #[serde(default)]
    profile: ProfileSection,
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
    let (profile, section) = if table.contains_key("target") {
        let config = TargetConfig::parse(&shown, &text)?;
        let section = config.verify.ok_or_else(|| TargetError::Invalid {
            path: shown.clone(),
            problem: "there is no `[verify]` section".to_owned(),
        })?;
        (config.profile, section)
    } else {
        let config: VerifyOnlyConfig = toml::from_str(&text).map_err(parse_err)?;
        (config.profile, config.verify)
    };
    Ok((profile, section.resolve(&shown)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[target]
base_url = "https://auth.acme.test"
vantages = ["https://auth.acme.test", "https://edge2.acme.test"]
origin = "https://app.acme.test"
[profile]
suite = "flarelink-auth/v1"
window_s = 60
revocation_bound_s = 60
max_session_age_s = 604800
limits = { anonymous = 10, free = 60, pro = 300, admin = "unlimited" }
[accounts.free]
email = "free@acme.test"
password_env = "FP_FREE"
[data]
service_key_env = "FP_KEY"
[budget]
max_requests = 5000
max_rps = 50
"#;

    fn env(var: &str) -> Option<String> {
        match var {
            "FP_FREE" => Some("pw-free".into()),
            "FP_KEY" => Some("sk-123".into()),
            _ => None,
        }
    }

    #[test]
    fn example_config_resolves() {
        let target = TargetConfig::parse("t.toml", EXAMPLE)
            .unwrap()
            .resolve("t.toml", env)
            .unwrap();
        assert_eq!(target.vantages.len(), 2, "base_url is not repeated");
        assert_eq!(target.profile.limits.admin.count(), None);
        assert_eq!(target.profile.limits.pro.count(), Some(300));
        assert_eq!(target.account("free").unwrap().password.expose(), "pw-free");
        assert_eq!(target.service_key.unwrap().expose(), "sk-123");
        assert_eq!(target.paths.sign_in, "/api/auth/sign-in/email");
    }

    #[test]
    fn a_missing_secret_names_the_variable_not_a_value() {
        let err = TargetConfig::parse("t.toml", EXAMPLE)
            .unwrap()
            .resolve("t.toml", |_| None)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("FP_FREE") && msg.contains("accounts.free.password_env"),
            "{msg}"
        );
    }

    const VERIFY: &str = r#"
[verify]
source = "worker"
recipe = ["node", "build.mjs", "--outdir", "{out}"]
link = ["node_modules"]
script = "auth-worker"
compatibility_date = "2025-09-01"
compatibility_flags = ["nodejs_compat"]
bindings = [{ name = "DB", type = "d1" }, { name = "SESSIONS", type = "kv_namespace", target = "ns-1" }]
"#;

    #[test]
    fn a_verify_section_resolves_next_to_the_config_without_secrets() {
        let text = format!("{EXAMPLE}{VERIFY}");
        let target = TargetConfig::parse("conf/t.toml", &text)
            .unwrap()
            .resolve("conf/t.toml", env)
            .unwrap();
        let verify = target.verify.unwrap();
        assert!(verify.recipe.source.is_absolute());
        assert!(verify.recipe.source.ends_with("conf/worker"));
        assert_eq!(verify.declared.bindings[1].target.as_deref(), Some("ns-1"));
        assert_eq!(verify.api_token_env, "CLOUDFLARE_API_TOKEN");
        assert!(verify.bisect);
        let err = verify.credentials("conf/t.toml", |_| None).unwrap_err();
        assert!(err.to_string().contains("CLOUDFLARE_ACCOUNT_ID"), "{err}");
        let creds = verify
            .credentials("conf/t.toml", |v| Some(format!("{v}-value")))
            .unwrap();
        assert_eq!(creds.token.expose(), "CLOUDFLARE_API_TOKEN-value");
        assert!(!format!("{creds:?}").contains("CLOUDFLARE_API_TOKEN-value"));
    }

    #[test]
    fn verify_only_configs_load_and_bad_sections_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.toml");
        fs_err::write(&path, VERIFY).unwrap();
        let (profile, verify) = load_verify(&path).unwrap();
        assert_eq!(profile.suite, "flarelink-auth/v1");
        assert_eq!(verify.script, "auth-worker");
        fs_err::write(&path, format!("{VERIFY}surprise = 1\n")).unwrap();
        let chain = crate::error_chain(&load_verify(&path).unwrap_err());
        assert!(chain.contains("surprise"), "{chain}");
        fs_err::write(&path, VERIFY.replace("auth-worker", "auth/worker")).unwrap();
        let chain = crate::error_chain(&load_verify(&path).unwrap_err());
        assert!(chain.contains("verify.script"), "{chain}");
        fs_err::write(&path, EXAMPLE).unwrap();
        let chain = crate::error_chain(&load_verify(&path).unwrap_err());
        assert!(chain.contains("no `[verify]`"), "{chain}");
    }

    #[test]
    fn malformed_configs_are_errors_that_say_what_is_wrong() {
        let cases = [
            ("[target]\norigin='x'\n", "base_url"),
            ("[target]\nbase_url='ftp://x'\norigin='o'\n", "http(s)"),
            (
                "[target]\nbase_url='https://x'\norigin='o'\n[budget]\nmax_rps=0\n",
                "max_rps",
            ),
            (
                "[target]\nbase_url='https://x'\norigin='o'\n[accounts.root]\nemail='e'\npassword_env='P'\n",
                "unknown account",
            ),
            (
                "[target]\nbase_url='https://x'\norigin='o'\nsurprise=1\n",
                "surprise",
            ),
            (
                "[target]\nbase_url='https://x'\norigin='o'\n[profile]\nlimits={anonymous=1,free=1,pro=1,admin='lots'}\n",
                "admin",
            ),
        ];
        for (text, needle) in cases {
            let err = TargetConfig::parse("t.toml", text).unwrap_err();
            let chain = crate::error_chain(&err);
            assert!(chain.contains(needle), "{needle:?} not in {chain:?}");
        }
    }
}
