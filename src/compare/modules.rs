//! Rebuilt modules against deployed ones: a per-module table, missing and
//! extra modules, the entry module, and the first differing byte; and the
//! layout (each module's content type, the entry module) on its own, which
//! `verify.settings-match` judges.

use crate::model::ModuleDigest;

use super::settings::SettingsComparison;

use super::bundle::Bundle;
use super::diff::{first_difference, readable_diff};

/// A module present on both sides whose bytes differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleDifference {
    pub name: String,
    /// Byte offset of the first difference.
    pub offset: u64,
    /// A readable unified diff around the offset.
    pub diff: String,
}

/// The outcome of comparing two bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulesComparison {
    /// One row per module name on either side, sorted by name.
    pub rows: Vec<ModuleDigest>,
    /// Rebuilt but not deployed.
    pub missing: Vec<String>,
    /// Deployed but not rebuilt.
    pub extra: Vec<String>,
    pub differing: Vec<ModuleDifference>,
    /// Same bytes, different declared content type (both sides known).
    pub content_type_mismatch: Vec<String>,
    pub rebuilt_main: Option<String>,
    pub deployed_main: Option<String>,
    pub rebuilt_aggregate: String,
    pub deployed_aggregate: String,
}

impl ModulesComparison {
    /// The entry modules disagree (only when both sides name one).
    pub fn main_mismatch(&self) -> bool {
        matches!((&self.rebuilt_main, &self.deployed_main), (Some(a), Some(b)) if a != b)
    }

    /// Every module is present on both sides with equal bytes (content
    /// types and the entry module aside: see [`compare_layout`]).
    pub fn bytes_match(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.differing.is_empty()
    }

    /// [`ModulesComparison::describe`] without the content types and the
    /// entry module.
    pub fn describe_bytes(&self) -> String {
        let parts = self.byte_problems();
        if parts.is_empty() {
            format!(
                "{} module(s) byte-identical (aggregate sha256 over bytes, content types and \
                 entry: rebuilt {}, deployed {})",
                self.rows.len(),
                self.rebuilt_aggregate,
                self.deployed_aggregate
            )
        } else {
            parts.join("; ")
        }
    }

    /// One phrase per differing, missing or extra module.
    fn byte_problems(&self) -> Vec<String> {
        let mut parts = Vec::new();
        for d in &self.differing {
            parts.push(format!("`{}` differs from byte {}", d.name, d.offset));
        }
        if !self.missing.is_empty() {
            parts.push(format!(
                "missing from the deployment: {}",
                quoted(&self.missing)
            ));
        }
        if !self.extra.is_empty() {
            parts.push(format!("deployed but not rebuilt: {}", quoted(&self.extra)));
        }
        parts
    }

    /// Every module is present on both sides with equal bytes and types, and
    /// the entry module agrees.
    pub fn matches(&self) -> bool {
        self.bytes_match() && self.content_type_mismatch.is_empty() && !self.main_mismatch()
    }

