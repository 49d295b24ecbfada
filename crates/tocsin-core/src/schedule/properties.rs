//! Random schedules against a brute-force reference, minute by minute.

use super::*;
use chrono::{Datelike, Duration, NaiveDateTime, TimeZone, Utc};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

const ZONES: [&str; 5] = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe", // half-hour DST shift at 02:00
    "Asia/Kolkata",        // +05:30, no DST
    "UTC",
];

/// The reference, written without the implementation's shortcuts: every question
/// is asked about one minute, walking overrides and layers directly; a local wall
/// time names the first UTC minute whose local time reaches it (found by walking
/// minute by minute), which is the earlier instant when clocks go back and the end
/// of the gap when they jump forward.
struct Reference<'a> {
    schedule: &'a Schedule,
    overrides: &'a [Override],
    memo: RefCell<HashMap<NaiveDateTime, Timestamp>>,
}

fn floor(t: Timestamp) -> Timestamp {
    Utc.timestamp_opt(t.timestamp() - t.timestamp().rem_euclid(60), 0)
        .unwrap()
}

impl Reference<'_> {
    fn instant(&self, local: NaiveDateTime) -> Timestamp {
        if let Some(t) = self.memo.borrow().get(&local) {
            return *t;
        }
        let tz = self.schedule.time_zone;
        let mut u = Utc.from_utc_datetime(&(local - Duration::hours(15)));
        while u.with_timezone(&tz).naive_local() < local {
            u += Duration::minutes(1);
        }
        self.memo.borrow_mut().insert(local, u);
        u
    }

    fn on_call(&self, t: Timestamp) -> Option<(i64, Option<usize>)> {
        for o in self.overrides.iter().rev() {
            if floor(o.starts_at) <= t && t < floor(o.ends_at) {
                return Some((o.user_id, None));
            }
        }
        for (i, l) in self.schedule.layers.iter().enumerate().rev() {
            let start = floor(l.start);
            if t < start || (!l.restrictions.is_empty() && !self.in_window(l, t)) {
                continue;
            }
            let turn = self.turn_number(l, t) - self.turn_number(l, start);
            let n = l.users.len() as i64;
            return Some((l.users[turn.rem_euclid(n) as usize], Some(i)));
        }
        None
    }

    // Handoff k happens at the local handoff time on the k-th turn's first local
    // date counted from the start's local date (or k turns of hours after the start).
    fn turn_number(&self, l: &Layer, t: Timestamp) -> i64 {
        let tz = self.schedule.time_zone;
        match l.turn {
            Turn::Hours(h) => (t - floor(l.start))
                .num_minutes()
                .div_euclid(i64::from(h) * 60),
            Turn::Daily | Turn::Weekly | Turn::Days(_) => {
                let len = match l.turn {
                    Turn::Daily => 1,
                    Turn::Weekly => 7,
                    Turn::Days(n) => i64::from(n),
                    Turn::Hours(_) => unreachable!(),
                };
                let d0 = floor(l.start).with_timezone(&tz).date_naive();
                let today = t.with_timezone(&tz).date_naive();
                let mut k = (today - d0).num_days().div_euclid(len) + 2;
                while self.instant((d0 + Duration::days(k * len)).and_time(l.handoff)) > t {
                    k -= 1;
                }
                k
            }
        }
    }

    fn in_window(&self, l: &Layer, t: Timestamp) -> bool {
        let today = t.with_timezone(&self.schedule.time_zone).date_naive();
        (0..=2).any(|back| {
            let d = today - Duration::days(back);
            l.restrictions.iter().any(|r| {
                let end_day = if r.end_time > r.start_time {
                    d
                } else {
                    d + Duration::days(1)
                };
                r.days.contains(&d.weekday())
                    && self.instant(d.and_time(r.start_time)) <= t
                    && t < self.instant(end_day.and_time(r.end_time))
            })
        })
    }
}

