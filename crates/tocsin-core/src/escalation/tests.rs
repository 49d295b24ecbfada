//! Unit tests: validation errors by field, every transition, rules and resolution.

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

fn no_policies(_: i64) -> Option<EscalationPolicy> {
    None
}

fn field(p: &EscalationPolicy) -> String {
    p.validate(None, &no_policies).unwrap_err().field
}

#[test]
fn validation_names_the_field() {
    use Target::*;
    assert_eq!(field(&policy(vec![], 0)), "levels");
    assert_eq!(
        field(&policy(vec![level(&[User(1)], 5); MAX_LEVELS + 1], 0)),
        "levels"
    );
    assert_eq!(field(&policy(vec![level(&[User(1)], 5)], 10)), "repeat");
    assert_eq!(
        field(&policy(vec![level(&[User(1)], 5), level(&[], 5)], 0)),
        "levels[1].targets"
    );
    assert_eq!(
        field(&policy(vec![level(&[User(1)], 1441)], 0)),
        "levels[0].delay_minutes"
    );
    assert_eq!(
        field(&policy(
            vec![
                level(&[User(1)], 5),
                level(&[Schedule(3), Team(2), Schedule(3)], 5)
            ],
            0
        )),
        "levels[1].targets[2]"
    );
    let many: Vec<Target> = (0..=MAX_TARGETS as i64).map(User).collect();
    assert_eq!(
        field(&policy(vec![level(&many, 5)], 0)),
        "levels[0].targets"
    );
    // Same id, different kinds: not duplicates.
    let ok = policy(
        vec![
            level(&[User(1), Schedule(1), Team(1)], 0),
            level(&[User(1)], 1440),
        ],
        9,
    );
    assert_eq!(ok.validate(None, &no_policies), Ok(()));
}

#[test]
fn hand_offs_to_unknown_policies_or_back_to_itself_are_refused() {
    use Target::*;
    // 1 → 2 → 3 (level 1) → 1
    let others = |id: i64| match id {
        2 => Some(policy(vec![level(&[Policy(3)], 5)], 0)),
        3 => Some(policy(
            vec![level(&[User(7)], 5), level(&[Policy(1)], 5)],
            0,
        )),
        4 => Some(policy(vec![level(&[User(8)], 5)], 0)),
        _ => None,
    };
    let p = policy(
        vec![
            level(&[User(1)], 5),
            level(&[User(2)], 5),
            level(&[Policy(4), Policy(2)], 5),
        ],
        0,
    );
    let err = p.validate(Some(1), &others).unwrap_err();
    assert_eq!(err.field, "levels[2].targets[1]");
    assert!(err.message.contains("leads back"), "{}", err.message);
    // The same policy stored under another id has no loop.
    assert_eq!(p.validate(Some(9), &others), Ok(()));
    let selfish = policy(vec![level(&[Policy(1)], 5)], 0);
    let err = selfish.validate(Some(1), &others).unwrap_err();
    assert_eq!(err.field, "levels[0].targets[0]");
    assert!(err.message.contains("itself"));
    let unknown = policy(vec![level(&[User(1)], 5), level(&[Policy(99)], 5)], 0);
    assert_eq!(
        unknown.validate(None, &others).unwrap_err().field,
        "levels[1].targets[0]"
    );
}

#[test]
fn snapshot_expands_hand_offs_to_first_level_targets() {
    use Target::*;
    let others = |id: i64| match id {
        2 => Some(policy(
            vec![level(&[User(5), Policy(3)], 5), level(&[User(6)], 5)],
            3,
        )),
        3 => Some(policy(vec![level(&[Schedule(9), User(1)], 5)], 0)),
        _ => None,
    };
    let p = policy(
        vec![level(&[User(1), Policy(2)], 10), level(&[Policy(42)], 0)],
        1,
    );
    let snap = p.snapshot(&others);
    assert_eq!(snap.levels[0].targets, vec![User(1), User(5), Schedule(9)]);
    assert_eq!(snap.levels[0].delay_minutes, 10);
    assert!(snap.levels[1].targets.is_empty());
    assert_eq!(snap.repeat, 1);
}

