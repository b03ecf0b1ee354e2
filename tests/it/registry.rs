//! A fault id is written once, in the suite: the reference Worker's launcher
//! reads its fault list from there.

use std::collections::BTreeSet;

use flareproof::plan::Plan;

#[test]
fn the_launcher_knows_exactly_the_suites_worker_and_build_faults() {
    let fixtures = crate::support::fixtures_dir();
    crate::support::ensure_installed(&fixtures, &|_| {}).expect("fixture deps install");
    let out = std::process::Command::new("node")
        .args(["launch.mjs", "--faults"])
        .current_dir(&fixtures)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("a JSON object of faults");
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    let expected: BTreeSet<&str> = plan
        .fixture_faults()
        .iter()
        .map(|f| f.id.as_str())
        .collect();
    let listed_ids: BTreeSet<&str> = listed.keys().map(String::as_str).collect();
    assert_eq!(listed_ids, expected);
    for fault in plan.fixture_faults() {
        assert_eq!(listed[&fault.id], fault.effect.as_str(), "{}", fault.id);
    }
}
