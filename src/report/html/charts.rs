//! Charts: inline SVG, one per check (revocation) or per bucket (rate limit).

use std::collections::{BTreeMap, BTreeSet};
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
    report
        .checks
        .iter()
        .filter_map(revocation_chart_of)
        .collect()
}

/// A check's time-to-refusal chart, when it has revocation measurements.
fn revocation_chart_of(check: &CheckResult) -> Option<String> {
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
    (!points.is_empty()).then(|| revocation_chart(check, &points))
}

/// One check's charts, as the report page draws them: its time-to-refusal
/// chart, then one per rate-limit bucket.
pub(crate) fn check_charts(check: &CheckResult) -> Vec<String> {
    revocation_chart_of(check)
        .into_iter()
        .chain(timeline_charts_of(check))
        .collect()
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
    let title = format!(
        "{}: time to refusal per trial and vantage",
        text::label(check)
    );
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
            // Censored: still accepted when observation stopped, so the
            // value is only a lower bound.
            let never = m.censored;
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
                esc(&tooltip(m)),
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
    let over = if points.iter().any(|m| m.censored) {
        "over the bound, or still accepted when observation stopped (>)"
    } else {
        "over the bound"
    };
    entries.push(("#cf222e".to_owned(), over.to_owned()));
    legend(&mut svg, &entries);
    svg.push_str("</svg>");
    format!(
        "<figure>\n<figcaption>{} <code>{}</code> <span class=\"muted\">{}{}</span></figcaption>\n{svg}\n</figure>\n",
        badge(check.status),
        esc(&text::label(check)),
        esc(&check.title),
        esc(&accuracy(points))
    )
}

/// A bar's tooltip: the measurement, its resolution and slowest poll, and
/// whether it is only a lower bound.
fn tooltip(m: &Measurement) -> String {
    let mut line = text::measurement(m);
    if let Some(r) = m.resolution {
        let _ = write!(line, "; resolution {} {}", text::number(r), m.unit);
    }
    if let Some(s) = m.slowest_observation {
        let _ = write!(line, "; slowest poll {} {}", text::number(s), m.unit);
    }
    if m.censored {
        line.push_str("; still accepted when observation stopped: a lower bound");
    }
    line
}

/// ` · resolution 100 ms, slowest poll 144 ms` over a chart's measurements
/// (the resolution as a range when they differ), or nothing when they do
/// not say.
fn accuracy(points: &[&Measurement]) -> String {
    let unit = points.first().map_or("", |m| m.unit.as_str());
    let resolutions = || points.iter().filter_map(|m| m.resolution);
    let mut parts = Vec::new();
    if let (Some(lo), Some(hi)) = (
        resolutions().reduce(f64::min),
        resolutions().reduce(f64::max),
    ) {
        parts.push(if lo == hi {
            format!("resolution {} {unit}", text::number(lo))
        } else {
            format!(
                "resolution {}–{} {unit}",
                text::number(lo),
                text::number(hi)
            )
        });
    }
    if let Some(s) = points
        .iter()
        .filter_map(|m| m.slowest_observation)
        .reduce(f64::max)
    {
        parts.push(format!("slowest poll {} {unit}", text::number(s)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" · {}", parts.join(", "))
    }
}

/// Rate limits: one chart per bucket (`Timeline` evidence).
pub(super) fn timeline_charts(report: &Report) -> Vec<String> {
    report.checks.iter().flat_map(timeline_charts_of).collect()
}

fn timeline_charts_of(check: &CheckResult) -> Vec<String> {
    check
        .evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Timeline(t) if !t.points.is_empty() => Some(timeline_chart(check, t)),
            _ => None,
        })
        .collect()
}

/// The most requests allowed in one window whose start the harness saw
/// (what the timeline chart's count line peaks at); none when no window
/// start was seen.
pub(crate) fn most_allowed_in_a_window(t: &Timeline) -> Option<u64> {
    levels(t, &phases(t)).into_iter().flatten().max()
}

/// The colour of the band over requests whose window start was not seen.
const UNKNOWN: &str = "#d0d7de";

/// Where a request falls, by when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In the window that the harness saw begin at this many milliseconds
    /// since the run started.
    Observed(u64),
    /// Before the first observed start: in a window whose start was not seen.
    Before,
    /// A whole window or more after the last observed start before it: in a
    /// later window, whose start was not seen either.
    Beyond,
}

/// Each request's phase. Windows start exactly where the harness observed
/// one begin (`Timeline::window_starts_ms`) and last one `window_s` at most;
/// nothing is inferred from the statuses.
fn phases(t: &Timeline) -> Vec<Phase> {
    let mut starts = t.window_starts_ms.clone();
    starts.sort_unstable();
    starts.dedup();
    let window_ms = t.window_s.max(1) * 1000;
    t.points
        .iter()
        .map(|p| match starts.iter().rposition(|s| *s <= p.at_ms) {
            None => Phase::Before,
            Some(k) if p.at_ms - starts[k] >= window_ms => Phase::Beyond,
            Some(k) => Phase::Observed(starts[k]),
        })
        .collect()
}

