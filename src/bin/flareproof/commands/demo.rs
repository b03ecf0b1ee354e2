//! `demo`: everything against the reference Worker on this machine; every
//! format into `DIR/demo`; then the conform suite once more against the
//! reference Worker with one fault (a "vendor Worker"), compared with the
//! clean run in `DIR/demo/vs-reference`.

use std::path::{Path, PathBuf};

use flareproof::attestation::{self, dsse::SigningKey};
use flareproof::model::Report;
use flareproof::plan::Plan;
use flareproof::probe::Redactor;
use flareproof::report::Format;
use flareproof::testbench::demo::VENDOR_FAULT;
use flareproof::testbench::{self, Events};

use crate::cli::DemoArgs;
use crate::error::ExpectedError;
use crate::exit::Exit;
use crate::scrub::say;
use crate::summary::{self, Finish, Vsa};

/// The folder, in the demo's, of the comparison with a vendor Worker.
const VS_REFERENCE: &str = "vs-reference";
/// The comparison's BASE in that folder: the clean run's conform part (the
/// demo's `report.json` has verify checks too, which a conform-only run of
/// the vendor Worker would show as not run). NEW is that folder's
/// `report.json`.
const REFERENCE_FILE: &str = "reference.json";

pub async fn run(args: &DemoArgs) -> Result<Exit, ExpectedError> {
    let known = super::known_failures(&args.run)?;
    say!("starting the reference auth Worker (workerd via Miniflare)…");
    let run = testbench::demo::run(events())
        .await
        .map_err(ExpectedError::Demo)?;
    crate::scrub::absorb(&run.redactor);
    say!(
        "reference Worker ready in {} ms; {} requests sent",
        run.fixture_ready.as_millis(),
        run.requests
    );
    let dir = args.out.join("demo");
    let finish = Finish {
        dir: &dir,
        formats: &Format::ALL,
        known: known.as_ref(),
        config: None,
        quiet: args.run.quiet,
        vantage_label: None,
    }
    .with_baseline(args.run.baseline.as_deref());
    let (code, report) = finish.report(run.report)?;
    let statement = attestation::audit_statement(
        &report,
        &run.plan,
        Some(&run.attestation),
        known.as_ref().map(|k| k.entries()).unwrap_or_default(),
    );
    // A key of its own, generated into the output folder, so that the demo
    // shows the whole chain: sign, then check the signature.
    let key = SigningKey::generate_ed25519();
    fs_err::create_dir_all(&dir)?;
    let private = dir.join("signing-key.pem");
    let public = dir.join("signing-key.pub.pem");
    write_private(&private, key.to_pkcs8_pem().as_bytes())?;
    fs_err::write(&public, key.public_key_pem())?;
    say!(
        "generated a demo signing key: {} (its public key {})",
        private.display(),
        public.display()
    );
    let vsa = Vsa {
        report: &report,
        plan: &run.plan,
        resource_uri: &run.resource_uri,
        subject: attestation::vsa_subject(&run.attestation),
    };
    finish.attestations(statement, vsa, Some(&key))?;
    say!(
        "check the signature: flareproof attestation verify {} --key {}",
        dir.join("attestation.dsse.json").display(),
        public.display()
    );
    // The clean run's verdict rules the exit code; a comparison that could
    // not run or showed nothing makes a passing demo exit 2 (a failing one
    // keeps its 1).
    let code = match compare_with_a_vendor(&dir, &run.plan, &run.reference, &run.redactor).await {
        Ok(()) => code,
        Err(error) => {
            say!("the comparison with a vendor Worker (fault `{VENDOR_FAULT}`) failed:");
            error.eprint();
            if code == Exit::Pass {
                Exit::Undecided
            } else {
                code
            }
        }
    };
    say!(
        "open {} in a browser; {} is a CI job summary",
        dir.join(Format::Html.file_name()).display(),
        dir.join(Format::Markdown.file_name()).display()
    );
    Ok(code)
}

