use super::*;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::maintenance::local_start;

fn t(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn hm(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn layer(users: &[i64], start: Timestamp, turn: Turn, handoff: &str) -> Layer {
    Layer {
        name: "primary".into(),
        users: users.to_vec(),
        start,
        turn,
        handoff: hm(handoff),
        restrictions: vec![],
    }
}

fn every_day(start: &str, end: &str) -> Restriction {
    Restriction {
        days: ALL_DAYS.to_vec(),
        start_time: hm(start),
        end_time: hm(end),
    }
}

fn schedule(zone: &str, layers: Vec<Layer>) -> Schedule {
    let s = Schedule {
        time_zone: zone.parse().unwrap(),
        layers,
    };
    // Computation only: several layers here share a name, and a rotation that
    // repeats a user (stored before that was refused) still has to merge right.
    s.validate_computable().unwrap();
    s
}

fn local(s: &Shift, tz: &Tz) -> String {
    s.starts_at
        .with_timezone(tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[test]
fn a_daily_nine_oclock_handoff_stays_at_nine_local_across_clock_changes() {
    for (zone, change, hours) in [
        ("America/New_York", "2026-03-08", 23),
        ("America/New_York", "2026-11-01", 25),
        ("Europe/Berlin", "2026-03-29", 23),
        ("Europe/Berlin", "2026-10-25", 25),
    ] {
        let tz: Tz = zone.parse().unwrap();
        let change = date(change);
        let start = local_start(&tz, change - Duration::days(3), hm("09:00"));
        let s = schedule(zone, vec![layer(&[1, 2, 3], start, Turn::Daily, "09:00")]);
        let end = local_start(&tz, change + Duration::days(3), hm("09:00"));
        let shifts = final_shifts(&s, &[], start, end);
        let users: Vec<i64> = shifts.iter().map(|s| s.user_id).collect();
        assert_eq!(users, [1, 2, 3, 1, 2, 3], "{zone}");
        for (i, sh) in shifts.iter().enumerate() {
            let day = change - Duration::days(3) + Duration::days(i as i64);
            assert_eq!(local(sh, &tz), format!("{day} 09:00"), "{zone}");
            let expected = if day == change - Duration::days(1) {
                hours
            } else {
                24
            };
            assert_eq!(
                sh.ends_at - sh.starts_at,
                Duration::hours(expected),
                "{zone} {day}"
            );
        }
    }
}

#[test]
fn a_handoff_in_the_gap_happens_when_it_ends_and_in_the_repeated_hour_at_the_first() {
    // New York springs forward at 02:00 on 8 March 2026: 02:30 does not exist.
    let s = schedule(
        "America/New_York",
        vec![layer(
            &[1, 2],
            t("2026-03-06T07:30:00Z"),
            Turn::Daily,
            "02:30",
        )],
    );
    let starts: Vec<Timestamp> = final_shifts(
        &s,
        &[],
        t("2026-03-06T07:30:00Z"),
        t("2026-03-10T00:00:00Z"),
    )
    .iter()
    .map(|s| s.starts_at)
    .collect();
    assert_eq!(
        starts,
        [
            t("2026-03-06T07:30:00Z"), // 02:30 EST
            t("2026-03-07T07:30:00Z"),
            t("2026-03-08T07:00:00Z"), // 03:00 EDT, the end of the gap
            t("2026-03-09T06:30:00Z"), // 02:30 EDT
        ]
    );
    // New York falls back at 02:00 on 1 November 2026: 01:30 happens twice.
    let s = schedule(
        "America/New_York",
        vec![layer(
            &[1, 2],
            t("2026-10-30T05:30:00Z"),
            Turn::Daily,
            "01:30",
        )],
    );
    let starts: Vec<Timestamp> = final_shifts(
        &s,
        &[],
        t("2026-10-30T05:30:00Z"),
        t("2026-11-03T00:00:00Z"),
    )
    .iter()
    .map(|s| s.starts_at)
    .collect();
    assert_eq!(
        starts,
        [
            t("2026-10-30T05:30:00Z"),
            t("2026-10-31T05:30:00Z"),
            t("2026-11-01T05:30:00Z"), // the first 01:30 (EDT)
            t("2026-11-02T06:30:00Z"), // 01:30 EST
        ]
    );
    // Berlin: 02:30 on 29 March is 03:00 CEST; 02:30 on 25 October is the first (CEST).
    let s = schedule(
        "Europe/Berlin",
        vec![layer(
            &[1, 2],
            t("2026-03-27T01:30:00Z"),
            Turn::Daily,
            "02:30",
        )],
    );
    assert_eq!(
        on_call_at(&s, &[], t("2026-03-29T00:59:00Z")),
        Some((2, Some(0)))
    );
    assert_eq!(
        on_call_at(&s, &[], t("2026-03-29T01:00:00Z")),
        Some((1, Some(0)))
    );
    let s = schedule(
        "Europe/Berlin",
        vec![layer(
            &[1, 2],
            t("2026-10-23T00:30:00Z"),
            Turn::Daily,
            "02:30",
        )],
    );
    assert_eq!(
        on_call_at(&s, &[], t("2026-10-25T00:29:00Z")),
        Some((2, Some(0)))
    );
    assert_eq!(
        on_call_at(&s, &[], t("2026-10-25T00:30:00Z")),
        Some((1, Some(0)))
    );
}

#[test]
fn a_weekly_turn_hands_off_on_the_same_weekday_at_the_same_local_time() {
    // Monday 23 March 2026 09:00 CET; Berlin moves to CEST on the 29th.
    let s = schedule(
        "Europe/Berlin",
        vec![layer(
            &[1, 2],
            t("2026-03-23T08:00:00Z"),
            Turn::Weekly,
            "09:00",
        )],
    );
    let shifts = final_shifts(
        &s,
        &[],
        t("2026-03-23T08:00:00Z"),
        t("2026-04-13T07:00:00Z"),
    );
    let starts: Vec<Timestamp> = shifts.iter().map(|s| s.starts_at).collect();
    assert_eq!(
        starts,
        [
            t("2026-03-23T08:00:00Z"),
            t("2026-03-30T07:00:00Z"),
            t("2026-04-06T07:00:00Z")
        ]
    );
    assert_eq!(
        shifts[0].ends_at - shifts[0].starts_at,
        Duration::hours(167)
    );
    assert_eq!(
        shifts.iter().map(|s| s.user_id).collect::<Vec<_>>(),
        [1, 2, 1]
    );
}

#[test]
fn hour_turns_are_elapsed_time_from_the_start_whatever_the_clocks_do() {
    let s = schedule(
        "America/New_York",
        vec![layer(
            &[1, 2],
            t("2026-03-07T12:00:00Z"),
            Turn::Hours(12),
            "09:00",
        )],
    );
    let shifts = final_shifts(
        &s,
        &[],
        t("2026-03-07T12:00:00Z"),
        t("2026-03-09T12:00:00Z"),
    );
    assert_eq!(shifts.len(), 4);
    for (i, sh) in shifts.iter().enumerate() {
        assert_eq!(
            sh.starts_at,
            t("2026-03-07T12:00:00Z") + Duration::hours(12 * i as i64)
        );
        assert_eq!(sh.ends_at - sh.starts_at, Duration::hours(12));
        assert_eq!(sh.user_id, [1, 2][i % 2]);
    }
}

#[test]
fn the_rotation_starts_with_the_first_user_in_the_turn_containing_the_start() {
    // Started at 15:00 with a 09:00 handoff: user 1 until 09:00 the next day.
    let s = schedule(
        "UTC",
        vec![layer(
            &[1, 2],
            t("2026-11-23T15:00:00Z"),
            Turn::Days(2),
            "09:00",
        )],
    );
    let shifts = final_shifts(
        &s,
        &[],
        t("2026-11-23T00:00:00Z"),
        t("2026-11-28T00:00:00Z"),
    );
    assert_eq!(
        shifts,
        [
            Shift {
                user_id: 1,
                starts_at: t("2026-11-23T15:00:00Z"),
                ends_at: t("2026-11-25T09:00:00Z"),
                layer: Some(0)
            },
            Shift {
                user_id: 2,
                starts_at: t("2026-11-25T09:00:00Z"),
                ends_at: t("2026-11-27T09:00:00Z"),
                layer: Some(0)
            },
            Shift {
                user_id: 1,
                starts_at: t("2026-11-27T09:00:00Z"),
                ends_at: t("2026-11-28T00:00:00Z"),
                layer: Some(0)
            },
        ]
    );
    assert_eq!(on_call_at(&s, &[], t("2026-11-23T14:59:59Z")), None);
}

#[test]
fn higher_layers_then_the_latest_override_take_precedence() {
    let mut business = layer(&[2], t("2026-11-01T00:00:00Z"), Turn::Daily, "09:00");
    business.restrictions = vec![Restriction {
        days: vec![
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
        start_time: hm("09:00"),
        end_time: hm("17:00"),
    }];
    let s = schedule(
        "UTC",
        vec![
            layer(&[1], t("2026-11-01T00:00:00Z"), Turn::Weekly, "00:00"),
            business,
        ],
    );
    let overrides = [
        Override {
            user_id: 3,
            starts_at: t("2026-11-24T10:00:00Z"),
            ends_at: t("2026-11-24T12:00:00Z"),
        },
        Override {
            user_id: 4,
            starts_at: t("2026-11-24T11:00:00Z"),
            ends_at: t("2026-11-24T13:00:00Z"),
        },
    ];
    let got: Vec<(i64, &str, &str, Option<usize>)> = final_shifts(
        &s,
        &overrides,
        t("2026-11-23T00:00:00Z"), // a Monday
        t("2026-11-25T00:00:00Z"),
    )
    .iter()
    .map(|s| {
        (
            s.user_id,
            &*s.starts_at.format("%a %H:%M").to_string().leak(),
            &*s.ends_at.format("%a %H:%M").to_string().leak(),
            s.layer,
        )
    })
    .collect();
    assert_eq!(
        got,
        [
            (1, "Mon 00:00", "Mon 09:00", Some(0)),
            (2, "Mon 09:00", "Mon 17:00", Some(1)),
            (1, "Mon 17:00", "Tue 09:00", Some(0)),
            (2, "Tue 09:00", "Tue 10:00", Some(1)),
            (3, "Tue 10:00", "Tue 11:00", None),
            (4, "Tue 11:00", "Tue 13:00", None),
            (2, "Tue 13:00", "Tue 17:00", Some(1)),
            (1, "Tue 17:00", "Wed 00:00", Some(0)),
        ]
    );
    assert_eq!(
        on_call_at(&s, &overrides, t("2026-11-24T11:30:00Z")),
        Some((4, None))
    );
    assert_eq!(
        on_call_at(&s, &overrides, t("2026-11-24T16:59:59Z")),
        Some((2, Some(1)))
    );
}

#[test]
fn a_restricted_layer_has_nobody_outside_its_windows_and_windows_cross_midnight() {
    let mut nights = layer(&[7], t("2026-11-01T00:00:00Z"), Turn::Weekly, "00:00");
    nights.restrictions = vec![Restriction {
        days: vec![Weekday::Fri],
        start_time: hm("22:00"),
        end_time: hm("06:00"),
    }];
    let s = schedule("UTC", vec![nights]);
    let shifts = final_shifts(
        &s,
        &[],
        t("2026-11-26T00:00:00Z"),
        t("2026-11-30T00:00:00Z"),
    );
    assert_eq!(
        shifts,
        [Shift {
            user_id: 7,
            starts_at: t("2026-11-27T22:00:00Z"),
            ends_at: t("2026-11-28T06:00:00Z"),
            layer: Some(0)
        }]
    );
    assert_eq!(on_call_at(&s, &[], t("2026-11-28T06:00:00Z")), None);
}

#[test]
fn instants_are_truncated_to_the_minute_and_only_one_source_merges() {
    let s = schedule(
        "UTC",
        vec![layer(
            &[5, 5],
            t("2026-11-01T00:00:30Z"),
            Turn::Daily,
            "00:00",
        )],
    );
    let overrides = [Override {
        user_id: 5,
        starts_at: t("2026-11-02T10:00:59Z"),
        ends_at: t("2026-11-02T11:00:01Z"),
    }];
    let shifts = final_shifts(
        &s,
        &overrides,
        t("2026-11-02T00:00:45Z"),
        t("2026-11-03T00:00:10Z"),
    );
    let spans: Vec<(Timestamp, Timestamp, Option<usize>)> = shifts
        .iter()
        .map(|s| (s.starts_at, s.ends_at, s.layer))
        .collect();
    assert_eq!(
        spans,
        [
            (
                t("2026-11-02T00:00:00Z"),
                t("2026-11-02T10:00:00Z"),
                Some(0)
            ),
            (t("2026-11-02T10:00:00Z"), t("2026-11-02T11:00:00Z"), None),
            (
                t("2026-11-02T11:00:00Z"),
                t("2026-11-03T00:00:00Z"),
                Some(0)
            ),
        ]
    );
    assert!(final_shifts(
        &s,
        &[],
        t("2026-11-02T00:00:10Z"),
        t("2026-11-02T00:00:50Z")
    )
    .is_empty());
}

#[test]
fn follow_the_sun_across_three_offices_has_no_gap_and_no_overlap_for_a_week() {
    // Sydney, Berlin and New York offices each cover a third of Berlin's day. The
    // week holds Berlin's spring-forward (29 March) and Sydney's fall-back (5 April);
    // New York changed on 8 March.
    let start = t("2026-03-01T00:00:00Z");
    let office = |name: &str, users: &[i64], from: &str, to: &str| Layer {
        name: name.into(),
        restrictions: vec![every_day(from, to)],
        ..layer(users, start, Turn::Weekly, "08:00")
    };
    let s = schedule(
        "Europe/Berlin",
        vec![
            office("sydney", &[10, 11], "00:00", "08:00"),
            office("berlin", &[20, 21], "08:00", "16:00"),
            office("new york", &[30, 31], "16:00", "00:00"),
        ],
    );
    let tz: Tz = "Europe/Berlin".parse().unwrap();
    let from = local_start(&tz, date("2026-03-26"), hm("00:00"));
    let to = local_start(&tz, date("2026-04-06"), hm("00:00"));
    let shifts = final_shifts(&s, &[], from, to);
    assert_eq!(shifts.first().unwrap().starts_at, from);
    assert_eq!(shifts.last().unwrap().ends_at, to);
    for w in shifts.windows(2) {
        assert_eq!(w[0].ends_at, w[1].starts_at, "no gap, no overlap");
    }
    assert_eq!(shifts.len(), 11 * 3);
    for (i, sh) in shifts.iter().enumerate() {
        assert_eq!(sh.layer, Some(i % 3));
        let at = sh.starts_at.with_timezone(&tz).format("%H:%M").to_string();
        assert_eq!(at, ["00:00", "08:00", "16:00"][i % 3]);
        let hours = (sh.ends_at - sh.starts_at).num_hours();
        let spring = local(sh, &tz) == "2026-03-29 00:00";
        assert_eq!(hours, if spring { 7 } else { 8 }, "{}", local(sh, &tz));
    }
}

fn wire() -> ScheduleParts {
    serde_json::from_value(serde_json::json!({
        "time_zone": "Europe/Berlin",
        "layers": [
            {"name": "base", "users": [1, 2], "start": "2026-11-02T08:00:00Z",
             "turn": "weekly", "handoff": "09:00",
             "restrictions": [
                {"days": ["mon", "Tuesday"], "start_time": "09:00", "end_time": "17:00"},
                {"start_time": "22:00", "end_time": "06:00"}
             ]},
            {"name": "nights", "users": [3], "start": "2026-11-02T08:00:00Z",
             "turn": "hours", "turn_length": 12, "handoff": "00:00"}
        ]
    }))
    .unwrap()
}

#[test]
fn wire_parts_parse_into_a_schedule() {
    let s = wire().parse().unwrap();
    assert_eq!(s.time_zone, chrono_tz::Europe::Berlin);
    assert_eq!(s.layers[0].turn, Turn::Weekly);
    assert_eq!(s.layers[1].turn, Turn::Hours(12));
    assert_eq!(
        s.layers[0].restrictions[0].days,
        [Weekday::Mon, Weekday::Tue]
    );
    assert_eq!(s.layers[0].restrictions[1].days.len(), 7);
    assert_eq!(s.layers[0].restrictions[1].end_time, hm("06:00"));
    assert_eq!(s.parts().parse().unwrap(), s, "parts round-trip");
    let json = serde_json::to_value(s.parts()).unwrap();
    assert_eq!(json["layers"][1]["turn"], "hours");
    assert_eq!(json["layers"][1]["turn_length"], 12);
    assert_eq!(
        json["layers"][0]["restrictions"][0]["days"],
        serde_json::json!(["mon", "tue"])
    );
}

#[test]
fn bad_input_names_the_field() {
    let field = |f: &dyn Fn(&mut ScheduleParts)| {
        let mut w = wire();
        f(&mut w);
        w.parse().unwrap_err().field
    };
    assert_eq!(field(&|w| w.time_zone = "Mars/Olympus".into()), "time_zone");
    assert_eq!(field(&|w| w.layers.clear()), "layers");
    assert_eq!(
        field(&|w| w.layers = vec![w.layers[1].clone(); MAX_LAYERS + 1]),
        "layers"
    );
    assert_eq!(field(&|w| w.layers[1].users.clear()), "layers[1].users");
    assert_eq!(
        field(&|w| w.layers[1].users = vec![1; MAX_USERS + 1]),
        "layers[1].users"
    );
    assert_eq!(field(&|w| w.layers[0].name = " ".into()), "layers[0].name");
    assert_eq!(
        field(&|w| w.layers[0].turn = "fortnightly".into()),
        "layers[0].turn"
    );
    assert_eq!(
        field(&|w| w.layers[1].turn_length = Some(0)),
        "layers[1].turn_length"
    );
    assert_eq!(
        field(&|w| w.layers[1].turn_length = Some(-3)),
        "layers[1].turn_length"
    );
    assert_eq!(
        field(&|w| w.layers[1].turn_length = None),
        "layers[1].turn_length"
    );
    assert_eq!(
        field(&|w| w.layers[1].turn_length = Some(MAX_TURN_HOURS as i64 + 1)),
        "layers[1].turn"
    );
    assert_eq!(
        field(&|w| w.layers[0].handoff = "25:00".into()),
        "layers[0].handoff"
    );
    assert_eq!(
        field(&|w| w.layers[0].restrictions[1].end_time = "22:00".into()),
        "layers[0].restrictions[1].start_time"
    );
    assert_eq!(
        field(&|w| w.layers[0].restrictions[0].days = Some(vec!["funday".into()])),
        "layers[0].restrictions[0].days[0]"
    );
    assert_eq!(
        field(&|w| w.layers[0].restrictions[0].days = Some(vec![])),
        "layers[0].restrictions[0].days"
    );

    let mut s = wire().parse().unwrap();
    s.layers[0].turn = Turn::Days(0);
    assert_eq!(s.validate().unwrap_err().field, "layers[0].turn");

    let o = |a: &str, b: &str| Override {
        user_id: 1,
        starts_at: t(a),
        ends_at: t(b),
    };
    let overrides = [
        o("2026-11-02T08:00:00Z", "2026-11-02T09:00:00Z"),
        o("2026-11-02T08:00:00Z", "2026-11-02T09:00:00Z"),
        o("2026-11-02T08:00:00Z", "2026-11-02T07:00:00Z"),
    ];
    assert_eq!(
        validate_overrides(&overrides).unwrap_err().field,
        "overrides[2].ends_at"
    );
    assert!(validate_overrides(&overrides[..2]).is_ok());
}

#[test]
fn overlaps_within_a_layer_are_refused_naming_the_field() {
    let refused = |f: &dyn Fn(&mut ScheduleParts)| {
        let mut w = wire();
        f(&mut w);
        let e = w.parse().unwrap_err();
        (e.field, e.message)
    };
    let accepted = |f: &dyn Fn(&mut ScheduleParts)| {
        let mut w = wire();
        f(&mut w);
        w.parse().map(|_| ())
    };
    let window = |days: &[&str], start: &str, end: &str| RestrictionParts {
        days: Some(days.iter().map(|d| d.to_string()).collect()),
        start_time: start.into(),
        end_time: end.into(),
    };

    // Two windows of one layer sharing minutes: the later one is named, with the other.
    let (field, message) = refused(&|w| {
        w.layers[0]
            .restrictions
            .push(window(&["tue"], "16:00", "18:00"))
    });
    assert_eq!(field, "layers[0].restrictions[2]");
    assert!(
        message.contains("tue") && message.contains("layers[0].restrictions[0] (09:00–17:00)"),
        "{message}"
    );
    // A night window crossing into the next day overlaps that day's morning…
    let (field, message) = refused(&|w| {
        w.layers[1].restrictions = vec![
            window(&["sun"], "22:00", "06:00"),
            window(&["mon"], "05:00", "07:00"),
        ]
    });
    assert_eq!(field, "layers[1].restrictions[1]");
    assert!(message.contains("restrictions[0]"), "{message}");
    // …and across the end of the week.
    assert_eq!(
        refused(&|w| {
            w.layers[1].restrictions = vec![
                window(&["mon"], "00:30", "01:00"),
                window(&["sun"], "23:00", "01:00"),
            ]
        })
        .0,
        "layers[1].restrictions[1]"
    );
    // Windows that meet, or sit on different days, are fine.
    assert!(accepted(&|w| {
        w.layers[1].restrictions = vec![
            window(&["mon", "tue"], "09:00", "17:00"),
            window(&["mon", "tue"], "17:00", "09:00"),
            window(&["sat"], "09:00", "17:00"),
        ]
    })
    .is_ok());
    // Restrictions of different layers may overlap: the higher layer wins there.
    assert!(
        accepted(&|w| { w.layers[1].restrictions = vec![window(&["mon"], "10:00", "12:00")] })
            .is_ok()
    );

    // One user twice in a row, also when the rotation wraps around.
    let (field, message) = refused(&|w| w.layers[0].users = vec![1, 2, 2, 3]);
    assert_eq!(field, "layers[0].users[2]");
    assert!(message.contains("users[1]"), "{message}");
    assert_eq!(
        refused(&|w| w.layers[0].users = vec![1, 2, 1]).0,
        "layers[0].users[2]"
    );
    assert!(accepted(&|w| w.layers[0].users = vec![1, 2, 1, 3]).is_ok());
    assert!(accepted(&|w| w.layers[0].users = vec![1]).is_ok());

    // Two layers with one name (whatever the case and spacing).
    let (field, message) = refused(&|w| w.layers[1].name = " Base".into());
    assert_eq!(field, "layers[1].name");
    assert!(message.contains("layers[0]"), "{message}");

    // Stored schedules written before these checks still compute.
    let mut w = wire();
    w.layers[1].name = "base".into();
    assert!(w.parse().is_err());
    assert_eq!(w.parse_stored().unwrap().layers[1].name, "base");
}