// Instants in 2026 where the zone's UTC offset changes, found by scanning; for a
// zone without any, the dates other zones change on.
fn changes(zone: usize) -> &'static [Timestamp] {
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
                if out.is_empty() {
                    out = [
                        "2026-03-08T07:00:00Z",
                        "2026-04-05T15:00:00Z",
                        "2026-10-25T01:00:00Z",
                    ]
                    .iter()
                    .map(|s| s.parse().unwrap())
                    .collect();
                }
                out
            })
            .collect()
    })[zone]
}

fn time_of_day() -> impl Strategy<Value = NaiveTime> {
    prop_oneof![
        prop::sample::select(vec![
            (0u32, 0u32),
            (1, 0),
            (1, 30),
            (2, 0),
            (2, 30),
            (3, 0),
            (8, 0),
            (9, 0),
            (16, 0)
        ]),
        (0u32..24, 0u32..60),
    ]
    .prop_map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap())
}

fn restriction() -> impl Strategy<Value = Restriction> {
    (1u8..128, time_of_day(), time_of_day()).prop_map(|(bits, start_time, end_time)| {
        let end_time = if end_time == start_time {
            end_time + Duration::minutes(90)
        } else {
            end_time
        };
        Restriction {
            days: (0..7)
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| Weekday::try_from(i as u8).unwrap())
                .collect(),
            start_time,
            end_time,
        }
    })
}

fn turn() -> impl Strategy<Value = Turn> {
    prop_oneof![
        Just(Turn::Daily),
        Just(Turn::Weekly),
        (1u32..=48).prop_map(Turn::Hours),
        (1u32..=4).prop_map(Turn::Days),
    ]
}

/// A rotation no user takes two turns in a row of (adjacent repeats dropped,
/// also across the wrap-around), as a schedule must be.
fn rotation(mut users: Vec<i64>) -> Vec<i64> {
    users.dedup();
    while users.len() > 1 && users.first() == users.last() {
        users.pop();
    }
    users
}

/// Restrictions none of which overlaps an earlier one (those are dropped).
fn apart(restrictions: Vec<Restriction>) -> Vec<Restriction> {
    let mut kept: Vec<Restriction> = Vec::new();
    for r in restrictions {
        if kept.iter().all(|k| r.overlap(k).is_none()) {
            kept.push(r);
        }
    }
    kept
}

/// A layer whose start is given in seconds relative to the range's start.
fn layer() -> impl Strategy<Value = (i64, Layer)> {
    (
        prop::collection::vec(1i64..=5, 1..=4),
        -30 * 86_400i64..2 * 86_400,
        turn(),
        time_of_day(),
        prop::collection::vec(restriction(), 0..=2),
    )
        .prop_map(|(users, start, turn, handoff, restrictions)| {
            let layer = Layer {
                name: "layer".into(), // numbered below: names are unique
                users: rotation(users),
                start: chrono::DateTime::UNIX_EPOCH, // replaced below
                turn,
                handoff,
                restrictions: apart(restrictions),
            };
            (start, layer)
        })
}

