//! Unit tests: notification rules, working hours and resolving steps to requests.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::time::Timestamp;
use crate::Invalid;

fn t(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn level(targets: &[Target], delay_minutes: u32) -> Level {
    Level {
        targets: targets.to_vec(),
        delay_minutes,
    }
}

fn policy(levels: Vec<Level>, repeat: u32) -> EscalationPolicy {
    EscalationPolicy { levels, repeat }
}

fn method(id: i64, kind: ContactKind, verified: bool) -> ContactMethod {
    ContactMethod {
        id,
        kind,
        address: format!("addr-{id}"),
        verified,
    }
}

fn rule(urgency: Urgency, contact_method_id: i64, delay_minutes: u32) -> NotificationRule {
    NotificationRule {
        urgency,
        contact_method_id,
        delay_minutes,
    }
}

fn step_at(at: Timestamp) -> DueStep {
    DueStep {
        level: 1,
        round: 0,
        seq: 3,
        at,
    }
}

#[test]
fn rules_give_requests_by_urgency_delay_and_verified_methods() {
    let methods = vec![
        method(10, ContactKind::Push, true),
        method(11, ContactKind::Sms, true),
        method(12, ContactKind::Voice, false),
        method(13, ContactKind::Email, true),
    ];
    let rules = vec![
        rule(Urgency::High, 10, 0),
        rule(Urgency::High, 11, 2),
        rule(Urgency::High, 12, 5),
        rule(Urgency::Low, 13, 0),
    ];
    let at = t("2026-03-01T10:00:00Z");
    let got = notification_requests(7, &step_at(at), 42, &rules, &methods, Urgency::High, None);
    assert_eq!(
        got.iter()
            .map(|r| (r.contact_method_id, r.at))
            .collect::<Vec<_>>(),
        vec![(10, at), (11, at + Duration::minutes(2))],
        "the unverified voice method is skipped"
    );
    assert_eq!(got[1].idempotency_key, "esc:7:s3:r0:l1:u42:c11:n1");
    assert!(got.iter().all(|r| r.incident_id == 7 && r.user_id == 42));
    let low = notification_requests(7, &step_at(at), 42, &rules, &methods, Urgency::Low, None);
    assert_eq!(low.len(), 1);
    assert_eq!(low[0].contact_method_id, 13);
    // Stopped by an acknowledgement: only what was due strictly before it.
    let kept = until_acknowledged(got.clone(), at + Duration::minutes(2));
    assert_eq!(kept, vec![got[0].clone()]);
}

#[test]
fn rule_validation_names_the_field() {
    let methods = vec![method(10, ContactKind::Push, true)];
    let f = |rules: &[NotificationRule]| validate_rules(rules, &methods).unwrap_err().field;
    assert_eq!(
        f(&[rule(Urgency::High, 10, 0), rule(Urgency::High, 99, 0)]),
        "rules[1].contact_method_id"
    );
    assert_eq!(
        f(&[rule(Urgency::High, 10, 1441)]),
        "rules[0].delay_minutes"
    );
    assert_eq!(
        f(&[
            rule(Urgency::High, 10, 0),
            rule(Urgency::Low, 10, 0),
            rule(Urgency::High, 10, 0)
        ]),
        "rules[2]"
    );
    assert_eq!(
        validate_rules(&[rule(Urgency::Low, 10, 3)], &methods),
        Ok(())
    );
}

fn hours(days: &[&str], start: &str, end: &str, tz: &str) -> Result<WorkingHours, Invalid> {
    WorkingHoursParts {
        days: days.iter().map(|d| d.to_string()).collect(),
        start_time: start.into(),
        end_time: end.into(),
        time_zone: tz.into(),
    }
    .parse("working_hours.")
}

#[test]
fn working_hours_parse_and_name_fields() {
    let f = |r: Result<WorkingHours, Invalid>| r.unwrap_err().field;
    assert_eq!(f(hours(&[], "09:00", "17:00", "UTC")), "working_hours.days");
    assert_eq!(
        f(hours(&["mon", "funday"], "09:00", "17:00", "UTC")),
        "working_hours.days[1]"
    );
    assert_eq!(
        f(hours(&["mon"], "9am", "17:00", "UTC")),
        "working_hours.start_time"
    );
    assert_eq!(
        f(hours(&["mon"], "17:00", "09:00", "UTC")),
        "working_hours.end_time"
    );
    assert_eq!(
        f(hours(&["mon"], "09:00", "17:00", "Mars/Olympus")),
        "working_hours.time_zone"
    );
    let h = hours(&["tue", "mon"], "09:00", "17:00", "Europe/Berlin").unwrap();
    assert_eq!(h.parts().days, vec!["mon", "tue"]);
    assert_eq!(h.parts().start_time, "09:00");
}

#[test]
fn low_urgency_waits_for_working_hours_in_the_users_zone() {
    // Weekdays 09:00–17:00 New York. 2026-03-06 is a Friday; DST starts Sunday 03-08.
    let h = hours(
        &["mon", "tue", "wed", "thu", "fri"],
        "09:00",
        "17:00",
        "America/New_York",
    )
    .unwrap();
    // Friday 12:00 EST (17:00Z): within hours.
    assert_eq!(
        h.next_working(t("2026-03-06T17:00:00Z")),
        t("2026-03-06T17:00:00Z")
    );
    // Friday 17:00 EST exactly: the window is over; Monday 09:00 EDT (13:00Z).
    assert_eq!(
        h.next_working(t("2026-03-06T22:00:00Z")),
        t("2026-03-09T13:00:00Z")
    );
    // Friday 06:00 EST: later that morning.
    assert_eq!(
        h.next_working(t("2026-03-06T11:00:00Z")),
        t("2026-03-06T14:00:00Z")
    );
    let methods = vec![method(1, ContactKind::Email, true)];
    let rules = vec![rule(Urgency::Low, 1, 10), rule(Urgency::High, 1, 0)];
    let step = step_at(t("2026-03-07T15:00:00Z")); // Saturday
    let low = notification_requests(1, &step, 5, &rules, &methods, Urgency::Low, Some(&h));
    assert_eq!(low.len(), 1);
    assert_eq!(low[0].at, t("2026-03-09T13:10:00Z"));
    // High urgency ignores working hours.
    let high = notification_requests(1, &step, 5, &rules, &methods, Urgency::High, Some(&h));
    assert_eq!(high[0].at, step.at);
}

#[test]
fn incident_urgency_maps_medium_to_high() {
    use crate::incident::Level as L;
    assert_eq!(Urgency::from(L::High), Urgency::High);
    assert_eq!(Urgency::from(L::Medium), Urgency::High);
    assert_eq!(Urgency::from(L::Low), Urgency::Low);
}

struct Directory;

impl Resolver for Directory {
    fn on_call(&self, schedule_id: i64, at: Timestamp) -> Vec<i64> {
        match schedule_id {
            // Schedule 1: user 1 until 12:00, then user 3.
            1 if at < t("2026-03-01T12:00:00Z") => vec![1],
            1 => vec![3],
            _ => vec![],
        }
    }
    fn team_members(&self, team_id: i64) -> Vec<i64> {
        match team_id {
            5 => vec![2, 1, 4],
            _ => vec![],
        }
    }
}

fn people() -> BTreeMap<i64, UserNotifications> {
    let mut m = BTreeMap::new();
    for user in [1, 2, 3] {
        m.insert(
            user,
            UserNotifications {
                methods: vec![
                    method(user * 10, ContactKind::Push, true),
                    method(user * 10 + 1, ContactKind::Sms, true),
                ],
                rules: vec![
                    rule(Urgency::High, user * 10, 0),
                    rule(Urgency::High, user * 10 + 1, 2),
                ],
                working_hours: None,
            },
        );
    }
    // User 4 exists but has no verified method.
    m.insert(
        4,
        UserNotifications {
            methods: vec![method(40, ContactKind::Voice, false)],
            rules: vec![rule(Urgency::High, 40, 0)],
            working_hours: None,
        },
    );
    m
}

#[test]
fn a_step_expands_targets_to_users_once_each() {
    use Target::*;
    let p = policy(
        vec![level(
            &[Schedule(1), Team(5), User(2), Schedule(8), Team(6)],
            5,
        )],
        0,
    );
    let step = DueStep {
        level: 0,
        round: 0,
        seq: 0,
        at: t("2026-03-01T10:00:00Z"),
    };
    let r = resolve_step(&p, 9, &step, Urgency::High, &Directory, &people());
    assert_eq!(r.users, vec![1, 2, 4]);
    assert_eq!(r.empty_targets, vec![Schedule(8), Team(6)]);
    assert_eq!(r.unreachable_users, vec![4]);
    assert_eq!(r.requests.len(), 4, "two rules each for users 1 and 2");
    assert!(!r.pages_nobody());
    // Later the schedule has user 3 on call.
    let later = DueStep {
        at: t("2026-03-01T13:00:00Z"),
        ..step
    };
    let r = resolve_step(&p, 9, &later, Urgency::High, &Directory, &people());
    assert_eq!(r.users, vec![3, 2, 1, 4]);
}

#[test]
fn a_step_with_nobody_to_page_is_reported() {
    use Target::*;
    let p = policy(vec![level(&[Schedule(8), User(4), User(77)], 5)], 0);
    let step = DueStep {
        level: 0,
        round: 0,
        seq: 0,
        at: t("2026-03-01T10:00:00Z"),
    };
    let r = resolve_step(&p, 9, &step, Urgency::High, &Directory, &people());
    assert!(r.pages_nobody());
    assert_eq!(r.empty_targets, vec![Schedule(8)]);
    assert_eq!(r.users, vec![4, 77]);
    assert_eq!(r.unreachable_users, vec![4, 77]);
}

mod working_hours_against_the_wall_clock {
    use chrono::{Datelike, NaiveTime, Timelike, Weekday};
    use proptest::prelude::*;

    use super::*;

    const ZONES: [&str; 4] = [
        "America/New_York",
        "Europe/Berlin",
        "Australia/Lord_Howe", // clocks move by half an hour
        "Asia/Kathmandu",      // +05:45, no changes
    ];
    // 2026 clock changes: US spring and fall, EU spring and fall, Lord Howe.
    const AROUND: [&str; 6] = [
        "2026-03-08T07:00:00Z",
        "2026-11-01T06:00:00Z",
        "2026-03-29T01:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-04-04T15:00:00Z",
        "2026-10-03T15:30:00Z",
    ];
    const DAYS: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        // The first instant at or after `at` whose wall clock is in the window,
        // found minute by minute, is what next_working gives.
        #[test]
        fn next_working_is_the_first_minute_in_hours(
            zone in 0usize..ZONES.len(),
            around in 0usize..AROUND.len(),
            // Mostly near the change and around the small hours, where it happens.
            shift_seconds in prop_oneof![3 => -6i64 * 3600..6 * 3600, 1 => -3i64 * 86_400..3 * 86_400],
            day_mask in prop_oneof![1 => Just(127u8), 2 => 1u8..128],
            start_minute in prop_oneof![3 => 0u32..240, 1 => 0u32..1439],
            length in prop_oneof![3 => 1u32..180, 1 => 1u32..1440],
        ) {
            let end_minute = (start_minute + length).min(1439);
            prop_assume!(end_minute > start_minute);
            let hm = |m: u32| NaiveTime::from_hms_opt(m / 60, m % 60, 0).unwrap();
            let days: Vec<Weekday> = (0..7).filter(|i| day_mask & (1 << i) != 0).map(|i| DAYS[i]).collect();
            let h = WorkingHours {
                days: days.clone(),
                start: hm(start_minute),
                end: hm(end_minute),
                time_zone: ZONES[zone].parse().unwrap(),
            };
            let at = t(AROUND[around]) + Duration::seconds(shift_seconds);
            let in_hours = |m: Timestamp| {
                let wall = m.with_timezone(&h.time_zone);
                let minute = wall.hour() * 60 + wall.minute();
                days.contains(&wall.weekday()) && start_minute <= minute && minute < end_minute
            };
            let mut expected = None;
            if in_hours(at) {
                expected = Some(at);
            } else {
                let mut m = crate::time::from_millis(at.timestamp_millis() / 60_000 * 60_000);
                for _ in 0..(8 * 1440) {
                    m += Duration::minutes(1);
                    if in_hours(m) {
                        expected = Some(m);
                        break;
                    }
                }
            }
            prop_assert_eq!(h.next_working(at), expected.unwrap_or(at));
        }
    }
}

#[test]
fn working_hours_are_entered_when_the_clocks_go_back_into_them() {
    // Sundays 00:30–01:30 New York. On 2026-11-01 the clocks go from 02:00 EDT back
    // to 01:00 EST (06:00Z): at 01:45 EDT the window is over, yet at 01:00 EST
    // the wall clock is back in it.
    let h = hours(&["sun"], "00:30", "01:30", "America/New_York").unwrap();
    assert_eq!(
        h.next_working(t("2026-11-01T05:45:00Z")),
        t("2026-11-01T06:00:00Z")
    );
    assert!(h.contains(t("2026-11-01T06:29:00Z")));
    // 01:30 EST: over for good; next Sunday 00:30 EST.
    assert_eq!(
        h.next_working(t("2026-11-01T06:30:00Z")),
        t("2026-11-08T05:30:00Z")
    );
    // Spring forward (2026-03-08, 02:00 EST → 03:00 EDT): a 02:30 start is reached at 03:00 EDT.
    let h = hours(&["sun"], "02:30", "04:00", "America/New_York").unwrap();
    assert_eq!(
        h.next_working(t("2026-03-08T06:00:00Z")),
        t("2026-03-08T07:00:00Z")
    );
}
