//! The Cloudflare API, read-only: the active deployment, its versions with
//! their traffic shares, each version's modules and settings, the script's
//! observers (tail consumers, Logpush, streaming tails).
//!
//! [`Client`] honours the response envelope and retries what can be retried;
//! [`fetch_live`] reads everything verify needs; [`standin`] serves the
//! recorded shapes (`fixtures/cloudflare-api/`) for the demo and tests.

mod client;
mod envelope;
mod error;
pub mod ingress;
mod live;
pub mod multipart;
mod provenance;
pub mod settings;
mod shapes;
pub mod standin;

pub use client::{Client, Credentials, RetryPolicy};
pub use envelope::{ApiMessage, Envelope};
pub use error::{ApiError, SCRIPTS_READ};
pub use ingress::{CustomDomain, Ingress, Route, WorkersDev};
pub use live::{
    Deployment, Live, LiveVersion, ModulesSource, Observers, TARGET_FIELDS, VersionData,
    deployment, fetch_live, fetch_live_in_zone, parse_deployment,
};
pub use multipart::MultipartError;
pub use provenance::{Dependencies, PackageDependency, Provenance, parse_provenance};
pub use shapes::{Scenario, ScenarioVersion, error_body};
