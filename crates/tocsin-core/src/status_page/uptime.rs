//! Uptime from a component's recorded status history.
//!
//! A day (midnight to midnight in the page's time zone, so 23 or 25 hours
//! long on the days the clocks change) is coloured by the worst status the
//! component had at any moment of it. Uptime counts a major outage as fully
//! down and a partial outage as [`PARTIAL_WEIGHT`] down, as Atlassian
//! Statuspage does; degraded performance and maintenance count as up. Time
//! before the component existed is not observed: it neither helps nor hurts.

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::ComponentStatus;
use crate::time::Timestamp;

/// The share of a partial outage's time that counts as down.
pub const PARTIAL_WEIGHT: f64 = 0.3;

/// Days of history a page shows.
pub const DAYS_SHOWN: u32 = 90;

/// One stretch of a component's history: `status` from `from` until `until`
/// (`None`: still now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The status held.
    pub status: ComponentStatus,
    /// When it began.
    pub from: Timestamp,
    /// When it ended; `None` while it lasts.
    pub until: Option<Timestamp>,
}

/// One day of a component's uptime.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DayUptime {
    /// The day, in the page's time zone.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    /// The worst status held at any moment of the day; `None` when the
    /// component did not exist yet (no data).
    pub worst: Option<ComponentStatus>,
    /// Seconds of the day the component existed (up to now, for today).
    pub observed_secs: i64,
    /// Seconds in a major outage.
    pub major_secs: i64,
    /// Seconds in a partial outage.
    pub partial_secs: i64,
    /// Seconds of degraded performance.
    pub degraded_secs: i64,
    /// Seconds under maintenance.
    pub maintenance_secs: i64,
}

impl DayUptime {
    /// Seconds counted as down: major outage, plus partial outage weighted.
    pub fn downtime_secs(&self) -> f64 {
        self.major_secs as f64 + PARTIAL_WEIGHT * self.partial_secs as f64
    }

    /// The day's uptime in percent; `None` with no data.
    pub fn percent(&self) -> Option<f64> {
        percent_of(self.downtime_secs(), self.observed_secs)
    }
}

fn percent_of(down: f64, observed: i64) -> Option<f64> {
    (observed > 0).then(|| 100.0 * (1.0 - down / observed as f64))
}

/// Uptime over several days, in percent; `None` when none of them has data.
pub fn percent(days: &[DayUptime]) -> Option<f64> {
    let down: f64 = days.iter().map(DayUptime::downtime_secs).sum();
    let observed: i64 = days.iter().map(|d| d.observed_secs).sum();
    percent_of(down, observed)
}

/// A percentage as shown: two decimals, rounded down, so that a day with a
/// minute of outage never reads as 100.00.
pub fn format_percent(p: f64) -> String {
    // The epsilon keeps 99.99 (stored as 99.98999…) from dropping to 99.98.
    let floored = ((p * 100.0) + 1e-7).floor() / 100.0;
    format!("{floored:.2}")
}

/// The instant day `date` begins in `tz`: local midnight, or the first moment
/// after it that exists where the clocks jump over midnight.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> Timestamp {
    for hour in 0..4 {
        let local = date.and_time(NaiveTime::from_hms_opt(hour, 0, 0).expect("valid time"));
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&chrono::Utc);
        }
    }
    // No zone skips four hours; fall back to UTC midnight rather than panic.
    chrono::Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
}

/// The last `days` days up to and including today (in `tz`, as of `now`), oldest
/// first, from the component's history `spans` (in any order; stretches may
/// not overlap). Today is counted up to `now`.
pub fn daily(spans: &[Span], tz: Tz, now: Timestamp, days: u32) -> Vec<DayUptime> {
    let today = now.with_timezone(&tz).date_naive();
    let first = today - Duration::days(i64::from(days.max(1)) - 1);
    let mut out = Vec::with_capacity(days as usize);
    let mut date = first;
    while date <= today {
        let next = date.succ_opt().expect("a date after this one");
        let start = start_of_day(tz, date);
        let end = start_of_day(tz, next).min(now);
        out.push(day(spans, date, start, end, now));
        date = next;
    }
    out
}

fn day(
    spans: &[Span],
    date: NaiveDate,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
) -> DayUptime {
    let mut d = DayUptime {
        date,
        worst: None,
        observed_secs: 0,
        major_secs: 0,
        partial_secs: 0,
        degraded_secs: 0,
        maintenance_secs: 0,
    };
    for s in spans {
        let from = s.from.max(start);
        let until = s.until.unwrap_or(now).min(end);
        if until <= from {
            continue;
        }
        let secs = (until - from).num_seconds();
        // A stretch shorter than a second still marks the day's worst.
        d.worst = Some(match d.worst {
            None => s.status,
            Some(w) => w.worst(s.status),
        });
        d.observed_secs += secs;
        match s.status {
            ComponentStatus::MajorOutage => d.major_secs += secs,
            ComponentStatus::PartialOutage => d.partial_secs += secs,
            ComponentStatus::DegradedPerformance => d.degraded_secs += secs,
            ComponentStatus::UnderMaintenance => d.maintenance_secs += secs,
            ComponentStatus::Operational => {}
        }
    }
    d
}

/// Turns a component's change points (when it took each status, oldest first)
/// into stretches: each lasts until the next change.
pub fn spans_from_changes(changes: &[(Timestamp, ComponentStatus)]) -> Vec<Span> {
    changes
        .iter()
        .enumerate()
        .map(|(i, (at, status))| Span {
            status: *status,
            from: *at,
            until: changes.get(i + 1).map(|(next, _)| *next),
        })
        .collect()
}
