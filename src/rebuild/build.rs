//! Two builds, compared; on a difference, a bisection over the variations.

use std::path::Path;
use std::time::Duration;

use crate::compare::{Bundle, ModulesComparison, compare_modules};

use super::provenance::{SourceRevision, Toolchain};
use super::run::{RebuildError, Recipe, run_recipe};
use super::variation::{Dimension, Variation};

/// One build and how it was run.
#[derive(Debug, Clone)]
pub struct Build {
    pub variation: Variation,
    pub bundle: Bundle,
    pub duration: Duration,
}

/// What a difference between the two builds was traced to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// Not bisected (bisection was off).
    NotBisected,
    /// A third build with the first build's settings differed from the first
    /// too: the output changes from run to run (a clock, randomness).
    Unvaried,
    /// Varying just these dimensions reproduces a difference.
    Dimensions(Vec<Dimension>),
    /// No single dimension reproduces it: a combination does.
    Combination,
    /// A bisection build failed.
    Failed(String),
}

impl Exposure {
    pub fn describe(&self) -> String {
        match self {
            Exposure::NotBisected => "not bisected".to_owned(),
            Exposure::Unvaried => {
                "a third build with the first build's exact settings differs too, so no \
                 variation is needed: the output changes from run to run (a clock or \
                 randomness in the build)"
                    .to_owned()
            }
            Exposure::Dimensions(dims) => format!(
                "exposed by varying {} alone",
                dims.iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", or by varying ")
            ),
            Exposure::Combination => {
                "no single variation reproduces it; only the combination does".to_owned()
            }
            Exposure::Failed(why) => format!("bisection failed: {why}"),
        }
    }
}

/// The builds differed.
#[derive(Debug, Clone)]
pub struct BuildDifference {
    /// First build against second.
    pub comparison: ModulesComparison,
    pub exposure: Exposure,
}

/// The outcome of rebuilding.
#[derive(Debug, Clone)]
pub struct Rebuild {
    pub first: Build,
    pub second: Build,
    pub toolchain: Toolchain,
    pub revision: Option<SourceRevision>,
    /// `None` when the builds are byte-identical.
    pub difference: Option<BuildDifference>,
}

async fn one(recipe: &Recipe, variation: Variation, root: &Path) -> Result<Build, RebuildError> {
    let output = run_recipe(recipe, &variation, root).await?;
    Ok(Build {
        variation,
        bundle: output.bundle,
        duration: output.duration,
    })
}

/// Builds twice, concurrently, under [`Variation::baseline`] and
/// [`Variation::varied`], and compares. When they differ and `bisect` is
/// on, rebuilds to find what exposes the difference.
pub async fn rebuild(recipe: &Recipe, bisect: bool) -> Result<Rebuild, RebuildError> {
    let tmp = tempfile::Builder::new()
        .prefix("flareproof-rebuild-")
        .tempdir()
        .map_err(RebuildError::Temp)?;
    let (root1, root2) = (tmp.path().join("1"), tmp.path().join("2"));
    let (first, second, toolchain, revision) = tokio::join!(
        one(recipe, Variation::baseline(), &root1),
        one(recipe, Variation::varied(), &root2),
        Toolchain::detect(&recipe.source),
        SourceRevision::detect(&recipe.source),
    );
    let (first, second) = (first?, second?);
    let comparison = compare_modules(&first.bundle, &second.bundle);
    let difference = if comparison.matches() {
        None
    } else {
        let exposure = if bisect {
            bisection(recipe, &first.bundle, tmp.path()).await
        } else {
            Exposure::NotBisected
        };
        Some(BuildDifference {
            comparison,
            exposure,
        })
    };
    Ok(Rebuild {
        first,
        second,
        toolchain,
        revision,
        difference,
    })
}

