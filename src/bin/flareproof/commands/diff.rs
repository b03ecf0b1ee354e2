//! `diff`: two reports of the same suite, side by side.

use crate::cli::DiffArgs;
use crate::error::ExpectedError;
use crate::summary;

/// Exit 1 when NEW fails a check BASE did not, else 0; 2 when the reports
/// cannot be read or compared.
pub fn run(args: &DiffArgs) -> Result<u8, ExpectedError> {
    let base = summary::load_report(&args.base)?;
    let new = summary::load_report(&args.new)?;
    let diff = flareproof::diff::compare(base, new).map_err(summary::diff_error)?;
    summary::write_diff(&args.out, &diff)?;
    Ok(diff.exit_code())
}
