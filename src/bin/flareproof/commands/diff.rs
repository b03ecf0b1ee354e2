//! `diff`: two reports of the same suite, side by side.

use crate::cli::DiffArgs;
use crate::error::ExpectedError;

pub fn run(_args: &DiffArgs) -> Result<u8, ExpectedError> {
    Err(ExpectedError::NotBuilt("diff"))
}
