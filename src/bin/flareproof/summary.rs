//! The end of a checking command: write what [`report::outputs`] says to
//! write, print the terminal summary, return the exit code.

use std::io::Write as _;
use std::path::Path;

use flareproof::diff::Diff;
use flareproof::known_failures::KnownFailures;
use flareproof::model::{Report, Status};
use flareproof::report::{self, Dest, Format};

use flareproof::attestation::{self, ResourceDescriptor, Statement, dsse::SigningKey};
use flareproof::model::Redact;
use flareproof::plan::Plan;

use crate::error::ExpectedError;
use crate::exit::Exit;
use crate::scrub::{say, tell};

/// How a run's report is written.
pub struct Finish<'a> {
    /// The output folder, or `-` for stdout.
    pub dir: &'a Path,
    pub formats: &'a [Format],
    pub known: Option<&'a KnownFailures>,
    /// The config the run read, for SARIF results' location.
    pub config: Option<&'a Path>,
    pub quiet: bool,
    /// `--vantage-label`: recorded in the report.
    pub vantage_label: Option<&'a str>,
}

impl<'a> Finish<'a> {
    /// How a command that read `config` writes its report, as its
    /// `--out`, `--format`, `--quiet` and `--baseline` say.
    pub fn of(
        args: &'a crate::cli::ReportArgs,
        known: Option<&'a KnownFailures>,
        config: &'a Path,
    ) -> Baselined<'a> {
        Finish {
            dir: &args.out,
            formats: &args.format,
            known,
            config: Some(config),
            quiet: args.run.quiet,
            vantage_label: args.vantage_label.as_deref(),
        }
        .with_baseline(args.run.baseline.as_deref())
    }

    /// This finish, comparing the report with `baseline` when there is one.
    pub fn with_baseline(self, baseline: Option<&'a Path>) -> Baselined<'a> {
        Baselined {
            finish: self,
            baseline,
        }
    }

    /// Applies the known failures, writes the report (files, or the first
    /// format to stdout), prints the summary (to stdout, or to stderr when
    /// the report went there) and what was written, and returns the exit
    /// of the verdict with the final report.
    pub fn report(&self, report: Report) -> Result<(Exit, Report), ExpectedError> {
        let mut report = match self.known {
            Some(known) => known.apply(report),
            None => report,
        };
        if let Some(label) = self.vantage_label {
            report.vantage_label = Some(label.to_owned());
        }
        // Once more against every secret the binary knows (an audit's verify
        // part was scrubbed of the API token only, its conform part of the
        // target's secrets only) and of credentials in URLs: its free text
        // only, never its structure.
        crate::scrub::redactor().redact_printed(&mut report);
        let outputs = report::outputs(
            self.dir,
            self.formats,
            &report,
            sarif_artifact(self.config).as_deref(),
        );
        let mut to_stdout = false;
        let mut written = Vec::new();
        for output in outputs {
            match output.dest {
                Dest::Stdout => {
                    to_stdout = true;
                    std::io::stdout().write_all(&output.bytes)?;
                }
                Dest::File(path) => {
                    if let Some(dir) = path.parent() {
                        fs_err::create_dir_all(dir)?;
                    }
                    fs_err::write(&path, &output.bytes)?;
                    written.push(path);
                }
            }
        }
        for line in lines(&report, self.quiet) {
            if to_stdout {
                say!("{line}");
            } else {
                tell!("{line}");
            }
        }
        for path in written {
            say!("wrote {}", path.display());
        }
        Ok((Exit::from(report.verdict), report))
    }

    /// Writes a run's statements beside its report (not with `--out -`):
    /// `attestation.json` (flareproof's predicate, `statement`) and
    /// `attestation.vsa.json` (the SLSA verification summary of `report`
    /// under `plan`, about `subject` at `resource_uri`, naming the first by
    /// the digest of its bytes); with `signer`, each one's DSSE envelope
    /// too (`attestation.dsse.json`, `attestation.vsa.dsse.json`).
    ///
    /// The statement's free text is scrubbed of every secret the binary
    /// knows as a value, before it is rendered; the bytes rendered are the
    /// bytes written and signed, never rewritten after.
    pub fn attestations<P: serde::Serialize + Redact>(
        &self,
        mut statement: Statement<P>,
        vsa: Vsa<'_>,
        signer: Option<&SigningKey>,
    ) -> Result<(), ExpectedError> {
        crate::scrub::redactor().redact_printed(&mut statement);
        let statement = attestation::render(&statement);
        let written = self.statement("attestation", &statement, signer)?;
        let vsa = attestation::vsa_statement(
            vsa.report,
            vsa.plan,
            vsa.resource_uri.to_owned(),
            vsa.subject,
            written.as_deref().map(|bytes| ("attestation.json", bytes)),
        );
        self.statement("attestation.vsa", &attestation::render(&vsa), signer)?;
        if let (Some(key), Some(_)) = (signer, written) {
            say!("signed by {} (keyid {})", key.algorithm(), key.keyid());
        }
        Ok(())
    }

    /// Writes one statement's bytes as `<name>.json` beside the report, and
    /// with `signer` `<name>.dsse.json`: a DSSE envelope over exactly the
    /// bytes written. Returns those bytes; nothing with `--out -`.
    fn statement(
        &self,
        name: &str,
        bytes: &[u8],
        signer: Option<&SigningKey>,
    ) -> Result<Option<Vec<u8>>, ExpectedError> {
        let Some(path) = report::attestation_path(self.dir) else {
            return Ok(None);
        };
        let path = path.with_file_name(format!("{name}.json"));
        fs_err::write(&path, bytes)?;
        say!("wrote {}", path.display());
        if let Some(key) = signer {
            let envelope = key.sign_statement(bytes);
            let path = path.with_file_name(format!("{name}.dsse.json"));
            fs_err::write(&path, envelope.render())?;
            say!("wrote {}", path.display());
        }
        Ok(Some(bytes.to_vec()))
    }
}

