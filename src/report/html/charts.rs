//! Charts: inline SVG, one per check (revocation) or per bucket (rate limit).

use std::fmt::Write as _;

use crate::model::{CheckResult, Evidence, Measurement, Report, Timeline};
use crate::report::text;

use super::page::badge;
use super::svg::{
    BOTTOM, H, LEFT, RIGHT, TOP, W, axes, esc, legend, limit_line, svg_open, tick_step,
};

const VANTAGE_COLORS: [&str; 6] = [
    "#0969da", "#54aeff", "#1b7c83", "#8250df", "#bf8700", "#57606a",
];

/// Time to refusal: one chart per check whose measurements have a bound, a
/// trial and a vantage (the session suite's revocation windows).
pub(super) fn revocation_charts(report: &Report) -> Vec<String> {
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
pub(super) fn timeline_charts(report: &Report) -> Vec<String> {
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
