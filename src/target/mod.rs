//! The target config (`flareproof.toml`): what to check and how hard.
//!
//! The file names secrets only by environment variable; [`TargetConfig::resolve`]
//! reads them into [`Secret`](crate::model::Secret)s. Nothing here prints a
//! secret.
//!
//! `schema` is the file as written (serde), `validate` reads and checks it,
//! `secrets` resolves what it names from the environment into a [`Target`],
//! `verify` turns the `[verify]` section into a [`VerifyTarget`] and loads
//! verify-only configs.

mod error;
mod schema;
mod secrets;
mod validate;
mod verify;
pub mod wrangler;

#[cfg(test)]
mod tests;

pub use error::TargetError;
pub use schema::{
    ACCOUNT_ROLES, AccountSection, Budget, DataSection, Limit, Limits, Paths, ProfileSection,
    RecipeSpec, TargetConfig, TargetSection, Unlimited, VerifySection,
};
pub use secrets::{Account, Target};
pub use verify::{DeclaredIngress, DeclaredObservers, VerifyTarget, load_verify};
