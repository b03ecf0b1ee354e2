//! Why a command could not run: one error type for the binary, its exit
//! code and hint beside its variants, and the one printer that writes an
//! error to stderr.
//!
//! The printer writes `error: …` (a fragment that reads after "failed to"),
//! a `caused by: …` line per source, the output of a failed process (npm,
//! the launcher, a build recipe) as evidence below it, then `hint: …`.

use std::error::Error;
use std::io::Write;

use flareproof::audit::AuditError;
use flareproof::cloudflare::ApiError;
use flareproof::conform::ConformError;
use flareproof::known_failures::KnownFailuresError;
use flareproof::plan::PlanError;
use flareproof::rebuild::RebuildError;
use flareproof::target::TargetError;
use flareproof::testbench::demo::DemoError;

use crate::exit::Exit;

/// An error the binary expects and explains.
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// The async runtime did not start.
    #[error("start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// `--known-failures` could not be read.
    #[error(transparent)]
    KnownFailures(#[from] KnownFailuresError),
    /// The `--config` of `conform`, `audit` or `list`: reading, parsing,
    /// validating it, or a secret it names.
    #[error(transparent)]
    Config(TargetError),
    /// The `--config` of `verify`, which needs a `[verify]` section.
    #[error(transparent)]
    VerifyConfig(TargetError),
    /// The Cloudflare API token or account id is not in the environment.
    #[error(transparent)]
    Credentials(TargetError),
    /// `audit` with a config that has no `[verify]` section.
    #[error("audit `{0}`: the config has no `[verify]` section; audit runs verify and conform")]
    NoVerifySection(String),
    /// The profile's suite (or a `--suite` file) could not be loaded.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An `--only`/`--skip` glob is malformed.
    #[error(transparent)]
    Selection(ConformError),
    /// `--only`/`--skip` match no check of the plan.
    #[error("select the checks to run: `--only`/`--skip` leave no check to run")]
    EmptySelection,
    /// Conform could not start probing.
    #[error(transparent)]
    Conform(ConformError),
    /// Verify could not start: the API base URL is unusable.
    #[error(transparent)]
    Verify(ApiError),
    #[error(transparent)]
    Audit(AuditError),
    /// The demo's reference Worker, stand-in API or build.
    #[error(transparent)]
    Demo(DemoError),
    /// A report could not be written (the message names the path).
    #[error(transparent)]
    Write(#[from] std::io::Error),
    /// `--sign-key`/`--sign-key-env`: the key could not be read or used.
    #[error(transparent)]
    SignKey(#[from] flareproof::attestation::dsse::KeyError),
    /// `--sign-key FILE` could not be read.
    #[error("read the signing key `{path}`")]
    SignKeyRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `--sign-key-env VAR` names a variable that is not set.
    #[error("read the signing key: the environment variable `{0}` is not set (or not UTF-8)")]
    SignKeyEnv(String),
    /// `init` would overwrite a file.
    #[error("write `{0}`: it exists (pass `--force` to overwrite it)")]
    InitExists(String),
    /// `init` without a terminal (or with `--non-interactive`) lacks answers.
    #[error("write the config: no value for {}", .0.iter().map(|f| format!("`--{f}`")).collect::<Vec<_>>().join(", "))]
    InitMissing(Vec<String>),
    /// `init`: a flag's value (or the wrangler config) is not usable.
    #[error("write the config: {0}")]
    InitInvalid(String),
    /// `init`: the prompt could not be read.
    #[error("read the answer to `--{0}` from the terminal")]
    InitPrompt(String, #[source] std::io::Error),
}

impl ExpectedError {
    /// Every expected error means the harness could not run.
    pub fn exit(&self) -> Exit {
        Exit::Undecided
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            ExpectedError::KnownFailures(_) => {
                "write one `\"check id glob\" = \"reason\"` per line, e.g. \
                 `\"cookie.prefix\" = \"__Host- migration in progress\"`"
            }
            ExpectedError::Config(TargetError::MissingSecret { .. }) => {
                "export the variable, or rename it in the config"
            }
            ExpectedError::Config(_) => {
                "pass `--config FILE`; the README shows the target config's shape"
            }
            ExpectedError::VerifyConfig(_) => {
                "pass `--config FILE` with a `[verify]` section (`source`, `recipe`, \
                 `script`, …); the README shows its shape"
            }
            ExpectedError::Credentials(TargetError::MissingSecret { key, var, .. }) => {
                return Some(if key.ends_with("account_id_env") {
                    format!("set `{var}` to the Cloudflare account id, or pass `--account-id-env`")
                } else {
                    format!(
                        "set `{var}` to an API token with \"Workers Scripts Read\", or pass \
                         `--api-token-env`"
                    )
                });
            }
            ExpectedError::NoVerifySection(_) => {
                "add a `[verify]` section (the README shows its shape), or run \
                 `flareproof conform`"
            }
            ExpectedError::Plan(PlanError::UnknownProfile(_)) => {
                "set `[profile] suite` to a built-in suite (`flareproof list` shows the default)"
            }
            ExpectedError::EmptySelection => {
                "`flareproof list` shows the check ids; globs match them whole, e.g. `cookie.*`"
            }
            ExpectedError::Verify(_) => {
                "check `api_base` in the `[verify]` section (or `--api-base`)"
            }
            ExpectedError::SignKey(_)
            | ExpectedError::SignKeyRead { .. }
            | ExpectedError::SignKeyEnv(_) => {
                "sign with an unencrypted PKCS#8 PEM key (ECDSA P-256 or Ed25519), e.g. \
                 `openssl genpkey -algorithm ed25519 -out key.pem`"
            }
            ExpectedError::InitMissing(_) => {
                "pass each as a flag (`flareproof init --help` lists them), or run `init` on a \
                 terminal to be asked"
            }
            ExpectedError::Demo(_) => {
                "the demo needs Node.js 20 and npm on PATH; run it from the repository root"
            }
            _ => return None,
        };
        Some(hint.to_owned())
    }

    /// What a failed process printed, to show below the error.
    fn output(&self) -> Option<Evidence<'_>> {
        match self {
            ExpectedError::Demo(DemoError::Fixture(e)) => {
                e.output().map(|(label, text)| Evidence { label, text })
            }
            _ => None,
        }
    }

    /// Prints the error to stderr.
    pub fn eprint(&self) {
        let evidence: Vec<Evidence> = self.output().into_iter().collect();
        eprint_error(self, &evidence, self.hint().as_deref());
    }
}

/// A failed process's output, quoted below an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence<'a> {
    pub label: &'a str,
    pub text: &'a str,
}

