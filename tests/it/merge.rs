//! `flareproof merge`: shards of several targets make a fleet (worst
//! first, every target's checks); shards of one target from several
//! places (`--vantage-label`) keep each place's measurements and fail a
//! check that any place failed; shards that disagree (tool version, suite,
//! profile values), two of one target from the same place, and reports
//! that do not validate are errors naming the shard. Then the reference
//! Worker: two tenants, one of them from two places, conformed for real.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flareproof::model::{Evidence, Measurement, Parameters, ProfileParameters, Report, Status};

use crate::schema::{with_statuses, write};
use crate::support::{FixtureInfo, faults, start};

fn flareproof() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flareproof"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn parameters() -> Parameters {
    Parameters {
        suite_sha256: "ab".repeat(32),
        profile: Some(ProfileParameters {
            window_s: 5,
            revocation_bound_s: 2,
            max_session_age_s: 604_800,
            limits: [("anonymous", Some(5)), ("admin", None)]
                .into_iter()
                .map(|(t, l)| (t.to_owned(), l))
                .collect(),
        }),
    }
}

/// A shard of `base_url` from `label` whose checks `cookie.case-N` have
/// these statuses; check 0 carries a revocation measurement.
fn shard(base_url: &str, label: Option<&str>, statuses: &[Status]) -> Report {
    let mut report = with_statuses(statuses);
    for check in &mut report.checks {
        check.summary = format!("{} as measured", check.status);
        check.evidence = vec![Evidence::Measurement(Measurement {
            name: "time to refusal".into(),
            value: 120.0,
            unit: "ms".into(),
            bound: Some(2000.0),
            vantage: Some(base_url.to_owned()),
            trial: Some(1),
            censored: false,
            resolution: None,
            slowest_observation: None,
        })];
    }
    report.subject.base_url = Some(base_url.to_owned());
    report.subject.vantages.clear();
    report.parameters = Some(parameters());
    report.vantage_label = label.map(str::to_owned);
    report
}

fn merge(shards: &[PathBuf], out: &Path) -> Output {
    flareproof()
        .arg("merge")
        .args(shards)
        .arg("--out")
        .arg(out)
        .args([
            "--format", "markdown", "--format", "sarif", "--format", "html",
        ])
        .output()
        .unwrap()
}

fn merged(out: &Path) -> Report {
    let bytes = std::fs::read(out.join("report.json")).unwrap();
    crate::schema::validate(&bytes);
    serde_json::from_slice(&bytes).unwrap()
}

const A: &str = "https://a.example/";
const B: &str = "https://b.example/";
const C: &str = "https://c.example/";

