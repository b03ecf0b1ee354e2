//! Evidence as plain text, shared by the formats that show it as text
//! (JUnit bodies, Markdown code blocks, SARIF messages). Pure functions.

use std::fmt::Write as _;

use crate::model::{CheckResult, Evidence, Exchange, Measurement, ModuleDigest, Timeline};

/// The longest body shown for one request or response; the JSON report has
/// them whole.
pub const BODY_LIMIT: usize = 2000;

/// The checks grouped by area, areas in the order they first appear (plan
/// order), checks in report order.
pub fn areas(checks: &[CheckResult]) -> Vec<(&str, Vec<&CheckResult>)> {
    let mut areas: Vec<(&str, Vec<&CheckResult>)> = Vec::new();
    for check in checks {
        let area = check.id.area();
        match areas.iter_mut().find(|(a, _)| *a == area) {
            Some((_, list)) => list.push(check),
            None => areas.push((area, vec![check])),
        }
    }
    areas
}

/// The check id as reports show it: with ` @ <version>` when the result is
/// for one pinned version of a gradual deployment, and ` on <target>` in a
/// merged report of several targets; the bare id otherwise.
pub fn label(check: &CheckResult) -> String {
    let mut label = check.id.to_string();
    if let Some(v) = &check.version {
        label.push_str(" @ ");
        label.push_str(v);
    }
    if let Some(t) = &check.target {
        label.push_str(" on ");
        label.push_str(t);
    }
    label
}

/// Cuts `s` to at most `limit` bytes on a char boundary, saying so.
pub fn cut(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes]", &s[..end], s.len() - end)
}

/// A number without a trailing `.0`.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.1}")
    }
}

/// One line: `time to refusal: 310 ms (bound 2000 ms) at <vantage>, trial 1`.
pub fn measurement(m: &Measurement) -> String {
    let mut line = format!("{}: {} {}", m.name, number(m.value), m.unit);
    if let Some(bound) = m.bound {
        let verdict = if m.value <= bound { "within" } else { "over" };
        let _ = write!(line, " ({verdict} bound {} {})", number(bound), m.unit);
    }
    if let Some(vantage) = &m.vantage {
        let _ = write!(line, " at {vantage}");
    }
    if let Some(trial) = m.trial {
        let _ = write!(line, ", trial {trial}");
    }
    line
}

/// The first 12 hex digits of a digest, or `—`.
pub fn short_digest(digest: Option<&str>) -> String {
    digest.map_or_else(|| "—".to_owned(), |d| d.chars().take(12).collect())
}

/// Whether a module's rebuilt and deployed digests are both known and equal.
pub fn digest_matches(d: &ModuleDigest) -> Option<bool> {
    match (&d.rebuilt_sha256, &d.deployed_sha256) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    }
}

pub fn digest(d: &ModuleDigest) -> String {
    let size = |s: Option<u64>| s.map_or_else(|| "?".to_owned(), |s| format!("{s} B"));
    let verdict = match digest_matches(d) {
        Some(true) => "match",
        Some(false) => "DIFFER",
        None => "missing on one side",
    };
    format!(
        "module {}: rebuilt sha256 {} ({}), deployed sha256 {} ({}): {verdict}",
        d.name,
        d.rebuilt_sha256.as_deref().unwrap_or("—"),
        size(d.rebuilt_size),
        d.deployed_sha256.as_deref().unwrap_or("—"),
        size(d.deployed_size),
    )
}

/// How many of a bucket's requests were allowed (2xx), refused (429) or
/// neither.
pub fn timeline_counts(t: &Timeline) -> (usize, usize, usize) {
    let allowed = t
        .points
        .iter()
        .filter(|p| (200..300).contains(&p.status))
        .count();
    let refused = t.points.iter().filter(|p| p.status == 429).count();
    (allowed, refused, t.points.len() - allowed - refused)
}

pub fn timeline(t: &Timeline) -> String {
    let (allowed, refused, other) = timeline_counts(t);
    let limit = t
        .limit
        .map_or_else(|| "unlimited".to_owned(), |l| format!("limit {l}"));
    let mut line = format!(
        "rate-limit bucket {} ({limit} per {} s): {} requests, {allowed} allowed, {refused} refused (429)",
        t.bucket,
        t.window_s,
        t.points.len()
    );
    if other > 0 {
        let _ = write!(line, ", {other} other");
    }
    if let Some(i) = t.points.iter().position(|p| p.status == 429) {
        let _ = write!(line, "; first 429 at request {}", i + 1);
    }
    line
}

/// An exchange as an HTTP/1.1-like transcript.
pub fn exchange(x: &Exchange) -> String {
    let mut out = format!(
        "# {} (+{} ms, {} ms)\n{} {}\n",
        x.label, x.at_ms, x.elapsed_ms, x.request.method, x.request.url
    );
    for h in &x.request.headers {
        let _ = writeln!(out, "{}: {}", h.name, h.value);
    }
    if let Some(body) = &x.request.body {
        let _ = writeln!(out, "\n{}", cut(body, BODY_LIMIT));
    }
    match (&x.response, &x.error) {
        (Some(r), _) => {
            let _ = writeln!(out, "\n=> {}", r.status);
            for h in &r.headers {
                let _ = writeln!(out, "{}: {}", h.name, h.value);
            }
            if let Some(body) = &r.body {
                let _ = writeln!(out, "\n{}", cut(body, BODY_LIMIT));
                if r.body_truncated {
                    let _ = writeln!(out, "[body truncated by the probe]");
                }
            }
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "\n=> no response: {e}");
        }
        (None, None) => {
            let _ = writeln!(out, "\n=> no response");
        }
    }
    out
}

/// One piece of evidence as text (several lines for exchanges and diffs).
pub fn evidence(e: &Evidence) -> String {
    match e {
        Evidence::Exchange(x) => exchange(x),
        Evidence::Measurement(m) => measurement(m),
        Evidence::Digest(d) => digest(d),
        Evidence::Diff(d) => format!(
            "diff of {} (first difference at byte {}):\n{}",
            d.subject, d.offset, d.unified
        ),
        Evidence::Timeline(t) => timeline(t),
        Evidence::Note { text } => text.clone(),
    }
}

/// A check's summary, requirement ids and evidence as one text body.
pub fn body(check: &CheckResult) -> String {
    let mut out = format!("{}: {}\n", check.status, check.summary);
    if !check.requirements.is_empty() {
        let _ = writeln!(out, "requirements: {}", check.requirements.join(", "));
    }
    for e in &check.evidence {
        let text = evidence(e);
        out.push('\n');
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("ééé", 3), "é… [4 more bytes]");
    }

    #[test]
    fn numbers_drop_a_zero_fraction() {
        assert_eq!(number(310.0), "310");
        assert_eq!(number(12.34), "12.3");
    }
}
