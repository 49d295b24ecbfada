//! Charts as data: pure functions from series to SVG text, rendered on the
//! server so pages need no script.
//!
//! Every label is escaped (titles, series names and labels come from people
//! and alert sources). Colours and sizes are presentation attributes (`fill`,
//! `stroke`, `font-size`), never `style=`, so a strict Content-Security-Policy
//! without `'unsafe-inline'` styles still draws them; there is no script. Sizes
//! are in `viewBox` units, so a chart scales to its container. Each mark (point,
//! bar, cell) carries a `<title>` with its exact value, which screen readers
//! read and browsers show on hover; the chart's own `<title>` comes first.

use std::fmt::Write;

use super::facts::format_duration_ms;

/// Series colours, distinguishable for the common colour-vision deficiencies
/// (Okabe–Ito).
const PALETTE: [&str; 6] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
];
const GRID: &str = "#e5e7eb";
const AXIS: &str = "#6b7280";
const INK: &str = "#111827";
const HEAT: &str = "#d55e00";
const EMPTY_CELL: &str = "#f3f4f6";

/// Escapes text for SVG (XML) content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters even escaped.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// How values on a chart read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// Plain numbers (incidents, pages).
    Count,
    /// Milliseconds, shown as durations.
    DurationMs,
    /// Shares 0–1, shown as percentages.
    Share,
}

impl ValueFormat {
    /// The exact value, for a mark's title.
    pub fn exact(self, v: f64) -> String {
        match self {
            ValueFormat::Count if v.fract() == 0.0 => format!("{v:.0}"),
            ValueFormat::Count => format!("{v:.2}"),
            ValueFormat::DurationMs => format_duration_ms(v.round() as i64),
            ValueFormat::Share => format!("{:.1}%", v * 100.0),
        }
    }

    /// A short form for axis ticks.
    fn tick(self, v: f64) -> String {
        match self {
            ValueFormat::DurationMs => short_duration(v.round() as i64),
            ValueFormat::Share => format!("{:.0}%", v * 100.0),
            ValueFormat::Count => {
                let s = format!("{v:.2}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
        }
    }

    /// A round step giving about four intervals up to `max`.
    fn step(self, max: f64) -> f64 {
        let raw = (max / 4.0).max(f64::MIN_POSITIVE);
        if self == ValueFormat::DurationMs {
            const S: f64 = 1000.0;
            const STEPS: [f64; 19] = [
                S,
                2. * S,
                5. * S,
                10. * S,
                15. * S,
                30. * S,
                60. * S,
                120. * S,
                300. * S,
                600. * S,
                900. * S,
                1800. * S,
                3600. * S,
                7200. * S,
                10800. * S,
                21600. * S,
                43200. * S,
                86400. * S,
                172800. * S,
            ];
            if let Some(s) = STEPS.iter().find(|&&s| s >= raw) {
                return *s;
            }
        }
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|&s| s >= raw)
            .unwrap_or(10.0 * mag);
        if self == ValueFormat::Count {
            step.max(1.0)
        } else {
            step
        }
    }
}

/// `90s` → `1m 30s`, `3600000` → `1h`: the two largest units, for ticks.
fn short_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let two = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua} {b}{ub}")
        }
    };
    if d > 0 {
        two(d, "d", h, "h")
    } else if h > 0 {
        two(h, "h", m, "m")
    } else if m > 0 {
        two(m, "m", sec, "s")
    } else {
        format!("{sec}s")
    }
}

/// Counts durations into the bins `edges` (ascending, milliseconds) cut, with
/// labels for a histogram: `< 1m`, `1m–5m`, …, `≥ 4h`. Exact: each value is
/// counted in the bin whose lower edge it reaches.
pub fn duration_bins(values: &[i64], edges: &[i64]) -> Vec<(String, u64)> {
    let mut counts = vec![0u64; edges.len() + 1];
    for &v in values {
        counts[edges.partition_point(|&e| e <= v)] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let name = match (i.checked_sub(1).map(|j| edges[j]), edges.get(i)) {
                (None, Some(&hi)) => format!("< {}", short_duration(hi)),
                (Some(lo), Some(&hi)) => format!("{}–{}", short_duration(lo), short_duration(hi)),
                (Some(lo), None) => format!("≥ {}", short_duration(lo)),
                (None, None) => "all".to_string(),
            };
            (name, n)
        })
        .collect()
}

/// One line of a line chart: a value per x label, `None` where there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Values, aligned with the chart's x labels.
    pub values: Vec<Option<f64>>,
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

