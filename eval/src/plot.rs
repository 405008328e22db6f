//! Hand-written SVG charts (no plotting dependency, as `pairalign report` does): panels of
//! lines side by side, and grouped bars.

use std::fmt::Write as _;

/// Colours of the series, in order.
const COLORS: [&str; 6] = [
    "#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#718096",
];
const PANEL_W: f64 = 440.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Height of the title band above the panels.
const HEADER: f64 = 40.0;

/// One line of a panel.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// One chart with axes.
#[derive(Clone, Debug)]
pub(crate) struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// Text escaped for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// About five round tick values covering `lo..=hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

fn tick_label(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if (v * 10.0 - (v * 10.0).round()).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Panels of lines, two per row, under a title. Axes start at 0 when the data are positive.
pub(crate) fn lines(title: &str, panels: &[Panel]) -> String {
    let cols = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(2).max(1);
    let width = cols as f64 * PANEL_W;
    let height = HEADER + rows as f64 * PANEL_H;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="20" y="26" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (p, panel) in panels.iter().enumerate() {
        let x0 = (p % 2) as f64 * PANEL_W;
        let y0 = HEADER + (p / 2) as f64 * PANEL_H;
        panel_svg(&mut out, panel, x0, y0);
    }
    out.push_str("</svg>\n");
    out
}

fn panel_svg(out: &mut String, panel: &Panel, x0: f64, y0: f64) {
    let all = panel.series.iter().flat_map(|s| s.points.iter());
    let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    if x_lo > x_hi {
        (x_lo, x_hi, y_lo, y_hi) = (0.0, 1.0, 0.0, 1.0);
    }
    y_lo = y_lo.min(0.0);
    x_lo = x_lo.min(0.0);
    if y_hi <= y_lo {
        y_hi = y_lo + 1.0;
    }
    if x_hi <= x_lo {
        x_hi = x_lo + 1.0;
    }
    let (px, py) = (x0 + LEFT, y0 + TOP);
    let (pw, ph) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let sx = |x: f64| px + (x - x_lo) / (x_hi - x_lo) * pw;
    let sy = |y: f64| py + ph - (y - y_lo) / (y_hi - y_lo) * ph;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-weight="bold">{}</text>"#,
        px,
        y0 + 22.0,
        escape(&panel.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{px:.1}" y="{py:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#a0aec0"/>"##
    );
    for t in ticks(x_lo, x_hi) {
        let x = sx(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#a0aec0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"##,
            py + ph,
            py + ph + 4.0,
            py + ph + 16.0,
            tick_label(t)
        );
    }
    for t in ticks(y_lo, y_hi) {
        let y = sy(t);
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#edf2f7"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{}</text>"##,
            px,
            px + pw,
            px - 4.0,
            y + 3.5,
            tick_label(t)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        px + pw / 2.0,
        py + ph + 34.0,
        escape(&panel.x_label)
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        x0 + 16.0,
        py + ph / 2.0,
        x0 + 16.0,
        py + ph / 2.0,
        escape(&panel.y_label)
    );
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.8"{}/>"#,
            points.join(" "),
            dash(s.dashed)
        );
    }
    // The legend on a white box, top right, over the lines.
    let legend_w = 30.0
        + 6.5
            * panel
                .series
                .iter()
                .map(|s| s.name.chars().count())
                .max()
                .unwrap_or(0) as f64;
    let lx = px + pw - legend_w - 6.0;
    let _ = writeln!(
        out,
        r#"<rect x="{lx:.1}" y="{:.1}" width="{legend_w:.1}" height="{:.1}" fill="white" fill-opacity="0.85"/>"#,
        py + 3.0,
        15.0 * panel.series.len() as f64 + 4.0
    );
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let ly = py + 16.0 + 15.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"{}/><text x="{:.1}" y="{ly:.1}" font-size="11">{}</text>"#,
            lx + 4.0,
            ly - 4.0,
            lx + 22.0,
            ly - 4.0,
            dash(s.dashed),
            lx + 27.0,
            escape(&s.name)
        );
    }
}

