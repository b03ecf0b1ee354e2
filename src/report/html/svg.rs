//! A small SVG toolkit for the charts: the canvas, axes with round ticks,
//! dashed limit lines, a legend, and escaping shared with the page.

use std::fmt::Write as _;

use crate::report::text;

/// Escapes text for HTML and SVG, in content and in quoted attributes.
pub(crate) fn esc(s: &str) -> String {
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

pub(super) const W: f64 = 560.0;
pub(super) const H: f64 = 250.0;
pub(super) const LEFT: f64 = 56.0;
pub(super) const RIGHT: f64 = 16.0;
pub(super) const TOP: f64 = 16.0;
pub(super) const BOTTOM: f64 = 58.0;

/// A round step giving about `n` ticks up to `max`.
pub(super) fn tick_step(max: f64, n: f64) -> f64 {
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
pub(super) fn axes(svg: &mut String, y_max: f64, unit: &str) -> impl Fn(f64) -> f64 + use<> {
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
pub(super) fn limit_line(svg: &mut String, y: f64, color: &str, label: &str) {
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

pub(super) fn svg_open(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         role=\"img\" aria-label=\"{}\">",
        esc(title)
    )
}

/// Legend entries (colour, label) along the bottom edge, left to right; a
/// legend too wide for one row takes two, and one of more rows makes the
/// chart taller (so that no row runs into the axis labels).
pub(super) fn legend(svg: &mut String, entries: &[(String, String)]) {
    let width = |label: &str| 24.0 + label.chars().count() as f64 * 5.8;
    let mut rows: Vec<Vec<&(String, String)>> = vec![Vec::new()];
    let mut x = LEFT;
    for entry in entries {
        let w = width(&entry.1);
        if let Some(row) = rows.last_mut()
            && (row.is_empty() || x + w - 10.0 <= W - RIGHT)
        {
            row.push(entry);
            x += w;
        } else {
            rows.push(vec![entry]);
            x = LEFT + w;
        }
    }
    let extra = 15.0 * rows.len().saturating_sub(2) as f64;
    if extra > 0.0 {
        let open = format!("viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\"");
        let taller = format!(
            "viewBox=\"0 0 {W} {}\" width=\"{W}\" height=\"{}\"",
            H + extra,
            H + extra
        );
        *svg = svg.replacen(&open, &taller, 1);
    }
    for (r, row) in rows.iter().enumerate() {
        let y = H - 12.0 - 15.0 * (rows.len().min(2) - 1) as f64 + 15.0 * r as f64;
        let mut x = LEFT;
        for (color, label) in row {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
                 <text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
                y - 9.0,
                x + 14.0,
                esc(label)
            );
            x += width(label);
        }
    }
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
    fn a_legend_of_many_rows_makes_the_chart_taller_not_overlap_the_axis_labels() {
        let entries: Vec<(String, String)> = (0..5)
            .map(|i| {
                (
                    "#000".to_owned(),
                    format!("us-east-{i}: http://127.0.0.1:42637/"),
                )
            })
            .collect();
        let mut svg = svg_open("t");
        legend(&mut svg, &entries);
        let ys: Vec<f64> = svg
            .match_indices("<text x=\"")
            .filter_map(|(i, _)| {
                let rest = &svg[i..];
                let y = rest.split("y=\"").nth(1)?.split('"').next()?;
                y.parse().ok()
            })
            .collect();
        assert!(ys.len() >= 3, "{svg}");
        // Below the axis labels (drawn at H - BOTTOM + 16), inside the svg.
        let height: f64 = svg
            .split("height=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
            .and_then(|h| h.parse().ok())
            .unwrap();
        assert!(height > H, "{svg}");
        for y in ys {
            assert!(y > H - BOTTOM + 16.0 + 10.0 && y <= height, "{y} in {svg}");
        }
        // One or two rows keep the chart's size.
        let mut small = svg_open("t");
        legend(&mut small, &entries[..1]);
        assert!(small.contains(&format!("height=\"{H}\"")));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(2300.0, 5.0), 500.0);
        assert_eq!(tick_step(9.0, 5.0), 2.0);
    }
}
