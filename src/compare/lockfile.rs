//! The source's lockfile, read for the versions it pins: npm's
//! `package-lock.json` / `npm-shrinkwrap.json` (lockfileVersion 2 and 3:
//! `packages["node_modules/<name>"].version`; version 1: top-level
//! `dependencies[<name>].version`). Other package managers' lockfiles are
//! named as unsupported, never read as "pins nothing".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lockfile names looked for in the source folder when none is declared,
/// in order; the first present one is the source's lockfile.
pub const LOCKFILE_NAMES: [&str; 6] = [
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lock",
    "bun.lockb",
];

#[derive(Debug, thiserror::Error)]
pub enum LockfileError {
    #[error("read the lockfile `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parse the lockfile `{path}` as JSON")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("understand the lockfile `{path}`: {problem}")]
    Shape { path: String, problem: String },
    #[error(
        "the lockfile `{path}` is a {manager} lockfile, which flareproof does not read (it reads \
         npm's package-lock.json and npm-shrinkwrap.json); declare one with `[verify] lockfile`"
    )]
    Unsupported { path: String, manager: &'static str },
}

/// The versions a lockfile pins, by package name (top-level installs only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    pub path: PathBuf,
    pub lockfile_version: u64,
    /// `name` → installed version.
    pub versions: BTreeMap<String, String>,
    /// The root package's declared constraints (`packages[""]`'s
    /// dependency maps), by name.
    pub constraints: BTreeMap<String, String>,
}

fn manager(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    Some(match name {
        "pnpm-lock.yaml" | "pnpm-lock.yml" => "pnpm",
        "yarn.lock" => "Yarn",
        "bun.lock" | "bun.lockb" => "Bun",
        _ => return None,
    })
}

impl Lockfile {
    /// Reads and parses the lockfile at `path`.
    pub fn read(path: &Path) -> Result<Lockfile, LockfileError> {
        let shown = path.display().to_string();
        if let Some(manager) = manager(path) {
            // Named even when it is missing: the error says what to do.
            return Err(LockfileError::Unsupported {
                path: shown,
                manager,
            });
        }
        let bytes = fs_err::read(path).map_err(|source| LockfileError::Read {
            path: shown.clone(),
            source,
        })?;
        Lockfile::parse(path, &bytes)
    }

    /// Parses an npm lockfile's bytes; `path` only names it.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Lockfile, LockfileError> {
        let shown = path.display().to_string();
        let bad = |problem: String| LockfileError::Shape {
            path: shown.clone(),
            problem,
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|source| LockfileError::Json {
                path: shown.clone(),
                source,
            })?;
        let lockfile_version = value
            .get("lockfileVersion")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| bad("there is no numeric `lockfileVersion`".to_owned()))?;
        let mut versions = BTreeMap::new();
        let mut constraints = BTreeMap::new();
        match lockfile_version {
            2 | 3 => {
                let packages = value
                    .get("packages")
                    .and_then(serde_json::Value::as_object)
                    .ok_or_else(|| bad("`packages` is not an object".to_owned()))?;
                for (key, entry) in packages {
                    if key.is_empty() {
                        for map in [
                            "dependencies",
                            "devDependencies",
                            "optionalDependencies",
                            "peerDependencies",
                        ] {
                            let Some(deps) = entry.get(map).and_then(|m| m.as_object()) else {
                                continue;
                            };
                            for (name, spec) in deps {
                                if let Some(spec) = spec.as_str() {
                                    constraints
                                        .entry(name.clone())
                                        .or_insert_with(|| spec.to_owned());
                                }
                            }
                        }
                        continue;
                    }
                    // Top-level installs only: `node_modules/<name>` where
                    // name is `pkg` or `@scope/pkg`.
                    let Some(name) = key.strip_prefix("node_modules/") else {
                        continue;
                    };
                    if name.contains("/node_modules/") {
                        continue;
                    }
                    let version = match entry.get("version") {
                        Some(serde_json::Value::String(v)) => v.clone(),
                        // A link (workspace package) has no version of its own.
                        None if entry.get("link").and_then(|l| l.as_bool()) == Some(true) => {
                            continue;
                        }
                        _ => {
                            return Err(bad(format!(
                                "`packages[\"{key}\"].version` is not a string"
                            )));
                        }
                    };
                    versions.insert(name.to_owned(), version);
                }
            }
            1 => {
                let deps = value
                    .get("dependencies")
                    .and_then(serde_json::Value::as_object)
                    .ok_or_else(|| bad("`dependencies` is not an object".to_owned()))?;
                for (name, entry) in deps {
                    let version =
                        entry
                            .get("version")
                            .and_then(|v| v.as_str())
                            .ok_or_else(|| {
                                bad(format!(
                                    "`dependencies[\"{name}\"].version` is not a string"
                                ))
                            })?;
                    versions.insert(name.clone(), version.to_owned());
                }
            }
            other => return Err(bad(format!("`lockfileVersion` {other} is not 1, 2 or 3"))),
        }
        Ok(Lockfile {
            path: path.to_path_buf(),
            lockfile_version,
            versions,
            constraints,
        })
    }

    /// The installed version the lockfile pins for `name`.
    pub fn version(&self, name: &str) -> Option<&str> {
        self.versions.get(name).map(String::as_str)
    }
}

