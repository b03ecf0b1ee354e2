//! The target config (`flareproof.toml`): what to check and how hard.
//!
//! The file names secrets only by environment variable; [`TargetConfig::resolve`]
//! reads them into [`Secret`]s. Nothing here prints a secret.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use url::Url;

use crate::model::Secret;

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
        })
    }
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
