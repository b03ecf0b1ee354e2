//! `attestation.json`: an in-toto Statement v1 over the verified modules,
//! built from a report and the build record, beside the report formats
//! rather than one of them.
//!
//! `verify` writes a [`Predicate`] (the verdict, the source revision, the
//! recipe, the toolchain and every check's result); `audit` writes an
//! [`AuditPredicate`], which adds the suite and its digest, the bounds
//! measured and the known failures, and holds the verify predicate. Plain
//! data and pure functions. [`dsse`] signs a statement's exact bytes into a
//! DSSE envelope; [`vsa_statement`] is the SLSA Verification Summary written
//! beside flareproof's own predicate.

mod audit;
pub mod dsse;
pub mod live;
mod redact;
mod statement;
mod verify;
mod vsa;

pub use audit::{
    AUDIT_PREDICATE_TYPE, AuditPredicate, MeasurementRecord, RateLimitRecord, SuiteRecord,
    audit_statement,
};
pub use live::{
    Drift, DriftKind, IngressRecord, LiveRecord, ObserversRecord, Readable, ScriptSettingsRecord,
};
pub use statement::{ResourceDescriptor, STATEMENT_TYPE, Statement, render};
pub use verify::{
    BundleRecord, CheckRecord, DeploymentRecord, PREDICATE_TYPE, Predicate, RecipeRecord,
    VersionRecord, check_records,
};
pub use vsa::{
    VERIFIER_ID, VSA_PREDICATE_TYPE, VsaPredicate, resource_uri, vsa_statement, vsa_subject,
};
