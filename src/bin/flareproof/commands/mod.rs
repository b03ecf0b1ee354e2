//! One module per command; here, what several of them share: loading the
//! known failures, the config and its secrets, the check selection.

mod attestation;
mod audit;
mod conform;
mod demo;
mod diff;
mod init;
mod list;
mod merge;
mod verify;
mod watch;

use std::path::Path;
use std::time::Duration;

use flareproof::cloudflare::{Credentials, RetryPolicy};
use flareproof::conform::Selection;
use flareproof::known_failures::KnownFailures;
use flareproof::plan::Plan;
use flareproof::target::{ProfileSection, Target, TargetConfig, VerifyTarget, load_verify};

use flareproof::attestation::dsse::{self, SigningKey};

use crate::cli::{ApiArgs, Command, RunArgs, SelectArgs, SignArgs};
use crate::error::ExpectedError;
use crate::exit::Exit;

/// Runs a command; returns what it came to (`crate::exit` documents
/// every command's codes).
pub fn run(command: Command) -> Result<Exit, ExpectedError> {
    match command {
        Command::List(args) => list::run(&args),
        Command::Verify(args) => runtime()?.block_on(verify::run(&args)),
        Command::Conform(args) => runtime()?.block_on(conform::run(&args)),
        Command::Audit(args) => runtime()?.block_on(audit::run(&args)),
        Command::Demo(args) => runtime()?.block_on(demo::run(&args)),
        Command::Attestation(args) => runtime()?.block_on(attestation::run(&args)),
        Command::Watch(args) => runtime()?.block_on(watch::run(&args)),
        Command::Diff(args) => diff::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Init(args) => init::run(&args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExpectedError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ExpectedError::Runtime)
}

/// Loads `--known-failures` before anything runs, so a malformed file
/// costs nothing.
fn known_failures(run: &RunArgs) -> Result<Option<KnownFailures>, ExpectedError> {
    match &run.known_failures {
        Some(path) => Ok(Some(KnownFailures::load(path)?)),
        None => Ok(None),
    }
}

/// The signing key of `--sign-key`/`--sign-key-env`, read and parsed before
/// anything runs (a key that cannot sign costs nothing); its PEM lines are
/// learned as secrets, so no output quotes them.
fn signer(sign: &SignArgs) -> Result<Option<SigningKey>, ExpectedError> {
    let (pem, what) = match (&sign.sign_key, &sign.sign_key_env) {
        (Some(path), _) => {
            let pem =
                std::fs::read_to_string(path).map_err(|source| ExpectedError::SignKeyRead {
                    path: path.display().to_string(),
                    source,
                })?;
            (
                zeroize::Zeroizing::new(pem),
                format!("`{}`", path.display()),
            )
        }
        (None, Some(var)) => {
            let pem = std::env::var(var).map_err(|_| ExpectedError::SignKeyEnv(var.clone()))?;
            (zeroize::Zeroizing::new(pem), format!("in `{var}`"))
        }
        (None, None) => return Ok(None),
    };
    for line in dsse::pem_secrets(&pem) {
        crate::scrub::redactor().learn_str(&line);
    }
    Ok(Some(SigningKey::from_pkcs8_pem(&pem, &what)?))
}

/// The target config with its secrets read from the environment.
fn load_target(config: &Path) -> Result<Target, ExpectedError> {
    let file = TargetConfig::load(config).map_err(ExpectedError::Config)?;
    let target = file
        .resolve(&config.display().to_string(), |var| std::env::var(var).ok())
        .map_err(ExpectedError::Config)?;
    crate::scrub::learn_target(&target);
    Ok(target)
}

/// The `--only`/`--skip` selection; one that matches no check of the plan
/// would make a run that checks nothing and passes, so it is refused.
/// The `--only`/`--skip` selection over the checks a command runs (`runs`);
/// one that leaves none of them would make a run that checks nothing and
/// passes, so it is refused (`conform --only 'verify.*'` runs nothing).
fn selection(
    plan: &Plan,
    select: &SelectArgs,
    runs: impl Fn(&str) -> bool,
) -> Result<Selection, ExpectedError> {
    let selection = Selection::new(&select.only, &select.skip).map_err(ExpectedError::Selection)?;
    if !plan
        .checks
        .iter()
        .map(|c| c.id.as_str())
        .any(|id| runs(id) && selection.includes(id))
    {
        return Err(ExpectedError::EmptySelection);
    }
    Ok(selection)
}

/// The `[verify]` target of `config` with the command line's overrides,
/// and the credentials it names, read from the environment (what every
/// command that reads the Cloudflare API starts with).
fn verify_target(
    config: &Path,
    api: &ApiArgs,
) -> Result<(ProfileSection, VerifyTarget, Credentials), ExpectedError> {
    let (profile, mut target) = load_verify(config).map_err(ExpectedError::VerifyConfig)?;
    apply_api_args(&mut target, api);
    let credentials = credentials(config, &target)?;
    Ok((profile, target, credentials))
}

/// The `[verify]` overrides given on the command line.
fn apply_api_args(target: &mut VerifyTarget, api: &ApiArgs) {
    if let Some(var) = &api.api_token_env {
        target.api_token_env = var.clone();
    }
    if let Some(var) = &api.account_id_env {
        target.account_id_env = var.clone();
    }
    if let Some(url) = &api.api_base {
        target.api_base = url.clone();
    }
}

fn credentials(config: &Path, target: &VerifyTarget) -> Result<Credentials, ExpectedError> {
    let credentials = target
        .credentials(&config.display().to_string(), |var| std::env::var(var).ok())
        .map_err(ExpectedError::Credentials)?;
    crate::scrub::learn(&credentials.token);
    crate::scrub::learn_userinfo(&target.api_base);
    Ok(credentials)
}

fn retry(api: &ApiArgs) -> RetryPolicy {
    RetryPolicy {
        retry_after_cap: Duration::from_secs(api.max_retry_wait),
        ..RetryPolicy::default()
    }
}
