//! Five-field cron expressions (minute hour day-of-month month day-of-week) and
//! their next occurrence in an IANA time zone, correct across daylight saving:
//!
//! - A local time the clocks jump over (spring forward) fires once, at the jump
//!   (the first instant after the gap). Several skipped times fire once together.
//! - A local time that happens twice (fall back) fires once, at the first.
//!   So does an hourly expression: the repeated hour runs once, not twice.
//!
//! As in Vixie cron, when both day-of-month and day-of-week are restricted a day
//! matching either fires; a field written with `*` (also `*/2`) is unrestricted.

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::time::Timestamp;
use crate::Invalid;

/// How many days ahead [`Cron::next_after`] looks: nine years covers a 29 February
/// across a century year that is not a leap year.
const HORIZON_DAYS: i64 = 366 * 9;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Cron {
    source: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_star: bool,
    weekdays_star: bool,
}

impl From<Cron> for String {
    fn from(c: Cron) -> String {
        c.source
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parses `m h dom mon dow` or a macro (`@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@yearly`); errors name `field` and the part that is wrong.
    pub fn parse(field: &str, s: &str) -> Result<Cron, Invalid> {
        let source = s.trim();
        let expanded = match source {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(Invalid::new(
                field,
                format!(
                    "`{source}` must have five fields (minute hour day-of-month month day-of-week), not {}",
                    parts.len()
                ),
            ));
        }
        let part = |i: usize, name: &str, min: u32, max: u32, names: &[&str]| {
            bits(parts[i], min, max, names)
                .map_err(|m| Invalid::new(field, format!("`{source}`: the {name} field {m}")))
        };
        let minutes = part(0, "minute", 0, 59, &[])?;
        let hours = part(1, "hour", 0, 23, &[])?;
        let days = part(2, "day-of-month", 1, 31, &[])?;
        let months = part(3, "month", 1, 12, &MONTHS)?;
        let mut weekdays = part(4, "day-of-week", 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f; // 7 is Sunday too
        }
        let cron = Cron {
            source: source.to_string(),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_star: parts[2].starts_with('*'),
            weekdays_star: parts[4].starts_with('*'),
        };
        if !cron.can_fire() {
            return Err(Invalid::new(
                field,
                format!("`{source}` names no day that exists (e.g. 31 February)"),
            ));
        }
        Ok(cron)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    // Only a day-of-month alone can name days that never come.
    fn can_fire(&self) -> bool {
        if !self.weekdays_star && !self.days_star {
            return true;
        }
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12).any(|m| {
            self.months & (1 << m) != 0
                && (1..=LONGEST[m as usize - 1]).any(|d| self.days & (1 << d) != 0)
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.days_star || self.weekdays_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first instant strictly after `after` at which the expression fires in
    /// `tz`; `None` only if nothing fires within nine years.
    pub fn next_after(&self, after: Timestamp, tz: Tz) -> Option<Timestamp> {
        // Local time maps monotonically to instants (earliest of a repeated time,
        // the jump for a skipped one), so the answer is the first candidate whose
        // instant is after `after`. Start a few hours early in local time to see
        // candidates a repeated hour maps before the local reading of `after`.
        let from = after.with_timezone(&tz).naive_local() - Duration::hours(3);
        let from = from.with_second(0)?.with_nanosecond(0)?;
        let mut date = from.date();
        for _ in 0..HORIZON_DAYS {
            if self.day_matches(date) {
                for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                    for m in (0..60).filter(|m| self.minutes & (1u64 << m) != 0) {
                        let local = date.and_hms_opt(h, m, 0)?;
                        if local < from {
                            continue;
                        }
                        let at = resolve(tz, local);
                        if at > after {
                            return Some(at);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

/// The instant a local time names in `tz`: the earlier of a repeated time, and
/// for a time the clocks skip, the first instant after the gap.
pub fn resolve(tz: Tz, local: NaiveDateTime) -> Timestamp {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            // Gaps are at most a day (Samoa skipped 30 December 2011); walk to
            // its end by minutes.
            let mut probe = local;
            for _ in 0..(26 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

// One field as a bit set over min..=max.
fn bits(spec: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let mut out = 0u64;
    for item in spec.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("has a bad step `/{s}`"))?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, max, names)?, value(b, min, max, names)?)
        } else {
            let v = value(range, min, max, names)?;
            // `5/15` means from 5 to the end in steps of 15.
            (v, if item.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("has a backwards range `{range}`"));
        }
        out |= (lo..=hi)
            .step_by(step as usize)
            .fold(0, |acc, v| acc | (1u64 << v));
    }
    Ok(out)
}

fn value(s: &str, min: u32, max: u32, names: &[&str]) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        // Month names count from 1, weekday names from 0 (Sunday).
        return Ok(i as u32 + if min == 1 { 1 } else { 0 });
    }
    match s.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("has {v}, outside {min}-{max}")),
        Err(_) => Err(format!("has `{s}`, which is not a number or a name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn runs(cron: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let c = Cron::parse("cron", cron).unwrap();
        let mut t = at(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = c.next_after(t, tz).unwrap();
            out.push(t.format("%Y-%m-%dT%H:%MZ").to_string());
        }
        out
    }

    #[test]
    fn plain_schedules() {
        let ny = chrono_tz::America::New_York;
        // Weekdays at 09:00 New York (EST, UTC-5), from a Friday evening.
        assert_eq!(
            runs("0 9 * * mon-fri", ny, "2026-01-16T23:00:00Z", 2),
            ["2026-01-19T14:00Z", "2026-01-20T14:00Z"]
        );
        assert_eq!(
            runs("*/20 * * * *", Tz::UTC, "2026-01-01T00:05:00Z", 3),
            [
                "2026-01-01T00:20Z",
                "2026-01-01T00:40Z",
                "2026-01-01T01:00Z"
            ]
        );
        // Exactly on an occurrence: the next one, not the same.
        assert_eq!(
            runs("@hourly", Tz::UTC, "2026-01-01T05:00:00Z", 1),
            ["2026-01-01T06:00Z"]
        );
        // Day-of-month or day-of-week when both are given (the 13th, or a Friday).
        assert_eq!(
            runs("0 0 13 * 5", Tz::UTC, "2026-02-10T00:00:00Z", 3),
            [
                "2026-02-13T00:00Z",
                "2026-02-20T00:00Z",
                "2026-02-27T00:00Z"
            ]
        );
        // 29 February waits for a leap year; 7 is Sunday.
        assert_eq!(
            runs("0 0 29 2 *", Tz::UTC, "2026-01-01T00:00:00Z", 1),
            ["2028-02-29T00:00Z"]
        );
        assert_eq!(
            runs("0 12 * * 7", Tz::UTC, "2026-01-01T00:00:00Z", 1),
            ["2026-01-04T12:00Z"]
        );
    }

    #[test]
    fn new_york_spring_forward_runs_skipped_times_once_at_the_jump() {
        let ny = chrono_tz::America::New_York;
        // 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00Z).
        assert_eq!(
            runs("30 2 * * *", ny, "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T07:00Z",
                "2026-03-09T06:30Z",
                "2026-03-10T06:30Z"
            ]
        );
        // Four skipped quarter hours and 03:00 itself: one run at the jump.
        assert_eq!(
            runs("*/15 2,3 * * *", ny, "2026-03-08T06:50:00Z", 3),
            [
                "2026-03-08T07:00Z",
                "2026-03-08T07:15Z",
                "2026-03-08T07:30Z"
            ]
        );
    }

    #[test]
    fn new_york_fall_back_runs_the_repeated_hour_once() {
        let ny = chrono_tz::America::New_York;
        // 2026-11-01 02:00 EDT goes back to 01:00 EST: 01:30 happens at 05:30Z and 06:30Z.
        assert_eq!(
            runs("30 1 * * *", ny, "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T05:30Z", "2026-11-02T06:30Z"]
        );
        // Asked during the second 01:xx, the first has passed: tomorrow.
        assert_eq!(
            runs("30 1 * * *", ny, "2026-11-01T06:10:00Z", 1),
            ["2026-11-02T06:30Z"]
        );
        // Hourly: 00:00 EDT, 01:00 EDT, then 02:00 EST, never 01:00 EST.
        assert_eq!(
            runs("0 * * * *", ny, "2026-11-01T03:30:00Z", 3),
            [
                "2026-11-01T04:00Z",
                "2026-11-01T05:00Z",
                "2026-11-01T07:00Z"
            ]
        );
    }

    #[test]
    fn berlin_both_changes() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00Z).
        assert_eq!(
            runs("15 2 * * *", berlin, "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00Z", "2026-03-30T00:15Z"]
        );
        // 2026-10-25 03:00 CEST goes back to 02:00 CET: 02:15 fires at 00:15Z only.
        assert_eq!(
            runs("15 2 * * *", berlin, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:15Z", "2026-10-26T01:15Z"]
        );
        // 09:00 local stays 09:00 local across the change.
        assert_eq!(
            runs("0 9 * * *", berlin, "2026-03-28T00:00:00Z", 2),
            ["2026-03-28T08:00Z", "2026-03-29T07:00Z"]
        );
    }

    #[test]
    fn bad_expressions_name_the_field_and_part() {
        for (bad, says) in [
            ("* * * *", "five fields"),
            ("60 * * * *", "minute field has 60"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day-of-week field"),
            ("*/0 * * * *", "bad step"),
            ("5-1 * * * *", "backwards"),
            ("x * * * *", "not a number"),
            ("0 0 31 feb *", "no day that exists"),
        ] {
            let e = Cron::parse("trigger.schedule.cron", bad).unwrap_err();
            assert_eq!(e.field, "trigger.schedule.cron", "{bad}");
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
        assert!(
            Cron::parse("c", "0 0 31 feb 1").is_ok(),
            "or-ed with Mondays"
        );
        assert!(Cron::parse("c", "0 9 * JAN-mar Mon-Fri").is_ok());
    }
}
