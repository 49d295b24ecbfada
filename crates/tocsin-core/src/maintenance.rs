//! Maintenance windows: when a service's new alerts are suppressed. A window is
//! one-off (from `starts_at` until `ends_at`) or weekly (on some days of the week
//! at a local start time, for a duration, in an IANA time zone), computed in the
//! window's zone so that it is DST-correct.
//!
//! A weekly start time that does not exist on a day (the clocks jump over it)
//! starts when the jump ends; one that exists twice (the clocks go back) starts
//! at the first. The duration is elapsed time: a 2-hour window is 2 hours long
//! on the night the clocks change too.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;
use crate::Invalid;

/// Longest weekly occurrence: a week.
pub const MAX_DURATION_MINUTES: i64 = 7 * 24 * 60;

/// When a maintenance window is in force.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Once, from `starts_at` (inclusive) to `ends_at` (exclusive).
    OneOff {
        /// Start.
        starts_at: Timestamp,
        /// End.
        ends_at: Timestamp,
    },
    /// Every week on `days` at local `start_time` for `duration_minutes`.
    Weekly {
        /// Days of the week it starts on.
        days: Vec<Weekday>,
        /// Local start time.
        start_time: NaiveTime,
        /// Length of each occurrence.
        duration_minutes: i64,
        /// Zone the days and the start time are in.
        time_zone: Tz,
        /// No occurrence starts at or after this.
        until: Option<Timestamp>,
    },
}

/// Parses a day of the week: `mon`, `monday`, `Mon`, … (field named in errors).
pub fn parse_day(field: &str, s: &str) -> Result<Weekday, Invalid> {
    let l = s.trim().to_ascii_lowercase();
    let days = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];
    days.iter()
        .find(|(short, d)| l == *short || l == day_name(*d))
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            Invalid::new(
                field,
                format!("`{s}` is not a day of the week (mon, tue, wed, thu, fri, sat, sun)"),
            )
        })
}

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// The short name a day is stored and shown as (`mon` … `sun`).
pub fn day_str(d: Weekday) -> &'static str {
    &day_name(d)[..3]
}

/// Parses a local time of day `HH:MM`.
pub fn parse_time_of_day(field: &str, s: &str) -> Result<NaiveTime, Invalid> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| Invalid::new(field, format!("`{s}` is not a time of day HH:MM")))
}

/// Parses an IANA time zone name such as `Europe/Berlin`.
pub fn parse_time_zone(field: &str, s: &str) -> Result<Tz, Invalid> {
    s.trim()
        .parse::<Tz>()
        .map_err(|_| Invalid::new(field, format!("`{s}` is not an IANA time zone name")))
}

/// A schedule as written: one-off (`starts_at`, `ends_at`) or weekly (`days`,
/// `start_time`, `duration_minutes`, `time_zone`, optional `until`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleParts {
    /// One-off: start.
    pub starts_at: Option<chrono::DateTime<chrono::Utc>>,
    /// One-off: end.
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Weekly: days it starts on (`mon` … `sun`).
    pub days: Option<Vec<String>>,
    /// Weekly: local start time, `HH:MM`.
    pub start_time: Option<String>,
    /// Weekly: length of each occurrence in minutes (up to a week).
    pub duration_minutes: Option<i64>,
    /// Weekly: IANA time zone of the days and start time, e.g. `Europe/Berlin`.
    pub time_zone: Option<String>,
    /// Weekly: no occurrence starts at or after this.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

fn required<T: Clone>(field: &str, v: &Option<T>) -> Result<T, Invalid> {
    v.clone()
        .ok_or_else(|| Invalid::new(field, "is required for this kind of window"))
}

impl ScheduleParts {
    /// Parses the parts into a schedule, naming the field at fault.
    pub fn parse(&self) -> Result<Schedule, Invalid> {
        let weekly = self.days.is_some()
            || self.start_time.is_some()
            || self.duration_minutes.is_some()
            || self.time_zone.is_some()
            || self.until.is_some();
        let one_off = self.starts_at.is_some() || self.ends_at.is_some();
        match (one_off, weekly) {
            (true, true) => Err(Invalid::new(
                "days",
                "a window is one-off (starts_at, ends_at) or weekly (days, start_time, duration_minutes, time_zone), not both",
            )),
            (false, false) => Err(Invalid::new(
                "starts_at",
                "give starts_at and ends_at (one-off), or days, start_time, duration_minutes and time_zone (weekly)",
            )),
            (true, false) => Schedule::one_off(
                required("starts_at", &self.starts_at)?,
                required("ends_at", &self.ends_at)?,
            ),
            (false, true) => {
                let days = required("days", &self.days)?
                    .iter()
                    .enumerate()
                    .map(|(i, d)| parse_day(&format!("days[{i}]"), d))
                    .collect::<Result<Vec<_>, _>>()?;
                let start_time =
                    parse_time_of_day("start_time", &required("start_time", &self.start_time)?)?;
                let time_zone =
                    parse_time_zone("time_zone", &required("time_zone", &self.time_zone)?)?;
                let duration = required("duration_minutes", &self.duration_minutes)?;
                Schedule::weekly(days, start_time, duration, time_zone, self.until)
            }
        }
    }
}