/// An override as (user, start, length), seconds relative to the range's start.
fn an_override() -> impl Strategy<Value = (i64, i64, i64)> {
    (6i64..=8, -86_400i64..3 * 86_400, 60i64..2000 * 60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn final_shifts_agree_with_the_minute_by_minute_reference(
        zone in 0usize..ZONES.len(),
        pick in any::<prop::sample::Index>(),
        from_offset in -2 * 86_400i64..86_400,
        length in 1i64..3 * 86_400,
        layers in prop::collection::vec(layer(), 1..=3),
        overrides in prop::collection::vec(an_override(), 0..=3),
    ) {
        let from = *pick.get(changes(zone)) + Duration::seconds(from_offset);
        let to = from + Duration::seconds(length);
        let schedule = Schedule {
            time_zone: ZONES[zone].parse().unwrap(),
            layers: layers
                .into_iter()
                .enumerate()
                .map(|(i, (start, l))| Layer {
                    name: format!("layer {i}"),
                    start: from + Duration::seconds(start),
                    ..l
                })
                .collect(),
        };
        prop_assert!(schedule.validate().is_ok());
        let overrides: Vec<Override> = overrides
            .into_iter()
            .map(|(user_id, start, len)| Override {
                user_id,
                starts_at: from + Duration::seconds(start),
                ends_at: from + Duration::seconds(start + len),
            })
            .collect();
        check(&schedule, &overrides, from, to)?;
    }
}

/// Final shifts over `[from, to)` are sorted, non-overlapping, merged, and agree
/// minute by minute with the reference (so they cover exactly what it covers).
fn check(
    schedule: &Schedule,
    overrides: &[Override],
    from: Timestamp,
    to: Timestamp,
) -> Result<(), TestCaseError> {
    let shifts = final_shifts(schedule, overrides, from, to);
    let (lo, hi) = (floor(from), floor(to));

    for s in &shifts {
        prop_assert!(s.starts_at < s.ends_at, "empty shift {:?}", s);
        prop_assert!(
            lo <= s.starts_at && s.ends_at <= hi,
            "outside the range {:?}",
            s
        );
        prop_assert!(floor(s.starts_at) == s.starts_at && floor(s.ends_at) == s.ends_at);
    }
    for w in shifts.windows(2) {
        prop_assert!(
            w[0].ends_at <= w[1].starts_at,
            "unsorted or overlapping {:?}",
            w
        );
        prop_assert!(
            w[0].ends_at < w[1].starts_at
                || (w[0].user_id, w[0].layer) != (w[1].user_id, w[1].layer),
            "not merged {:?}",
            w
        );
    }

    let reference = Reference {
        schedule,
        overrides,
        memo: RefCell::default(),
    };
    let mut i = 0;
    let mut m = lo;
    while m < hi {
        while i < shifts.len() && shifts[i].ends_at <= m {
            i += 1;
        }
        let got = shifts
            .get(i)
            .filter(|s| s.starts_at <= m)
            .map(|s| (s.user_id, s.layer));
        let want = reference.on_call(m);
        prop_assert_eq!(got.is_some(), want.is_some(), "covered at {}?", m);
        prop_assert_eq!(got, want, "on call at {}", m);
        m += Duration::minutes(1);
    }
    let mid = from + (to - from) / 2;
    prop_assert_eq!(
        on_call_at(schedule, overrides, mid),
        reference.on_call(floor(mid))
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // A handoff and a restriction window placed just around a clock change, asked
    // about just around it.
    #[test]
    fn handoffs_and_windows_right_at_a_clock_change_agree_with_the_reference(
        zone in 0usize..3,
        pick in any::<prop::sample::Index>(),
        handoff_shift in -150i64..150,
        edge_shift in -150i64..150,
        window in 1i64..300,
        restricted in any::<bool>(),
        users in prop::collection::vec(1i64..=3, 1..=3),
        turn in turn(),
        start_back in 0i64..(20 * 24 * 60),
        ask in -900i64..300,
        length in 1i64..1200,
    ) {
        let tz: Tz = ZONES[zone].parse().unwrap();
        let change = *pick.get(changes(zone));
        let local_minute = |shift: i64| {
            let l = (change + Duration::minutes(shift)).with_timezone(&tz).naive_local().time();
            NaiveTime::from_hms_opt(l.hour(), l.minute(), 0).unwrap()
        };
        let start_time = local_minute(edge_shift);
        let restrictions = if restricted {
            vec![Restriction {
                days: ALL_DAYS.to_vec(),
                start_time,
                end_time: start_time + Duration::minutes(window),
            }]
        } else {
            vec![]
        };
        let schedule = Schedule {
            time_zone: tz,
            layers: vec![Layer {
                name: "around the change".into(),
                users: rotation(users),
                start: change - Duration::minutes(start_back),
                turn,
                handoff: local_minute(handoff_shift),
                restrictions,
            }],
        };
        prop_assert!(schedule.validate().is_ok());
        let from = change + Duration::minutes(ask);
        check(&schedule, &[], from, from + Duration::minutes(length))?;
    }
}