/// The frame every chart shares: root element, title, font.
fn open(out: &mut String, width: f64, height: f64, title: &str) {
    let t = escape(title);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" font-family="system-ui, sans-serif" font-size="11" fill="{INK}"><title>{t}</title><text x="8" y="18" font-size="13" font-weight="bold">{t}</text>"#,
        num(width),
        num(height)
    );
}

/// The y scale of a plot area: ticks from 0 to a round top.
struct YScale {
    top: f64,
    step: f64,
    y0: f64,
    height: f64,
}

impl YScale {
    fn new(max: f64, format: ValueFormat, y0: f64, height: f64) -> YScale {
        let step = format.step(max);
        let top = (max / step).ceil().max(1.0) * step;
        YScale {
            top,
            step,
            y0,
            height,
        }
    }

    fn y(&self, v: f64) -> f64 {
        self.y0 + self.height - (v / self.top).clamp(0.0, 1.0) * self.height
    }

    /// Grid lines and tick labels from `left` to `right`.
    fn draw(&self, out: &mut String, left: f64, right: f64, format: ValueFormat) {
        let ticks = (self.top / self.step).round() as usize;
        for i in 0..=ticks {
            let v = self.step * i as f64;
            let y = num(self.y(v));
            let _ = write!(
                out,
                r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{GRID}"/><text x="{}" y="{y}" dy="4" text-anchor="end" fill="{AXIS}">{}</text>"#,
                num(left),
                num(right),
                num(left - 6.0),
                escape(&format.tick(v))
            );
        }
    }
}

/// X labels under band centres, thinned so they never overlap.
fn draw_x_labels(
    out: &mut String,
    labels: &[String],
    x: impl Fn(usize) -> f64,
    y: f64,
    width: f64,
) {
    let fit = ((width / 56.0).floor() as usize).max(1);
    let every = labels.len().div_ceil(fit).max(1);
    for (i, l) in labels.iter().enumerate().step_by(every) {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" fill="{AXIS}">{}</text>"#,
            num(x(i)),
            num(y),
            escape(l)
        );
    }
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 40.0;

/// A line chart of `series` over `x_labels` (weeks, days), y from 0.
pub fn line_chart(
    title: &str,
    x_labels: &[String],
    series: &[Series],
    format: ValueFormat,
) -> String {
    let legend = if series.len() > 1 { 18.0 } else { 0.0 };
    let height = HEIGHT + legend;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let n = x_labels.len().max(1);
    let x = |i: usize| LEFT + (i as f64 + 0.5) * plot_w / n as f64;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let scale = YScale::new(max, format, TOP, plot_h);
    let mut out = String::new();
    open(&mut out, WIDTH, height, title);
    scale.draw(&mut out, LEFT, WIDTH - RIGHT, format);
    draw_x_labels(&mut out, x_labels, x, TOP + plot_h + 16.0, plot_w);
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        // A gap (None) breaks the line rather than drawing through it.
        let points: Vec<Option<(f64, f64)>> = s
            .values
            .iter()
            .take(x_labels.len())
            .enumerate()
            .map(|(i, v)| v.map(|v| (x(i), scale.y(v))))
            .collect();
        for run in points.split(|p| p.is_none()).filter(|r| r.len() > 1) {
            let pts: Vec<String> = run
                .iter()
                .flatten()
                .map(|(a, b)| format!("{},{}", num(*a), num(*b)))
                .collect();
            let _ = write!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                pts.join(" ")
            );
        }
        for (i, v) in s.values.iter().take(x_labels.len()).enumerate() {
            let Some(v) = v else { continue };
            let who = if series.len() > 1 {
                format!("{} · ", s.name)
            } else {
                String::new()
            };
            let _ = write!(
                out,
                r#"<circle cx="{}" cy="{}" r="3" fill="{colour}"><title>{}</title></circle>"#,
                num(x(i)),
                num(scale.y(*v)),
                escape(&format!("{who}{}: {}", x_labels[i], format.exact(*v)))
            );
        }
        if series.len() > 1 {
            let lx = LEFT + 140.0 * k as f64;
            let ly = HEIGHT + 4.0;
            let _ = write!(
                out,
                r#"<rect x="{}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
                num(lx),
                num(ly - 9.0),
                num(lx + 14.0),
                num(ly),
                escape(&s.name)
            );
        }
    }
    if max == 0.0 && series.iter().all(|s| s.values.iter().all(Option::is_none)) {
        no_data(&mut out, LEFT + plot_w / 2.0, TOP + plot_h / 2.0);
    }
    out.push_str("</svg>");
    out
}

