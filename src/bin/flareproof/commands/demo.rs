//! `demo`: everything against the reference Worker on this machine; every
//! format into `DIR/demo`.

use flareproof::attestation::{self, dsse::SigningKey};
use flareproof::report::Format;
use flareproof::testbench::{self, Events};

use crate::cli::DemoArgs;
use crate::error::ExpectedError;
use crate::scrub::say;
use crate::summary::{Finish, Vsa};

pub async fn run(args: &DemoArgs) -> Result<u8, ExpectedError> {
    let known = super::known_failures(&args.run)?;
    say!("starting the reference auth Worker (workerd via Miniflare)…");
    let run = testbench::demo::run(events())
        .await
        .map_err(ExpectedError::Demo)?;
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
    finish.attestations(&attestation::render(&statement), vsa, Some(&key))?;
    say!(
        "check the signature: flareproof attestation verify {} --key {}",
        dir.join("attestation.dsse.json").display(),
        public.display()
    );
    say!(
        "open {} in a browser; {} is a CI job summary",
        dir.join(Format::Html.file_name()).display(),
        dir.join(Format::Markdown.file_name()).display()
    );
    Ok(code)
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
