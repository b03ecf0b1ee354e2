//! Where a build came from: the toolchain that ran it and the source
//! revision it ran on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::compare::sha256_hex;

/// The tools a recipe ran with. Unknown versions are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Toolchain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub npm: Option<String>,
    /// Bundler versions from the source's `node_modules` (esbuild, wrangler).
    pub packages: BTreeMap<String, String>,
    /// The lockfile's name and sha256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lockfile: Option<Lockfile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lockfile {
    pub name: String,
    pub sha256: String,
}

/// The source's git revision, when the source is in a git work tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRevision {
    pub git_commit: String,
    /// True when the source folder has uncommitted changes.
    pub dirty: bool,
}

const LOCKFILES: [&str; 6] = [
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lock",
    "bun.lockb",
];
const PACKAGES: [&str; 2] = ["esbuild", "wrangler"];

async fn version_of(program: &str) -> Option<String> {
    let output = tokio::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl Toolchain {
    /// Asks `node` and `npm` for their versions and reads bundler versions
    /// and the lockfile from the source folder.
    pub async fn detect(source: &Path) -> Toolchain {
        let (node, npm) = tokio::join!(version_of("node"), version_of("npm"));
        let mut packages = BTreeMap::new();
        for name in PACKAGES {
            let path = source.join("node_modules").join(name).join("package.json");
            let version = fs_err::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["version"].as_str().map(str::to_owned));
            if let Some(v) = version {
                packages.insert(name.to_owned(), v);
            }
        }
        let lockfile = LOCKFILES.iter().find_map(|name| {
            fs_err::read(source.join(name)).ok().map(|bytes| Lockfile {
                name: (*name).to_owned(),
                sha256: sha256_hex(&bytes),
            })
        });
        Toolchain {
            node,
            npm,
            packages,
            lockfile,
        }
    }
}

impl SourceRevision {
    /// `git rev-parse HEAD` and whether the folder has changes, or `None`
    /// outside a git work tree (or without git).
    pub async fn detect(source: &Path) -> Option<SourceRevision> {
        let git = |args: &[&str]| {
            let mut cmd = tokio::process::Command::new("git");
            cmd.arg("-C").arg(source).args(args);
            cmd.stdin(std::process::Stdio::null());
            cmd
        };
        let head = git(&["rev-parse", "HEAD"]).output().await.ok()?;
        if !head.status.success() {
            return None;
        }
        let status = git(&["status", "--porcelain", "--", "."])
            .output()
            .await
            .ok()?;
        Some(SourceRevision {
            git_commit: String::from_utf8_lossy(&head.stdout).trim().to_owned(),
            dirty: !status.status.success() || !status.stdout.is_empty(),
        })
    }
}
