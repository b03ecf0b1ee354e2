//! Declared settings (from the target config) against deployed ones:
//! compatibility date and flags, binding names, types and targets.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A binding the target config declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredBinding {
    pub name: String,
    /// The Cloudflare binding type: `d1`, `kv_namespace`, `r2_bucket`,
    /// `service`, `plain_text`, `secret_text`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource it points at (D1 database id, KV namespace id, bucket,
    /// service name, …); compared only when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The value of a `plain_text` (a string) or `json` binding; never
    /// declared for a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// What the target config says the deployment must be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredSettings {
    /// Compared only when declared.
    pub compatibility_date: Option<String>,
    pub compatibility_flags: Vec<String>,
    pub bindings: Vec<DeclaredBinding>,
    /// `placement` as the API's settings report it (`{"mode": "smart"}`, a
    /// region or host target); `None`: must be unset (no placement).
    pub placement: Option<serde_json::Value>,
    /// `limits` (`{"cpu_ms": …, "subrequests": …}`); `None`: not declared.
    pub limits: Option<serde_json::Value>,
    /// `cache_options` (`{"enabled": …, "cross_version_cache": …}`);
    /// `None`: not declared.
    pub cache_options: Option<serde_json::Value>,
    /// `usage_model` (`standard`, `bundled`, `unbound`); `None`: not declared.
    pub usage_model: Option<String>,
}

/// A binding as the Cloudflare API reports it (never its secret value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeployedBinding {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A version's runtime settings as deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployedSettings {
    pub compatibility_date: Option<String>,
    pub compatibility_flags: Vec<String>,
    pub bindings: Vec<DeployedBinding>,
}

/// Every difference between declared and deployed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsComparison {
    /// One sentence per difference, in a stable order.
    pub differences: Vec<String>,
}

impl SettingsComparison {
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares what the config declares with what a version runs with.
pub fn compare_settings(
    declared: &DeclaredSettings,
    deployed: &DeployedSettings,
) -> SettingsComparison {
    let mut differences = Vec::new();
    if let Some(date) = &declared.compatibility_date
        && deployed.compatibility_date.as_ref() != Some(date)
    {
        differences.push(format!(
            "compatibility date is {}, declared {date}",
            deployed.compatibility_date.as_deref().unwrap_or("unset")
        ));
    }
    let want: BTreeSet<&str> = declared
        .compatibility_flags
        .iter()
        .map(String::as_str)
        .collect();
    let have: BTreeSet<&str> = deployed
        .compatibility_flags
        .iter()
        .map(String::as_str)
        .collect();
    for flag in have.difference(&want) {
        differences.push(format!("undeclared compatibility flag `{flag}`"));
    }
    for flag in want.difference(&have) {
        differences.push(format!("declared compatibility flag `{flag}` is not set"));
    }
    let want: BTreeMap<&str, &DeclaredBinding> = declared
        .bindings
        .iter()
        .map(|b| (b.name.as_str(), b))
        .collect();
    let have: BTreeMap<&str, &DeployedBinding> = deployed
        .bindings
        .iter()
        .map(|b| (b.name.as_str(), b))
        .collect();
    for (name, binding) in &have {
        match want.get(name) {
            None => differences.push(format!("undeclared binding `{name}` ({})", binding.kind)),
            Some(declared) if declared.kind != binding.kind => differences.push(format!(
                "binding `{name}` is a {}, declared {}",
                binding.kind, declared.kind
            )),
            Some(declared) => {
                if let Some(target) = &declared.target
                    && binding.target.as_ref() != Some(target)
                {
                    differences.push(format!(
                        "binding `{name}` points at {}, declared {target}",
                        binding.target.as_deref().unwrap_or("nothing")
                    ));
                }
            }
        }
    }
    for (name, binding) in &want {
        if !have.contains_key(name) {
            differences.push(format!(
                "declared binding `{name}` ({}) is missing",
                binding.kind
            ));
        }
    }
    SettingsComparison { differences }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> DeclaredSettings {
        DeclaredSettings {
            compatibility_date: Some("2025-09-01".into()),
            compatibility_flags: vec!["nodejs_compat".into()],
            bindings: vec![DeclaredBinding {
                name: "DB".into(),
                kind: "d1".into(),
                target: Some("db-1".into()),
                value: None,
            }],
            ..DeclaredSettings::default()
        }
    }

    fn deployed() -> DeployedSettings {
        DeployedSettings {
            compatibility_date: Some("2025-09-01".into()),
            compatibility_flags: vec!["nodejs_compat".into()],
            bindings: vec![DeployedBinding {
                name: "DB".into(),
                kind: "d1".into(),
                target: Some("db-1".into()),
            }],
        }
    }

    #[test]
    fn equal_settings_match_and_each_change_is_named() {
        assert!(compare_settings(&declared(), &deployed()).matches());
        let mut d = deployed();
        d.compatibility_flags
            .push("streams_enable_constructors".into());
        d.bindings.push(DeployedBinding {
            name: "LEAK".into(),
            kind: "service".into(),
            target: Some("exfil".into()),
        });
        d.bindings[0].target = Some("db-2".into());
        d.compatibility_date = Some("2024-01-01".into());
        let c = compare_settings(&declared(), &d);
        let text = c.differences.join("\n");
        for needle in [
            "compatibility date is 2024-01-01",
            "`streams_enable_constructors`",
            "`LEAK`",
            "points at db-2",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        d.bindings.clear();
        let c = compare_settings(&declared(), &d);
        assert!(
            c.differences
                .iter()
                .any(|s| s.contains("`DB` (d1) is missing"))
        );
    }
}
