//! `junit.xml`: a `<testsuite>` per area, a `<testcase>` per check id, for a
//! CI system's test tab. `fail` is a `<failure>`, `error` an `<error>`, `skip`
//! a `<skipped>`; the evidence is the element's body. A `warn` passes, with
//! its summary and evidence in `<system-out>`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use crate::model::{Report, Status};

use super::text;

/// JUnit XML, UTF-8, with a trailing newline.
pub fn render(report: &Report) -> Vec<u8> {
    let mut junit = quick_junit::Report::new(format!("flareproof {}", report.command));
    junit.set_time(Duration::from_millis(report.duration_ms));
    for (area, checks) in text::areas(&report.checks) {
        let mut suite = TestSuite::new(area);
        suite.add_property(Property::new("profile", report.profile.as_str()));
        suite.add_property(Property::new("verdict", report.verdict.as_str()));
        suite.set_time(Duration::from_millis(
            checks.iter().map(|c| c.duration_ms).sum(),
        ));
        for check in checks {
            let body = text::body(check);
            let status = match check.status {
                Status::Pass | Status::Warn => TestCaseStatus::success(),
                Status::Fail | Status::Error => {
                    let kind = if check.status == Status::Fail {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut status = TestCaseStatus::non_success(kind);
                    status
                        .set_message(check.summary.as_str())
                        .set_type(check.status.as_str())
                        .set_description(body.as_str());
                    status
                }
                Status::Skip => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(check.summary.as_str());
                    status
                }
            };
            let mut case = TestCase::new(text::label(check), status);
            case.set_classname(format!("{}.{area}", report.profile))
                .set_time(Duration::from_millis(check.duration_ms));
            case.add_property(Property::new("title", check.title.as_str()));
            if let Some(version) = &check.version {
                case.add_property(Property::new("version", version.as_str()));
            }
            for requirement in &check.requirements {
                case.add_property(Property::new("requirement", requirement.as_str()));
            }
            if check.status == Status::Warn {
                case.set_system_out(body);
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    let mut bytes = junit
        .to_string()
        .expect("a JUnit report always serializes")
        .into_bytes();
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    bytes
}
