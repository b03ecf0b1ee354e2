//! `summary.md`: a summary fit for `$GITHUB_STEP_SUMMARY` or a pull-request
//! comment: the verdict, a table of areas, the failures first with their
//! evidence, verify's per-module digest table, then every check.

use std::fmt::Write as _;

use crate::model::{CheckResult, Evidence, Report, Status, Verdict};

use super::text;

/// GitHub caps a job summary at 1 MiB; evidence past this many bytes per
/// check is cut (the JSON report has it whole).
const EVIDENCE_LIMIT: usize = 16 * 1024;
/// Past this many bytes the failures are only counted (a large fleet's
/// report has thousands); what is left of [`TOTAL_LIMIT`] is for the table
/// of every check.
const FAILURES_LIMIT: usize = 512 * 1024;
/// Past this many bytes the table of every check is only counted, so the
/// summary stays under GitHub's 1 MiB.
const TOTAL_LIMIT: usize = 960 * 1024;

pub fn icon(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Warn => "⚠️",
        Status::Error => "⛔",
        Status::Skip => "⏭️",
    }
}

/// Escapes text for a table cell or a line of prose.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '*' | '_' | '`' | '<' | '>' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Whether `out` is past `limit`; if so, says that the `left` remaining
/// `what` are not shown and which files (`kept`) have them.
fn over(out: &mut String, limit: usize, left: usize, what: &str, kept: &str) -> bool {
    if out.len() <= limit {
        return false;
    }
    let _ = writeln!(
        out,
        "\n… and {left} more {what}, not shown here (GitHub caps a job summary at 1 MiB): \
         {kept} every one.\n"
    );
    true
}

/// A fenced code block whose fence no line of `body` can close.
fn fenced(body: &str, lang: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n", body.trim_end())
}

