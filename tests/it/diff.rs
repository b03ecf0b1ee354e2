//! `flareproof diff BASE NEW` and `--baseline`: a regression exits 1 with
//! the new failure first, an improvement 0; measurements side by side
//! (vantages matched by role, not URL); reports of different suites, and
//! a report that does not validate, are errors naming the files. Then the
//! reference Worker run clean and with one fault, compared by `diff` and
//! by `conform --baseline`.

use std::path::Path;
use std::process::{Command, Output};

use flareproof::diff::{self, Change};
use flareproof::model::{CheckId, Evidence, Measurement, Report, Status, Timeline, TimelinePoint};
use flareproof::report::json;

use crate::schema::{every_status_report, with_statuses, write};
use crate::support::{FixtureInfo, faults, start};

fn flareproof() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flareproof"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_regression_exits_1_with_the_new_failure_first() {
    use Status::*;
    let dir = tempfile::tempdir().unwrap();
    let base = write(
        &dir.path().join("base"),
        &with_statuses(&[Pass, Fail, Pass, Pass]),
    );
    let new = write(
        &dir.path().join("new"),
        &with_statuses(&[Pass, Pass, Fail, Error]),
    );
    let out = flareproof()
        .arg("diff")
        .arg(&base)
        .arg(new.join("report.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let md = stdout(&out);
    let at = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in the diff:\n{md}"))
    };
    assert!(md.starts_with("# flareproof diff: ❌ regression"), "{md}");
    assert!(at("## New failures (1)") < at("## No longer passing (1)"));
    assert!(at("## No longer passing (1)") < at("## Other changes (1)"));
    assert!(at("## Other changes (1)") < at("1 unchanged check"));
    // Each section lists its check, with both statuses.
    assert!(at("## New failures") < at("| `cookie.case-2`"));
    assert!(at("| `cookie.case-2`") < at("## No longer passing"));
    assert!(
        md.contains("| ✅ pass | ❌ fail | fail in this run |"),
        "{md}"
    );
    assert!(md.contains("| ✅ pass | ⛔ error |"), "{md}");
    assert!(md.contains("| ❌ fail | ✅ pass |"), "{md}");
    assert!(
        stderr(&out).contains("regression: 1 new failure (cookie.case-2)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_improvement_exits_0_and_writes_markdown_and_html() {
    use Status::*;
    let dir = tempfile::tempdir().unwrap();
    let base = write(
        &dir.path().join("base"),
        &with_statuses(&[Pass, Fail, Fail]),
    );
    let new = write(&dir.path().join("new"), &with_statuses(&[Pass, Pass, Fail]));
    let out_dir = dir.path().join("diff");
    let out = flareproof()
        .arg("diff")
        .arg(&base)
        .arg(&new)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let md = std::fs::read_to_string(out_dir.join("diff.md")).unwrap();
    assert!(
        md.starts_with("# flareproof diff: ✅ no regression"),
        "{md}"
    );
    assert!(md.contains("## Other changes (1)") && !md.contains("## New failures"));
    assert!(md.contains("2 unchanged checks"), "{md}");
    let page = std::fs::read_to_string(out_dir.join("diff.html")).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    for banned in ["<script", "<link", "src=", "url("] {
        assert!(
            !page.contains(banned),
            "the page must load nothing: {banned}"
        );
    }
    assert!(page.contains("NO REGRESSION"));
    // A check failing in both runs is no regression, and not hidden either.
    assert!(stderr(&out).contains("no regression"), "{}", stderr(&out));
}

#[test]
fn a_check_base_passed_that_new_could_not_decide_or_run_exits_2() {
    use Status::*;
    let dir = tempfile::tempdir().unwrap();
    let base = write(
        &dir.path().join("base"),
        &with_statuses(&[Pass, Pass, Fail]),
    );
    for (name, new) in [
        ("error", with_statuses(&[Pass, Error, Fail])),
        ("not run", with_statuses(&[Pass])),
    ] {
        let new = write(&dir.path().join(name), &new);
        let out = flareproof()
            .arg("diff")
            .arg(&base)
            .arg(&new)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let md = stdout(&out);
        assert!(
            md.starts_with("# flareproof diff: ⛔ could not tell"),
            "{name}: {md}"
        );
        assert!(md.contains("## No longer passing (1)"), "{name}: {md}");
        assert!(
            stderr(&out).contains("1 check BASE passed is undecided or not run in NEW"),
            "{name}: {}",
            stderr(&out)
        );
    }
    // Skipped on purpose (a known failure) is no longer passing, not
    // undecided.
    let skipped = write(
        &dir.path().join("skip"),
        &with_statuses(&[Pass, Skip, Fail]),
    );
    let out = flareproof()
        .arg("diff")
        .arg(&base)
        .arg(&skipped)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Revocation trials at two vantages and a rate-limit bucket, at `port`
/// and `port + 1`, with times `base_ms + 40 * trial` (+150 at the second
/// vantage) and `allowed` requests allowed before the 429s.
fn measured(port: u16, base_ms: u32, allowed: usize) -> Report {
    let mut report = with_statuses(&[Status::Pass, Status::Pass]);
    report.subject.base_url = Some(format!("http://127.0.0.1:{port}/"));
    report.subject.vantages = vec![format!("http://127.0.0.1:{}/", port + 1)];
    report.checks[0].id = CheckId::new("session.revoked-on-sign-out").unwrap();
    report.checks[0].evidence = (1..=3)
        .flat_map(|trial| {
            (0..2).map(move |v| {
                Evidence::Measurement(Measurement {
                    name: "time to refusal after sign-out (token 1)".into(),
                    value: (base_ms + 150 * v + 40 * trial) as f64,
                    unit: "ms".into(),
                    bound: Some(2000.0),
                    vantage: Some(format!("http://127.0.0.1:{}/", port + v as u16)),
                    trial: Some(trial),
                    censored: false,
                    resolution: Some(100.0),
                    slowest_observation: None,
                })
            })
        })
        .collect();
    report.checks[1].id = CheckId::new("ratelimit.free").unwrap();
    report.checks[1].evidence = vec![Evidence::Timeline(Timeline {
        bucket: "free".into(),
        limit: Some(8),
        window_s: 3,
        points: (0..12)
            .map(|i| TimelinePoint {
                at_ms: 100 + i as u64 * 150,
                status: if i < allowed { 200 } else { 429 },
            })
            .collect(),
        window_starts_ms: vec![100],
    })];
    report
}

#[test]
fn a_changed_measurement_is_shown_side_by_side_per_vantage() {
    let base = diff::parse("base.json", &json::render(&measured(8787, 200, 8))).unwrap();
    // Another host and port, slower revocation, a bucket that allows more.
    let new = diff::parse("new.json", &json::render(&measured(9787, 500, 10))).unwrap();
    let diff = diff::compare(base, new).unwrap();
    assert!(!diff.regressed());
    assert_eq!(diff.verdict(), flareproof::model::Verdict::Pass);
    let session = &diff.rows[0];
    assert_eq!(session.change, Change::Unchanged);
    assert!(session.measurements_changed());
    let vantages: Vec<&str> = session
        .measurements
        .iter()
        .map(|m| m.vantage.as_deref().unwrap())
        .collect();
    assert_eq!(
        vantages,
        ["base_url", "vantage 2"],
        "matched by role, not URL"
    );
    let first = &session.measurements[0];
    let (b, n) = (first.base.as_ref().unwrap(), first.new.as_ref().unwrap());
    assert_eq!((b.p50, b.max, n.p50, n.max), (280.0, 320.0, 580.0, 620.0));
    assert_eq!(first.delta_p50(), Some(300.0));

    let md = diff::markdown(&diff);
    assert!(
        md.contains(
            "| `session.revoked-on-sign-out` | base\\_url | 280 ms | 320 ms | 580 ms | 620 ms | +300 ms 🔺 | 2000 |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| `session.revoked-on-sign-out` | vantage 2 | 430 ms | 470 ms | 730 ms | 770 ms | +300 ms 🔺 |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| `ratelimit.free` | free | 8 / 3 s | 8 of 12 | 4 | 8 | 8 / 3 s | 10 of 12 | 2 | 10 | 🔺 changed |"
        ),
        "{md}"
    );
    assert!(
        diff.summary()
            .contains("3 measurements and 0 module digests changed")
    );

    // The HTML draws each run's charts, side by side.
    let page = diff::html(&diff);
    assert_eq!(page.matches("<div class=\"pair\">").count(), 2);
    assert_eq!(page.matches("<svg").count(), 4);
    assert!(page.contains("<tr class=\"changed\">"));

    // Unchanged measurements are not marked.
    let same = diff::compare(
        diff::parse("a", &json::render(&measured(8787, 200, 8))).unwrap(),
        diff::parse("b", &json::render(&measured(8787, 200, 8))).unwrap(),
    )
    .unwrap();
    assert!(!diff::markdown(&same).contains('🔺'));
}

#[test]
fn a_changed_module_digest_is_shown_with_both_runs() {
    let base = every_status_report();
    let mut new = every_status_report();
    for check in &mut new.checks {
        for e in &mut check.evidence {
            if let Evidence::Digest(d) = e {
                d.deployed_sha256 = Some("a".repeat(64));
            }
        }
    }
    let diff = diff::compare(
        diff::parse("base", &json::render(&base)).unwrap(),
        diff::parse("new", &json::render(&new)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        diff.modules.len(),
        1,
        "one module, however many checks show it"
    );
    assert!(diff.modules[0].changed());
    let md = diff::markdown(&diff);
    assert!(
        md.contains(
            "| `worker.js` | `aaaaaaaaaaaa` | `bbbbbbbbbbbb` | differ | `aaaaaaaaaaaa` | `aaaaaaaaaaaa` | match | 🔺 changed |"
        ),
        "{md}"
    );
    assert!(
        diff.summary()
            .ends_with("0 measurements and 1 module digest changed")
    );
}

#[test]
fn reports_of_different_suites_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(&dir.path().join("vendor"), &every_status_report());
    let mut other = every_status_report();
    other.profile = "acme-auth/v2".into();
    let new = write(&dir.path().join("reference"), &other);
    let out = flareproof()
        .arg("diff")
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("different suites"), "{err}");
    for needle in [
        "vendor/report.json",
        "reference/report.json",
        "flarelink-auth/v1",
        "acme-auth/v2",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    assert!(stdout(&out).is_empty());
}

#[test]
fn an_invalid_report_is_an_error_naming_the_file_and_the_violation() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir.path().join("good"), &every_status_report());
    let mut bad: serde_json::Value =
        serde_json::from_slice(&json::render(&every_status_report())).unwrap();
    bad["checks"][2]["status"] = "passed-ish".into();
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = flareproof()
        .arg("diff")
        .arg(&good)
        .arg(&bad_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.json"), "{err}");
    assert!(
        err.contains("does not validate against reports/report.schema.json"),
        "{err}"
    );
    assert!(
        err.contains("passed-ish") && err.contains("/checks/2/status"),
        "{err}"
    );

    // Not JSON, and a folder without a report: each names its file.
    std::fs::write(&bad_path, "{ not json").unwrap();
    let err = diff::load(&bad_path).unwrap_err().to_string();
    assert!(
        err.contains("bad.json") && err.contains("not JSON"),
        "{err}"
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = flareproof()
        .arg("diff")
        .arg(&empty)
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("empty/report.json"),
        "{}",
        stderr(&out)
    );
}

fn conform(info: &FixtureInfo, dir: &Path, baseline: Option<&Path>) -> Output {
    conform_to(info, dir, &dir.join("out"), baseline)
}

fn conform_to(info: &FixtureInfo, dir: &Path, out: &Path, baseline: Option<&Path>) -> Output {
    let mut cmd = crate::support::conform_in(info, dir, "");
    cmd.arg("--out")
        .arg(out)
        .args(["--only", "cookie.*", "--format", "har"]);
    if let Some(baseline) = baseline {
        cmd.arg("--baseline").arg(baseline);
    }
    cmd.output().unwrap()
}

/// The vendor-vs-reference comparison: the reference Worker once clean and
/// once with one fault; `diff` of the two reports and `conform --baseline`.
#[test]
fn the_reference_worker_clean_and_with_one_fault_diff_as_a_regression() {
    let (clean, faulty) = std::thread::scope(|s| {
        let a = s.spawn(|| start(Default::default()));
        let b = s.spawn(|| start(faults(&["cookie.httponly"])));
        (a.join().unwrap(), b.join().unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let clean_dir = dir.path().join("clean");
    let run = conform(clean.info(), &clean_dir, None);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let har: serde_json::Value =
        serde_json::from_slice(&std::fs::read(clean_dir.join("out/exchanges.har")).unwrap())
            .unwrap();
    // A real run's HAR: valid, one entry per exchange report.json records.
    let report: Report =
        serde_json::from_slice(&std::fs::read(clean_dir.join("out/report.json")).unwrap()).unwrap();
    let mut recorded: Vec<&flareproof::model::Exchange> = Vec::new();
    for e in report.checks.iter().flat_map(|c| &c.evidence) {
        if let Evidence::Exchange(x) = e
            && !recorded.contains(&x)
        {
            recorded.push(x);
        }
    }
    assert!(!recorded.is_empty());
    assert_eq!(
        har["log"]["entries"].as_array().unwrap().len(),
        recorded.len()
    );
    assert!(crate::har::validator().is_valid(&har));

    // A baseline that is not a report: the run's report is still written,
    // and a run that passed exits 2 naming the file.
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "[]").unwrap();
    let again = conform(clean.info(), &dir.path().join("again"), Some(&bogus));
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("bogus.json"), "{}", stderr(&again));
    assert!(dir.path().join("again/out/report.json").exists());

    let faulty_dir = dir.path().join("faulty");
    let run = conform(faulty.info(), &faulty_dir, Some(&clean_dir.join("out")));
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let err = stderr(&run);
    assert!(
        err.contains("regression: 1 new failure (cookie.httponly)"),
        "the diff's summary is printed: {err}"
    );
    let md = std::fs::read_to_string(faulty_dir.join("out/diff.md")).unwrap();
    assert!(
        md.contains("## New failures (1)") && md.contains("`cookie.httponly`"),
        "{md}"
    );
    assert!(faulty_dir.join("out/diff.html").exists());

    // With the report on stdout, the diff is its summary on stderr only.
    let piped = conform_to(
        faulty.info(),
        &dir.path().join("piped"),
        Path::new("-"),
        Some(&clean_dir.join("out")),
    );
    assert_eq!(piped.status.code(), Some(1), "{}", stderr(&piped));
    let _: serde_json::Value = serde_json::from_slice(&piped.stdout)
        .unwrap_or_else(|e| panic!("stdout is the HAR alone: {e}\n{}", stdout(&piped)));
    assert!(stderr(&piped).contains("regression: 1 new failure (cookie.httponly)"));

    // The same two reports through `diff`: exit 1; the other way round, 0.
    let forward = flareproof()
        .arg("diff")
        .arg(clean_dir.join("out"))
        .arg(faulty_dir.join("out"))
        .output()
        .unwrap();
    assert_eq!(forward.status.code(), Some(1), "{}", stderr(&forward));
    let backward = flareproof()
        .arg("diff")
        .arg(faulty_dir.join("out"))
        .arg(clean_dir.join("out"))
        .output()
        .unwrap();
    assert_eq!(backward.status.code(), Some(0), "{}", stderr(&backward));
    assert!(stdout(&backward).contains("## Other changes (1)"));
}