/// A [`Finish`] that, with `--baseline FILE`, also compares the report
/// with that earlier one: prints the diff's summary and writes `diff.md`
/// and `diff.html` beside the report (not with `--out -`).
///
/// The run's own verdict rules the exit code. A regression (a check that
/// fails now and did not in the baseline) is a failed check, so the
/// verdict is already `fail` (1); a check the baseline passed that is
/// `error` now makes the verdict `error` (2) already; one the run did not
/// select (`--only`, `--skip`) is named in the diff and changes nothing
/// (unlike `flareproof diff`, which exits 2 for it). A baseline that
/// cannot be read, does not validate, or is of another suite is printed
/// as an error after the report is written, and a run that passed then
/// exits 2 (it could not do all it was asked); a failing run keeps its 1.
pub struct Baselined<'a> {
    pub finish: Finish<'a>,
    pub baseline: Option<&'a Path>,
}

impl Baselined<'_> {
    /// [`Finish::report`], then the comparison with the baseline.
    pub fn report(&self, report: Report) -> Result<(Exit, Report), ExpectedError> {
        let (code, report) = self.finish.report(report)?;
        let Some(baseline) = self.baseline else {
            return Ok((code, report));
        };
        let code = match self.compare(baseline, &report) {
            Ok(diff) if diff.regressed() && code == Exit::Pass => Exit::Failed,
            Ok(_) => code,
            Err(error) => {
                let error = error.context(baseline);
                crate::error::eprint_error(&error, &[], None);
                if code == Exit::Pass {
                    Exit::Undecided
                } else {
                    code
                }
            }
        };
        Ok((code, report))
    }

    /// [`Finish::attestations`].
    pub fn attestations<P: serde::Serialize + Redact>(
        &self,
        statement: Statement<P>,
        vsa: Vsa<'_>,
        signer: Option<&SigningKey>,
    ) -> Result<(), ExpectedError> {
        self.finish.attestations(statement, vsa, signer)
    }

    fn compare(&self, baseline: &Path, report: &Report) -> Result<Diff, BaselineError> {
        let base = load_report(baseline).map_err(BaselineError)?;
        let new = flareproof::diff::Loaded {
            path: match report::attestation_path(self.finish.dir) {
                Some(_) => self
                    .finish
                    .dir
                    .join(Format::Json.file_name())
                    .display()
                    .to_string(),
                None => "this run".to_owned(),
            },
            report: report.clone(),
        };
        let diff =
            flareproof::diff::compare(base, new).map_err(|e| BaselineError(diff_error(e)))?;
        if self.finish.dir == Path::new(report::STDOUT) {
            // The report went to stdout: the diff's summary only.
            say!("diff against {}: {}", diff.base.path, diff.summary());
        } else {
            write_diff(self.finish.dir, &diff).map_err(BaselineError)?;
        }
        Ok(diff)
    }
}

/// Why `--baseline` could not be compared.
struct BaselineError(ExpectedError);

impl BaselineError {
    fn context(self, baseline: &Path) -> std::io::Error {
        std::io::Error::other(format!(
            "compare the report with the baseline `{}`: {}",
            baseline.display(),
            flareproof::error_chain(&self.0)
        ))
    }
}

