//! `report.html`: one self-contained file a reviewer opens in a browser, with
//! no network access (no scripts, fonts or images from anywhere): the
//! verdict, charts drawn from the measurements as inline SVG (time to
//! refusal per trial and vantage against the bound; each rate-limit
//! bucket's requests, allowed or refused, against its limit), a table per
//! area, the evidence behind each failure, and verify's module table and
//! diffs.

use std::fmt::Write as _;

use crate::model::{
    CheckResult, Evidence, Measurement, ModuleDigest, Report, Status, TextDiff, Timeline, Verdict,
};

use super::text;

/// Escapes text for HTML and SVG, in content and in quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id usable as a fragment: check ids are already `[a-z0-9.-]`.
fn anchor(check: &CheckResult) -> String {
    format!("check-{}", check.id.as_str().replace('.', "-"))
}

fn badge(status: Status) -> String {
    format!("<span class=\"badge {status}\">{status}</span>")
}

const STYLE: &str = r#"
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
                 its window (a window starts where an allowed request follows a refusal, or a \
                 window after the last start); the dashed \
                 line is the limit.</p>\n<div class=\"charts\">\n",
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
                    esc(check.id.as_str())
                )
            } else {
                format!("<code>{}</code>", esc(check.id.as_str()))
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
        esc(check.id.as_str()),
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

// ---------------------------------------------------------------------------
// Charts: inline SVG, one per check (revocation) or per bucket (rate limit).
// ---------------------------------------------------------------------------

const W: f64 = 560.0;
const H: f64 = 250.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 58.0;
const VANTAGE_COLORS: [&str; 6] = [
    "#0969da", "#54aeff", "#1b7c83", "#8250df", "#bf8700", "#57606a",
];

/// A round step giving about `n` ticks up to `max`.
fn tick_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Axes, horizontal grid lines and y tick labels; returns the y scale.
fn axes(svg: &mut String, y_max: f64, unit: &str) -> impl Fn(f64) -> f64 + use<> {
    let plot_h = H - TOP - BOTTOM;
    let scale = move |v: f64| TOP + plot_h - v / y_max * plot_h;
    let step = tick_step(y_max, 5.0);
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        let y = scale(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#d1d9e0\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            text::number(v)
        );
        v += step;
    }
    let _ = write!(
        svg,
        "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{}</text>\
         <line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#59636e\"/>",
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        esc(unit),
        TOP + plot_h,
        W - RIGHT,
        TOP + plot_h
    );
    scale
}

/// A dashed horizontal line with a label at its right end.
fn limit_line(svg: &mut String, y: f64, color: &str, label: &str) {
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" \
         stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" style=\"fill:{color};font-weight:600\">{}</text>",
        W - RIGHT,
        W - RIGHT - 2.0,
        y - 5.0,
        esc(label)
    );
}

fn svg_open(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         role=\"img\" aria-label=\"{}\">",
        esc(title)
    )
}

/// Legend entries along the bottom edge: (color, label, square or circle).
fn legend(svg: &mut String, entries: &[(String, String)]) {
    let mut x = LEFT;
    let y = H - 12.0;
    for (color, label) in entries {
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
            y - 9.0,
            x + 14.0,
            esc(label)
        );
        x += 24.0 + label.chars().count() as f64 * 5.8;
    }
}

