//! `watch`: poll the active deployment; verify every change.

use crate::cli::WatchArgs;
use crate::error::ExpectedError;

pub async fn run(_args: &WatchArgs) -> Result<u8, ExpectedError> {
    Err(ExpectedError::NotBuilt("watch"))
}