/// A maintenance window as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MaintenanceWindow {
    /// Window id.
    pub id: i64,
    /// What the maintenance is.
    pub description: String,
    /// Services whose new alerts it suppresses.
    pub service_ids: Vec<i64>,
    /// When it is in force.
    #[serde(flatten)]
    pub schedule: ScheduleParts,
    /// User who created it.
    pub created_by: Option<i64>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Whether it is in force at the time it was read.
    pub active: bool,
    /// While in force: when the current occurrence ends.
    pub active_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The next start after the time it was read, if any.
    pub next_start: Option<chrono::DateTime<chrono::Utc>>,
}

impl MaintenanceWindow {
    /// Fills `active`, `active_until` and `next_start` for `now`.
    pub fn at(mut self, schedule: &Schedule, now: Timestamp) -> MaintenanceWindow {
        self.active_until = schedule.active_until(now);
        self.active = self.active_until.is_some();
        self.next_start = schedule.next_start(now);
        self
    }
}

impl Schedule {
    /// The schedule as written (the inverse of [`ScheduleParts::parse`]).
    pub fn parts(&self) -> ScheduleParts {
        match self {
            Schedule::OneOff { starts_at, ends_at } => ScheduleParts {
                starts_at: Some(*starts_at),
                ends_at: Some(*ends_at),
                ..Default::default()
            },
            Schedule::Weekly {
                days,
                start_time,
                duration_minutes,
                time_zone,
                until,
            } => ScheduleParts {
                days: Some(days.iter().map(|d| day_str(*d).to_string()).collect()),
                start_time: Some(start_time.format("%H:%M").to_string()),
                duration_minutes: Some(*duration_minutes),
                time_zone: Some(time_zone.name().to_string()),
                until: *until,
                ..Default::default()
            },
        }
    }
}

impl Schedule {
    /// A one-off window; it must end after it starts.
    pub fn one_off(starts_at: Timestamp, ends_at: Timestamp) -> Result<Schedule, Invalid> {
        if ends_at <= starts_at {
            return Err(Invalid::new("ends_at", "must be after starts_at"));
        }
        Ok(Schedule::OneOff { starts_at, ends_at })
    }

    /// A weekly window; at least one day, a duration from 1 minute to a week.
    pub fn weekly(
        mut days: Vec<Weekday>,
        start_time: NaiveTime,
        duration_minutes: i64,
        time_zone: Tz,
        until: Option<Timestamp>,
    ) -> Result<Schedule, Invalid> {
        if days.is_empty() {
            return Err(Invalid::new("days", "name at least one day of the week"));
        }
        if !(1..=MAX_DURATION_MINUTES).contains(&duration_minutes) {
            return Err(Invalid::new(
                "duration_minutes",
                format!("must be between 1 and {MAX_DURATION_MINUTES}"),
            ));
        }
        days.sort_by_key(|d| d.num_days_from_monday());
        days.dedup();
        Ok(Schedule::Weekly {
            days,
            start_time,
            duration_minutes,
            time_zone,
            until,
        })
    }

