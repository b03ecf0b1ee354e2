//! `attestation.json`: an in-toto Statement v1 over the verified modules,
//! built from a report and the build record, beside the report formats
//! rather than one of them.
//!
//! `verify` writes a [`Predicate`] (the verdict, the source revision, the
//! recipe, the toolchain and every check's result); `audit` writes an
//! [`AuditPredicate`], which adds the suite and its digest, the bounds
//! measured and the known failures, and holds the verify predicate. Plain
//! data and pure functions; the caller signs it (e.g. `cosign attest-blob`)
//! if it wants a signature.

mod audit;
pub mod live;
mod statement;
mod verify;

pub use audit::{
    AUDIT_PREDICATE_TYPE, AuditPredicate, MeasurementRecord, RateLimitRecord, SuiteRecord,
    audit_statement,
};
pub use live::{Drift, DriftKind, LiveRecord, Readable};
pub use statement::{ResourceDescriptor, STATEMENT_TYPE, Statement, render};
pub use verify::{
    BundleRecord, CheckRecord, DeploymentRecord, PREDICATE_TYPE, Predicate, RecipeRecord,
    VersionRecord, check_records,
};
