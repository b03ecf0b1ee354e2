//! `report.sarif`: SARIF 2.1.0 for GitHub code scanning. A rule per check id
//! (its title, requirement ids, help text and severity, as each result
//! carries them), a result per `fail` (level `error`) or
//! `warn` (level `warning`). Checks that could not decide are tool execution
//! notifications, not results: they say nothing about the target.

use serde_json::{Value, json};

use crate::model::{CheckResult, Report, Severity, Status, Verdict};

use super::text;

/// The SARIF schema URI GitHub and most tools expect.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Where results point when the config path is unknown: a black-box check
/// has no source line, so results are attached to the target config.
pub const DEFAULT_ARTIFACT: &str = "flareproof.toml";

/// SARIF with results located at [`DEFAULT_ARTIFACT`].
pub fn render(report: &Report) -> Vec<u8> {
    render_for(report, DEFAULT_ARTIFACT)
}

/// SARIF with results located at `artifact`, a path relative to the
/// repository root (the target config the run read).
pub fn render_for(report: &Report, artifact: &str) -> Vec<u8> {
    let rules: Vec<Value> = report.checks.iter().map(rule).collect();
    let artifact = artifact.replace('\\', "/");
    let results: Vec<Value> = report
        .checks
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.status, Status::Fail | Status::Warn))
        .map(|(index, c)| result(c, index, &artifact))
        .collect();
    let notifications: Vec<Value> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Error)
        .map(|c| {
            json!({
                "level": "error",
                "message": { "text": format!("{}: could not decide: {}", c.id, c.summary) },
                "descriptor": { "id": c.id.as_str() },
            })
        })
        .collect();
    let mut subject = serde_json::Map::new();
    if let Some(url) = &report.subject.base_url {
        subject.insert("base_url".into(), url.as_str().into());
    }
    if let Some(script) = &report.subject.script {
        subject.insert("script".into(), script.as_str().into());
    }
    let sarif = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": report.tool.name,
                    "version": report.tool.version,
                    "semanticVersion": report.tool.version,
                    "rules": rules,
                }
            },
            "automationDetails": { "id": format!("flareproof/{}/{}/", report.command, report.profile) },
            "invocations": [{
                "executionSuccessful": report.verdict != Verdict::Error,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
            "properties": {
                "profile": report.profile,
                "verdict": report.verdict.as_str(),
                "started_at": report.started_at,
                "subject": subject,
                "counts": report.counts,
            },
        }]
    });
    let mut bytes = serde_json::to_vec_pretty(&sarif).expect("SARIF always serializes");
    bytes.push(b'\n');
    bytes
}

fn rule(check: &CheckResult) -> Value {
    let help = match check.help.trim() {
        "" => check.title.clone(),
        help => help.to_owned(),
    };
    let requirements = check.requirements.join(", ");
    let mut tags = vec![
        "security".to_owned(),
        format!("flareproof/{}", check.id.area()),
    ];
    tags.extend(check.requirements.iter().cloned());
    let (level, severity) = match check.severity {
        Some(Severity::High) => ("error", "8.0"),
        Some(Severity::Medium) => ("warning", "5.5"),
        Some(Severity::Low) => ("note", "3.0"),
        None => ("error", "5.5"),
    };
    json!({
        "id": check.id.as_str(),
        "name": check.id.as_str(),
        "shortDescription": { "text": check.title },
        "fullDescription": { "text": format!("{} (requirements: {requirements})", check.title) },
        "help": {
            "text": format!("{help}\n\nRequirements: {requirements}"),
            "markdown": format!("{help}\n\nRequirements: `{}`", check.requirements.join("`, `")),
        },
        "defaultConfiguration": { "level": level },
        "properties": {
            "tags": tags,
            "security-severity": severity,
            "precision": "very-high",
            "requirements": check.requirements,
        },
    })
}

fn result(check: &CheckResult, index: usize, artifact: &str) -> Value {
    let level = if check.status == Status::Fail {
        "error"
    } else {
        "warning"
    };
    let evidence: Vec<String> = check
        .evidence
        .iter()
        .map(|e| text::cut(&text::evidence(e), text::BODY_LIMIT))
        .collect();
    let mut result = json!({
        "ruleId": check.id.as_str(),
        "ruleIndex": index,
        "level": level,
        "kind": "fail",
        "message": { "text": match (&check.version, &check.target) {
            (Some(v), Some(t)) => format!("{} (version {v}, target {t}): {}", check.title, check.summary),
            (Some(v), None) => format!("{} (version {v}): {}", check.title, check.summary),
            (None, Some(t)) => format!("{} (target {t}): {}", check.title, check.summary),
            (None, None) => format!("{}: {}", check.title, check.summary),
        } },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": artifact },
                "region": { "startLine": 1 },
            },
            "logicalLocations": [{ "name": check.id.as_str(), "kind": "member" }],
        }],
        "partialFingerprints": { "flareproofCheckId/v1": text::label(check) },
        "properties": {
            "status": check.status.as_str(),
            "requirements": check.requirements,
            "evidence": evidence,
        },
    });
    if let Some(version) = &check.version {
        result["properties"]["version"] = json!(version);
    }
    if let Some(target) = &check.target {
        result["properties"]["target"] = json!(target);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CheckId, Subject};

    #[test]
    fn rules_carry_the_results_help_and_severity() {
        let check = CheckResult {
            id: CheckId::new("cookie.httponly").unwrap(),
            title: "Session cookie is HttpOnly".into(),
            status: Status::Fail,
            summary: "no HttpOnly".into(),
            severity: Some(Severity::High),
            level: Some(crate::model::Level::Must),
            help: "  Set HttpOnly on the session cookie.\n".into(),
            requirements: vec!["ASVS-3.4.2".into()],
            evidence: vec![],
            duration_ms: 1,
            version: None,
            target: None,
        };
        let report = Report::new(
            "conform",
            "flarelink-auth/v1",
            Subject {
                base_url: None,
                vantages: vec![],
                script: None,
            },
            "t".into(),
            1,
            vec![check],
        );
        let v: Value = serde_json::from_slice(&render_for(&report, "ci/target.toml")).unwrap();
        let rule = &v["runs"][0]["tool"]["driver"]["rules"][0];
        assert!(
            rule["help"]["text"]
                .as_str()
                .unwrap()
                .starts_with("Set HttpOnly on the session cookie.")
        );
        assert_eq!(rule["properties"]["security-severity"], "8.0");
        let result = &v["runs"][0]["results"][0];
        assert_eq!(result["level"], "error");
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "ci/target.toml"
        );
    }
}
