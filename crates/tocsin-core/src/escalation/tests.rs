//! Unit tests: policy validation errors by field, the plan, and every transition.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::time::Timestamp;

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
    let pairs: std::collections::HashSet<_> =
        TRANSITIONS.iter().map(|(f, e, _)| (*f, *e)).collect();
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

#[test]
fn a_state_without_levels_runs_out_instead_of_panicking() {
    let at = t("2026-03-01T10:00:00Z");
    let mut s = EscalationState::new(policy(vec![], 3));
    s.start(at).unwrap();
    assert!(s.due(at).is_empty());
    assert!(s.is_exhausted());
    let mut s = two_levels();
    s.start(at).unwrap();
    s.level = 7;
    assert!(s.due(at).is_empty());
    assert!(s.is_exhausted());
}

#[test]
fn phase_names_are_the_serde_names() {
    for p in [
        Phase::Pending,
        Phase::Running,
        Phase::Acknowledged,
        Phase::Resolved,
        Phase::Exhausted,
    ] {
        assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
    }
}
