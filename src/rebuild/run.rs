//! Running the recipe once, in a fresh copy, under one [`Variation`], and
//! collecting the modules it wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::compare::{Bundle, Module};

use super::copy::copy_source;
use super::variation::Variation;

/// How long one build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of a failed build's output kept in the error.
const OUTPUT_TAIL: usize = 30;

/// The pinned build recipe and what to collect from it.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The Worker's source folder (absolute).
    pub source: PathBuf,
    /// The command; `{out}` is replaced by the output folder and `{src}` by
    /// the source copy.
    pub command: Vec<String>,
    /// Extra environment for the recipe (the build runs with a clean
    /// environment: `PATH`, these, and the varied variables).
    pub env: BTreeMap<String, String>,
    /// Globs (relative to the output folder) of files that are not upload
    /// modules, such as wrangler's timestamped `README.md`.
    pub non_artifacts: Vec<String>,
    /// Top-level entries of the source linked into each copy instead of
    /// copied (`node_modules`): symlinked, or hard-linked file by file with
    /// `hard_link`.
    pub link: Vec<String>,
    /// Hard-link the `link` entries (a folder of their own in each copy)
    /// instead of symlinking them: for bundlers that resolve a symlinked
    /// `node_modules` to its real path and write that path into the bundle
    /// (wrangler's esbuild), which would differ between copies at different
    /// depths. Slower on a large `node_modules` (every file is linked), so
    /// the wrangler preset turns it on and other recipes leave it off.
    pub hard_link: bool,
    /// The entry module, when the output does not say (no `manifest.json`).
    pub main_module: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("create a temporary build folder")]
    Temp(#[source] std::io::Error),
    #[error("copy the source `{from}` to `{to}`")]
    Copy {
        from: String,
        to: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the recipe is empty")]
    EmptyRecipe,
    #[error("`{pattern}` in `non_artifacts` is not a valid glob")]
    Glob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("start the recipe `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("run the recipe `{command}` ({variation}): {status}\n{output}")]
    Failed {
        command: String,
        variation: String,
        status: String,
        output: String,
    },
    #[error("run the recipe `{command}`: it took longer than {} s", BUILD_TIMEOUT.as_secs())]
    Timeout { command: String },
    #[error("read the build output `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parse the build manifest `{path}`")]
    Manifest {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the build wrote no module into `{path}`")]
    NoModules { path: String },
    #[error("the build task stopped unexpectedly")]
    Join(#[source] tokio::task::JoinError),
}

/// One finished build.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub bundle: Bundle,
    pub duration: Duration,
}

#[derive(Deserialize)]
struct Manifest {
    main_module: Option<String>,
    modules: Vec<ManifestModule>,
}

#[derive(Deserialize)]
struct ManifestModule {
    name: String,
    content_type: Option<String>,
}

fn content_type_for(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "js" | "mjs" => "application/javascript+module",
        "cjs" => "application/javascript",
        "wasm" => "application/wasm",
        "map" => "application/source-map",
        "json" => "application/json",
        // `sql` too: wrangler's default Text rule (`**/*.txt`, `**/*.html`,
        // `**/*.sql`) uploads it as text.
        "txt" | "html" | "css" | "md" | "sql" => "text/plain",
        _ => "application/octet-stream",
    })
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, RebuildError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern).map_err(|source| RebuildError::Glob {
            pattern: pattern.clone(),
            source,
        })?);
    }
    builder.build().map_err(|source| RebuildError::Glob {
        pattern: patterns.join(","),
        source,
    })
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if fs_err::metadata(&path)?.is_dir() {
            walk(&path, &format!("{name}/"), out)?;
        } else {
            out.push((name, path));
        }
    }
    Ok(())
}

/// Reads the modules a build wrote into `out`: the ones `manifest.json`
/// lists when there is one, otherwise every file but the non-artifacts.
pub fn collect(out: &Path, recipe: &Recipe) -> Result<Bundle, RebuildError> {
    let read_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| RebuildError::Read { path, source }
    };
    let manifest_path = out.join("manifest.json");
    if manifest_path.is_file() {
        let text = fs_err::read(&manifest_path).map_err(read_err(&manifest_path))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|source| RebuildError::Manifest {
                path: manifest_path.display().to_string(),
                source,
            })?;
        let mut modules = Vec::new();
        for m in manifest.modules {
            let path = out.join(&m.name);
            let bytes = fs_err::read(&path).map_err(read_err(&path))?;
            let ct = m
                .content_type
                .or_else(|| content_type_for(&m.name).map(str::to_owned));
            modules.push(Module::new(m.name, ct.as_deref(), bytes));
        }
        if modules.is_empty() {
            return Err(RebuildError::NoModules {
                path: out.display().to_string(),
            });
        }
        let main = manifest.main_module.or_else(|| recipe.main_module.clone());
        return Ok(Bundle::new(main, modules));
    }
    let skip = glob_set(&recipe.non_artifacts)?;
    let mut files = Vec::new();
    walk(out, "", &mut files).map_err(read_err(out))?;
    let mut modules = Vec::new();
    for (name, path) in files {
        if skip.is_match(&name) {
            continue;
        }
        let bytes = fs_err::read(&path).map_err(read_err(&path))?;
        modules.push(Module::new(name.clone(), content_type_for(&name), bytes));
    }
    if modules.is_empty() {
        return Err(RebuildError::NoModules {
            path: out.display().to_string(),
        });
    }
    let main = recipe.main_module.clone().or_else(|| {
        let js: Vec<&Module> = modules
            .iter()
            .filter(|m| m.content_type.as_deref() == Some("application/javascript+module"))
            .collect();
        (js.len() == 1).then(|| js[0].name.clone())
    });
    Ok(Bundle::new(main, modules))
}