/// The number of requests allowed so far in each request's observed
/// window; none for a request whose window start was not seen.
fn levels(t: &Timeline, phases: &[Phase]) -> Vec<Option<u64>> {
    let mut allowed: BTreeMap<u64, u64> = BTreeMap::new();
    t.points
        .iter()
        .zip(phases)
        .map(|(p, phase)| match phase {
            Phase::Observed(k) => {
                let n = allowed.entry(*k).or_default();
                if (200..300).contains(&p.status) {
                    *n += 1;
                }
                Some(*n)
            }
            Phase::Before | Phase::Beyond => None,
        })
        .collect()
}

fn timeline_chart(check: &CheckResult, t: &Timeline) -> String {
    let first = t.points.iter().map(|p| p.at_ms).min().unwrap_or(0);
    let phases = phases(t);
    let levels = levels(t, &phases);
    let peak = levels
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(t.limit.unwrap_or(0));
    // At least 0..5, so that a bucket with little or nothing counted still
    // has whole-number ticks.
    let top = (peak as f64 * 1.15).max(peak as f64 + 1.0).max(5.0);
    let step = tick_step(top, 5.0).max(1.0);
    let y_max = (top / step).ceil() * step;
    let limit = t
        .limit
        .map_or_else(|| "unlimited".to_owned(), |l| format!("limit {l}"));
    let title = format!(
        "{}: bucket {}, {limit} per {} s",
        text::label(check),
        t.bucket,
        t.window_s
    );
    let mut svg = svg_open(&title);
    let scale = axes(&mut svg, y_max, "allowed in window");
    let n = t.points.len();
    let plot_w = W - LEFT - RIGHT;
    let slot = plot_w / n as f64;
    let x_of = |i: usize| LEFT + slot * (i as f64 + 0.5);

    // A band over each run of requests whose window start was not seen.
    let mut i = 0;
    while i < n {
        if matches!(phases[i], Phase::Observed(_)) {
            i += 1;
            continue;
        }
        let run = phases[i..]
            .iter()
            .take_while(|p| !matches!(p, Phase::Observed(_)))
            .count();
        let (x, width) = (LEFT + slot * i as f64, slot * run as f64);
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{TOP}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{UNKNOWN}\" \
             fill-opacity=\"0.45\"><title>the harness did not see this window start: \
             these requests are not counted against the limit</title></rect>",
            H - BOTTOM - TOP
        );
        if width >= 84.0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"fill:#59636e\">phase unknown</text>",
                x + width / 2.0,
                TOP + 14.0
            );
        }
        i += run;
    }

    // A line where each observed window begins, and the path of its count.
    let windows: BTreeSet<u64> = phases
        .iter()
        .filter_map(|p| match p {
            Phase::Observed(k) => Some(*k),
            Phase::Before | Phase::Beyond => None,
        })
        .collect();
    for start in windows {
        let members: Vec<usize> = (0..n)
            .filter(|i| phases[*i] == Phase::Observed(start))
            .collect();
        let x = LEFT + slot * members[0] as f64;
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#59636e\" \
             stroke-dasharray=\"2 3\"><title>the harness saw a window start at +{} ms \
             (an allowed request sent after a refusal was answered)</title></line>",
            H - BOTTOM,
            start.saturating_sub(first)
        );
        let path: Vec<String> = members
            .iter()
            .filter_map(|i| levels[*i].map(|l| format!("{:.1},{:.1}", x_of(*i), scale(l as f64))))
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#8c959f\" stroke-width=\"1\"/>",
            path.join(" ")
        );
    }

    // Each request: at its window's count, or hollow on the axis when its
    // window start was not seen.
    let r = (slot / 2.5).clamp(1.5, 4.5);
    for (i, (p, level)) in t.points.iter().zip(&levels).enumerate() {
        let (color, what) = match p.status {
            200..=299 => ("#1a7f37", "allowed"),
            429 => ("#cf222e", "refused"),
            _ => ("#8c959f", "other"),
        };
        let (cy, fill, counted) = match level {
            Some(l) => (
                scale(*l as f64),
                color,
                format!("{l} allowed so far in its window"),
            ),
            None => (
                scale(0.0),
                "#ffffff",
                "its window start was not seen: not counted".to_owned(),
            ),
        };
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"{r:.1}\" fill=\"{fill}\" stroke=\"{color}\" \
             stroke-width=\"1.5\"><title>request {} at +{} ms: {} ({what}); {counted}</title></circle>",
            x_of(i),
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
    let before = phases.contains(&Phase::Before);
    let beyond = phases.contains(&Phase::Beyond);
    let unknown = match (before, beyond) {
        (true, false) => Some("before the first observed window start (phase unknown)"),
        (false, true) => Some("a window or more after an observed start (phase unknown)"),
        (true, true) => Some("outside every observed window (phase unknown)"),
        (false, false) => None,
    };
    if let Some(label) = unknown {
        entries.push((UNKNOWN.to_owned(), label.to_owned()));
    }
    entries.push(("#ffffff".to_owned(), "x: request number".to_owned()));
    legend(&mut svg, &entries);
    svg.push_str("</svg>");
    format!(
        "<figure>\n<figcaption>{} <code>{}</code> bucket <code>{}</code> <span class=\"muted\">{limit} per {} s</span></figcaption>\n{svg}\n</figure>\n",
        badge(check.status),
        esc(&text::label(check)),
        esc(&t.bucket),
        t.window_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CheckId, Status, TimelinePoint};

    fn check(id: &str, evidence: Vec<Evidence>) -> CheckResult {
        CheckResult {
            id: CheckId::new(id).unwrap(),
            title: "t".into(),
            status: Status::Pass,
            summary: "s".into(),
            severity: None,
            level: None,
            help: String::new(),
            requirements: vec![],
            evidence,
            duration_ms: 0,
            version: None,
            target: None,
        }
    }

    /// Like the demo's `pro` bucket: the burst that spends it starts
    /// mid-window, so 17 are allowed across a turnover nobody saw; then a
    /// refusal, the observed start, 15 allowed and a refusal.
    fn pro() -> Timeline {
        let mut points: Vec<TimelinePoint> = (0..17)
            .map(|i| TimelinePoint {
                at_ms: i * 200,
                status: 200,
            })
            .collect();
        points.push(TimelinePoint {
            at_ms: 4000,
            status: 429,
        });
        points.extend((0..15).map(|i| TimelinePoint {
            at_ms: 7000 + i * 10,
            status: 200,
        }));
        points.push(TimelinePoint {
            at_ms: 7200,
            status: 429,
        });
        points.push(TimelinePoint {
            at_ms: 12_500,
            status: 200,
        });
        Timeline {
            bucket: "pro".into(),
            limit: Some(15),
            window_s: 5,
            points,
            window_starts_ms: vec![7000],
        }
    }

    #[test]
    fn windows_start_only_where_the_harness_saw_one() {
        let t = pro();
        let phases = phases(&t);
        assert!(phases[..18].iter().all(|p| *p == Phase::Before));
        assert!(phases[18..34].iter().all(|p| *p == Phase::Observed(7000)));
        assert_eq!(phases[34], Phase::Beyond, "a window after the start");
        let levels = levels(&t, &phases);
        assert!(levels[..18].iter().all(Option::is_none), "not counted");
        assert_eq!(levels.iter().flatten().max(), Some(&15));
        assert_eq!(levels[33], Some(15), "the refusal stays at the count");
        assert_eq!(levels[34], None);
    }

    #[test]
    fn the_rate_limit_chart_counts_nothing_it_did_not_see_begin() {
        let chart = timeline_chart(
            &check("ratelimit.pro", vec![]),
            &Timeline {
                points: pro().points[..34].to_vec(),
                ..pro()
            },
        );
        assert_eq!(
            chart
                .matches("the harness saw a window start at +7000 ms")
                .count(),
            1
        );
        assert!(chart.contains("before the first observed window start (phase unknown)"));
        assert_eq!(
            chart
                .matches("its window start was not seen: not counted")
                .count(),
            18
        );
        assert!(chart.contains("15 allowed so far in its window"));
        assert!(!chart.contains("16 allowed so far") && !chart.contains("17 allowed so far"));
        // With no observed start at all, nothing is counted.
        let unseen = timeline_chart(
            &check("ratelimit.admin-unlimited", vec![]),
            &Timeline {
                limit: None,
                window_starts_ms: vec![],
                ..pro()
            },
        );
        assert!(!unseen.contains("allowed so far in its window"));
        assert!(!unseen.contains("<polyline"));
    }

    #[test]
    fn a_censored_bar_is_a_lower_bound_whatever_its_name() {
        let m = Measurement {
            name: "time to refusal after sign-out".into(),
            value: 5200.0,
            unit: "ms".into(),
            bound: Some(5000.0),
            vantage: Some("http://127.0.0.1:8787/".into()),
            trial: Some(1),
            censored: true,
            resolution: Some(100.0),
            slowest_observation: Some(84.0),
        };
        let report_check = check("session.revoked-on-sign-out", vec![]);
        let chart = revocation_chart(&report_check, &[&m]);
        assert!(chart.contains(">&gt;5200</text>"), "{chart}");
        assert!(chart.contains("resolution 100 ms; slowest poll 84 ms; still accepted"));
        assert!(chart.contains("resolution 100 ms, slowest poll 84 ms</span>"));
        let uncensored = Measurement {
            name: "still accepted after sign-out".into(),
            censored: false,
            value: 300.0,
            ..m
        };
        let chart = revocation_chart(&report_check, &[&uncensored]);
        assert!(!chart.contains("&gt;300"), "the name is not read");
    }
}
