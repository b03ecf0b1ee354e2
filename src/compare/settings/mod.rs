//! Declared settings (from the target config) against deployed ones:
//! compatibility date and flags, binding names, types, targets and the
//! values of `plain_text`/`json` bindings (a secret's value is never read),
//! and the script-level placement, limits, cache options and usage model.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::probe::Redactor;

/// The longest binding value printed in a difference, in characters.
pub const VALUE_SHOWN: usize = 80;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedBinding {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The value of a `plain_text` (`text`, a JSON string) or `json`
    /// (`json`) binding; `None` for every other type, secrets included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl DeployedBinding {
    fn key(&self) -> (&str, &str, Option<&str>, Option<String>) {
        (
            &self.name,
            &self.kind,
            self.target.as_deref(),
            self.value.as_ref().map(Value::to_string),
        )
    }
}

impl PartialOrd for DeployedBinding {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DeployedBinding {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// The binding types whose value the API reports and may be declared.
pub const VALUE_TYPES: [&str; 2] = ["plain_text", "json"];

/// The types whose value is secret: never read, printed or declared.
pub const SECRET_TYPES: [&str; 2] = ["secret_text", "secret_key"];

/// A binding value as printed: JSON, cut to [`VALUE_SHOWN`] characters and
/// with credentials (URL userinfo, `Bearer …`) masked by the redactor.
pub fn shown_value(value: &Value) -> String {
    let text = value.to_string();
    let cut: String = text.chars().take(VALUE_SHOWN).collect();
    let cut = if cut.len() < text.len() {
        format!("{cut}… ({} bytes)", text.len())
    } else {
        cut
    };
    Redactor::new().scrub_printed(&cut)
}

/// The script-level settings (`GET …/scripts/{s}/settings`), which every
/// version of the script runs with. `None`: the API did not report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployedScriptSettings {
    pub placement: Option<Value>,
    pub limits: Option<Value>,
    pub cache_options: Option<Value>,
    pub usage_model: Option<String>,
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
    /// What was declared but could not be compared (the API did not report
    /// it, or it is never read: a secret's value): each makes the check
    /// `error` unless a difference already fails it.
    pub unobservable: Vec<String>,
    /// What was deployed and not compared because it is not declared (a
    /// `plain_text`/`json` value): for the evidence.
    pub uncompared: Vec<String>,
}

impl SettingsComparison {
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }

    /// No difference, and everything declared was compared.
    pub fn verified(&self) -> bool {
        self.differences.is_empty() && self.unobservable.is_empty()
    }

    /// Appends another comparison's findings.
    pub fn extend(&mut self, other: SettingsComparison) {
        self.differences.extend(other.differences);
        self.unobservable.extend(other.unobservable);
        self.uncompared.extend(other.uncompared);
    }
}

/// Whether a deployed object setting is unset: absent, `null`, `{}`, or an
/// object whose every field is `null`.
fn unset(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.values().all(Value::is_null),
        Some(_) => false,
    }
}

/// A declared object against a deployed one: every declared key must be
/// deployed with an equal value (keys not declared are not compared). A
/// declared scalar must equal the deployed value.
fn compare_object(what: &str, declared: &Value, deployed: Option<&Value>, out: &mut Vec<String>) {
    let shown = |v: Option<&Value>| v.map(shown_value).unwrap_or_else(|| "unset".to_owned());
    match declared {
        Value::Object(want) => {
            let have = deployed.and_then(Value::as_object);
            for (key, value) in want {
                let got = have.and_then(|h| h.get(key));
                if got != Some(value) {
                    out.push(format!(
                        "{what}.{key} is {}, declared {}",
                        shown(got),
                        shown_value(value)
                    ));
                }
            }
        }
        other => {
            if deployed != Some(other) {
                out.push(format!(
                    "{what} is {}, declared {}",
                    shown(deployed),
                    shown_value(other)
                ));
            }
        }
    }
}