pub fn render(report: &Report) -> Vec<u8> {
    let mut out = String::new();
    let verdict = match report.verdict {
        Verdict::Pass => "✅ pass",
        Verdict::Fail => "❌ fail",
        Verdict::Error => "⛔ error (could not decide)",
    };
    let _ = writeln!(out, "# flareproof {}: {verdict}\n", cell(&report.command));
    let mut facts = vec![
        format!("profile `{}`", report.profile),
        format!("started {}", report.started_at),
        format!("{:.1} s", report.duration_ms as f64 / 1000.0),
        format!("{} {}", report.tool.name, report.tool.version),
    ];
    if let Some(url) = &report.subject.base_url {
        facts.insert(0, format!("target `{url}`"));
    }
    if let Some(script) = &report.subject.script {
        facts.insert(0, format!("script `{script}`"));
    }
    if let Some(label) = &report.vantage_label {
        facts.insert(
            1.min(facts.len()),
            format!("from `{}`", label.replace('`', "'")),
        );
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));

    let _ = writeln!(
        out,
        "| area | ✅ pass | ❌ fail | ⚠️ warn | ⛔ error | ⏭️ skip |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (area, checks) in text::areas(&report.checks) {
        let n = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(area),
            n(Status::Pass),
            n(Status::Fail),
            n(Status::Warn),
            n(Status::Error),
            n(Status::Skip)
        );
    }
    let c = report.counts;
    let _ = writeln!(
        out,
        "| **all** | **{}** | **{}** | **{}** | **{}** | **{}** |\n",
        c.pass, c.fail, c.warn, c.error, c.skip
    );

    if !report.fleet.is_empty() {
        fleet(&mut out, report);
    }

    let order = [Status::Fail, Status::Error, Status::Warn];
    let notable: Vec<&CheckResult> = order
        .iter()
        .flat_map(|s| report.checks.iter().filter(move |c| c.status == *s))
        .collect();
    if !notable.is_empty() {
        let _ = writeln!(out, "## Failures, errors and warnings\n");
        let total = notable.len();
        for (i, check) in notable.into_iter().enumerate() {
            if over(
                &mut out,
                FAILURES_LIMIT,
                total - i,
                "failures, errors and warnings",
                "`report.json` and `report.html` have",
            ) {
                break;
            }
            failure(&mut out, check);
        }
    }

    let digests: Vec<_> = report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .filter_map(|e| match e {
            Evidence::Digest(d) => Some(d),
            _ => None,
        })
        .collect();
    if !digests.is_empty() {
        let _ = writeln!(out, "## Modules (verify)\n");
        let _ = writeln!(
            out,
            "| module | rebuilt sha256 | deployed sha256 | rebuilt size | deployed size | |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---|");
        let mut seen = Vec::new();
        for d in digests {
            let key = (&d.name, &d.rebuilt_sha256, &d.deployed_sha256);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let size = |s: Option<u64>| s.map_or_else(|| "—".to_owned(), |s| s.to_string());
            let same = match text::digest_matches(d) {
                Some(true) => "✅ match",
                Some(false) => "❌ differ",
                None => "⛔ missing",
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | `{}` | {} | {} | {same} |",
                d.name.replace('`', "'"),
                text::short_digest(d.rebuilt_sha256.as_deref()),
                text::short_digest(d.deployed_sha256.as_deref()),
                size(d.rebuilt_size),
                size(d.deployed_size),
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## All checks\n");
    let _ = writeln!(out, "| | check | title | summary | requirements |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (i, check) in report.checks.iter().enumerate() {
        if over(
            &mut out,
            TOTAL_LIMIT,
            report.checks.len() - i,
            "checks",
            "`report.json` has",
        ) {
            break;
        }
        let _ = writeln!(
            out,
            "| {} {} | `{}` | {} | {} | {} |",
            icon(check.status),
            check.status,
            cell(&text::label(check)),
            cell(&check.title),
            cell(&check.summary),
            cell(&check.requirements.join(", "))
        );
    }
    let _ = writeln!(
        out,
        "\n<sub>report.json is the source of truth; every exchange in it has its secrets redacted.</sub>"
    );
    out.into_bytes()
}

fn failure(out: &mut String, check: &CheckResult) {
    let _ = writeln!(
        out,
        "### {} `{}` {}\n",
        icon(check.status),
        cell(&text::label(check)),
        cell(&check.title)
    );
    let _ = writeln!(out, "**{}**: {}\n", check.status, cell(&check.summary));
    if !check.requirements.is_empty() {
        let _ = writeln!(
            out,
            "Requirements: {}\n",
            check
                .requirements
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if check.evidence.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<details><summary>Evidence ({} items)</summary>\n",
        check.evidence.len()
    );
    let mut spent = 0;
    for (i, e) in check.evidence.iter().enumerate() {
        if spent > EVIDENCE_LIMIT {
            let _ = writeln!(
                out,
                "{} more items in report.json\n",
                check.evidence.len() - i
            );
            break;
        }
        let block = match e {
            Evidence::Exchange(_) => fenced(&text::evidence(e), "http"),
            Evidence::Diff(d) => format!(
                "diff of `{}` (first difference at byte {}):\n\n{}",
                d.subject.replace('`', "'"),
                d.offset,
                fenced(&d.unified, "diff")
            ),
            _ => format!("- {}\n", cell(&text::evidence(e))),
        };
        spent += block.len();
        out.push_str(&block);
        out.push('\n');
    }
    let _ = writeln!(out, "</details>\n");
}

/// A merged report's targets, worst first.
fn fleet(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Fleet\n");
    let _ = writeln!(
        out,
        "| target | verdict | failing | could not decide | from |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (i, row) in report.fleet.iter().enumerate() {
        if over(
            out,
            FAILURES_LIMIT,
            report.fleet.len() - i,
            "targets",
            "`report.json` has",
        ) {
            break;
        }
        let ids = |ids: &[String]| {
            if ids.is_empty() {
                "—".to_owned()
            } else {
                ids.iter()
                    .map(|id| format!("`{}`", id.replace('`', "'")))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let from = if row.vantage_labels.is_empty() {
            "—".to_owned()
        } else {
            cell(&row.vantage_labels.join(", "))
        };
        let _ = writeln!(
            out,
            "| {} | {} {} | {} | {} | {from} |",
            cell(&row.target),
            icon(row.verdict.status()),
            row.verdict.as_str(),
            ids(&row.failing),
            ids(&row.undecided),
        );
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outgrow_backticks_in_the_body() {
        assert!(fenced("a ``` b", "").starts_with("````\n"));
        assert!(fenced("plain", "http").starts_with("```http\n"));
    }

    #[test]
    fn a_huge_report_stays_under_githubs_one_mib_and_says_what_it_left_out() {
        use crate::model::{CheckId, Subject};
        let checks: Vec<CheckResult> = (0..20_000)
            .map(|i| CheckResult {
                id: CheckId::new("cookie.httponly").unwrap(),
                title: "the session cookie is HttpOnly".into(),
                status: Status::Fail,
                summary: "no HttpOnly".into(),
                severity: None,
                level: None,
                help: String::new(),
                requirements: vec!["flarelink-auth/v1:cookie".into()],
                evidence: vec![Evidence::note("x".repeat(20_000))],
                duration_ms: 0,
                version: None,
                target: Some(format!("https://tenant-{i}.example/")),
            })
            .collect();
        let mut report = Report::new(
            "merge",
            "flarelink-auth/v1",
            Subject {
                base_url: None,
                vantages: vec![],
                script: None,
            },
            "2026-12-01T00:00:00Z".into(),
            1,
            checks,
        );
        report.fleet = (0..20_000)
            .map(|i| crate::model::FleetRow {
                target: format!("https://tenant-{i}.example/"),
                verdict: Verdict::Fail,
                counts: Default::default(),
                failing: vec!["cookie.httponly".into()],
                undecided: vec![],
                vantage_labels: vec!["eu-west".into()],
                shards: vec![],
            })
            .collect();
        let md = String::from_utf8(render(&report)).unwrap();
        assert!(md.len() < 1024 * 1024, "{} bytes", md.len());
        assert!(md.contains("more targets, not shown here"));
        assert!(md.contains("more failures, errors and warnings, not shown here"));
        assert!(md.contains("more checks, not shown here"));
        assert!(md.ends_with("</sub>\n"));
    }

    #[test]
    fn cells_escape_pipes_and_newlines() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
