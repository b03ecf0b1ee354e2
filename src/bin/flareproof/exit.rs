//! Every exit code the binary returns: a command answers with an [`Exit`],
//! and `main` turns it into the process's status here, and nowhere else.
//! The README's "Exit codes" table is this one.
//!
//! | command | 0 | 1 | 2 |
//! |---|---|---|---|
//! | `conform`, `verify`, `audit` | every check passed (`warn`, `skip` allowed) | a check failed: the target is wrong | no check failed but one is `error`, or none passed or warned; or the run could not start (config, key, known failures, …); or it passed but its `--baseline` could not be compared |
//! | `demo` | the clean run passed | the clean run failed | the clean run is `error`; or it passed but the vendor comparison could not run or did not show its fault |
//! | `merge` | the merged verdict is `pass` | it is `fail` | it is `error`; or the shards could not be read or merged (or were not `--expect` in number) |
//! | `diff` | no regression | NEW fails a check BASE did not | a check BASE passed is undecided or not run in NEW; or the reports could not be read or compared |
//! | `attestation verify` | the signature and the statement check and the attested result passed (or failed, with `--allow-failed-result`); with `--config`, the deployment is still what was attested | the signature or the statement does not check, the attested result failed (verdict `fail` or `error`, `FAILED`), or the deployment changed | the key or the file could not be read; with `--config`, the config, the API or a part of the deployment could not be read (now or when attested), or the attestation is of another account or script (each of these 1 when the attested result failed) |
//! | `watch` | stopped by a signal; with `--once`, unchanged since a pass, or a pass | with `--once` or `--exit-on-fail`: a verify failed, or what is live is what last failed | could not start, or the state file could not be written; with `--once`, could not tell (the API, a run that could not tell, a signal before a verdict) |
//! | `list`, `init`, `conform --dry-run` | done | – | could not (a config that does not load, a file `init` would overwrite, …) |
//! | any | `--help`, `--version` | – | the command line does not parse |
//!
//! Every error a command returns instead of an answer (`ExpectedError`) is
//! 2. A panic is a flareproof bug: its message is printed as `flareproof
//! bug: …` and the process exits 101, as Rust's runtime does.

use std::process::ExitCode;

use flareproof::model::Verdict;
use flareproof::watch::Outcome;

/// What a command came to, as the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: passed, unchanged, no regression, or done.
    Pass = 0,
    /// 1: a finding: a check failed, a regression, a signature or an
    /// attested result that does not hold, a changed deployment.
    Failed = 1,
    /// 2: could not tell, or could not run.
    Undecided = 2,
}

impl Exit {
    /// The process's exit status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What a flareproof's exit status says (a child run's, for `watch`).
    pub fn of_code(code: i32) -> Option<Exit> {
        [Exit::Pass, Exit::Failed, Exit::Undecided]
            .into_iter()
            .find(|exit| i32::from(exit.code()) == code)
    }

    /// How a `watch` that stops without a verdict exits: could not tell
    /// under `--once` (it was asked for one), else stopped.
    pub fn without_verdict(once: bool) -> Exit {
        if once { Exit::Undecided } else { Exit::Pass }
    }

    /// The worse of two answers: a finding wins, then could not tell, as
    /// a report's verdict is decided.
    pub fn worst(self, other: Exit) -> Exit {
        match (self, other) {
            (Exit::Failed, _) | (_, Exit::Failed) => Exit::Failed,
            (Exit::Undecided, _) | (_, Exit::Undecided) => Exit::Undecided,
            _ => Exit::Pass,
        }
    }
}

/// A report's (or a diff's) verdict: `pass` 0, `fail` 1, `error` 2.
impl From<Verdict> for Exit {
    fn from(verdict: Verdict) -> Exit {
        match verdict {
            Verdict::Pass => Exit::Pass,
            Verdict::Fail => Exit::Failed,
            Verdict::Error => Exit::Undecided,
        }
    }
}

/// A verify run's outcome a watch records.
impl From<Outcome> for Exit {
    fn from(outcome: Outcome) -> Exit {
        match outcome {
            Outcome::Pass => Exit::Pass,
            Outcome::Fail => Exit::Failed,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// A command line clap refused (2), or `--help`/`--version` (0): clap
/// printed it.
pub fn of_usage(error: &clap::Error) -> Exit {
    if error.use_stderr() {
        Exit::Undecided
    } else {
        Exit::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_documented_ones() {
        assert_eq!(
            [Exit::Pass, Exit::Failed, Exit::Undecided].map(Exit::code),
            [0, 1, 2]
        );
        assert_eq!(
            [Verdict::Pass, Verdict::Fail, Verdict::Error].map(Exit::from),
            [Exit::Pass, Exit::Failed, Exit::Undecided]
        );
        assert_eq!(
            [Outcome::Pass, Outcome::Fail].map(Exit::from),
            [Exit::Pass, Exit::Failed]
        );
        for exit in [Exit::Pass, Exit::Failed, Exit::Undecided] {
            assert_eq!(Exit::of_code(exit.code().into()), Some(exit));
        }
        assert_eq!(Exit::of_code(101), None, "a panic is not an answer");
    }

    #[test]
    fn a_finding_is_worse_than_could_not_tell() {
        use Exit::*;
        for (a, b, worst) in [
            (Pass, Pass, Pass),
            (Pass, Undecided, Undecided),
            (Undecided, Failed, Failed),
            (Failed, Pass, Failed),
        ] {
            assert_eq!(a.worst(b), worst, "{a:?} {b:?}");
            assert_eq!(b.worst(a), worst, "{b:?} {a:?}");
        }
    }
}
