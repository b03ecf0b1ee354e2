//! The `recipe = "wrangler"` preset: `npx --no-install wrangler deploy
//! --dry-run --outdir {out}` in the source copy, and what of its output is
//! not an upload module.
//!
//! Measured with wrangler 4.86.0 (Node 20, offline): the outdir holds the
//! bundled main module (`<stem of main>.js`), its source map, additional
//! modules named `<sha1 of the content>-<basename>` (the names the upload,
//! and so the API, lists them by) and a `README.md` with the build's
//! timestamp. Source maps are uploaded only with `upload_source_maps`.

use std::collections::BTreeMap;

/// What the preset needs to know of the wrangler config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WranglerPreset {
    /// The wrangler config, relative to the source (`--config`); `None`:
    /// wrangler finds its own.
    pub config: Option<String>,
    /// `--env`.
    pub env: Option<String>,
    /// Whether `.map` files are uploaded (and so are modules).
    pub upload_source_maps: bool,
    /// The output's main module (from `main`).
    pub main_module: Option<String>,
}

/// The pieces of a [`super::Recipe`] the preset fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetRecipe {
    pub command: Vec<String>,
    /// Set unless `[verify].env` sets them.
    pub env: BTreeMap<String, String>,
    pub non_artifacts: Vec<String>,
    pub link: Vec<String>,
    pub main_module: Option<String>,
    /// Hard-link `link` into each copy (see [`super::Recipe::hard_link`]).
    pub hard_link: bool,
}

impl WranglerPreset {
    pub fn recipe(&self) -> PresetRecipe {
        let mut command: Vec<String> = [
            "npx",
            "--no-install",
            "wrangler",
            "deploy",
            "--dry-run",
            "--outdir",
            "{out}",
        ]
        .map(str::to_owned)
        .to_vec();
        if let Some(config) = &self.config {
            command.extend(["--config".to_owned(), format!("{{src}}/{config}")]);
        }
        if let Some(env) = &self.env {
            command.extend(["--env".to_owned(), env.clone()]);
        }
        let env = BTreeMap::from(
            [
                ("WRANGLER_SEND_METRICS", "false"),
                // No banner: it would look for a newer wrangler online.
                ("WRANGLER_HIDE_BANNER", "true"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let mut non_artifacts = vec!["README.md".to_owned()];
        if !self.upload_source_maps {
            non_artifacts.push("**/*.map".to_owned());
        }
        PresetRecipe {
            command,
            env,
            non_artifacts,
            link: vec!["node_modules".to_owned()],
            main_module: self.main_module.clone(),
            // wrangler's esbuild follows a symlinked node_modules to its
            // real path and writes that path into the bundle.
            hard_link: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_runs_wrangler_offline_for_the_environment() {
        let p = WranglerPreset {
            config: Some("wrangler.jsonc".into()),
            env: Some("production".into()),
            upload_source_maps: false,
            main_module: Some("index.js".into()),
        }
        .recipe();
        assert_eq!(
            p.command.join(" "),
            "npx --no-install wrangler deploy --dry-run --outdir {out} \
             --config {src}/wrangler.jsonc --env production"
        );
        assert_eq!(p.env["WRANGLER_SEND_METRICS"], "false");
        assert_eq!(p.non_artifacts, ["README.md", "**/*.map"]);
        assert_eq!(p.main_module.as_deref(), Some("index.js"));
        let uploaded = WranglerPreset {
            upload_source_maps: true,
            ..WranglerPreset::default()
        }
        .recipe();
        assert_eq!(uploaded.non_artifacts, ["README.md"]);
        assert!(!uploaded.command.contains(&"--env".to_owned()));
    }
}