    /// If the window is in force at `now`, when the current occurrence ends.
    pub fn active_until(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::OneOff { starts_at, ends_at } => {
                (*starts_at <= now && now < *ends_at).then_some(*ends_at)
            }
            Schedule::Weekly { .. } => self
                .occurrences_around(now)
                .filter(|(s, e)| *s <= now && now < *e)
                .map(|(_, e)| e)
                .max(),
        }
    }

    /// Whether the window is in force at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.active_until(now).is_some()
    }

    /// The next start strictly after `now`, if there is one.
    pub fn next_start(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::OneOff { starts_at, .. } => (*starts_at > now).then_some(*starts_at),
            Schedule::Weekly { .. } => self
                .occurrences_around(now)
                .map(|(s, _)| s)
                .filter(|s| *s > now)
                .min(),
        }
    }

    /// Whether the window can never be in force again after `now`.
    pub fn is_over(&self, now: Timestamp) -> bool {
        !self.is_active(now) && self.next_start(now).is_none()
    }

    // Occurrences (start, end) starting on local days from 8 days before `now`'s
    // local date to 8 days after: enough for any duration up to a week.
    fn occurrences_around(&self, now: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp)> {
        let mut out = Vec::new();
        if let Schedule::Weekly {
            days,
            start_time,
            duration_minutes,
            time_zone,
            until,
        } = self
        {
            let today = now.with_timezone(time_zone).date_naive();
            for offset in -8..=8 {
                let date = today + Duration::days(offset);
                if !days.contains(&date.weekday()) {
                    continue;
                }
                let start = local_start(time_zone, date, *start_time);
                if until.is_some_and(|u| start >= u) {
                    continue;
                }
                out.push((start, start + Duration::minutes(*duration_minutes)));
            }
        }
        out.into_iter()
    }
}

// The instant a local wall-clock time on `date` names in `tz`: the earlier of two
// when the clocks go back, the end of the gap when they jump forward.
pub(crate) fn local_start(tz: &Tz, date: NaiveDate, time: NaiveTime) -> Timestamp {
    let mut local: NaiveDateTime = date.and_time(time);
    for _ in 0..(4 * 24) {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&chrono::Utc);
        }
        // Inside a gap: move to the next quarter hour (every zone's gaps end on one).
        let past = (local.time().minute_of_day() % 15) as i64;
        local += Duration::minutes(15 - past);
    }
    tz.from_utc_datetime(&local).with_timezone(&chrono::Utc)
}

trait MinuteOfDay {
    fn minute_of_day(&self) -> u32;
}