#[test]
fn tenants_make_a_fleet_worst_first_with_every_targets_checks() {
    use Status::*;
    let dir = tempfile::tempdir().unwrap();
    // The artifacts of a matrix, downloaded into one folder.
    let artifacts = dir.path().join("artifacts");
    write(&artifacts.join("a"), &shard(A, None, &[Pass, Pass, Skip]));
    write(&artifacts.join("b"), &shard(B, None, &[Pass, Fail, Error]));
    write(&artifacts.join("c"), &shard(C, None, &[Error, Pass, Pass]));
    let out = dir.path().join("out");
    let run = merge(&[artifacts], &out);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let report = merged(&out);
    assert_eq!(report.command, "merge");
    let rows: Vec<(&str, &str)> = report
        .fleet
        .iter()
        .map(|r| (r.target.as_str(), r.verdict.as_str()))
        .collect();
    assert_eq!(rows, [(B, "fail"), (C, "error"), (A, "pass")]);
    assert_eq!(report.fleet[0].failing, ["cookie.case-1"]);
    assert_eq!(report.fleet[0].undecided, ["cookie.case-2"]);
    assert_eq!(report.fleet[1].undecided, ["cookie.case-0"]);
    // Every target's checks, each naming its target, in the fleet's order.
    assert_eq!(report.checks.len(), 9);
    let targets: Vec<&str> = report
        .checks
        .iter()
        .map(|c| c.target.as_deref().unwrap())
        .collect();
    assert_eq!(targets, [B, B, B, C, C, C, A, A, A]);
    assert_eq!(report.subject.base_url, None);
    // Measurements stay as each target measured them (no place label).
    let Evidence::Measurement(m) = &report.checks[0].evidence[0] else {
        panic!()
    };
    assert_eq!(m.vantage.as_deref(), Some(B));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let fleet = md.find("## Fleet").expect("a fleet table");
    let (b, a) = (md[fleet..].find("b.example"), md[fleet..].find("a.example"));
    assert!(b < a, "worst first:\n{md}");
    assert!(md.contains("`cookie.case-1`"), "{md}");
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        said.contains(" FAIL https://b.example/: cookie.case-1, cookie.case-2 (error)"),
        "{said}"
    );
    assert!(said.contains("merged 3 shards of 3 targets"), "{said}");
    // The SARIF names each target's result apart.
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.sarif")).unwrap()).unwrap();
    let fingerprints: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["partialFingerprints"]["flareproofCheckId/v1"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        fingerprints.contains(&"cookie.case-1 on https://b.example/"),
        "{fingerprints:?}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"fleet\""));

    // A merged report diffs against another: checks are matched per target.
    write(&dir.path().join("a2"), &shard(A, None, &[Pass, Fail, Skip]));
    let out2 = dir.path().join("out2");
    let run = merge(
        &[
            dir.path().join("artifacts/b"),
            dir.path().join("artifacts/c"),
            dir.path().join("a2"),
        ],
        &out2,
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let diff = flareproof()
        .arg("diff")
        .arg(&out)
        .arg(&out2)
        .output()
        .unwrap();
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
    assert!(
        String::from_utf8_lossy(&diff.stdout).contains("cookie.case-1 on https://a.example/"),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

#[test]
fn one_target_from_several_places_fails_where_any_failed_and_keeps_each_places_measurements() {
    use Status::*;
    let dir = tempfile::tempdir().unwrap();
    let eu = write(
        &dir.path().join("eu"),
        &shard(A, Some("eu-west"), &[Pass, Fail, Pass, Pass]),
    );
    let us = write(
        &dir.path().join("us"),
        &shard(A, Some("us-east"), &[Pass, Pass, Error, Skip]),
    );
    let out = dir.path().join("out");
    let run = merge(&[eu, us], &out);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let report = merged(&out);
    // One target: its own subject, checks without a target, one fleet row.
    assert_eq!(report.subject.base_url.as_deref(), Some(A));
    assert!(report.checks.iter().all(|c| c.target.is_none()));
    assert_eq!(report.fleet.len(), 1);
    assert_eq!(report.fleet[0].vantage_labels, ["eu-west", "us-east"]);
    let statuses: Vec<Status> = report.checks.iter().map(|c| c.status).collect();
    // Failed anywhere: fail. Undecided somewhere, failed nowhere: error.
    // Passed in one place and not selected in the other: pass.
    assert_eq!(statuses, [Pass, Fail, Error, Pass]);
    assert_eq!(
        report.checks[1].summary,
        "fail from eu-west: fail as measured; pass from us-east: pass as measured"
    );
    assert_eq!(report.checks[0].summary, "pass as measured");
    let vantages: Vec<&str> = report.checks[0]
        .evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Measurement(m) => m.vantage.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(
        vantages,
        ["eu-west: https://a.example/", "us-east: https://a.example/"]
    );
    // The revocation chart draws both places.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("eu-west: https://a.example/")
            && html.contains("us-east: https://a.example/"),
        "both places in the chart"
    );
}

#[test]
fn shards_that_disagree_or_share_a_place_are_refused_naming_the_shard() {
    use Status::*;
    let dir = tempfile::tempdir().unwrap();
    let base = write(&dir.path().join("base"), &shard(A, None, &[Pass]));
    let refused = |name: &str, report: &Report, says: &[&str]| {
        let other = write(&dir.path().join(name), report);
        let run = merge(
            &[base.clone(), other],
            &dir.path().join(format!("out-{name}")),
        );
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("{name}/report.json")),
            "{name}: {err}"
        );
        for s in says {
            assert!(err.contains(s), "{name}: {err}");
        }
        assert!(
            !dir.path().join(format!("out-{name}/report.json")).exists(),
            "{name}: nothing written"
        );
    };
    let mut tool = shard(B, None, &[Pass]);
    tool.tool.version = "0.0.1".into();
    refused("tool", &tool, &["the tool version", "flareproof 0.0.1"]);
    let mut suite = shard(B, None, &[Pass]);
    suite.parameters.as_mut().unwrap().suite_sha256 = "cd".repeat(32);
    refused("suite", &suite, &["the suite file (sha256)"]);
    let mut profile = shard(B, None, &[Pass]);
    profile
        .parameters
        .as_mut()
        .unwrap()
        .profile
        .as_mut()
        .unwrap()
        .window_s = 60;
    refused(
        "profile",
        &profile,
        &["the profile's values", "\"window_s\":60"],
    );
    let mut old = shard(B, None, &[Pass]);
    old.parameters = None;
    refused("old", &old, &["does not say which suite file"]);
    // The same target twice without saying from where.
    refused("twice", &shard(A, None, &[Fail]), &["a --vantage-label"]);
    let mut named = shard(A, Some("eu-west"), &[Fail]);
    named.vantage_label = Some("eu-west".into());
    let eu = write(&dir.path().join("eu"), &named);
    let run = merge(
        &[eu.clone(), write(&dir.path().join("eu2"), &named)],
        &dir.path().join("out-eu"),
    );
    assert_eq!(run.status.code(), Some(2));
    assert!(
        stderr(&run).contains("from the same place (`eu-west`)"),
        "{}",
        stderr(&run)
    );
    // A merged report is not a shard.
    let out = dir.path().join("merged");
    let run = merge(std::slice::from_ref(&base), &out);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let run = merge(&[base.clone(), out], &dir.path().join("out-merged"));
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("is itself a merged report"));
    // A report that does not validate: the file and the violation.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("report.json"), r#"{"schema_version": 1}"#).unwrap();
    let run = merge(&[base.clone(), bad], &dir.path().join("out-bad"));
    assert_eq!(run.status.code(), Some(2));
    let err = stderr(&run);
    assert!(
        err.contains("bad/report.json") && err.contains("does not validate"),
        "{err}"
    );
    // A cell that wrote no report: --expect says so instead of merging the
    // rest.
    let other = write(&dir.path().join("other"), &shard(B, None, &[Pass]));
    let run = flareproof()
        .arg("merge")
        .arg(&base)
        .arg(&other)
        .args(["--expect", "3", "--out"])
        .arg(dir.path().join("out-expect"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(
        stderr(&run).contains("3 shards expected (--expect), 2 found"),
        "{}",
        stderr(&run)
    );
    assert!(!dir.path().join("out-expect/report.json").exists());
    let run = flareproof()
        .arg("merge")
        .arg(&base)
        .arg(&other)
        .args(["--expect", "2", "--out"])
        .arg(dir.path().join("out-expect"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    // A folder with no report anywhere under it.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = merge(&[empty], &dir.path().join("out-empty"));
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("no report.json"), "{}", stderr(&run));
}

fn conform(info: &FixtureInfo, dir: &Path, label: &str) -> Output {
    // The reference Worker's profile, with the demo's revocation bound (the
    // default 60 s would be watched out in full by the session checks).
    let profile = format!(
        "[profile]\nwindow_s = {}\nrevocation_bound_s = 5\n[profile.limits]\nanonymous = {}\nfree = {}\npro = {}\nadmin = \"unlimited\"\n",
        info.window_s, info.limit_anonymous, info.limit_free, info.limit_pro
    );
    crate::support::conform_in(info, dir, &profile)
        .arg("--out")
        .arg(dir.join("out"))
        .args(["--only", "cookie.*", "--only", "session.*"])
        .args(["--vantage-label", label, "-q"])
        .output()
        .unwrap()
}

/// Two tenants of the reference Worker (one with a fault), the clean one
/// from two places: a real matrix's shards.
#[test]
fn the_reference_worker_as_two_tenants_and_two_places_merges() {
    let (clean, faulty) = std::thread::scope(|s| {
        let a = s.spawn(|| start(Default::default()));
        let b = s.spawn(|| start(faults(&["cookie.httponly"])));
        (a.join().unwrap(), b.join().unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let shards = dir.path().join("shards");
    for (info, name, label, code) in [
        (clean.info(), "a-eu", "eu-west", 0),
        (clean.info(), "a-us", "us-east", 0),
        (faulty.info(), "b-eu", "eu-west", 1),
    ] {
        let run = conform(info, &shards.join(name), label);
        assert_eq!(run.status.code(), Some(code), "{name}: {}", stderr(&run));
        let report: Report = serde_json::from_slice(
            &std::fs::read(shards.join(name).join("out/report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report.vantage_label.as_deref(), Some(label));
        assert!(report.parameters.as_ref().unwrap().profile.is_some());
    }
    let out = dir.path().join("merged");
    let run = merge(&[shards], &out);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let report = merged(&out);
    let faulty_url = format!("{}/", faulty.info().url.as_str().trim_end_matches('/'));
    let clean_url = format!("{}/", clean.info().url.as_str().trim_end_matches('/'));
    assert_eq!(report.fleet.len(), 2);
    assert_eq!(report.fleet[0].target, faulty_url);
    assert_eq!(report.fleet[0].failing, ["cookie.httponly"]);
    assert_eq!(report.fleet[1].target, clean_url);
    assert_eq!(report.fleet[1].verdict.as_str(), "pass");
    assert_eq!(report.fleet[1].vantage_labels, ["eu-west", "us-east"]);
    // The clean tenant's revocation windows, per place.
    let revoked = report
        .checks
        .iter()
        .find(|c| {
            c.id.as_str() == "session.revoked-on-sign-out"
                && c.target.as_deref() == Some(clean_url.as_str())
        })
        .expect("the clean tenant's revocation check");
    let places: std::collections::BTreeSet<&str> = revoked
        .evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Measurement(m) if m.bound.is_some() => m
                .vantage
                .as_deref()
                .and_then(flareproof::merge::split_label),
            _ => None,
        })
        .map(|(label, _)| label)
        .collect();
    assert_eq!(
        places.into_iter().collect::<Vec<_>>(),
        ["eu-west", "us-east"]
    );
}