fn no_data(out: &mut String, x: f64, y: f64) {
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" fill="{AXIS}">No data</text>"#,
        num(x),
        num(y)
    );
}

/// A bar chart of counts per bin (a histogram of durations, pages per day).
pub fn histogram(title: &str, bins: &[(String, u64)], unit: &str) -> String {
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let n = bins.len().max(1);
    let band = plot_w / n as f64;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * band;
    let max = bins.iter().map(|b| b.1).max().unwrap_or(0) as f64;
    let scale = YScale::new(max, ValueFormat::Count, TOP, plot_h);
    let mut out = String::new();
    open(&mut out, WIDTH, HEIGHT, title);
    scale.draw(&mut out, LEFT, WIDTH - RIGHT, ValueFormat::Count);
    let labels: Vec<String> = bins.iter().map(|b| b.0.clone()).collect();
    draw_x_labels(&mut out, &labels, x, TOP + plot_h + 16.0, plot_w);
    for (i, (label, count)) in bins.iter().enumerate() {
        let y = scale.y(*count as f64);
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>"#,
            num(x(i) - band * 0.4),
            num(y),
            num(band * 0.8),
            num(TOP + plot_h - y),
            PALETTE[0],
            escape(&format!("{label}: {count} {unit}"))
        );
    }
    if bins.is_empty() {
        no_data(&mut out, LEFT + plot_w / 2.0, TOP + plot_h / 2.0);
    }
    out.push_str("</svg>");
    out
}