fn dash(dashed: bool) -> &'static str {
    if dashed {
        r#" stroke-dasharray="5,4""#
    } else {
        ""
    }
}

/// A frequency polygon: the share of `values` in each of `bins` equal bins over `lo..hi`
/// (values outside counted in the first or last bin), at the bin centres.
pub(crate) fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let b = ((v - lo) / width).floor().clamp(0.0, (bins - 1) as f64) as usize;
        counts[b] += 1;
    }
    let n = values.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(b, &c)| (lo + (b as f64 + 0.5) * width, c as f64 / n))
        .collect()
}

/// Grouped bars: one group per metric (each with its own scale), one bar per subject, value
/// written above.
pub(crate) fn bars(
    title: &str,
    subjects: &[String],
    groups: &[(String, Vec<Option<f64>>)],
) -> String {
    let bar_w = 36.0;
    let gap = 8.0;
    // Text widths estimated at 7.5 px a character (12 px bold) and 9.5 (16 px bold), so that
    // group labels do not run into each other and the title fits.
    let widest_label = groups
        .iter()
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0) as f64;
    let group_w =
        (subjects.len().max(1) as f64 * (bar_w + gap) + 40.0).max(7.5 * widest_label + 20.0);
    let width = (40.0 + groups.len() as f64 * group_w)
        .max(40.0 + 9.5 * title.chars().count() as f64)
        .max(480.0);
    let legend_h = 18.0 * subjects.len() as f64;
    let (top, plot_h) = (HEADER + 30.0, 220.0);
    let height = top + plot_h + 50.0 + legend_h;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="20" y="26" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (g, (label, values)) in groups.iter().enumerate() {
        let max = values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-12);
        let x0 = 40.0 + g as f64 * group_w;
        for (i, value) in values.iter().enumerate() {
            let x = x0 + i as f64 * (bar_w + gap);
            let Some(v) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            let h = plot_h * v.max(0.0) / max;
            let y = top + plot_h - h;
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w}" height="{h:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                COLORS[i % COLORS.len()],
                x + bar_w / 2.0,
                y - 4.0,
                short(v)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{x0:.1}" y="{:.1}" font-weight="bold">{}</text>"#,
            top + plot_h + 20.0,
            escape(label)
        );
    }
    for (i, s) in subjects.iter().enumerate() {
        let y = top + plot_h + 44.0 + 18.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<rect x="40" y="{:.1}" width="12" height="12" fill="{}"/><text x="58" y="{y:.1}">{}</text>"#,
            y - 10.0,
            COLORS[i % COLORS.len()],
            escape(s)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A value with three significant digits, thousands as k and millions as M.
fn short(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(0.0, 1.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(
            ticks(0.0, 3000.0),
            vec![0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0]
        );
        assert!(ticks(0.0, 37.0).len() >= 4);
    }

    #[test]
    fn histogram_shares_sum_to_one() {
        let h = histogram(&[0.05, 0.15, 0.15, 2.0, -1.0], 0.0, 1.0, 10);
        assert_eq!(h.len(), 10);
        assert!((h.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((h[0].0 - 0.05).abs() < 1e-12);
        assert!((h[0].1 - 0.4).abs() < 1e-12); // 0.05 and the clamped -1.0
        assert!((h[9].1 - 0.2).abs() < 1e-12);
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let panel = Panel {
            title: "a <b>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "s".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0)],
                dashed: true,
            }],
        };
        let svg = lines("t & u", &[panel.clone(), panel.clone(), panel]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("t &amp; u"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        let svg = bars(
            "b",
            &["x".into(), "y".into()],
            &[("m".into(), vec![Some(1.0), None])],
        );
        assert_eq!(svg.matches("<rect").count(), 1 + 1 + 2);
    }
}