#[test]
fn steps_follow_delays_and_repeats() {
    let p = policy(
        vec![level(&[Target::User(1)], 5), level(&[Target::User(2)], 10)],
        2,
    );
    let got: Vec<(usize, u32, i64)> = steps(&p)
        .iter()
        .map(|s| (s.level, s.round, s.at_offset.num_minutes()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 0, 0),
            (1, 0, 5),
            (0, 1, 15),
            (1, 1, 20),
            (0, 2, 30),
            (1, 2, 35)
        ]
    );
    assert_eq!(p.exhausted_offset(), Duration::minutes(45));
}

#[test]
fn all_zero_delays_page_every_level_once() {
    let p = policy(
        vec![level(&[Target::User(1)], 0), level(&[Target::User(2)], 0)],
        9,
    );
    assert_eq!(p.effective_repeat(), 0);
    assert_eq!(steps(&p).len(), 2);
    let mut s = EscalationState::new(p);
    let at = t("2026-03-01T10:00:00Z");
    s.start(at).unwrap();
    let due = s.due(at);
    assert_eq!(due.iter().map(|d| d.level).collect::<Vec<_>>(), vec![0, 1]);
    assert!(due.iter().all(|d| d.at == at && d.round == 0));
    assert!(s.is_exhausted());
    assert_eq!(s.next_due(), None);
}

fn two_levels() -> EscalationState {
    EscalationState::new(policy(
        vec![level(&[Target::User(1)], 5), level(&[Target::User(2)], 10)],
        1,
    ))
}

#[test]
fn a_running_escalation_notifies_each_level_once_then_runs_out() {
    let start = t("2026-03-01T10:00:00Z");
    let mut s = two_levels();
    assert_eq!(s.phase, Phase::Pending);
    assert!(s.due(start).is_empty(), "nothing is due before start");
    s.start(start).unwrap();
    assert_eq!(s.next_due(), Some(start));
    let first = s.due(start);
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].level, first[0].round, first[0].seq), (0, 0, 0));
    assert!(s.due(start).is_empty(), "a step is due once");
    assert_eq!(s.next_due(), Some(start + Duration::minutes(5)));
    assert!(s.due(start + Duration::minutes(4)).is_empty());
    // Called late: everything due by then, in order, with the planned times.
    let late = s.due(start + Duration::minutes(21));
    let got: Vec<(usize, u32, u32, Timestamp)> = late
        .iter()
        .map(|d| (d.level, d.round, d.seq, d.at))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 0, 1, start + Duration::minutes(5)),
            (0, 1, 2, start + Duration::minutes(15)),
            (1, 1, 3, start + Duration::minutes(20)),
        ]
    );
    assert!(!s.is_exhausted());
    assert_eq!(s.next_due(), Some(start + Duration::minutes(30)));
    assert!(s.due(start + Duration::minutes(29)).is_empty());
    assert!(s.due(start + Duration::minutes(30)).is_empty());
    assert!(s.is_exhausted());
    assert_eq!(s.next_due(), None);
}

#[test]
fn acknowledge_stops_everything() {
    let start = t("2026-03-01T10:00:00Z");
    let mut s = two_levels();
    s.start(start).unwrap();
    s.due(start);
    s.acknowledge(start + Duration::minutes(1)).unwrap();
    assert_eq!(s.phase, Phase::Acknowledged);
    assert_eq!(s.next_due(), None);
    assert!(s.due(start + Duration::days(1)).is_empty());
    // A retried acknowledgement is harmless; the table refuses starting again.
    s.acknowledge(start + Duration::minutes(2)).unwrap();
    assert_eq!(
        s.start(start),
        Err(EscalationError::Refused {
            phase: Phase::Acknowledged,
            event: Event::Start
        })
    );
}