/// [`write_error`] to stderr, scrubbed of every secret the run knows and
/// of URL userinfo and bearer credentials (an error chain quotes URLs and
/// what the target or the API answered). Best effort: stderr is where we
/// would report that it failed.
pub fn eprint_error(error: &dyn Error, evidence: &[Evidence], hint: Option<&str>) {
    let text = scrubbed_error(error, evidence, hint);
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// What [`eprint_error`] prints.
fn scrubbed_error(error: &dyn Error, evidence: &[Evidence], hint: Option<&str>) -> String {
    let mut text = Vec::new();
    let _ = write_error(&mut text, error, evidence, hint);
    crate::scrub::text(&String::from_utf8_lossy(&text))
}

/// `error:`, a `caused by:` line per source, the evidence, then the hint.
/// A failed build recipe's output, which its message carries after the
/// first line, is quoted as evidence too.
pub fn write_error(
    out: &mut dyn Write,
    error: &dyn Error,
    evidence: &[Evidence],
    hint: Option<&str>,
) -> std::io::Result<()> {
    writeln!(out, "error: {error}")?;
    let mut evidence = evidence.to_vec();
    let mut recipe_output = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        match cause.downcast_ref::<RebuildError>() {
            Some(failed @ RebuildError::Failed { .. }) => {
                let message = failed.to_string();
                let (line, output) = message.split_once('\n').unwrap_or((&message, ""));
                writeln!(out, "  caused by: {line}")?;
                recipe_output.push(output.to_owned());
            }
            _ => writeln!(out, "  caused by: {cause}")?,
        }
        source = cause.source();
    }
    evidence.extend(recipe_output.iter().map(|text| Evidence {
        label: "recipe output (last lines)",
        text,
    }));
    for Evidence { label, text } in evidence {
        if text.trim().is_empty() {
            continue;
        }
        writeln!(out, "{label}:")?;
        for line in text.lines() {
            writeln!(out, "  | {line}")?;
        }
    }
    if let Some(hint) = hint {
        writeln!(out, "hint: {hint}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flareproof::testbench::fixture::FixtureError;

    fn printed(error: &ExpectedError) -> String {
        let mut out = Vec::new();
        let evidence: Vec<Evidence> = error.output().into_iter().collect();
        write_error(&mut out, error, &evidence, error.hint().as_deref()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn causes_get_a_line_each_and_the_hint_comes_last() {
        let error = ExpectedError::Config(TargetError::Read {
            path: "flareproof.toml".to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
        assert_eq!(
            printed(&error),
            "error: read config `flareproof.toml`\n\
             \x20 caused by: no such file\n\
             hint: pass `--config FILE`; the README shows the target config's shape\n"
        );
        assert_eq!(error.exit(), Exit::Undecided);
    }

    #[test]
    fn a_launchers_stderr_is_evidence_below_a_one_line_message() {
        let error = ExpectedError::Demo(DemoError::Fixture(FixtureError::Start {
            problem: "the launcher exited before it was ready: bad knob".to_owned(),
            stderr: "launch: starting\nerror: bad knob".to_owned(),
        }));
        let text = printed(&error);
        assert_eq!(
            text,
            "error: start the reference Worker: the launcher exited before it was ready: bad knob\n\
             launcher stderr (last lines):\n\
             \x20 | launch: starting\n\
             \x20 | error: bad knob\n\
             hint: the demo needs Node.js 20 and npm on PATH; run it from the repository root\n"
        );
    }

    #[test]
    fn a_failed_recipes_output_is_evidence_not_a_cause() {
        let error = ExpectedError::Demo(DemoError::Deploy(RebuildError::Failed {
            command: "node build.mjs".to_owned(),
            variation: "baseline".to_owned(),
            status: "exit status: 1".to_owned(),
            output: "Error: Cannot find module 'esbuild'\n    at load".to_owned(),
        }));
        let text = printed(&error);
        assert!(
            text.starts_with(
                "error: build the reference Worker to deploy on the stand-in\n\
                 \x20 caused by: run the recipe `node build.mjs` (baseline): exit status: 1\n\
                 recipe output (last lines):\n\
                 \x20 | Error: Cannot find module 'esbuild'\n\
                 \x20 |     at load\n\
                 hint: "
            ),
            "{text}"
        );
    }

    #[test]
    fn a_missing_credential_hint_names_the_variable_and_its_flag() {
        let missing = |key: &str, var: &str| {
            ExpectedError::Credentials(TargetError::MissingSecret {
                path: "f.toml".to_owned(),
                key: key.to_owned(),
                var: var.to_owned(),
            })
            .hint()
            .unwrap()
        };
        let token = missing("verify.api_token_env", "CF_TOKEN");
        assert!(
            token.contains("`CF_TOKEN`") && token.contains("--api-token-env"),
            "{token}"
        );
        let account = missing("verify.account_id_env", "CF_ACCOUNT");
        assert!(
            account.contains("`CF_ACCOUNT`") && account.contains("--account-id-env"),
            "{account}"
        );
    }

    #[test]
    fn a_printed_error_chain_is_scrubbed() {
        crate::scrub::learn(&flareproof::model::Secret::new(
            "chain-canary-password".to_owned(),
        ));
        let error = ExpectedError::Config(TargetError::Read {
            path: "https://ops:hunter2@config.test/flareproof.toml".to_owned(),
            source: std::io::Error::other(
                "the server said: chain-canary-password is wrong; Bearer abcdefghijklmnop0123456789",
            ),
        });
        let text = scrubbed_error(&error, &[], None);
        assert_eq!(
            text,
            "error: read config `https://[redacted]@config.test/flareproof.toml`\n\
             \x20 caused by: the server said: [redacted] is wrong; Bearer [redacted]\n"
        );
    }
}
