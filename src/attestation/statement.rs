//! The in-toto Statement v1 envelope: what it is about and its predicate.

use std::collections::BTreeMap;

use serde::Serialize;

use super::verify::Predicate;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// An artifact the statement is about: one upload module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDescriptor {
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

/// An in-toto Statement; the predicate is verify's unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement<P = Predicate> {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: P,
}

/// Pretty JSON with a trailing newline.
pub fn render<P: Serialize>(statement: &Statement<P>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(statement).expect("an attestation always serializes");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::{PREDICATE_TYPE, RecipeRecord};
    use crate::model::{Tool, Verdict};

    #[test]
    fn renders_an_in_toto_statement() {
        let s = Statement {
            statement_type: STATEMENT_TYPE.into(),
            subject: vec![ResourceDescriptor {
                name: "worker.js".into(),
                digest: BTreeMap::from([("sha256".into(), "ab".repeat(32))]),
            }],
            predicate_type: PREDICATE_TYPE.into(),
            predicate: Predicate {
                verdict: Verdict::Pass,
                profile: "flarelink-auth/v1".into(),
                script: "auth".into(),
                started_at: "2026-11-23T00:00:00Z".into(),
                tool: Tool::this(),
                source_revision: None,
                recipe: RecipeRecord {
                    command: vec!["node".into()],
                    env: Vec::new(),
                    non_artifacts: vec![],
                    link: vec![],
                    variations: vec![],
                },
                toolchain: None,
                bundle: None,
                deployment: None,
                checks: vec![],
                live: None,
            },
        };
        let v: serde_json::Value = serde_json::from_slice(&render(&s)).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], "ab".repeat(32));
        assert_eq!(v["predicate"]["verdict"], "pass");
    }
}