/// The lockfile of `source` when none is declared: the first of
/// [`LOCKFILE_NAMES`] present.
pub fn find_lockfile(source: &Path) -> Option<PathBuf> {
    LOCKFILE_NAMES
        .iter()
        .map(|n| source.join(n))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Lockfile, LockfileError> {
        Lockfile::parse(Path::new("/src/package-lock.json"), text.as_bytes())
    }

    #[test]
    fn reads_v3_top_level_installs_and_root_constraints() {
        let l = parse(
            r#"{"lockfileVersion": 3, "packages": {
                "": {"dependencies": {"hono": "^4.13.0"}, "devDependencies": {"esbuild": "0.28.2"}},
                "node_modules/hono": {"version": "4.13.19"},
                "node_modules/@better-auth/core": {"version": "1.7.25"},
                "node_modules/a/node_modules/hono": {"version": "3.0.0"},
                "node_modules/ws-pkg": {"resolved": "packages/x", "link": true}}}"#,
        )
        .unwrap();
        assert_eq!(l.version("hono"), Some("4.13.19"));
        assert_eq!(l.version("@better-auth/core"), Some("1.7.25"));
        assert_eq!(l.version("ws-pkg"), None);
        assert_eq!(l.versions.len(), 2);
        assert_eq!(l.constraints["hono"], "^4.13.0");
        assert_eq!(l.constraints["esbuild"], "0.28.2");
    }

    #[test]
    fn reads_v1_top_level_dependencies() {
        let l = parse(r#"{"lockfileVersion": 1, "dependencies": {"hono": {"version": "3.1.0"}}}"#)
            .unwrap();
        assert_eq!(l.version("hono"), Some("3.1.0"));
    }

    #[test]
    fn the_fixture_lockfile_pins_the_workers_dependencies() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/package-lock.json");
        let l = Lockfile::read(&path).unwrap();
        assert_eq!(l.version("better-auth"), Some("1.7.25"));
        assert_eq!(l.version("hono"), Some("4.13.19"));
    }

    #[test]
    fn bad_lockfiles_are_errors_naming_the_file() {
        for (text, want) in [
            (
                "{\"lockfileVersion\": 3, \"packages\": ",
                "parse the lockfile",
            ),
            ("[]", "no numeric `lockfileVersion`"),
            ("{\"lockfileVersion\": 9}", "9 is not 1, 2 or 3"),
            ("{\"lockfileVersion\": 3}", "`packages` is not an object"),
            (
                "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/x\": {\"version\": 1}}}",
                "`packages[\"node_modules/x\"].version`",
            ),
        ] {
            let e = crate::error_chain(&parse(text).unwrap_err());
            assert!(e.contains("/src/package-lock.json"), "{e}");
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn other_managers_lockfiles_are_named_unsupported_and_a_missing_one_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        for (name, manager) in [("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "Yarn")] {
            let path = dir.path().join(name);
            fs_err::write(&path, "lockfileVersion: '9.0'\n").unwrap();
            let e = Lockfile::read(&path).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(manager), "{e}");
        }
        let e = Lockfile::read(&dir.path().join("package-lock.json")).unwrap_err();
        assert!(matches!(e, LockfileError::Read { .. }), "{e}");
        assert!(e.to_string().contains("package-lock.json"));
    }

    #[test]
    fn the_default_is_the_first_lockfile_present() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_lockfile(dir.path()), None);
        fs_err::write(dir.path().join("yarn.lock"), "").unwrap();
        assert_eq!(
            find_lockfile(dir.path()),
            Some(dir.path().join("yarn.lock"))
        );
        fs_err::write(dir.path().join("package-lock.json"), "{}").unwrap();
        assert_eq!(
            find_lockfile(dir.path()),
            Some(dir.path().join("package-lock.json"))
        );
    }
}
