//! The page: head and style, verdict header, navigation, the table per
//! area, the failures with their evidence, verify's modules and diffs.

use std::fmt::Write as _;

use crate::model::{CheckResult, Evidence, ModuleDigest, Report, Status, TextDiff, Verdict};
use crate::report::text;

use super::charts::{revocation_charts, timeline_charts};
use super::svg::esc;

/// An id usable as a fragment: check ids are already `[a-z0-9.-]`; a
/// pinned result's version (from the API) keeps only its ASCII letters,
/// digits and `-`, and a merged report's target has every other character
/// as `-`, so each version's and each target's result has an anchor of its
/// own.
fn anchor(check: &CheckResult) -> String {
    let mut anchor = format!("check-{}", check.id.as_str().replace('.', "-"));
    if let Some(v) = &check.version {
        anchor.push_str("--");
        anchor.extend(v.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-'));
    }
    if let Some(t) = &check.target {
        anchor.push_str("--on-");
        anchor.extend(
            t.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
        );
    }
    anchor
}

pub(crate) fn badge(status: Status) -> String {
    format!("<span class=\"badge {status}\">{status}</span>")
}

pub(crate) const STYLE: &str = r#"
:root{--pass:#1a7f37;--fail:#cf222e;--warn:#9a6700;--error:#8250df;--skip:#6e7781;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);margin:0;background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:28px;margin:0}
h2{font-size:20px;border-bottom:1px solid var(--line);padding-bottom:4px;margin-top:32px}
h3{font-size:16px;margin:20px 0 6px}
code,pre{font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
header.verdict{border-radius:8px;padding:16px 20px;color:#fff}
header.verdict p{margin:4px 0 0;opacity:.95}
header.pass{background:var(--pass)}header.fail{background:var(--fail)}header.error{background:var(--error)}
.counts{display:flex;gap:12px;margin:16px 0;flex-wrap:wrap}
.count{flex:1;min-width:110px;border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.count b{display:block;font-size:24px}
.count.pass b{color:var(--pass)}.count.fail b{color:var(--fail)}.count.warn b{color:var(--warn)}.count.error b{color:var(--error)}.count.skip b{color:var(--skip)}
nav a{margin-right:14px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
td.req{color:var(--muted);font-size:12px;max-width:260px}
td.id{min-width:250px}
td.id code{white-space:nowrap}
.badge{display:inline-block;min-width:44px;text-align:center;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;font-weight:600;text-transform:uppercase}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.warn{background:var(--warn)}.badge.error{background:var(--error)}.badge.skip{background:var(--skip)}
article.check{border:1px solid var(--line);border-left:4px solid var(--skip);border-radius:6px;padding:4px 14px 10px;margin:12px 0}
article.fail{border-left-color:var(--fail)}article.error{border-left-color:var(--error)}article.warn{border-left-color:var(--warn)}
.muted{color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:16px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
svg text{font:11px system-ui,sans-serif;fill:var(--ink)}
.diff .add{color:#116329;background:#dafbe1}.diff .del{color:#82071e;background:#ffebe9}.diff .hunk{color:#0550ae}
details>summary{cursor:pointer}
footer{margin-top:40px;color:var(--muted);font-size:12px}
"#;

pub fn render(report: &Report) -> Vec<u8> {
    let mut out = String::new();
    let verdict = report.verdict.as_str();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
         <title>flareproof {}: {verdict}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&report.command)
    );
    header(&mut out, report);
    let revocations = revocation_charts(report);
    let timelines = timeline_charts(report);
    let notable: Vec<&CheckResult> = [Status::Fail, Status::Error, Status::Warn]
        .iter()
        .flat_map(|s| report.checks.iter().filter(move |c| c.status == *s))
        .collect();
    let digests = module_digests(report);
    let mut diffs: Vec<&TextDiff> = Vec::new();
    for e in report.checks.iter().flat_map(|c| &c.evidence) {
        if let Evidence::Diff(d) = e
            && !diffs.contains(&d)
        {
            diffs.push(d);
        }
    }

    out.push_str("<nav>");
    if !report.fleet.is_empty() {
        out.push_str("<a href=\"#fleet\">Fleet</a>");
    }
    if !revocations.is_empty() || !timelines.is_empty() {
        out.push_str("<a href=\"#charts\">Charts</a>");
    }
    out.push_str("<a href=\"#areas\">Checks by area</a>");
    if !notable.is_empty() {
        out.push_str("<a href=\"#failures\">Failures</a>");
    }
    if !digests.is_empty() || !diffs.is_empty() {
        out.push_str("<a href=\"#modules\">Modules</a>");
    }
    out.push_str("</nav>\n");

    if !report.fleet.is_empty() {
        fleet(&mut out, report);
    }

    if !revocations.is_empty() || !timelines.is_empty() {
        out.push_str("<section id=\"charts\">\n");
        if !revocations.is_empty() {
            out.push_str(
                "<h2>Time to refusal</h2>\n<p class=\"muted\">How long a revoked session \
                 was still accepted, per trial and vantage; the dashed line is the bound.</p>\n\
                 <div class=\"charts\">\n",
            );
            revocations.iter().for_each(|c| out.push_str(c));
            out.push_str("</div>\n");
        }
        if !timelines.is_empty() {
            out.push_str(
                "<h2>Rate limits</h2>\n<p class=\"muted\">Each request of a bucket, in order: \
                 allowed (2xx) or refused (429), at the number of requests allowed so far in \
                 its window; the dashed line is the limit. A window starts where the harness \
                 saw one begin (dotted line: an allowed request sent after a refusal had been \
                 answered). Requests before the first such start, or a window or more after \
                 one, are in a window whose start was not seen: they sit hollow on the axis in \
                 a grey band and are not counted against the limit.</p>\n<div class=\"charts\">\n",
            );
            timelines.iter().for_each(|c| out.push_str(c));
            out.push_str("</div>\n");
        }
        out.push_str("</section>\n");
    }

    areas(&mut out, report);

    if !notable.is_empty() {
        out.push_str("<section id=\"failures\">\n<h2>Failures, errors and warnings</h2>\n");
        for check in notable {
            failure(&mut out, check);
        }
        out.push_str("</section>\n");
    }

    if !digests.is_empty() || !diffs.is_empty() {
        out.push_str("<section id=\"modules\">\n<h2>Modules (verify)</h2>\n");
        if !digests.is_empty() {
            digest_table(&mut out, &digests);
        }
        for d in diffs {
            diff(&mut out, d);
        }
        out.push_str("</section>\n");
    }

    let _ = write!(
        out,
        "<footer>Written by {} {}. <code>report.json</code> is the source of truth; every \
         exchange in it has its secrets redacted. This file loads nothing from the network.\
         </footer>\n</main>\n</body>\n</html>\n",
        esc(&report.tool.name),
        esc(&report.tool.version)
    );
    out.into_bytes()
}

/// A merged report's targets, worst first.
fn fleet(out: &mut String, report: &Report) {
    out.push_str(
        "<section id=\"fleet\">\n<h2>Fleet</h2>\n<table>\n<thead><tr><th>target</th>\
         <th>verdict</th><th>failing</th><th>could not decide</th><th>from</th></tr></thead>\n<tbody>\n",
    );
    let ids = |ids: &[String]| {
        if ids.is_empty() {
            "—".to_owned()
        } else {
            ids.iter()
                .map(|id| format!("<code>{}</code>", esc(id)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for row in &report.fleet {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&row.target),
            badge(row.verdict.status()),
            ids(&row.failing),
            ids(&row.undecided),
            esc(&row.vantage_labels.join(", ")),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn header(out: &mut String, report: &Report) {
    let verdict = report.verdict.as_str();
    let headline = match report.verdict {
        Verdict::Pass => "PASS: every check passed",
        Verdict::Fail => "FAIL: the target is wrong",
        Verdict::Error => "ERROR: some checks could not decide",
    };
    let mut facts = vec![
        format!("profile <code>{}</code>", esc(&report.profile)),
        format!("<code>flareproof {}</code>", esc(&report.command)),
    ];
    if let Some(script) = &report.subject.script {
        facts.push(format!("script <code>{}</code>", esc(script)));
    }
    if let Some(url) = &report.subject.base_url {
        facts.push(format!("target <code>{}</code>", esc(url)));
    }
    if !report.subject.vantages.is_empty() {
        facts.push(format!(
            "vantages <code>{}</code>",
            esc(&report.subject.vantages.join(", "))
        ));
    }
    if let Some(label) = &report.vantage_label {
        facts.push(format!("from <code>{}</code>", esc(label)));
    }
    facts.push(format!("started {}", esc(&report.started_at)));
    facts.push(format!("{:.1} s", report.duration_ms as f64 / 1000.0));
    let _ = writeln!(
        out,
        "<header class=\"verdict {verdict}\"><h1>{headline}</h1><p>{}</p></header>",
        facts.join(" · ")
    );
    out.push_str("<div class=\"counts\">");
    for status in Status::ALL {
        let _ = write!(
            out,
            "<div class=\"count {status}\"><b>{}</b>{status}</div>",
            report.counts.get(status)
        );
    }
    out.push_str("</div>\n");
}

fn areas(out: &mut String, report: &Report) {
    out.push_str("<section id=\"areas\">\n<h2>Checks by area</h2>\n");
    for (area, checks) in text::areas(&report.checks) {
        let n = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let tally: Vec<String> = Status::ALL
            .iter()
            .filter(|s| n(**s) > 0)
            .map(|s| format!("{} {s}", n(*s)))
            .collect();
        let _ = writeln!(
            out,
            "<h3>{} <span class=\"muted\">({})</span></h3>\n<table>\n<tr><th>status</th>\
             <th>check</th><th>summary</th><th>requirements</th><th class=\"num\">time</th></tr>",
            esc(area),
            tally.join(", ")
        );
        for check in checks {
            let id = if matches!(check.status, Status::Fail | Status::Error | Status::Warn) {
                format!(
                    "<a href=\"#{}\"><code>{}</code></a>",
                    anchor(check),
                    esc(&text::label(check))
                )
            } else {
                format!("<code>{}</code>", esc(&text::label(check)))
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"id\">{id}<br><span class=\"muted\">{}</span></td><td>{}</td>\
                 <td class=\"req\">{}</td><td class=\"num\">{} ms</td></tr>",
                badge(check.status),
                esc(&check.title),
                esc(&check.summary),
                esc(&check.requirements.join(", ")),
                check.duration_ms
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

fn failure(out: &mut String, check: &CheckResult) {
    let _ = writeln!(
        out,
        "<article class=\"check {}\" id=\"{}\">\n<h3>{} <code>{}</code> {}</h3>\n<p>{}</p>",
        check.status,
        anchor(check),
        badge(check.status),
        esc(&text::label(check)),
        esc(&check.title),
        esc(&check.summary)
    );
    if !check.requirements.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Requirements: {}</p>",
            check
                .requirements
                .iter()
                .map(|r| format!("<code>{}</code>", esc(r)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut bullets = Vec::new();
    let mut digests = Vec::new();
    let mut first_exchange = true;
    for e in &check.evidence {
        match e {
            Evidence::Exchange(x) => {
                let status = x
                    .response
                    .as_ref()
                    .map_or_else(|| "no response".to_owned(), |r| r.status.to_string());
                let _ = writeln!(
                    out,
                    "<details{}><summary>{} <code>{} {}</code> → {}</summary>\n<pre>{}</pre>\n</details>",
                    if first_exchange { " open" } else { "" },
                    esc(&x.label),
                    esc(&x.request.method),
                    esc(&x.request.url),
                    esc(&status),
                    esc(&text::exchange(x))
                );
                first_exchange = false;
            }
            Evidence::Diff(d) => diff(out, d),
            Evidence::Digest(d) => digests.push(d),
            Evidence::Measurement(_) | Evidence::Timeline(_) | Evidence::Note { .. } => {
                bullets.push(format!("<li>{}</li>", esc(&text::evidence(e))));
            }
        }
    }
    if !digests.is_empty() {
        digest_table(out, &digests);
    }
    if !bullets.is_empty() {
        let _ = writeln!(out, "<ul>{}</ul>", bullets.join(""));
    }
    out.push_str("</article>\n");
}

fn module_digests(report: &Report) -> Vec<&ModuleDigest> {
    let mut seen: Vec<&ModuleDigest> = Vec::new();
    for e in report.checks.iter().flat_map(|c| &c.evidence) {
        if let Evidence::Digest(d) = e
            && !seen.contains(&d)
        {
            seen.push(d);
        }
    }
    seen
}

fn digest_table(out: &mut String, digests: &[&ModuleDigest]) {
    out.push_str(
        "<table>\n<tr><th>module</th><th>rebuilt sha256</th><th>deployed sha256</th>\
         <th class=\"num\">rebuilt</th><th class=\"num\">deployed</th><th></th></tr>\n",
    );
    for d in digests {
        let size = |s: Option<u64>| s.map_or_else(|| "—".to_owned(), |s| format!("{s} B"));
        let same = match text::digest_matches(d) {
            Some(true) => badge(Status::Pass).replace(">pass<", ">match<"),
            Some(false) => badge(Status::Fail).replace(">fail<", ">differ<"),
            None => badge(Status::Error).replace(">error<", ">missing<"),
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td><code title=\"{}\">{}…</code></td>\
             <td><code title=\"{}\">{}…</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{same}</td></tr>",
            esc(&d.name),
            esc(d.rebuilt_sha256.as_deref().unwrap_or("")),
            esc(&text::short_digest(d.rebuilt_sha256.as_deref())),
            esc(d.deployed_sha256.as_deref().unwrap_or("")),
            esc(&text::short_digest(d.deployed_sha256.as_deref())),
            size(d.rebuilt_size),
            size(d.deployed_size),
        );
    }
    out.push_str("</table>\n");
}

fn diff(out: &mut String, d: &TextDiff) {
    let _ = write!(
        out,
        "<p>Diff of <code>{}</code>, first difference at byte {}:</p>\n<pre class=\"diff\">",
        esc(&d.subject),
        d.offset
    );
    for line in d.unified.lines() {
        let class = if line.starts_with("@@") {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            ""
        };
        if class.is_empty() {
            let _ = writeln!(out, "{}", esc(line));
        } else {
            let _ = writeln!(out, "<span class=\"{class}\">{}</span>", esc(line));
        }
    }
    out.push_str("</pre>\n");
}
