//! A SLSA Verification Summary Attestation
//! (<https://slsa.dev/spec/v1.0/verification_summary>) beside flareproof's
//! own predicate: the shape other tools consume (policy engines, admission
//! controllers, `slsa-verifier`-style consumers) without knowing
//! flareproof's predicate.
//!
//! flareproof checks a deployment against a suite; it does not assign SLSA
//! build levels, so `verifiedLevels` is always empty. A failed run is
//! `FAILED` and still written (and signed): a negative result is evidence
//! too.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Report, Verdict};
use crate::plan::Plan;

use super::statement::{ResourceDescriptor, STATEMENT_TYPE, Statement};

/// The predicate type of a SLSA VSA v1.
pub const VSA_PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";

/// flareproof's verifier id.
pub const VERIFIER_ID: &str = "https://github.com/flareproof/flareproof";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VsaPredicate {
    pub verifier: Verifier,
    pub time_verified: String,
    /// The deployment verified: the API URL of the account's script and
    /// its active deployment.
    pub resource_uri: String,
    /// The suite: its id as a URI and the sha256 of its plan file.
    pub policy: PolicyRecord,
    /// flareproof's own statement, by digest of the exact bytes written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_attestations: Vec<ResourceRef>,
    /// `PASSED` or `FAILED`.
    pub verification_result: &'static str,
    /// Always empty: flareproof does not assign SLSA levels.
    pub verified_levels: Vec<String>,
    pub slsa_version: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verifier {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRecord {
    pub uri: String,
    pub digest: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceRef {
    pub uri: String,
    pub digest: BTreeMap<String, String>,
}

/// The resource a run verified: `<api base>/accounts/<account>/workers/
/// scripts/<script>[/deployments/<id>]` (the deployment when it was read).
pub fn resource_uri(
    api_base: &url::Url,
    account_id: &str,
    script: &str,
    deployment: Option<&str>,
) -> String {
    let mut uri = api_base.clone();
    uri.set_query(None);
    uri.set_fragment(None);
    // Never a credential, should the base URL carry one.
    let _ = uri.set_username("");
    let _ = uri.set_password(None);
    if let Ok(mut path) = uri.path_segments_mut() {
        path.pop_if_empty()
            .extend(["accounts", account_id, "workers", "scripts", script]);
        if let Some(id) = deployment {
            path.extend(["deployments", id]);
        }
    }
    uri.to_string()
}

/// The VSA of a run: its verdict (`pass` is `PASSED`, anything else
/// `FAILED`), under `plan`, about `subject`, with flareproof's statement
/// (`input`: its file name and the sha256 of its bytes) as input.
pub fn vsa_statement(
    report: &Report,
    plan: &Plan,
    resource_uri: String,
    subject: Vec<ResourceDescriptor>,
    input: Option<(&str, &[u8])>,
) -> Statement<VsaPredicate> {
    use sha2::{Digest as _, Sha256};
    let sha256 = |hex: String| BTreeMap::from([("sha256".to_owned(), hex)]);
    Statement {
        statement_type: STATEMENT_TYPE.to_owned(),
        subject,
        predicate_type: VSA_PREDICATE_TYPE.to_owned(),
        predicate: VsaPredicate {
            verifier: Verifier {
                id: VERIFIER_ID.to_owned(),
                version: BTreeMap::from([(report.tool.name.clone(), report.tool.version.clone())]),
            },
            time_verified: crate::now_rfc3339(),
            resource_uri,
            policy: PolicyRecord {
                uri: format!("https://flareproof.dev/suites/{}", plan.id),
                digest: sha256(plan.digest.clone()),
            },
            input_attestations: input
                .map(|(name, bytes)| ResourceRef {
                    uri: name.to_owned(),
                    digest: sha256(hex::encode(Sha256::digest(bytes))),
                })
                .into_iter()
                .collect(),
            verification_result: match report.verdict {
                Verdict::Pass => "PASSED",
                _ => "FAILED",
            },
            verified_levels: Vec::new(),
            slsa_version: "1.0",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_uri_names_account_script_and_deployment_escaped() {
        let base = url::Url::parse("https://api.cloudflare.com/client/v4/").unwrap();
        assert_eq!(
            resource_uri(&base, "acc", "auth worker", Some("d/1")),
            "https://api.cloudflare.com/client/v4/accounts/acc/workers/scripts/auth%20worker/deployments/d%2F1"
        );
        assert_eq!(
            resource_uri(&base, "acc", "auth", None),
            "https://api.cloudflare.com/client/v4/accounts/acc/workers/scripts/auth"
        );
    }
}