/// Compares the declared placement, limits, cache options and usage model
/// with the script-level settings.
///
/// - `placement`: declared, every declared key must be deployed equal; not
///   declared, any placement (smart, a region, a host) is a difference, as
///   it moves where the Worker runs.
/// - `limits`: declared, every declared key equal; not declared, not
///   compared (limits bound the Worker, they do not widen what it does).
/// - `cache_options`: declared, every declared key equal; not declared, a
///   cache that is on (`enabled` or `cross_version_cache` true) is a
///   difference: it answers requests before the Worker runs, and a
///   cross-version cache is shared with older versions.
/// - `usage_model`: compared when declared.
///
/// A declared setting the API does not report is unobservable.
pub fn compare_script_settings(
    declared: &DeclaredSettings,
    deployed: &DeployedScriptSettings,
) -> SettingsComparison {
    let mut differences = Vec::new();
    let mut unobservable = Vec::new();
    match &declared.placement {
        Some(want) => compare_object(
            "placement",
            want,
            deployed.placement.as_ref(),
            &mut differences,
        ),
        None => {
            if !unset(deployed.placement.as_ref()) {
                differences.push(format!(
                    "undeclared placement {}",
                    shown_value(deployed.placement.as_ref().unwrap_or(&Value::Null))
                ));
            }
        }
    }
    if let Some(want) = &declared.limits {
        if deployed.limits.is_none() {
            unobservable.push("the settings report no `limits`".to_owned());
        } else {
            compare_object("limits", want, deployed.limits.as_ref(), &mut differences);
        }
    }
    // An absent `cache_options`, or an absent key of it, is off.
    let cache = |key: &str| {
        deployed
            .cache_options
            .as_ref()
            .and_then(|c| c.get(key))
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Bool(false))
    };
    match &declared.cache_options {
        Some(Value::Object(want)) => {
            for (key, value) in want {
                let got = cache(key);
                if &got != value {
                    differences.push(format!(
                        "cache_options.{key} is {}, declared {}",
                        shown_value(&got),
                        shown_value(value)
                    ));
                }
            }
        }
        Some(other) => unobservable.push(format!(
            "the declared cache_options {} is not a table",
            shown_value(other)
        )),
        None => {
            for key in ["enabled", "cross_version_cache"] {
                if cache(key) != Value::Bool(false) {
                    differences.push(format!(
                        "undeclared cache_options.{key} is {}",
                        shown_value(&cache(key))
                    ));
                }
            }
        }
    }
    if let Some(want) = &declared.usage_model {
        match &deployed.usage_model {
            None => unobservable.push("the settings report no `usage_model`".to_owned()),
            Some(have) if have != want => {
                differences.push(format!("usage model is {have}, declared {want}"))
            }
            Some(_) => {}
        }
    }
    SettingsComparison {
        differences,
        unobservable,
        uncompared: Vec::new(),
    }
}

/// Compares what the config declares with what a version runs with.
pub fn compare_settings(
    declared: &DeclaredSettings,
    deployed: &DeployedSettings,
) -> SettingsComparison {
    let mut differences = Vec::new();
    let mut unobservable = Vec::new();
    let mut uncompared = Vec::new();
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
                compare_value(
                    declared,
                    binding,
                    &mut differences,
                    &mut unobservable,
                    &mut uncompared,
                );
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
    SettingsComparison {
        differences,
        unobservable,
        uncompared,
    }
}

/// A declared binding's value against the deployed one (same name and
/// type). Only `plain_text` and `json` values are compared; a secret's value
/// is never read, compared or printed (a declared one is refused, unshown).
///
/// A `plain_text`/`json` binding whose value is not declared is not
/// compared, as a binding's target is compared only when declared: the
/// config pins the name and type, and the value is shown in the evidence.
/// A config that declares the value (a wrangler `vars` entry always does)
/// gets it compared, so a changed `TRUSTED_ORIGIN` fails.
fn compare_value(
    declared: &DeclaredBinding,
    deployed: &DeployedBinding,
    differences: &mut Vec<String>,
    unobservable: &mut Vec<String>,
    uncompared: &mut Vec<String>,
) {
    let name = &declared.name;
    let kind = declared.kind.as_str();
    match &declared.value {
        None => {
            if let Some(v) = &deployed.value
                && VALUE_TYPES.contains(&kind)
            {
                uncompared.push(format!(
                    "binding `{name}` ({kind}) = {} (value not declared, not compared)",
                    shown_value(v)
                ));
            }
        }
        Some(_) if SECRET_TYPES.contains(&kind) => unobservable.push(format!(
            "a value is declared for secret `{name}`: secret values are never read or compared"
        )),
        Some(_) if !VALUE_TYPES.contains(&kind) => unobservable.push(format!(
            "a value is declared for `{name}` ({kind}): only plain_text and json values are \
             reported"
        )),
        Some(want) => {
            if kind == "plain_text" && !want.is_string() {
                unobservable.push(format!(
                    "the declared value of plain_text `{name}` is not a string"
                ));
                return;
            }
            match &deployed.value {
                None => unobservable.push(format!(
                    "the API reports no value for {kind} binding `{name}`"
                )),
                Some(have) if have != want => differences.push(format!(
                    "binding `{name}` ({kind}) is {}, declared {}",
                    shown_value(have),
                    shown_value(want)
                )),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
