//! On-call load and health, per person, in each person's own time zone, so that
//! burnout shows before people leave.
//!
//! - A **page** is one notification of a person by an escalation (one per person
//!   per escalation step, not one per contact method).
//! - **Outside working hours**: the person's working hours do not contain the
//!   page; with none configured, Monday to Friday 09:00–17:00 in their zone.
//! - **At night**: the local wall clock shows 22:00 or later, or before 07:00.
//!   A night belongs to the date it starts: pages at 23:30 Monday and 03:00
//!   Tuesday are both Monday's night. Wall-clock times make this DST-correct: the
//!   night the clocks spring forward is an hour shorter, and 07:30 local is
//!   morning whatever UTC offset it has.
//! - A **disturbed night** has at least one page; the longest streak counts
//!   consecutive dates.
//! - **Hours on call** is the union of the person's shifts within the window, so
//!   overlapping shifts of two schedules count once.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::metrics::Window;
use crate::escalation::WorkingHours;
use crate::schedule::Shift;
use crate::time::Timestamp;

/// Local time nights start at.
pub const NIGHT_STARTS: NaiveTime = time(22);
/// Local time nights end at.
pub const NIGHT_ENDS: NaiveTime = time(7);

const fn time(h: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, 0, 0) {
        Some(t) => t,
        None => NaiveTime::MIN,
    }
}

/// One page of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageFact {
    /// Who was paged.
    pub user_id: i64,
    /// When the page went out.
    pub sent_at: Timestamp,
    /// The incident it was for.
    pub incident_id: Option<i64>,
}

/// Where and when a person lives and works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// Their user id.
    pub user_id: i64,
    /// Their IANA time zone.
    pub time_zone: Tz,
    /// Their working hours, if configured.
    pub working_hours: Option<WorkingHours>,
}

impl Responder {
    /// The working hours that count: theirs, or Monday to Friday 09:00–17:00 in their zone.
    pub fn working_hours(&self) -> WorkingHours {
        self.working_hours.clone().unwrap_or_else(|| WorkingHours {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: time(9),
            end: time(17),
            time_zone: self.time_zone,
        })
    }

    /// The night (named by the date it starts) `at` falls in, if it falls in one.
    pub fn night_of(&self, at: Timestamp) -> Option<NaiveDate> {
        let local = at.with_timezone(&self.time_zone);
        let t = local.time();
        if t >= NIGHT_STARTS {
            Some(local.date_naive())
        } else if t < NIGHT_ENDS {
            local.date_naive().pred_opt()
        } else {
            None
        }
    }
}

/// One person's load over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallLoad {
    /// Who.
    pub user_id: i64,
    /// Pages received.
    pub pages: u64,
    /// Pages outside their working hours.
    pub outside_working_hours: u64,
    /// Pages at night.
    pub at_night: u64,
    /// Nights with at least one page.
    pub disturbed_nights: u64,
    /// Most consecutive disturbed nights.
    pub longest_disturbed_streak: u64,
    /// Time on call in milliseconds.
    pub on_call_ms: i64,
}

impl OnCallLoad {
    /// Time on call in hours.
    pub fn on_call_hours(&self) -> f64 {
        self.on_call_ms as f64 / 3_600_000.0
    }
}

/// Each person's load over `window`, for everyone paged or on call in it, by user id.
/// People missing from `responders` are taken to live in UTC.
pub fn on_call_load(
    pages: &[PageFact],
    shifts: &[Shift],
    responders: &[Responder],
    window: Window,
) -> Vec<OnCallLoad> {
    let mut pages_of: BTreeMap<i64, Vec<Timestamp>> = BTreeMap::new();
    for p in pages.iter().filter(|p| window.contains(p.sent_at)) {
        pages_of.entry(p.user_id).or_default().push(p.sent_at);
    }
    let mut shifts_of: BTreeMap<i64, Vec<(Timestamp, Timestamp)>> = BTreeMap::new();
    for s in shifts {
        let (from, to) = (s.starts_at.max(window.from), s.ends_at.min(window.to));
        if from < to {
            shifts_of.entry(s.user_id).or_default().push((from, to));
        }
    }
    let users: BTreeSet<i64> = pages_of.keys().chain(shifts_of.keys()).copied().collect();
    users
        .into_iter()
        .map(|user_id| {
            let who = responder(responders, user_id);
            let hours = who.working_hours();
            let sent = pages_of.remove(&user_id).unwrap_or_default();
            let nights: BTreeSet<NaiveDate> =
                sent.iter().filter_map(|&t| who.night_of(t)).collect();
            OnCallLoad {
                user_id,
                pages: sent.len() as u64,
                outside_working_hours: sent.iter().filter(|&&t| !hours.contains(t)).count() as u64,
                at_night: sent.iter().filter(|&&t| who.night_of(t).is_some()).count() as u64,
                disturbed_nights: nights.len() as u64,
                longest_disturbed_streak: longest_streak(&nights),
                on_call_ms: union_ms(shifts_of.remove(&user_id).unwrap_or_default()),
            }
        })
        .collect()
}

