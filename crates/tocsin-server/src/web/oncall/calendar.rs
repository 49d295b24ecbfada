//! The schedule calendar's geometry: day columns in the schedule's zone (each
//! as long as that local day really is, so a DST day is 23 or 25 hours wide in
//! time but one column on screen), one row per layer, and bars for shifts. The
//! template draws it as inline SVG; nothing here does I/O.

use std::collections::HashMap;

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tocsin_core::time::Timestamp;

/// Width of the drawing (the SVG's viewBox; CSS scales it).
const WIDTH: f64 = 1000.0;
/// Width of the row labels on the left.
const LABEL_W: f64 = 130.0;
/// Height of the day header.
const HEAD_H: f64 = 40.0;
/// Height of one row.
const ROW_H: f64 = 34.0;
/// Colour classes `u0`..`u7`.
pub(super) const PALETTE: usize = 8;

/// The first instant of local date `d` in `tz`: midnight, or when a clock
/// change that skips midnight ends; the first midnight when it happens twice.
pub(super) fn local_start(tz: Tz, d: NaiveDate) -> Timestamp {
    let mut t = d.and_hms_opt(0, 0, 0).expect("midnight");
    for _ in 0..8 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => return x.with_timezone(&Utc),
            LocalResult::None => t += Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// A `datetime-local` value in `tz` as an instant; a time the clocks skip is
/// refused, one they repeat is the first.
pub(super) fn parse_local(tz: Tz, s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => Some(x.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// One local day.
#[derive(Debug, Clone)]
pub(super) struct Day {
    pub date: NaiveDate,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// `n` local days from `first`.
pub(super) fn days(tz: Tz, first: NaiveDate, n: u32) -> Vec<Day> {
    (0..n)
        .map(|i| {
            let date = first + Duration::days(i64::from(i));
            Day {
                date,
                start: local_start(tz, date),
                end: local_start(tz, date + Duration::days(1)),
            }
        })
        .collect()
}

/// A row's content before layout: a label and who is on call when.
pub(super) struct RowData {
    pub label: String,
    pub final_row: bool,
    pub bars: Vec<(i64, Timestamp, Timestamp)>,
}

/// A day column as drawn.
pub(super) struct Col {
    pub x: String,
    pub w: String,
    pub mid: String,
    pub top: String,
    pub label: String,
    pub title: String,
    pub at: String,
    pub end: String,
    pub weekend: bool,
}

/// A shift as drawn.
pub(super) struct Bar {
    pub x: String,
    pub w: String,
    pub y: String,
    pub h: String,
    pub text_x: String,
    pub text_y: String,
    pub class: String,
    pub text: String,
    pub title: String,
}

/// A row as drawn.
pub(super) struct Row {
    pub y: String,
    pub label_y: String,
    pub label: String,
    pub bars: Vec<Bar>,
}

/// The whole drawing.
pub(super) struct Calendar {
    pub width: String,
    pub height: String,
    pub head_h: String,
    pub cols: Vec<Col>,
    pub rows: Vec<Row>,
    /// x of the "now" line, when now is in range.
    pub now_x: Option<String>,
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// Lays out `rows` over `days`; `colour` gives each user's palette index and
/// `names` their names.
pub(super) fn layout(
    tz: Tz,
    days: &[Day],
    rows: &[RowData],
    colour: &HashMap<i64, usize>,
    names: &HashMap<i64, String>,
    now: Timestamp,
) -> Calendar {
    let n = days.len().max(1) as f64;
    let col_w = (WIDTH - LABEL_W) / n;
    let week = days.len() <= 7;
    let x_of = |t: Timestamp| -> f64 {
        for (i, d) in days.iter().enumerate() {
            if t < d.end {
                let span = (d.end - d.start).num_seconds().max(1) as f64;
                let into = (t - d.start).num_seconds().max(0) as f64;
                return LABEL_W + col_w * (i as f64 + (into / span).min(1.0));
            }
        }
        WIDTH
    };
    let height = HEAD_H + ROW_H * rows.len() as f64 + 4.0;
    let cols = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = LABEL_W + col_w * i as f64;
            let wd = d.date.format("%a").to_string();
            Col {
                x: f(x),
                w: f(col_w),
                mid: f(x + col_w / 2.0),
                top: if week { wd } else { wd[..1].to_string() },
                label: if week {
                    d.date.format("%-d %b").to_string()
                } else {
                    d.date.day().to_string()
                },
                title: d.date.format("%a %-d %b %Y").to_string(),
                at: format!("{}T00:00", d.date.format("%Y-%m-%d")),
                end: format!("{}T00:00", (d.date + Duration::days(1)).format("%Y-%m-%d")),
                weekend: d.date.weekday().number_from_monday() >= 6,
            }
        })
        .collect();
    let hm = |t: Timestamp| t.with_timezone(&tz).format("%a %-d %b %H:%M").to_string();
    let rows = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let y = HEAD_H + ROW_H * r as f64;
            let bars = row
                .bars
                .iter()
                .map(|(user, from, to)| {
                    let (x1, x2) = (x_of(*from), x_of(*to));
                    let w = (x2 - x1).max(1.0);
                    let name = names
                        .get(user)
                        .cloned()
                        .unwrap_or_else(|| format!("user {user}"));
                    // About 6.5 px a character at the calendar's font size.
                    let fits = ((w - 6.0) / 6.5).floor().max(0.0) as usize;
                    let text = if name.chars().count() <= fits {
                        name.clone()
                    } else if fits >= 3 {
                        let mut t: String = name.chars().take(fits - 1).collect();
                        t.push('…');
                        t
                    } else {
                        String::new()
                    };
                    Bar {
                        x: f(x1),
                        w: f(w),
                        y: f(y + 4.0),
                        h: f(ROW_H - 8.0),
                        text_x: f(x1 + 3.0),
                        text_y: f(y + ROW_H / 2.0 + 4.0),
                        class: format!(
                            "shift{} u{}",
                            if row.final_row { " final" } else { "" },
                            colour.get(user).copied().unwrap_or(0) % PALETTE
                        ),
                        text,
                        title: format!("{name}: {} – {}", hm(*from), hm(*to)),
                    }
                })
                .collect();
            Row {
                y: f(y),
                label_y: f(y + ROW_H / 2.0 + 4.0),
                label: row.label.clone(),
                bars,
            }
        })
        .collect();
    let now_x = match (days.first(), days.last()) {
        (Some(a), Some(b)) if a.start <= now && now < b.end => Some(f(x_of(now))),
        _ => None,
    };
    Calendar {
        width: f(WIDTH),
        height: f(height),
        head_h: f(HEAD_H),
        cols,
        rows,
        now_x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_follow_local_midnights_across_dst() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let d = days(tz, NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(), 3);
        assert_eq!((d[1].end - d[1].start).num_hours(), 23);
        assert_eq!((d[0].end - d[0].start).num_hours(), 24);
        assert_eq!(d[2].start.to_rfc3339(), "2026-03-09T04:00:00+00:00");
    }

    #[test]
    fn skipped_local_times_are_refused() {
        let tz: Tz = "America/New_York".parse().unwrap();
        assert!(parse_local(tz, "2026-03-08T02:30").is_none());
        assert_eq!(
            parse_local(tz, "2026-03-08T03:30").unwrap().to_rfc3339(),
            "2026-03-08T07:30:00+00:00"
        );
        // Twice that night: the first, still daylight time.
        assert_eq!(
            parse_local(tz, "2026-11-01T01:30").unwrap().to_rfc3339(),
            "2026-11-01T05:30:00+00:00"
        );
    }
}
