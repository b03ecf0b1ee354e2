//! The binary: `list`, `conform` exit codes and errors, `demo`.

use std::process::Command;

use flareproof::plan::Plan;

use crate::support::{FixtureInfo, FixtureOptions, faults, start};

fn flareproof() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flareproof"))
}

#[test]
fn list_prints_every_check_id_with_its_requirement_ids() {
    let out = flareproof().arg("list").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let plan = Plan::builtin("flarelink-auth/v1").unwrap();
    assert_eq!(plan.checks.len(), 33);
    for check in &plan.checks {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(check.id.as_str()))
            .unwrap_or_else(|| panic!("{} is not listed", check.id));
        for requirement in &check.requirements {
            assert!(
                line.contains(requirement.as_str()),
                "{line} lacks {requirement}"
            );
        }
    }
}

fn conform_command(info: &FixtureInfo, dir: &std::path::Path) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("flareproof.toml");
    std::fs::write(&config, crate::support::conform_config(info, "FP_TEST")).unwrap();
    let mut cmd = flareproof();
    cmd.arg("conform")
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(dir.join("out"))
        .args(["--only", "cookie.*"]);
    crate::support::conform_env(&mut cmd, info, "FP_TEST");
    cmd
}

#[test]
fn conform_exits_0_on_the_reference_worker_and_1_on_a_fault_naming_the_check() {
    let (healthy, faulty) = std::thread::scope(|s| {
        let a = s.spawn(|| start(FixtureOptions::default()));
        let b = s.spawn(|| start(faults(&["cookie.samesite"])));
        (a.join().unwrap(), b.join().unwrap())
    });
    let dir = tempfile::tempdir().unwrap();

    let ok = conform_command(healthy.info(), &dir.path().join("ok"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = conform_command(faulty.info(), &dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(stdout.contains("FAIL cookie.samesite"), "{stdout}");
    let report = std::fs::read(dir.path().join("bad/out/report.json")).unwrap();
    crate::schema::validate(&report);
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["verdict"], "fail");
    let samesite = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cookie.samesite")
        .unwrap();
    assert_eq!(samesite["status"], "fail");
    assert!(!samesite["evidence"].as_array().unwrap().is_empty());
}

#[test]
fn config_errors_exit_2_and_name_what_is_wrong_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flareproof.toml");
    std::fs::write(
        &config,
        "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://a.test\"\n\
         [accounts.free]\nemail = \"f@a.test\"\npassword_env = \"FP_UNSET_PASSWORD_VAR\"\n",
    )
    .unwrap();
    let out = flareproof()
        .args(["conform", "--config"])
        .arg(&config)
        .env_remove("FP_UNSET_PASSWORD_VAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FP_UNSET_PASSWORD_VAR") && stderr.contains("hint:"),
        "{stderr}"
    );

    // A selection that leaves nothing to check is refused, not a pass.
    std::fs::write(
        &config,
        "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://a.test\"\n",
    )
    .unwrap();
    let out = flareproof()
        .args(["conform", "--only", "cookie.no-such-check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("leave no check to run"), "{stderr}");

    std::fs::write(&config, "[target]\nbase_url = 7\n").unwrap();
    let out = flareproof()
        .args(["conform", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("parse config") && stderr.contains("base_url"),
        "{stderr}"
    );
}

#[test]
fn demo_exits_0_and_writes_a_schema_valid_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = flareproof()
        .arg("demo")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = std::fs::read(dir.path().join("demo/report.json")).unwrap();
    crate::schema::validate(&report);
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["command"], "demo");
}