/// Copies the source under `root` as the variation says, runs the recipe
/// there with a clean, varied environment, and collects its modules.
pub async fn run_recipe(
    recipe: &Recipe,
    variation: &Variation,
    root: &Path,
) -> Result<BuildOutput, RebuildError> {
    if recipe.command.is_empty() {
        return Err(RebuildError::EmptyRecipe);
    }
    let mut src = root.to_path_buf();
    for part in &variation.path {
        src.push(part);
    }
    let (out, home) = (root.join("out"), root.join(variation.home));
    {
        let (from, to, link) = (recipe.source.clone(), src.clone(), recipe.link.clone());
        let hard_link = recipe.hard_link;
        let copy_err = |source| RebuildError::Copy {
            from: recipe.source.display().to_string(),
            to: src.display().to_string(),
            source,
        };
        tokio::task::spawn_blocking(move || copy_source(&from, &to, &link, hard_link))
            .await
            .map_err(RebuildError::Join)?
            .map_err(copy_err)?;
        for dir in [&out, &home] {
            fs_err::create_dir_all(dir).map_err(RebuildError::Temp)?;
        }
    }
    let fill = |arg: &str| {
        arg.replace("{out}", &out.display().to_string())
            .replace("{src}", &src.display().to_string())
    };
    let command: Vec<String> = recipe.command.iter().map(|a| fill(a)).collect();
    let shown = recipe.command.join(" ");
    let mut env: Vec<(String, String)> = recipe
        .env
        .iter()
        .map(|(k, v)| (k.clone(), fill(v)))
        .collect();
    env.push((
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    ));
    env.push(("HOME".into(), home.display().to_string()));
    env.push(("TZ".into(), variation.tz.into()));
    env.push(("LC_ALL".into(), variation.locale.into()));
    env.push(("LANG".into(), variation.locale.into()));
    if let Some(epoch) = variation.source_date_epoch {
        env.push(("SOURCE_DATE_EPOCH".into(), epoch.into()));
    }
    env.sort();
    env.dedup_by(|a, b| a.0 == b.0);
    if variation.env_reversed {
        env.reverse();
    }
    // `env -i` sets the environment in exactly this order; `sh` sets the
    // umask and then becomes the recipe.
    let mut cmd = tokio::process::Command::new("env");
    cmd.arg("-i")
        .args(env.iter().map(|(k, v)| format!("{k}={v}")))
        .args([
            "sh",
            "-c",
            &format!("umask {}; exec \"$@\"", variation.umask),
            "sh",
        ])
        .args(&command)
        .current_dir(&src)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = cmd.spawn().map_err(|source| RebuildError::Spawn {
        command: shown.clone(),
        source,
    })?;
    let output = tokio::time::timeout(BUILD_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| RebuildError::Timeout {
            command: shown.clone(),
        })?
        .map_err(|source| RebuildError::Spawn {
            command: shown.clone(),
            source,
        })?;
    let duration = started.elapsed();
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(OUTPUT_TAIL)..].join("\n");
        return Err(RebuildError::Failed {
            command: shown,
            variation: variation.describe(),
            status: output.status.to_string(),
            output: tail,
        });
    }
    let recipe = recipe.clone();
    let bundle = tokio::task::spawn_blocking(move || collect(&out, &recipe))
        .await
        .map_err(RebuildError::Join)??;
    Ok(BuildOutput { bundle, duration })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(source: &Path, command: &[&str]) -> Recipe {
        Recipe {
            source: source.to_path_buf(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::from([("GREETING".into(), "hi".into())]),
            non_artifacts: vec!["README.md".into()],
            link: vec![],
            main_module: None,
            hard_link: false,
        }
    }

    #[tokio::test]
    async fn the_build_sees_the_variation_and_only_modules_are_collected() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        fs_err::create_dir_all(&source).unwrap();
        let script = "mkdir -p \"$1/lib\"; \
            printf '%s|%s|%s|%s|%s' \"$TZ\" \"$LC_ALL\" \"$(umask)\" \"$GREETING\" \"${SOURCE_DATE_EPOCH:-unset}\" > \"$1/worker.js\"; \
            echo x > \"$1/lib/util.mjs\"; date > \"$1/README.md\"";
        fs_err::write(source.join("build.sh"), script).unwrap();
        let r = recipe(&source, &["sh", "build.sh", "{out}"]);
        let a = run_recipe(&r, &Variation::baseline(), &tmp.path().join("a"))
            .await
            .unwrap();
        let names: Vec<&str> = a.bundle.modules().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lib/util.mjs", "worker.js"]);
        assert_eq!(a.bundle.main_module, None, "two JS modules: no guess");
        let text = String::from_utf8(a.bundle.module("worker.js").unwrap().bytes.clone()).unwrap();
        assert_eq!(text, "UTC|C.UTF-8|0022|hi|unset");
        let b = run_recipe(&r, &Variation::varied(), &tmp.path().join("b"))
            .await
            .unwrap();
        let text = String::from_utf8(b.bundle.module("worker.js").unwrap().bytes.clone()).unwrap();
        assert_eq!(text, "Pacific/Kiritimati|fr_FR.UTF-8|0077|hi|1700000000");
    }

    #[tokio::test]
    async fn a_failing_recipe_says_how_it_failed() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        fs_err::create_dir_all(&source).unwrap();
        let r = recipe(&source, &["sh", "-c", "echo oops >&2; exit 3"]);
        let err = run_recipe(&r, &Variation::baseline(), &tmp.path().join("a"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("oops") && text.contains('3'), "{text}");
    }
}