    /// One sentence naming every problem, for a check's summary.
    pub fn describe(&self) -> String {
        let mut parts = self.byte_problems();
        if !self.content_type_mismatch.is_empty() {
            parts.push(format!(
                "content type differs: {}",
                quoted(&self.content_type_mismatch)
            ));
        }
        if self.main_mismatch() {
            parts.push(format!(
                "entry module is `{}`, rebuilt `{}`",
                self.deployed_main.as_deref().unwrap_or("-"),
                self.rebuilt_main.as_deref().unwrap_or("-")
            ));
        }
        if parts.is_empty() {
            format!(
                "{} module(s) byte-identical (aggregate sha256 {})",
                self.rows.len(),
                self.rebuilt_aggregate
            )
        } else {
            parts.join("; ")
        }
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares a rebuild with a deployment, module by module.
pub fn compare_modules(rebuilt: &Bundle, deployed: &Bundle) -> ModulesComparison {
    let mut names: Vec<&str> = rebuilt
        .modules()
        .iter()
        .chain(deployed.modules())
        .map(|m| m.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = ModulesComparison {
        rows: Vec::new(),
        missing: Vec::new(),
        extra: Vec::new(),
        differing: Vec::new(),
        content_type_mismatch: Vec::new(),
        rebuilt_main: rebuilt.main_module.clone(),
        deployed_main: deployed.main_module.clone(),
        rebuilt_aggregate: rebuilt.aggregate_sha256(),
        deployed_aggregate: deployed.aggregate_sha256(),
    };
    for name in names {
        let (r, d) = (rebuilt.module(name), deployed.module(name));
        out.rows.push(ModuleDigest {
            name: name.to_owned(),
            content_type: r.or(d).and_then(|m| m.content_type.clone()),
            rebuilt_sha256: r.map(|m| m.sha256()),
            deployed_sha256: d.map(|m| m.sha256()),
            rebuilt_size: r.map(|m| m.bytes.len() as u64),
            deployed_size: d.map(|m| m.bytes.len() as u64),
        });
        match (r, d) {
            (Some(_), None) => out.missing.push(name.to_owned()),
            (None, Some(_)) => out.extra.push(name.to_owned()),
            (Some(r), Some(d)) => {
                if let Some(offset) = first_difference(&r.bytes, &d.bytes) {
                    out.differing.push(ModuleDifference {
                        name: name.to_owned(),
                        offset: offset as u64,
                        diff: readable_diff(name, &r.bytes, &d.bytes, offset),
                    });
                } else if let (Some(a), Some(b)) = (&r.content_type, &d.content_type)
                    && a != b
                {
                    out.content_type_mismatch.push(name.to_owned());
                }
            }
            (None, None) => unreachable!("the name came from one of the bundles"),
        }
    }
    out
}

/// The layout of a deployment against the rebuild: the content type of each
/// module on both sides (whatever its bytes: a module read as CommonJS
/// instead of ESM runs differently) and the entry module. A side that does
/// not say (no content type, no entry module) is unobservable, never a
/// match. Modules on one side only are `verify.modules-match`'s.
pub fn compare_layout(rebuilt: &Bundle, deployed: &Bundle) -> SettingsComparison {
    let mut differences = Vec::new();
    let mut unobservable = Vec::new();
    for r in rebuilt.modules() {
        let Some(d) = deployed.module(&r.name) else {
            continue;
        };
        match (&r.content_type, &d.content_type) {
            (Some(a), Some(b)) if a != b => differences.push(format!(
                "module `{}` is deployed as {b}, rebuilt as {a}",
                r.name
            )),
            (Some(_), Some(_)) => {}
            (None, _) => unobservable.push(format!(
                "the rebuild gives module `{}` no content type",
                r.name
            )),
            (_, None) => unobservable.push(format!(
                "the API reports no content type for module `{}`",
                r.name
            )),
        }
    }
    match (&rebuilt.main_module, &deployed.main_module) {
        (Some(a), Some(b)) if a != b => {
            differences.push(format!("entry module is `{b}`, rebuilt `{a}`"))
        }
        (Some(_), Some(_)) => {}
        (None, _) => unobservable
            .push("the rebuild names no entry module (set `main_module` in `[verify]`)".to_owned()),
        (_, None) => unobservable.push("the API names no entry module".to_owned()),
    }
    SettingsComparison {
        differences,
        unobservable,
        uncompared: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Module;

    const JS: Option<&str> = Some("application/javascript+module");

    fn bundle(modules: &[(&str, &[u8])]) -> Bundle {
        Bundle::new(
            Some("worker.js".into()),
            modules
                .iter()
                .map(|(n, b)| Module::new(*n, JS, b.to_vec()))
                .collect(),
        )
    }

    #[test]
    fn equal_bundles_match() {
        let a = bundle(&[("worker.js", b"export default {}"), ("b.js", b"x")]);
        let c = compare_modules(&a, &a.clone());
        assert!(c.matches(), "{c:?}");
        assert_eq!(c.rows.len(), 2);
        assert_eq!(c.rebuilt_aggregate, c.deployed_aggregate);
    }

    #[test]
    fn missing_extra_differing_and_main_are_each_reported() {
        let a = bundle(&[("worker.js", b"export default {}"), ("b.js", b"x")]);
        let d = bundle(&[("worker.js", b"export default {1}"), ("c.js", b"y")]);
        let c = compare_modules(&a, &d);
        assert!(!c.matches());
        assert_eq!(c.missing, vec!["b.js"]);
        assert_eq!(c.extra, vec!["c.js"]);
        assert_eq!(c.differing[0].name, "worker.js");
        assert_eq!(c.differing[0].offset, 16);
        let mut other_main = a.clone();
        other_main.main_module = Some("b.js".into());
        let c = compare_modules(&a, &other_main);
        assert!(c.main_mismatch() && !c.matches());
        assert!(c.describe().contains("entry module"), "{}", c.describe());
    }

    #[test]
    fn the_layout_compares_content_types_and_the_entry_and_never_guesses() {
        let a = bundle(&[("worker.js", b"export default {}"), ("b.js", b"x")]);
        assert!(compare_layout(&a, &a.clone()).verified());
        let mut d = a.clone();
        d.module_mut("b.js").unwrap().content_type = Some("application/javascript".into());
        d.main_module = Some("b.js".into());
        let c = compare_layout(&a, &d);
        assert_eq!(c.differences.len(), 2, "{c:?}");
        let m = compare_modules(&a, &d);
        assert!(m.bytes_match() && !m.matches());
        let mut d = a.clone();
        d.module_mut("b.js").unwrap().content_type = None;
        d.main_module = None;
        let c = compare_layout(&a, &d);
        assert!(c.matches() && !c.verified(), "{c:?}");
        assert_eq!(c.unobservable.len(), 2, "{c:?}");
    }
}