/// Time to refusal: one chart per check whose measurements have a bound, a
/// trial and a vantage (the session suite's revocation windows).
fn revocation_charts(report: &Report) -> Vec<String> {
    let mut charts = Vec::new();
    for check in &report.checks {
        let points: Vec<&Measurement> = check
            .evidence
            .iter()
            .filter_map(|e| match e {
                Evidence::Measurement(m)
                    if m.bound.is_some() && m.trial.is_some() && m.vantage.is_some() =>
                {
                    Some(m)
                }
                _ => None,
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        charts.push(revocation_chart(check, &points));
    }
    charts
}

fn revocation_chart(check: &CheckResult, points: &[&Measurement]) -> String {
    let mut trials: Vec<u32> = points.iter().filter_map(|m| m.trial).collect();
    trials.sort_unstable();
    trials.dedup();
    let mut vantages: Vec<&str> = Vec::new();
    for m in points {
        let v = m.vantage.as_deref().unwrap_or("");
        if !vantages.contains(&v) {
            vantages.push(v);
        }
    }
    let bound = points.iter().filter_map(|m| m.bound).fold(0.0, f64::max);
    let unit = points[0].unit.as_str();
    let top = points.iter().map(|m| m.value).fold(bound, f64::max) * 1.15;
    let y_max = (top / tick_step(top, 5.0)).ceil() * tick_step(top, 5.0);
    let title = format!("{}: time to refusal per trial and vantage", check.id);
    let mut svg = svg_open(&title);
    let scale = axes(&mut svg, y_max.max(1.0), unit);
    let plot_w = W - LEFT - RIGHT;
    let group_w = plot_w / trials.len() as f64;
    let bar_w = (group_w * 0.75 / vantages.len() as f64).min(48.0);
    for (t, trial) in trials.iter().enumerate() {
        let group_x = LEFT + group_w * t as f64;
        let inner = bar_w * vantages.len() as f64;
        let start = group_x + (group_w - inner) / 2.0;
        for (v, vantage) in vantages.iter().enumerate() {
            let Some(m) = points
                .iter()
                .find(|m| m.trial == Some(*trial) && m.vantage.as_deref() == Some(*vantage))
            else {
                continue;
            };
            let over = m.bound.is_some_and(|b| m.value > b);
            let never = m.name.starts_with("still accepted");
            let color = if over || never {
                "#cf222e"
            } else {
                VANTAGE_COLORS[v % VANTAGE_COLORS.len()]
            };
            let x = start + bar_w * v as f64;
            let y = scale(m.value.min(y_max));
            let base = scale(0.0);
            let label = if never {
                format!(">{}", text::number(m.value))
            } else {
                text::number(m.value)
            };
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\">\
                 <title>{}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"font-size:10px\">{}</text>",
                x + 1.0,
                (bar_w - 2.0).max(1.0),
                (base - y).max(0.5),
                esc(&text::measurement(m)),
                x + bar_w / 2.0,
                y - 3.0,
                esc(&label)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">trial {trial}</text>",
            group_x + group_w / 2.0,
            H - BOTTOM + 16.0
        );
    }
    limit_line(
        &mut svg,
        scale(bound),
        "#cf222e",
        &format!("bound {} {unit}", text::number(bound)),
    );
    let mut entries: Vec<(String, String)> = vantages
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                VANTAGE_COLORS[i % VANTAGE_COLORS.len()].to_owned(),
                (*v).to_owned(),
            )
        })
        .collect();
    entries.push(("#cf222e".to_owned(), "over the bound".to_owned()));
    legend(&mut svg, &entries);
    svg.push_str("</svg>");
    format!(
        "<figure>\n<figcaption>{} <code>{}</code> <span class=\"muted\">{}</span></figcaption>\n{svg}\n</figure>\n",
        badge(check.status),
        esc(check.id.as_str()),
        esc(&check.title)
    )
}

/// Rate limits: one chart per bucket (`Timeline` evidence).
fn timeline_charts(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .flat_map(|c| {
            c.evidence.iter().filter_map(move |e| match e {
                Evidence::Timeline(t) if !t.points.is_empty() => Some(timeline_chart(c, t)),
                _ => None,
            })
        })
        .collect()
}

