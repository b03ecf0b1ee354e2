//! Comparing a rebuild with what is deployed: per-module sha256, the
//! aggregate digest, the first differing byte with a readable diff around it,
//! and the declared settings against the deployed ones.

mod bundle;
mod diff;
mod lockfile;
mod modules;
mod settings;

pub use bundle::{Bundle, Module, sha256_hex};
pub use diff::{first_difference, readable_diff};
pub use lockfile::{LOCKFILE_NAMES, Lockfile, LockfileError, find_lockfile};
pub use modules::{ModuleDifference, ModulesComparison, compare_layout, compare_modules};
pub use settings::{
    DeclaredBinding, DeclaredSettings, DeployedBinding, DeployedScriptSettings, DeployedSettings,
    SECRET_TYPES, SettingsComparison, VALUE_SHOWN, VALUE_TYPES, compare_script_settings,
    compare_settings, shown_value,
};