#[test]
fn resolve_cancels_for_good() {
    let start = t("2026-03-01T10:00:00Z");
    for acked in [false, true] {
        let mut s = two_levels();
        s.start(start).unwrap();
        if acked {
            s.acknowledge(start).unwrap();
        }
        s.resolve(start + Duration::minutes(1)).unwrap();
        assert_eq!(s.phase, Phase::Resolved);
        assert!(s.due(start + Duration::days(1)).is_empty());
        assert_eq!(s.next_due(), None);
        s.resolve(start + Duration::minutes(2)).unwrap();
        for refused in [
            s.clone().acknowledge(start),
            s.clone().escalate_now(0, start),
            s.clone().start(start),
        ] {
            assert!(matches!(
                refused,
                Err(EscalationError::Refused {
                    phase: Phase::Resolved,
                    ..
                })
            ));
        }
    }
}

#[test]
fn escalate_now_moves_to_the_level_and_restarts_timing_there() {
    let start = t("2026-03-01T10:00:00Z");
    let mut s = two_levels();
    s.start(start).unwrap();
    s.due(start);
    let now = start + Duration::minutes(2);
    s.escalate_now(1, now).unwrap();
    assert_eq!(s.next_due(), Some(now));
    let due = s.due(now);
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].level, due[0].round, due[0].seq, due[0].at),
        (1, 0, 1, now)
    );
    // The next level (round 1, level 0) follows level 1's delay from now.
    assert_eq!(s.next_due(), Some(now + Duration::minutes(10)));
    assert_eq!(
        s.escalate_now(2, now),
        Err(EscalationError::NoSuchLevel {
            level: 2,
            levels: 2
        })
    );
    // Escalating the same level again pages it again, under a new sequence number.
    s.escalate_now(1, now).unwrap();
    assert_eq!(s.due(now)[0].seq, 2);
}

#[test]
fn escalate_now_after_ack_or_exhaustion_runs_again() {
    let start = t("2026-03-01T10:00:00Z");
    let mut s = two_levels();
    s.start(start).unwrap();
    s.acknowledge(start).unwrap();
    s.escalate_now(0, start + Duration::minutes(3)).unwrap();
    assert_eq!(s.phase, Phase::Running);
    assert_eq!(s.due(start + Duration::minutes(3)).len(), 1);

    let mut s = two_levels();
    s.start(start).unwrap();
    s.due(start + Duration::hours(1));
    assert!(s.is_exhausted());
    s.escalate_now(0, start + Duration::hours(2)).unwrap();
    let due = s.due(start + Duration::hours(3));
    // The last pass, from level 0: two steps, then exhausted again.
    assert_eq!(
        due.iter().map(|d| (d.level, d.round)).collect::<Vec<_>>(),
        vec![(0, 1), (1, 1)]
    );
    assert!(s.is_exhausted());
    assert_eq!(s.clone().acknowledge(start), Ok(()));
}

#[test]
fn the_transition_table_is_complete_and_consistent() {
    use Event::*;
    use Phase::*;
    for phase in [Pending, Running, Acknowledged, Resolved, Exhausted] {
        // Resolve is always allowed; nothing leaves Resolved.
        assert_eq!(next_phase(phase, Resolve), Some(Resolved));
        for event in [Start, Acknowledge, EscalateNow] {
            if phase == Resolved {
                assert_eq!(next_phase(phase, event), None);
            }
        }
    }
    assert_eq!(next_phase(Running, Start), None);
    assert_eq!(next_phase(Pending, EscalateNow), None);
    let mut pairs: Vec<_> = TRANSITIONS.iter().map(|(f, e, _)| (*f, *e)).collect();
    pairs.dedup();
    assert_eq!(pairs.len(), TRANSITIONS.len(), "one row per (phase, event)");
}

#[test]
fn state_round_trips_as_json() {
    let start = t("2026-03-01T10:00:00Z");
    let mut s = two_levels();
    s.start(start).unwrap();
    s.due(start);
    let json = serde_json::to_string(&s).unwrap();
    let mut back: EscalationState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert_eq!(
        back.due(start + Duration::hours(1)),
        s.due(start + Duration::hours(1))
    );
    let v = serde_json::to_value(Target::Schedule(4)).unwrap();
    assert_eq!(v, serde_json::json!({"schedule": 4}));
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
