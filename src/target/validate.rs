//! Reading a config file and checking what serde cannot: URL schemes,
//! non-empty fields, known account roles, Worker script names.

use std::path::Path;

use super::error::TargetError;
use super::schema::{ACCOUNT_ROLES, RecipeSpec, TargetConfig, VerifySection};

/// The names `recipe` may give instead of a command.
pub const RECIPE_PRESETS: [&str; 1] = ["wrangler"];

/// A Worker script name: letters, digits, `-`, `_`.
pub(super) fn check_script_name(script: &str) -> Result<(), String> {
    let ok = !script.is_empty()
        && script
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`verify.script` `{script}` is not a Worker script name (letters, digits, `-`, `_`)"
        ))
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
        if self.budget.kept_bytes() < self.budget.max_body_bytes {
            return Err(invalid(
                "`budget.max_kept_bytes` must be at least `budget.max_body_bytes`: a body the run may read must fit in what it may keep".to_owned(),
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
}

impl VerifySection {
    pub(super) fn is_wrangler_preset(&self) -> bool {
        matches!(&self.recipe, RecipeSpec::Preset(p) if p == "wrangler")
    }

    pub(super) fn validate(&self, path: &str) -> Result<(), TargetError> {
        let invalid = |problem: String| TargetError::Invalid {
            path: path.to_owned(),
            problem,
        };
        match &self.recipe {
            RecipeSpec::Command(c) if c.is_empty() => {
                return Err(invalid("`verify.recipe` is empty".to_owned()));
            }
            RecipeSpec::Preset(p) if !RECIPE_PRESETS.contains(&p.as_str()) => {
                return Err(invalid(format!(
                    "`verify.recipe` preset `{p}` is not known (known: {}; or give the command \
                     as a list)",
                    RECIPE_PRESETS.join(", ")
                )));
            }
            _ => {}
        }
        match &self.script {
            Some(script) => check_script_name(script).map_err(invalid)?,
            None if self.wrangler.is_none() => {
                return Err(invalid(
                    "`verify.script` is not set, and there is no `verify.wrangler` config to \
                     name it"
                        .to_owned(),
                ));
            }
            None => {}
        }
        if self.wrangler_env.is_some() && self.wrangler.is_none() && !self.is_wrangler_preset() {
            return Err(invalid(
                "`verify.wrangler_env` is set without `verify.wrangler` or `recipe = \"wrangler\"`"
                    .to_owned(),
            ));
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
}
