//! `diff`: two reports of the same suite, side by side.

use crate::cli::DiffArgs;
use crate::error::ExpectedError;
use crate::exit::Exit;
use crate::summary;

/// Exit 1 when NEW fails a check BASE did not; 2 when a check BASE passed
/// is undecided in NEW, or the reports cannot be read or compared; else 0.
pub fn run(args: &DiffArgs) -> Result<Exit, ExpectedError> {
    let base = summary::load_report(&args.base)?;
    let new = summary::load_report(&args.new)?;
    let diff = flareproof::diff::compare(base, new).map_err(summary::diff_error)?;
    summary::write_diff(&args.out, &diff)?;
    Ok(Exit::from(diff.verdict()))
}