impl MinuteOfDay for NaiveTime {
    fn minute_of_day(&self) -> u32 {
        use chrono::Timelike;
        self.hour() * 60 + self.minute()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn weekly(days: &[&str], at: &str, minutes: i64, tz: &str) -> Schedule {
        Schedule::weekly(
            days.iter().map(|d| parse_day("days", d).unwrap()).collect(),
            parse_time_of_day("start_time", at).unwrap(),
            minutes,
            parse_time_zone("time_zone", tz).unwrap(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn one_off_is_half_open() {
        let w = Schedule::one_off(t("2026-01-01T10:00:00Z"), t("2026-01-01T11:00:00Z")).unwrap();
        assert!(!w.is_active(t("2026-01-01T09:59:59Z")));
        assert!(w.is_active(t("2026-01-01T10:00:00Z")));
        assert!(!w.is_active(t("2026-01-01T11:00:00Z")));
        assert_eq!(
            w.next_start(t("2026-01-01T09:00:00Z")),
            Some(t("2026-01-01T10:00:00Z"))
        );
        assert!(w.is_over(t("2026-01-01T11:00:00Z")));
        assert_eq!(
            Schedule::one_off(t("2026-01-01T10:00:00Z"), t("2026-01-01T10:00:00Z"))
                .unwrap_err()
                .field,
            "ends_at"
        );
    }

    #[test]
    fn weekly_in_its_zone() {
        // Saturdays 02:00–04:00 Berlin time (winter: UTC+1).
        let w = weekly(&["sat"], "02:00", 120, "Europe/Berlin");
        // 2026-01-03 is a Saturday.
        assert!(!w.is_active(t("2026-01-03T00:59:00Z")));
        assert_eq!(
            w.active_until(t("2026-01-03T01:00:00Z")),
            Some(t("2026-01-03T03:00:00Z"))
        );
        assert!(!w.is_active(t("2026-01-03T03:00:00Z")));
        assert!(!w.is_active(t("2026-01-04T01:30:00Z")), "not on Sunday");
        assert_eq!(
            w.next_start(t("2026-01-03T03:00:00Z")),
            Some(t("2026-01-10T01:00:00Z"))
        );
    }

    #[test]
    fn weekly_follows_daylight_saving_time() {
        // Sundays 01:00 New York for 3 hours; DST starts 2026-03-08 at 02:00 (→ 03:00).
        let w = weekly(&["sunday"], "01:00", 180, "America/New_York");
        // Before: 01:00 EST = 06:00 UTC.
        assert!(w.is_active(t("2026-03-01T06:00:00Z")));
        assert!(!w.is_active(t("2026-03-01T05:59:00Z")));
        // The day of the change: 01:00 EST = 06:00 UTC, 3 elapsed hours to 09:00 UTC.
        assert_eq!(
            w.active_until(t("2026-03-08T06:30:00Z")),
            Some(t("2026-03-08T09:00:00Z"))
        );
        // After: 01:00 EDT = 05:00 UTC.
        assert!(w.is_active(t("2026-03-15T05:00:00Z")));
        assert!(!w.is_active(t("2026-03-15T04:59:00Z")));
        assert_eq!(
            w.next_start(t("2026-03-02T00:00:00Z")),
            Some(t("2026-03-08T06:00:00Z"))
        );
        assert_eq!(
            w.next_start(t("2026-03-09T00:00:00Z")),
            Some(t("2026-03-15T05:00:00Z"))
        );
    }

    #[test]
    fn start_times_in_a_gap_or_an_overlap() {
        // 02:30 does not exist in Berlin on 2026-03-29: starts at 03:00 CEST (01:00 UTC).
        let w = weekly(&["sun"], "02:30", 60, "Europe/Berlin");
        assert_eq!(
            w.next_start(t("2026-03-28T00:00:00Z")),
            Some(t("2026-03-29T01:00:00Z"))
        );
        // 02:30 happens twice on 2026-10-25: the first, 02:30 CEST (00:30 UTC).
        assert_eq!(
            w.next_start(t("2026-10-24T00:00:00Z")),
            Some(t("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn until_ends_the_series_and_long_windows_span_days() {
        let until = Some(t("2026-01-10T00:00:00Z"));
        let w = Schedule::weekly(
            vec![Weekday::Fri],
            parse_time_of_day("start_time", "22:00").unwrap(),
            3 * 24 * 60,
            chrono_tz::UTC,
            until,
        )
        .unwrap();
        // Friday 2026-01-02 22:00 UTC through Monday 22:00.
        assert!(w.is_active(t("2026-01-05T21:59:00Z")));
        assert!(!w.is_active(t("2026-01-05T22:00:00Z")));
        assert_eq!(
            w.next_start(t("2026-01-06T00:00:00Z")),
            Some(t("2026-01-09T22:00:00Z"))
        );
        assert_eq!(w.next_start(t("2026-01-10T00:00:00Z")), None);
        assert!(w.is_over(t("2026-01-13T00:00:00Z")));
    }

    #[test]
    fn parts_parse_and_round_trip() {
        let p = ScheduleParts {
            days: Some(vec!["Saturday".into(), "sun".into()]),
            start_time: Some("22:30".into()),
            duration_minutes: Some(90),
            time_zone: Some("Europe/London".into()),
            ..Default::default()
        };
        let s = p.parse().unwrap();
        let back = s.parts();
        assert_eq!(back.days, Some(vec!["sat".to_string(), "sun".to_string()]));
        assert_eq!(back.parse().unwrap(), s);
        let field = |p: ScheduleParts| p.parse().unwrap_err().field;
        assert_eq!(field(ScheduleParts::default()), "starts_at");
        assert_eq!(
            field(ScheduleParts {
                days: Some(vec!["mon".into(), "caturday".into()]),
                ..p.clone()
            }),
            "days[1]"
        );
        assert_eq!(
            field(ScheduleParts {
                time_zone: None,
                ..p.clone()
            }),
            "time_zone"
        );
        assert_eq!(
            field(ScheduleParts {
                starts_at: Some(t("2026-01-01T00:00:00Z")),
                ..p
            }),
            "days"
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(
            parse_day("days[1]", "someday").unwrap_err().field,
            "days[1]"
        );
        assert_eq!(
            parse_time_of_day("start_time", "25:00").unwrap_err().field,
            "start_time"
        );
        assert_eq!(
            parse_time_zone("time_zone", "Mars/Olympus")
                .unwrap_err()
                .field,
            "time_zone"
        );
        let tz = parse_time_zone("time_zone", "UTC").unwrap();
        let at = parse_time_of_day("start_time", "00:00").unwrap();
        assert_eq!(
            Schedule::weekly(vec![], at, 10, tz, None)
                .unwrap_err()
                .field,
            "days"
        );
        assert_eq!(
            Schedule::weekly(vec![Weekday::Mon], at, 0, tz, None)
                .unwrap_err()
                .field,
            "duration_minutes"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    const ZONES: [&str; 6] = [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe", // half-hour DST shift
        "Pacific/Chatham",     // +12:45 / +13:45
        "Asia/Kolkata",        // no DST
        "UTC",
    ];

    // The oracle, written without the implementation's shortcuts: an occurrence starts
    // at the first UTC minute whose local wall time reaches the day's start time
    // (which is the earlier instant when clocks go back, and the end of the gap when
    // they jump forward), found by walking minute by minute.
    fn start_of(tz: &Tz, date: NaiveDate, time: NaiveTime) -> Timestamp {
        let target = date.and_time(time);
        let mut u = Utc.from_utc_datetime(&(target - Duration::hours(15)));
        loop {
            if u.with_timezone(tz).naive_local() >= target {
                return u;
            }
            u += Duration::minutes(1);
        }
    }

    fn oracle(days: &[Weekday], time: NaiveTime, minutes: i64, tz: &Tz, t: Timestamp) -> bool {
        let today = t.with_timezone(tz).date_naive();
        (0..=8).any(|back| {
            let date = today - Duration::days(back);
            days.contains(&date.weekday()) && {
                let s = start_of(tz, date, time);
                s <= t && t < s + Duration::minutes(minutes)
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn weekly_windows_are_active_exactly_when_an_occurrence_covers_the_instant(
            day_bits in 1u8..128,
            hour in 0u32..24,
            minute in 0u32..60,
            minutes in prop_oneof![1i64..180, 1i64..=MAX_DURATION_MINUTES],
            zone in 0usize..ZONES.len(),
            // Instants in the months around the northern and southern clock changes.
            month in prop::sample::select(vec![3u32, 4, 9, 10, 11]),
            offset_minutes in 0i64..(31 * 24 * 60),
        ) {
            let days: Vec<Weekday> = (0..7)
                .filter(|i| day_bits & (1 << i) != 0)
                .map(|i| Weekday::try_from(i as u8).unwrap())
                .collect();
            let tz: Tz = ZONES[zone].parse().unwrap();
            let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap();
            let w = Schedule::weekly(days.clone(), time, minutes, tz, None).unwrap();
            let t = Utc.with_ymd_and_hms(2026, month, 1, 0, 0, 0).unwrap()
                + Duration::minutes(offset_minutes);
            prop_assert_eq!(w.is_active(t), oracle(&days, time, minutes, &tz, t), "at {}", t);
            if let Some(end) = w.active_until(t) {
                prop_assert!(end > t);
                prop_assert!(!w.is_active(end) || w.active_until(end).is_some_and(|e| e > end));
            }
            if let Some(next) = w.next_start(t) {
                prop_assert!(next > t);
                prop_assert!(w.is_active(next), "an occurrence is in force at its start");
            }
        }
    }

    // Instants in 2026 where the zone's UTC offset changes, found by scanning.
    fn transitions(zone: usize) -> &'static [Timestamp] {
        use std::sync::OnceLock;
        static ALL: OnceLock<Vec<Vec<Timestamp>>> = OnceLock::new();
        &ALL.get_or_init(|| {
            ZONES
                .iter()
                .map(|z| {
                    let tz: Tz = z.parse().unwrap();
                    let offset = |u: Timestamp| u.with_timezone(&tz).naive_local() - u.naive_utc();
                    let mut out = Vec::new();
                    let mut u = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
                    let end = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
                    while u < end {
                        let next = u + Duration::minutes(15);
                        if offset(u) != offset(next) {
                            out.push(next);
                        }
                        u = next;
                    }
                    out
                })
                .collect()
        })[zone]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

        // Windows that start just around a clock change, asked about just around it.
        #[test]
        fn weekly_windows_are_right_around_clock_changes(
            zone in 0usize..4,
            pick in any::<prop::sample::Index>(),
            start_shift in -150i64..150,
            minutes in 1i64..240,
            ask in -600i64..600,
        ) {
            let tz: Tz = ZONES[zone].parse().unwrap();
            let change = *pick.get(transitions(zone));
            let local = (change + Duration::minutes(start_shift)).with_timezone(&tz).naive_local();
            let time = NaiveTime::from_hms_opt(
                chrono::Timelike::hour(&local.time()),
                chrono::Timelike::minute(&local.time()),
                0,
            )
            .unwrap();
            let days = vec![local.date().weekday()];
            let w = Schedule::weekly(days.clone(), time, minutes, tz, None).unwrap();
            let t = change + Duration::minutes(ask);
            prop_assert_eq!(w.is_active(t), oracle(&days, time, minutes, &tz, t), "at {} (change {})", t, change);
        }
    }
}