fn timeline_chart(check: &CheckResult, t: &Timeline) -> String {
    let first = t.points.iter().map(|p| p.at_ms).min().unwrap_or(0);
    let window_ms = t.window_s.max(1) * 1000;
    // The number of requests allowed so far in each request's window. A new
    // window starts where the harness saw one start: an allowed request right
    // after a refusal, or a request a whole window after the current
    // window's first one.
    let mut levels = Vec::with_capacity(t.points.len());
    let mut started_at: Option<u64> = None;
    let mut refused_last = false;
    let mut allowed = 0u64;
    let mut boundaries = Vec::new();
    for (i, p) in t.points.iter().enumerate() {
        let ok = (200..300).contains(&p.status);
        let turned = match started_at {
            None => true,
            Some(start) => (ok && refused_last) || p.at_ms.saturating_sub(start) >= window_ms,
        };
        if turned {
            if started_at.is_some() {
                boundaries.push(i);
            }
            started_at = Some(p.at_ms);
            allowed = 0;
        }
        if ok {
            allowed += 1;
        }
        refused_last = p.status == 429;
        levels.push(allowed);
    }
    let peak = levels
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(t.limit.unwrap_or(0));
    let top = (peak as f64 * 1.15).max(peak as f64 + 1.0);
    let step = tick_step(top, 5.0).max(1.0);
    let y_max = (top / step).ceil() * step;
    let limit = t
        .limit
        .map_or_else(|| "unlimited".to_owned(), |l| format!("limit {l}"));
    let title = format!(
        "{}: bucket {}, {limit} per {} s",
        check.id, t.bucket, t.window_s
    );
    let mut svg = svg_open(&title);
    let scale = axes(&mut svg, y_max, "allowed in window");
    let n = t.points.len();
    let plot_w = W - LEFT - RIGHT;
    let x_of = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / n as f64;
    for i in boundaries {
        let x = (x_of(i - 1) + x_of(i)) / 2.0;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\" \
             stroke-dasharray=\"2 3\"><title>a new window starts</title></line>",
            H - BOTTOM
        );
    }
    let path: Vec<String> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{:.1},{:.1}", x_of(i), scale(*l as f64)))
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#8c959f\" stroke-width=\"1\"/>",
        path.join(" ")
    );
    let r = (plot_w / n as f64 / 2.5).clamp(1.5, 4.5);
    for (i, (p, level)) in t.points.iter().zip(&levels).enumerate() {
        let (color, what) = match p.status {
            200..=299 => ("#1a7f37", "allowed"),
            429 => ("#cf222e", "refused"),
            _ => ("#8c959f", "other"),
        };
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{color}\"><title>request {} at +{} ms: {} ({what})</title></circle>",
            x_of(i),
            scale(*level as f64),
            i + 1,
            p.at_ms - first,
            p.status
        );
    }
    if let Some(l) = t.limit {
        limit_line(&mut svg, scale(l as f64), "#cf222e", &limit);
    }
    let ticks = tick_step(n as f64, 8.0).max(1.0) as usize;
    for i in (0..n).filter(|i| (i + 1) % ticks == 0 || *i == 0) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x_of(i),
            H - BOTTOM + 14.0,
            i + 1
        );
    }
    let (ok, refused, other) = text::timeline_counts(t);
    let mut entries = vec![
        ("#1a7f37".to_owned(), format!("allowed ({ok})")),
        ("#cf222e".to_owned(), format!("429 ({refused})")),
    ];
    if other > 0 {
        entries.push(("#8c959f".to_owned(), format!("other ({other})")));
    }
    entries.push(("#ffffff".to_owned(), "x: request number".to_owned()));
    legend(&mut svg, &entries);
    svg.push_str("</svg>");
    format!(
        "<figure>\n<figcaption>{} <code>{}</code> bucket <code>{}</code> <span class=\"muted\">{limit} per {} s</span></figcaption>\n{svg}\n</figure>\n",
        badge(check.status),
        esc(check.id.as_str()),
        esc(&t.bucket),
        t.window_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(2300.0, 5.0), 500.0);
        assert_eq!(tick_step(9.0, 5.0), 2.0);
    }
}
