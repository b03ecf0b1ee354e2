//! `attestation verify`: the envelope's signature and statement, then (with
//! a config) the live deployment against what it attests.

use crate::cli::{AttestationArgs, AttestationCommand};
use crate::error::ExpectedError;

pub async fn run(args: &AttestationArgs) -> Result<u8, ExpectedError> {
    match &args.command {
        AttestationCommand::Verify(_) => Err(ExpectedError::NotBuilt("attestation verify")),
    }
}