/// Runs the conform suite against the reference Worker with
/// [`VENDOR_FAULT`] (NEW, "a vendor Worker"), compares it with the clean
/// run's conform part (BASE, "the reference Worker") as `flareproof diff`
/// would, from the two reports written to `dir/vs-reference`, writes the
/// diff there and prints its summary and the command that reproduces it.
/// An error when the faulty run could not be made or compared, or when the
/// comparison does not show the fault's check as a new failure.
async fn compare_with_a_vendor(
    dir: &Path,
    plan: &std::sync::Arc<Plan>,
    reference: &Report,
    redactor: &std::sync::Arc<Redactor>,
) -> Result<(), ExpectedError> {
    let fault = VENDOR_FAULT;
    let effect = plan
        .checks
        .iter()
        .find_map(|c| c.fault.as_ref().filter(|f| f.id == fault))
        .map_or(String::new(), |f| format!(" ({})", f.effect));
    say!(
        "comparing with a vendor Worker: the reference Worker once more, with one fault, \
         `{fault}`{effect}; the conform suite only…"
    );
    let vendor = testbench::demo::run_vendor(events(), plan.clone(), fault, redactor.clone())
        .await
        .map_err(ExpectedError::Demo)?;
    crate::scrub::absorb(redactor);
    let c = vendor.report.counts;
    say!(
        "vendor Worker ready in {} ms; {} requests sent; its verdict: {} ({} passed, {} failed, \
         {} errors)",
        vendor.fixture_ready.as_millis(),
        vendor.requests,
        vendor.report.verdict.as_str(),
        c.pass,
        c.fail,
        c.error
    );
    let vs = dir.join(VS_REFERENCE);
    fs_err::create_dir_all(&vs)?;
    let base = write_report(&vs.join(REFERENCE_FILE), reference)?;
    let new = write_report(&vs.join(Format::Json.file_name()), &vendor.report)?;
    // Read back as `flareproof diff` reads them: validated, scrubbed.
    let diff = flareproof::diff::compare(summary::load_report(&base)?, summary::load_report(&new)?)
        .map_err(summary::diff_error)?;
    for (name, text) in [
        (
            flareproof::diff::MARKDOWN_FILE,
            flareproof::diff::markdown(&diff),
        ),
        (flareproof::diff::HTML_FILE, flareproof::diff::html(&diff)),
    ] {
        let path = vs.join(name);
        fs_err::write(&path, &text)?;
        say!("wrote {}", path.display());
    }
    say!(
        "a vendor Worker with fault `{fault}` (NEW) against the reference Worker (BASE): {}",
        diff.summary()
    );
    say!(
        "compare them again: flareproof diff {} {}",
        base.display(),
        new.display()
    );
    if testbench::demo::shows_fault(plan, &diff, fault) {
        return Ok(());
    }
    let expected = testbench::demo::checks_of_fault(plan, fault);
    Err(ExpectedError::Write(std::io::Error::other(format!(
        "the comparison shows nothing: the reference Worker with fault `{fault}` did not newly \
         fail {}",
        match expected.as_slice() {
            [] => "any check (no check of the suite names that fault)".to_owned(),
            ids => ids
                .iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    ))))
}

/// Writes `report` as JSON to `path`, scrubbed of every secret the binary
/// knows (fails closed), and says so.
fn write_report(path: &Path, report: &Report) -> Result<PathBuf, ExpectedError> {
    let mut report = report.clone();
    crate::scrub::redactor().redact_printed(&mut report);
    fs_err::write(path, Format::Json.render(&report))?;
    say!("wrote {}", path.display());
    Ok(path.to_owned())
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
    file.write_all(bytes)
}

/// The test bench's events on stderr; the launcher's lines only with
/// `FLAREPROOF_FIXTURE_LOG` set.
fn events() -> Events {
    let chatter = std::env::var_os("FLAREPROOF_FIXTURE_LOG").is_some();
    Events::new(move |event| {
        if chatter || !event.is_chatter() {
            say!("{event}");
        }
    })
}
