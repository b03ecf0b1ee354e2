//! `demo`: everything against the reference Worker on this machine; every
//! format into `DIR/demo`.

use flareproof::attestation;
use flareproof::report::Format;
use flareproof::testbench::{self, Events};

use crate::cli::DemoArgs;
use crate::error::ExpectedError;
use crate::scrub::say;
use crate::summary::Finish;

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
    };
    let (code, report) = finish.report(run.report)?;
    let statement = attestation::audit_statement(
        &report,
        &run.plan,
        Some(&run.attestation),
        known.as_ref().map(|k| k.entries()).unwrap_or_default(),
    );
    finish.attestation(&attestation::render(&statement))?;
    say!(
        "open {} in a browser; {} is a CI job summary",
        dir.join(Format::Html.file_name()).display(),
        dir.join(Format::Markdown.file_name()).display()
    );
    Ok(code)
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
