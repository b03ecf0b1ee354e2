//! `attestation.json`: an in-toto Statement v1 over the verified modules,
//! whose predicate records the verdict, the source revision, the recipe, the
//! toolchain and every check's result. Plain data and a pure renderer; the
//! caller signs it (e.g. `cosign attest-blob`) if it wants a signature.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Status, Tool, Verdict};
use crate::rebuild::{SourceRevision, Toolchain};

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a flareproof verify run.
pub const PREDICATE_TYPE: &str = "https://flareproof.dev/attestation/verify/v1";

/// An artifact the statement is about: one upload module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDescriptor {
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predicate {
    pub verdict: Verdict,
    pub profile: String,
    /// The Worker script name.
    pub script: String,
    pub started_at: String,
    pub tool: Tool,
    /// `null` outside a git work tree.
    pub source_revision: Option<SourceRevision>,
    pub recipe: RecipeRecord,
    /// `null` when the recipe could not run.
    pub toolchain: Option<Toolchain>,
    /// The rebuilt bundle: entry module and aggregate digest.
    pub bundle: Option<BundleRecord>,
    /// The active deployment as read from the API.
    pub deployment: Option<DeploymentRecord>,
    pub checks: Vec<CheckRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipeRecord {
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub non_artifacts: Vec<String>,
    pub link: Vec<String>,
    /// The settings of each build.
    pub variations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleRecord {
    pub main_module: Option<String>,
    pub aggregate_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentRecord {
    pub id: Option<String>,
    pub versions: Vec<VersionRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRecord {
    pub version_id: String,
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRecord {
    pub id: String,
    pub status: Status,
    pub summary: String,
}

/// Pretty JSON with a trailing newline.
pub fn render(statement: &Statement) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(statement).expect("an attestation always serializes");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    env: BTreeMap::new(),
                    non_artifacts: vec![],
                    link: vec![],
                    variations: vec![],
                },
                toolchain: None,
                bundle: None,
                deployment: None,
                checks: vec![],
            },
        };
        let v: serde_json::Value = serde_json::from_slice(&render(&s)).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], "ab".repeat(32));
        assert_eq!(v["predicate"]["verdict"], "pass");
    }
}
