//! Verify's predicate: the build record (source revision, recipe,
//! toolchain, rebuilt bundle), the deployment read from the API, and every
//! check's result.

use serde::Serialize;

use crate::model::{Report, Status, Tool, Verdict};
use crate::rebuild::{SourceRevision, Toolchain};

use super::live::LiveRecord;

/// The predicate type of a flareproof verify run.
pub const PREDICATE_TYPE: &str = "https://flareproof.dev/attestation/verify/v1";

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
    /// What was live (every version with traffic: modules and settings;
    /// the script's observers, settings and ingress), for
    /// `attestation verify` to compare with what is live later; `null`
    /// when verify did not read the API.
    pub live: Option<LiveRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipeRecord {
    pub command: Vec<String>,
    /// The names of the extra environment variables the recipe ran with;
    /// their values are never recorded (one may hold a secret).
    pub env: Vec<String>,
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

/// Every check of a report, as the attestation records it.
pub fn check_records(report: &Report) -> Vec<CheckRecord> {
    report
        .checks
        .iter()
        .map(|c| CheckRecord {
            id: c.id.to_string(),
            status: c.status,
            summary: c.summary.clone(),
        })
        .collect()
}