fn responder(responders: &[Responder], user_id: i64) -> Responder {
    responders
        .iter()
        .find(|r| r.user_id == user_id)
        .cloned()
        .unwrap_or(Responder {
            user_id,
            time_zone: Tz::UTC,
            working_hours: None,
        })
}

fn longest_streak(nights: &BTreeSet<NaiveDate>) -> u64 {
    let (mut best, mut run, mut prev) = (0, 0, None::<NaiveDate>);
    for &d in nights {
        run = if prev.and_then(|p| p.succ_opt()) == Some(d) {
            run + 1
        } else {
            1
        };
        best = best.max(run);
        prev = Some(d);
    }
    best
}

fn union_ms(mut spans: Vec<(Timestamp, Timestamp)>) -> i64 {
    spans.sort();
    let mut total = Duration::zero();
    let mut current: Option<(Timestamp, Timestamp)> = None;
    for (from, to) in spans {
        current = match current {
            Some((f, t)) if from <= t => Some((f, t.max(to))),
            Some((f, t)) => {
                total += t - f;
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    if let Some((f, t)) = current {
        total += t - f;
    }
    total.num_milliseconds()
}

/// Pages by local weekday (Monday first) and local hour, each page in its
/// recipient's own zone: when people are woken, not when the server was.
pub fn page_heat_map(
    pages: &[PageFact],
    responders: &[Responder],
    window: Window,
) -> [[u64; 24]; 7] {
    let mut grid = [[0u64; 24]; 7];
    for p in pages.iter().filter(|p| window.contains(p.sent_at)) {
        let local = p
            .sent_at
            .with_timezone(&responder(responders, p.user_id).time_zone);
        let day = local.weekday().num_days_from_monday() as usize;
        grid[day][local.hour() as usize] += 1;
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn person(user_id: i64, tz: &str) -> Responder {
        Responder {
            user_id,
            time_zone: tz.parse().unwrap(),
            working_hours: None,
        }
    }

    fn page(user_id: i64, sent_at: Timestamp) -> PageFact {
        PageFact {
            user_id,
            sent_at,
            incident_id: None,
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_same_instant_is_night_in_berlin_and_evening_in_new_york() {
        let (berlin, new_york) = (person(1, "Europe/Berlin"), person(2, "America/New_York"));
        // Wed 2024-01-10 02:30 UTC: Berlin (UTC+1) 03:30 → the night of Tue 9th;
        // New York (UTC−5) Tue 21:30 → evening, not night.
        let t = utc(2024, 1, 10, 2, 30);
        assert_eq!(berlin.night_of(t), Some(date(2024, 1, 9)));
        assert_eq!(new_york.night_of(t), None);
        // 03:00 UTC is 22:00 in New York: the night starts there (inclusive).
        assert_eq!(
            new_york.night_of(utc(2024, 1, 10, 3, 0)),
            Some(date(2024, 1, 9))
        );
        // 06:59 Berlin is night, 07:00 is not.
        assert_eq!(
            berlin.night_of(utc(2024, 1, 10, 5, 59)),
            Some(date(2024, 1, 9))
        );
        assert_eq!(berlin.night_of(utc(2024, 1, 10, 6, 0)), None);
    }

    #[test]
    fn the_night_the_clocks_spring_forward() {
        // Berlin, Sun 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        let berlin = person(1, "Europe/Berlin");
        let night = Some(date(2024, 3, 30));
        // 00:30 UTC = 01:30 CET and 01:30 UTC = 03:30 CEST: both Saturday's night.
        assert_eq!(berlin.night_of(utc(2024, 3, 31, 0, 30)), night);
        assert_eq!(berlin.night_of(utc(2024, 3, 31, 1, 30)), night);
        // 05:30 UTC = 07:30 CEST: morning (it would be 06:30, night, a day earlier).
        assert_eq!(berlin.night_of(utc(2024, 3, 31, 5, 30)), None);
        assert_eq!(
            berlin.night_of(utc(2024, 3, 30, 5, 30)),
            night.and_then(|d| d.pred_opt())
        );
    }

    #[test]
    fn load_by_hand() {
        let window = Window {
            from: utc(2024, 3, 25, 0, 0),
            to: utc(2024, 4, 8, 0, 0),
        };
        let berlin = person(1, "Europe/Berlin");
        let mut ny = person(2, "America/New_York");
        // New York works Mon–Sun 10:00–18:00 in their own zone.
        ny.working_hours = Some(WorkingHours {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            start: time(10),
            end: time(18),
            time_zone: ny.time_zone,
        });
        let pages = [
            // Berlin: Thu 28th 23:10 CET (22:10 UTC) → night of the 28th.
            page(1, utc(2024, 3, 28, 22, 10)),
            // Fri 29th 02:00 CET (01:00 UTC) → night of the 28th again.
            page(1, utc(2024, 3, 29, 1, 0)),
            // Fri 29th 23:30 CET (22:30 UTC) → night of the 29th.
            page(1, utc(2024, 3, 29, 22, 30)),
            // Sun 31st 03:30 CEST (01:30 UTC) → night of Sat 30th (spring forward).
            page(1, utc(2024, 3, 31, 1, 30)),
            // Tue 2nd 10:00 CEST (08:00 UTC): working hours, daytime.
            page(1, utc(2024, 4, 2, 8, 0)),
            // Sat 6th 12:00 CEST: daytime but a weekend → outside working hours.
            page(1, utc(2024, 4, 6, 10, 0)),
            // Before the window: ignored.
            page(1, utc(2024, 3, 24, 23, 0)),
            // New York: Fri 29th 22:30 UTC = 18:30 EDT → outside 10–18, not night.
            page(2, utc(2024, 3, 29, 22, 30)),
            // Sat 30th 15:00 UTC = 11:00 EDT → inside their (weekend) hours.
            page(2, utc(2024, 3, 30, 15, 0)),
        ];
        let shifts = [
            // Two overlapping shifts of user 1 (two schedules): 12:00–20:00 and
            // 18:00–22:00 → union 10 h.
            shift(1, utc(2024, 4, 1, 12, 0), utc(2024, 4, 1, 20, 0)),
            shift(1, utc(2024, 4, 1, 18, 0), utc(2024, 4, 1, 22, 0)),
            // A shift straddling the window's end: only 2024-04-07 12:00 → 04-08 00:00 = 12 h.
            shift(1, utc(2024, 4, 7, 12, 0), utc(2024, 4, 9, 0, 0)),
            // User 3 on call a week and never paged: 168 h.
            shift(3, utc(2024, 3, 25, 0, 0), utc(2024, 4, 1, 0, 0)),
        ];
        let load = on_call_load(&pages, &shifts, &[berlin, ny], window);
        assert_eq!(
            load,
            vec![
                OnCallLoad {
                    user_id: 1,
                    pages: 6,
                    // Every page but Tuesday 10:00 is outside Mon–Fri 09–17.
                    outside_working_hours: 5,
                    at_night: 4,
                    // Nights of the 28th, 29th and 30th.
                    disturbed_nights: 3,
                    longest_disturbed_streak: 3,
                    on_call_ms: 22 * 3_600_000,
                },
                OnCallLoad {
                    user_id: 2,
                    pages: 2,
                    outside_working_hours: 1,
                    at_night: 0,
                    disturbed_nights: 0,
                    longest_disturbed_streak: 0,
                    on_call_ms: 0,
                },
                OnCallLoad {
                    user_id: 3,
                    pages: 0,
                    outside_working_hours: 0,
                    at_night: 0,
                    disturbed_nights: 0,
                    longest_disturbed_streak: 0,
                    on_call_ms: 168 * 3_600_000,
                },
            ]
        );
        assert_eq!(load[2].on_call_hours(), 168.0);
        let grid = page_heat_map(&pages, &[person(1, "Europe/Berlin")], window);
        // Thursday (index 3) 23:00 Berlin and Friday (4) 02:00 Berlin.
        assert_eq!(grid[3][23], 1);
        assert_eq!(grid[4][2], 1);
        // User 2 has no responder here, so UTC: Fri 22:30 and Sat 15:00.
        assert_eq!(grid[4][22], 1);
        assert_eq!(grid[5][15], 1);
        // Eight pages in the window, each in one cell.
        assert_eq!(grid.iter().flatten().sum::<u64>(), 8);
    }

    fn shift(user_id: i64, starts_at: Timestamp, ends_at: Timestamp) -> Shift {
        Shift {
            user_id,
            starts_at,
            ends_at,
            layer: Some(0),
        }
    }

    #[test]
    fn streaks() {
        let nights: BTreeSet<NaiveDate> = [1, 2, 4, 5, 6, 9]
            .into_iter()
            .map(|d| date(2024, 2, d))
            .collect();
        assert_eq!(longest_streak(&nights), 3);
        assert_eq!(longest_streak(&BTreeSet::new()), 0);
        // Across a month end: Feb 29 → Mar 1 (leap year).
        let across: BTreeSet<NaiveDate> =
            [date(2024, 2, 29), date(2024, 3, 1)].into_iter().collect();
        assert_eq!(longest_streak(&across), 2);
    }
}
