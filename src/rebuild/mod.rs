//! Rebuild the Worker from its source with its pinned recipe, twice, in
//! isolated copies that differ in what reprotest varies (build path, `TZ`,
//! `LC_ALL`, umask, `HOME`, `SOURCE_DATE_EPOCH`, environment order), and
//! collect the upload modules of each build.

mod build;
mod copy;
mod provenance;
mod run;
mod variation;
mod wrangler;

pub use build::{Build, BuildDifference, Exposure, Rebuild, rebuild};
pub use provenance::{SourceRevision, Toolchain};
pub use run::{RebuildError, Recipe, run_recipe};
pub use variation::{Dimension, Variation};
pub use wrangler::{PresetRecipe, WranglerPreset};
