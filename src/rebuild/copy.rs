//! Copying the source into an isolated folder; large dependency folders
//! (`link`) are symlinked instead of copied, or hard-linked file by file
//! (symlinked when the copy is on another filesystem) with `hard_link`.
//!
//! Hard links, not a symlink, for wrangler: a bundler that resolves a symlinked
//! `node_modules` to its real path and writes that path, relative to the
//! build folder, into the bundle (esbuild's `// ../../src/node_modules/…`
//! comments, as wrangler's builds have them), so two copies at different
//! depths would differ for no fault of the build.

use std::path::Path;

/// Copies `from` into `to` (created), except `.git` and the top-level
/// entries in `link`: symlinked to the original, or with `hard_link` their
/// folders recreated and their files hard-linked to the original's (a
/// symlink when hard links cannot be made). Symlinks are kept as symlinks.
pub fn copy_source(
    from: &Path,
    to: &Path,
    link: &[String],
    hard_link: bool,
) -> std::io::Result<()> {
    fs_err::create_dir_all(to)?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str == ".git" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if link.iter().any(|l| l.trim_end_matches('/') == name_str) {
            if !hard_link || hard_link_entry(&src, &dst).is_err() {
                if fs_err::symlink_metadata(&dst).is_ok() {
                    remove_entry(&dst)?;
                }
                fs_err::os::unix::fs::symlink(&src, &dst)?;
            }
            continue;
        }
        copy_entry(&src, &dst)?;
    }
    Ok(())
}

fn hard_link_entry(src: &Path, dst: &Path) -> std::io::Result<()> {
    walk(src, dst, &|s, d| fs_err::hard_link(s, d))
}

fn remove_entry(path: &Path) -> std::io::Result<()> {
    if fs_err::symlink_metadata(path)?.is_dir() {
        fs_err::remove_dir_all(path)
    } else {
        fs_err::remove_file(path)
    }
}

fn copy_entry(src: &Path, dst: &Path) -> std::io::Result<()> {
    walk(src, dst, &|s, d| fs_err::copy(s, d).map(drop))
}

/// Recreates `src` at `dst`: folders as folders, symlinks as symlinks, and
/// each file with `file` (a copy or a hard link).
fn walk(
    src: &Path,
    dst: &Path,
    file: &dyn Fn(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let meta = fs_err::symlink_metadata(src)?;
    if meta.file_type().is_symlink() {
        fs_err::os::unix::fs::symlink(fs_err::read_link(src)?, dst)?;
    } else if meta.is_dir() {
        fs_err::create_dir_all(dst)?;
        for entry in fs_err::read_dir(src)? {
            let entry = entry?;
            walk(&entry.path(), &dst.join(entry.file_name()), file)?;
        }
    } else {
        file(src, dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_links_dependencies_and_skips_git() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs_err::create_dir_all(src.join("lib/deep")).unwrap();
        fs_err::create_dir_all(src.join("node_modules/x")).unwrap();
        fs_err::create_dir_all(src.join(".git")).unwrap();
        fs_err::write(src.join("lib/deep/a.js"), "a").unwrap();
        fs_err::write(src.join("node_modules/x/i.js"), "x").unwrap();
        let dst = tmp.path().join("dst");
        copy_source(&src, &dst, &["node_modules".into()], true).unwrap();
        assert_eq!(
            fs_err::read_to_string(dst.join("lib/deep/a.js")).unwrap(),
            "a"
        );
        use std::os::unix::fs::MetadataExt;
        let (orig, linked) = (
            fs_err::metadata(src.join("node_modules/x/i.js")).unwrap(),
            fs_err::metadata(dst.join("node_modules/x/i.js")).unwrap(),
        );
        assert_eq!(orig.ino(), linked.ino(), "the same file, hard-linked");
        assert!(
            !fs_err::symlink_metadata(dst.join("node_modules"))
                .unwrap()
                .file_type()
                .is_symlink(),
            "a folder of its own, so the bundler sees it inside the copy"
        );
        assert!(!dst.join(".git").exists());
        // Without `hard_link`: one symlink to the original folder.
        let dst = tmp.path().join("dst-symlinked");
        copy_source(&src, &dst, &["node_modules".into()], false).unwrap();
        let meta = fs_err::symlink_metadata(dst.join("node_modules")).unwrap();
        assert!(meta.file_type().is_symlink());
    }
}