/// Rebuilds one variation at a time, in the first build's folder (or the
/// second's, to vary the path), so that nothing but that variation changes.
/// Sequential: the builds share folders.
async fn bisection(recipe: &Recipe, first: &Bundle, tmp: &Path) -> Exposure {
    let differs = |b: &Bundle| !compare_modules(first, b).matches();
    let runs = std::iter::once(None).chain(Dimension::ALL.into_iter().map(Some));
    let mut exposing = Vec::new();
    for dimension in runs {
        let (variation, root) = match dimension {
            None => (Variation::baseline(), tmp.join("1")),
            Some(Dimension::BuildPath) => {
                (Variation::baseline_but(Dimension::BuildPath), tmp.join("2"))
            }
            Some(d) => (Variation::baseline_but(d), tmp.join("1")),
        };
        if let Err(e) = fs_err::remove_dir_all(&root) {
            return Exposure::Failed(crate::error_chain(&e));
        }
        match run_recipe(recipe, &variation, &root).await {
            Err(e) => return Exposure::Failed(crate::error_chain(&e)),
            Ok(build) if differs(&build.bundle) => match dimension {
                None => return Exposure::Unvaried,
                Some(d) => exposing.push(d),
            },
            Ok(_) => {}
        }
    }
    if exposing.is_empty() {
        Exposure::Combination
    } else {
        Exposure::Dimensions(exposing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    async fn rebuild_script(script: &str) -> Rebuild {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::write(tmp.path().join("build.sh"), script).unwrap();
        let recipe = Recipe {
            source: tmp.path().to_path_buf(),
            command: vec!["sh".into(), "build.sh".into(), "{out}".into()],
            env: BTreeMap::new(),
            non_artifacts: vec![],
            link: vec![],
            main_module: None,
            hard_link: false,
        };
        rebuild(&recipe, true).await.unwrap()
    }

    /// A bundler resolves a linked dependency folder to its real path and
    /// writes it relative to the build folder (esbuild's `// ../node_modules/…`
    /// comments): a symlink to the original made that path vary with the
    /// build path; the hard-linked folder keeps it inside each copy.
    #[tokio::test]
    async fn a_linked_dependency_folder_resolves_inside_each_copy() {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(tmp.path().join("node_modules/dep")).unwrap();
        fs_err::write(tmp.path().join("node_modules/dep/index.js"), "x").unwrap();
        let script = "printf '// %s' \"$(realpath --relative-to=. node_modules/dep/index.js)\" \
                      > \"$1/worker.js\"";
        fs_err::write(tmp.path().join("build.sh"), script).unwrap();
        let recipe = Recipe {
            source: tmp.path().to_path_buf(),
            command: vec!["sh".into(), "build.sh".into(), "{out}".into()],
            env: BTreeMap::new(),
            non_artifacts: vec![],
            link: vec!["node_modules".into()],
            main_module: None,
            hard_link: true,
        };
        let r = rebuild(&recipe, false).await.unwrap();
        assert!(r.difference.is_none(), "{:?}", r.difference);
        let text = r.first.bundle.module("worker.js").unwrap().bytes.clone();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "// node_modules/dep/index.js"
        );
    }

    #[tokio::test]
    async fn a_deterministic_build_has_no_difference() {
        let r = rebuild_script("echo 'export default {}' > \"$1/worker.js\"").await;
        assert!(r.difference.is_none());
        assert_eq!(r.first.bundle.main_module.as_deref(), Some("worker.js"));
    }

    #[tokio::test]
    async fn bisection_names_the_variation_that_exposes_a_difference() {
        let r =
            rebuild_script("printf 'export const tz = \"%s\";' \"$TZ\" > \"$1/worker.js\"").await;
        let d = r.difference.unwrap();
        assert_eq!(d.comparison.differing[0].name, "worker.js");
        assert_eq!(d.comparison.differing[0].offset, 19);
        assert_eq!(d.exposure, Exposure::Dimensions(vec![Dimension::Timezone]));
        let r = rebuild_script("pwd > \"$1/worker.js\"").await;
        assert_eq!(
            r.difference.unwrap().exposure,
            Exposure::Dimensions(vec![Dimension::BuildPath])
        );
        let r = rebuild_script("od -An -N8 -tx8 /dev/urandom > \"$1/worker.js\"").await;
        assert_eq!(r.difference.unwrap().exposure, Exposure::Unvaried);
    }
}
