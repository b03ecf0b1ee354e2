//! Secret resolution: the config names secrets by environment variable;
//! these read them into [`Secret`]s, for the conform target (account
//! passwords, the service key) and for verify (the API token).

use std::collections::BTreeMap;

use url::Url;

use crate::cloudflare::Credentials;
use crate::model::Secret;

use super::error::TargetError;
use super::schema::{Budget, Paths, ProfileSection, TargetConfig};
use super::verify::VerifyTarget;

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
        let base_url = self.target.base_url.clone();
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
                Some(section) => Some(VerifyTarget {
                    base_url: Some(base_url),
                    ..section.resolve(path)?
                }),
                None => None,
            },
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
