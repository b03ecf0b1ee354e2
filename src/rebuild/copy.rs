//! Copying the source into an isolated folder; large dependency folders
//! (`link`) are symlinked instead of copied.

use std::path::Path;

/// Copies `from` into `to` (created), except `.git` and the top-level
/// entries in `link`, which are symlinked to the original. Symlinks are kept
/// as symlinks.
pub fn copy_source(from: &Path, to: &Path, link: &[String]) -> std::io::Result<()> {
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
            fs_err::os::unix::fs::symlink(&src, &dst)?;
            continue;
        }
        copy_entry(&src, &dst)?;
    }
    Ok(())
}

fn copy_entry(src: &Path, dst: &Path) -> std::io::Result<()> {
    let meta = fs_err::symlink_metadata(src)?;
    if meta.file_type().is_symlink() {
        fs_err::os::unix::fs::symlink(fs_err::read_link(src)?, dst)?;
    } else if meta.is_dir() {
        fs_err::create_dir_all(dst)?;
        for entry in fs_err::read_dir(src)? {
            let entry = entry?;
            copy_entry(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else {
        fs_err::copy(src, dst)?;
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
        copy_source(&src, &dst, &["node_modules".into()]).unwrap();
        assert_eq!(
            fs_err::read_to_string(dst.join("lib/deep/a.js")).unwrap(),
            "a"
        );
        assert!(
            fs_err::symlink_metadata(dst.join("node_modules"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(!dst.join(".git").exists());
    }
}