/// A report for `diff` or `--baseline` (a `report.json`, or a folder
/// holding one), validated against the committed schema and scrubbed of
/// every secret the binary knows and of URL credentials, as any output.
pub fn load_report(path: &Path) -> Result<flareproof::diff::Loaded, ExpectedError> {
    let mut loaded = flareproof::diff::load(path).map_err(diff_error)?;
    crate::scrub::redactor().redact_printed(&mut loaded.report);
    Ok(loaded)
}

/// A diff error as the binary prints it (exit 2).
pub fn diff_error(error: flareproof::diff::DiffError) -> ExpectedError {
    ExpectedError::Write(std::io::Error::other(error))
}

/// Writes a diff: to `dir` as `diff.md` and `diff.html`, or with `-` its
/// Markdown to stdout; its summary line on stderr either way.
pub fn write_diff(dir: &Path, diff: &Diff) -> Result<(), ExpectedError> {
    let markdown = flareproof::diff::markdown(diff);
    if dir == Path::new(report::STDOUT) {
        std::io::stdout().write_all(markdown.as_bytes())?;
    } else {
        fs_err::create_dir_all(dir)?;
        let md = dir.join(flareproof::diff::MARKDOWN_FILE);
        fs_err::write(&md, &markdown)?;
        let html = dir.join(flareproof::diff::HTML_FILE);
        fs_err::write(&html, flareproof::diff::html(diff))?;
        say!("wrote {}", md.display());
        say!("wrote {}", html.display());
    }
    say!(
        "diff of {} against {}: {}",
        diff.new.path,
        diff.base.path,
        diff.summary()
    );
    Ok(())
}

/// What the verification summary of a run says.
pub struct Vsa<'a> {
    pub report: &'a Report,
    pub plan: &'a Plan,
    pub resource_uri: &'a str,
    /// The modules verified (the statement's subjects).
    pub subject: Vec<ResourceDescriptor>,
}

/// SARIF results point at the config when it is a file relative to where
/// the run started (the repository root in CI).
fn sarif_artifact(config: Option<&Path>) -> Option<String> {
    let config = config.filter(|c| c.is_relative() && c.exists())?;
    let path = config.display().to_string();
    Some(path.trim_start_matches("./").to_owned())
}

/// A line per check that did not pass (every check unless `quiet`), then
/// the verdict line.
pub fn lines(report: &Report, quiet: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if !quiet {
        for check in &report.checks {
            let status = check.status.as_str().to_uppercase();
            lines.push(match check.status {
                Status::Pass => format!("{status:>5} {}", check.id),
                _ => format!("{status:>5} {}: {}", check.id, check.summary),
            });
        }
    }
    let c = report.counts;
    lines.push(format!(
        "verdict: {} ({} passed, {} failed, {} warned, {} errors, {} skipped) in {:.1} s",
        report.verdict.as_str(),
        c.pass,
        c.fail,
        c.warn,
        c.error,
        c.skip,
        report.duration_ms as f64 / 1000.0
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use flareproof::model::{CheckId, CheckResult, Subject};

    fn check(id: &str, status: Status, summary: &str) -> CheckResult {
        CheckResult {
            id: CheckId::new(id).unwrap(),
            title: String::new(),
            status,
            summary: summary.to_owned(),
            severity: None,
            level: None,
            help: String::new(),
            requirements: vec![],
            evidence: vec![],
            duration_ms: 0,
            version: None,
            target: None,
        }
    }

    #[test]
    fn the_summary_has_a_line_per_check_then_the_verdict() {
        let report = Report::new(
            "conform",
            "flarelink-auth/v1",
            Subject {
                base_url: None,
                vantages: vec![],
                script: None,
            },
            "2025-01-01T00:00:00Z".to_owned(),
            1300,
            vec![
                check("cookie.secure", Status::Pass, "fine"),
                check("cookie.samesite", Status::Fail, "SameSite=None"),
            ],
        );
        assert_eq!(
            lines(&report, false),
            [
                " PASS cookie.secure",
                " FAIL cookie.samesite: SameSite=None",
                "verdict: fail (1 passed, 1 failed, 0 warned, 0 errors, 0 skipped) in 1.3 s",
            ]
        );
        assert_eq!(lines(&report, true).len(), 1);
    }

    #[test]
    fn sarif_points_at_an_existing_relative_config_only() {
        assert_eq!(sarif_artifact(None), None);
        assert_eq!(
            sarif_artifact(Some(Path::new("/abs/flareproof.toml"))),
            None
        );
        assert_eq!(
            sarif_artifact(Some(Path::new("./no-such-config.toml"))),
            None
        );
        assert_eq!(
            sarif_artifact(Some(Path::new("./Cargo.toml"))).as_deref(),
            Some("Cargo.toml")
        );
    }
}
