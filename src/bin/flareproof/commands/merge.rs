//! `merge`: the shards of a CI matrix as one report.

use std::path::{Path, PathBuf};

use flareproof::model::Verdict;

use crate::cli::MergeArgs;
use crate::error::ExpectedError;
use crate::exit::Exit;
use crate::scrub::{say, tell};
use crate::summary::{self, Finish};

/// How deep under a folder given on the command line `report.json` files
/// are looked for (a downloaded artifact is one or two folders down).
const SEARCH_DEPTH: usize = 4;

/// Exit 0, 1 or 2 by the merged verdict; 2 when the shards cannot be read
/// or merged.
pub fn run(args: &MergeArgs) -> Result<Exit, ExpectedError> {
    let mut files = Vec::new();
    for shard in &args.shards {
        files.extend(shard_files(shard)?);
    }
    if let Some(expected) = args.expect
        && files.len() != expected
    {
        let found: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(ExpectedError::Write(std::io::Error::other(format!(
            "merge: {expected} shards expected (--expect), {} found{}{}; a cell that wrote no \
             report is not merged around",
            files.len(),
            if found.is_empty() { "" } else { ": " },
            found.join(", ")
        ))));
    }
    let merge_error = |e| ExpectedError::Write(std::io::Error::other(e));
    let mut merger = flareproof::merge::Merger::new();
    for file in &files {
        merger
            .add(summary::load_report(file)?)
            .map_err(merge_error)?;
    }
    let shards = merger.shards();
    // Beside the report on stdout, the lines go to stderr.
    let to_stdout = args.out == Path::new(flareproof::report::STDOUT);
    let print = |line: &str| {
        if to_stdout {
            say!("{line}");
        } else {
            tell!("{line}");
        }
    };
    let report = merger.finish().map_err(merge_error)?;
    if !args.quiet {
        for row in &report.fleet {
            let mut line = format!("{:>5} {}", row.verdict.as_str().to_uppercase(), row.target);
            if !row.vantage_labels.is_empty() {
                line.push_str(&format!(" (from {})", row.vantage_labels.join(", ")));
            }
            if row.verdict != Verdict::Pass {
                let mut named = row.failing.clone();
                named.extend(row.undecided.iter().map(|id| format!("{id} (error)")));
                line.push_str(&format!(": {}", named.join(", ")));
            }
            print(&line);
        }
    }
    print(&format!(
        "merged {shards} shards of {} targets",
        report.fleet.len()
    ));
    let finish = Finish {
        dir: &args.out,
        formats: &args.format,
        known: None,
        config: None,
        quiet: true,
        vantage_label: None,
    };
    Ok(finish.report(report)?.0)
}

/// A shard argument's report files: the file itself, a folder's
/// `report.json`, or else every `report.json` under the folder (sorted, so
/// the merge is the same on every machine).
fn shard_files(arg: &Path) -> Result<Vec<PathBuf>, ExpectedError> {
    if !arg.is_dir() || arg.join("report.json").is_file() {
        return Ok(vec![flareproof::diff::report_path(arg)]);
    }
    let mut found = Vec::new();
    find(arg, SEARCH_DEPTH, &mut found)?;
    if found.is_empty() {
        return Err(ExpectedError::Write(std::io::Error::other(format!(
            "merge: no report.json in `{}` or its sub-folders",
            arg.display()
        ))));
    }
    found.sort();
    Ok(found)
}

fn find(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), ExpectedError> {
    let report = dir.join("report.json");
    if report.is_file() {
        found.push(report);
        return Ok(());
    }
    if depth == 0 {
        return Ok(());
    }
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            find(&path, depth - 1, found)?;
        }
    }
    Ok(())
}