/// A heat map: one cell per (row, column), darker for more; `cells[r][c]`.
pub fn heat_map(
    title: &str,
    rows: &[String],
    columns: &[String],
    cells: &[Vec<u64>],
    unit: &str,
) -> String {
    const CELL: f64 = 22.0;
    const LEFT_: f64 = 44.0;
    const TOP_: f64 = 48.0;
    let width = LEFT_ + CELL * columns.len() as f64 + 8.0;
    let height = TOP_ + CELL * rows.len() as f64 + 8.0;
    let max = cells.iter().flatten().copied().max().unwrap_or(0);
    let mut out = String::new();
    open(&mut out, width, height, title);
    for (c, label) in columns.iter().enumerate() {
        // Every third column label, so they fit.
        if c % 3 == 0 {
            let _ = write!(
                out,
                r#"<text x="{}" y="{}" fill="{AXIS}">{}</text>"#,
                num(LEFT_ + CELL * c as f64),
                num(TOP_ - 8.0),
                escape(label)
            );
        }
    }
    for (r, label) in rows.iter().enumerate() {
        let y = TOP_ + CELL * r as f64;
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end" fill="{AXIS}">{}</text>"#,
            num(LEFT_ - 6.0),
            num(y + CELL / 2.0 + 4.0),
            escape(label)
        );
        for (c, col) in columns.iter().enumerate() {
            let v = cells
                .get(r)
                .and_then(|row| row.get(c))
                .copied()
                .unwrap_or(0);
            let (fill, opacity) = if v == 0 || max == 0 {
                (EMPTY_CELL, 1.0)
            } else {
                // At least 0.15, so a single page is visible next to a busy hour.
                (HEAT, 0.15 + 0.85 * v as f64 / max as f64)
            };
            let _ = write!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{fill}" fill-opacity="{:.2}"><title>{}</title></rect>"#,
                num(LEFT_ + CELL * c as f64 + 1.0),
                num(y + 1.0),
                num(CELL - 2.0),
                num(CELL - 2.0),
                opacity,
                escape(&format!("{label} {col}: {v} {unit}"))
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// The heat map of pages by weekday and hour (as from `oncall::page_heat_map`).
pub fn pages_heat_map(title: &str, grid: &[[u64; 24]; 7]) -> String {
    let rows: Vec<String> = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .map(String::from)
        .to_vec();
    let columns: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
    let cells: Vec<Vec<u64>> = grid.iter().map(|r| r.to_vec()).collect();
    heat_map(title, &rows, &columns, &cells, "pages")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the text is well-formed enough: tags balance, attribute values are
    /// quoted, and no raw `<` or `&` sits in text.
    fn well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert!(!text.contains('>'), "stray > in {text:?}");
            for (i, _) in text.match_indices('&') {
                let ent = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&ent),
                    "bad entity {ent:?}"
                );
            }
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "< inside tag {tag:?}");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes in {tag:?}"
            );
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            // No event-handler attributes (onload=, onclick=, …).
            assert!(
                !tag.split_whitespace().any(|a| a.starts_with("on")),
                "handler in {tag:?}"
            );
            if tag.starts_with('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.as_str()),
                    "mismatched </{name}>"
                );
            } else if !tag.ends_with('/') {
                stack.push(name);
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert!(rest.is_empty());
    }

    fn safe(svg: &str) {
        well_formed(svg);
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox=""#));
        assert!(!svg.contains("style="), "inline style");
        assert!(!svg.contains("<script"), "script");
    }

    #[test]
    fn line_chart_escapes_and_titles_every_point() {
        let labels: Vec<String> = ["W1", "W2 <b>", "W3"].map(String::from).to_vec();
        let series = [
            Series {
                name: "TTA \"p50\" & co".into(),
                values: vec![Some(60_000.0), None, Some(90_000.0)],
            },
            Series {
                name: "TTR".into(),
                values: vec![Some(3_600_000.0), Some(7_200_000.0), Some(0.0)],
            },
        ];
        let svg = line_chart(
            "Response <times>",
            &labels,
            &series,
            ValueFormat::DurationMs,
        );
        safe(&svg);
        assert!(svg.contains("<title>Response &lt;times&gt;</title>"));
        // One title for the chart and one per point with a value: 1 + 2 + 3.
        assert_eq!(svg.matches("<title>").count(), 6);
        assert!(svg.contains("<title>TTA &quot;p50&quot; &amp; co · W3: 1m 30s</title>"));
        assert!(svg.contains("<title>TTR · W2 &lt;b&gt;: 2h 00m 00s</title>"));
        // The gap splits TTA into single points: no TTA line, one TTR line.
        assert_eq!(svg.matches("<polyline").count(), 1);
        // Max 2 h → step ⌈2 h / 4⌉ = 30 min → ticks 0, 30m, 1h, 1h 30m, 2h.
        for tick in [">0s<", ">30m<", ">1h<", ">1h 30m<", ">2h<"] {
            assert!(svg.contains(tick), "tick {tick}");
        }
    }

    #[test]
    fn histogram_and_heat_map() {
        let bins = vec![
            ("< 5m".to_string(), 3),
            ("5m–1h".to_string(), 7),
            ("> 1h".to_string(), 0),
        ];
        let svg = histogram("TTA <distribution>", &bins, "incidents");
        safe(&svg);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>&lt; 5m: 3 incidents</title>"));
        // Max 7 → raw step 1.75 → step 2, top 8: ticks 0 2 4 6 8.
        assert!(svg.contains(">8</text>") && !svg.contains(">10</text>"));

        let mut grid = [[0u64; 24]; 7];
        grid[0][3] = 2;
        grid[6][23] = 1;
        let svg = pages_heat_map("Pages", &grid);
        safe(&svg);
        assert_eq!(svg.matches("<rect").count(), 7 * 24);
        assert!(svg.contains("<title>Mon 03:00: 2 pages</title>"));
        // The busiest cell is fully opaque, the single page at 0.15 + 0.85/2 = 0.575,
        // which as a binary float is 0.57499… and prints as 0.57.
        assert!(svg.contains(r#"fill-opacity="1.00"><title>Mon 03:00"#));
        assert!(svg.contains(r#"fill-opacity="0.57"><title>Sun 23:00"#));
    }

    #[test]
    fn empty_charts_say_so() {
        let svg = line_chart("Nothing", &[], &[], ValueFormat::Count);
        safe(&svg);
        assert!(svg.contains("No data"));
        let svg = histogram("Nothing", &[], "x");
        safe(&svg);
        assert!(svg.contains("No data"));
    }

    #[test]
    fn bins_by_hand() {
        const MIN: i64 = 60_000;
        // Edges 1, 5 and 60 min: 30 s → "< 1m"; 1 min exactly and 4 min → "1m–5m";
        // 5 min → "5m–1h"; 2 h → "≥ 1h".
        let bins = duration_bins(
            &[30_000, MIN, 4 * MIN, 5 * MIN, 120 * MIN],
            &[MIN, 5 * MIN, 60 * MIN],
        );
        let want = [("< 1m", 1), ("1m–5m", 2), ("5m–1h", 1), ("≥ 1h", 1)];
        assert_eq!(bins, want.map(|(l, n)| (l.to_string(), n)));
        assert_eq!(duration_bins(&[1, 2], &[]), [("all".to_string(), 2)]);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(short_duration(90_000), "1m 30s");
        assert_eq!(short_duration(90_000_000), "1d 1h");
        assert_eq!(ValueFormat::Share.exact(0.125), "12.5%");
        assert_eq!(ValueFormat::Count.tick(2.5), "2.5");
    }
}
