//! Property tests: random policies, people and event sequences against
//! independently computed expectations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::*;
use crate::time::Timestamp;

fn t0() -> Timestamp {
    DateTime::parse_from_rfc3339("2026-03-06T21:30:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (1i64..=6).prop_map(Target::User),
        (1i64..=3).prop_map(Target::Schedule),
        (1i64..=3).prop_map(Target::Team),
    ]
}

fn level() -> impl Strategy<Value = Level> {
    (
        proptest::collection::btree_set(target(), 1..=3),
        prop_oneof![Just(0u32), 0u32..=30],
    )
        .prop_map(|(targets, delay_minutes)| Level {
            targets: targets.into_iter().collect(),
            delay_minutes,
        })
}

fn policy() -> impl Strategy<Value = EscalationPolicy> {
    (
        proptest::collection::vec(level(), 1..=4),
        0u32..=3,
        any::<bool>(),
    )
        .prop_map(|(mut levels, repeat, all_zero)| {
            if all_zero {
                levels.iter_mut().for_each(|l| l.delay_minutes = 0);
            }
            EscalationPolicy { levels, repeat }
        })
}

fn urgency() -> impl Strategy<Value = Urgency> {
    prop_oneof![Just(Urgency::High), Just(Urgency::Low)]
}

// Users 1..=6: each with up to three methods (ids user*10+i) and up to four rules.
fn people() -> impl Strategy<Value = BTreeMap<i64, UserNotifications>> {
    proptest::collection::vec(
        (
            proptest::collection::vec(any::<bool>(), 0..=3),
            proptest::collection::vec((urgency(), 0i64..=3, 0u32..=10), 0..=4),
            any::<bool>(),
        ),
        6,
    )
    .prop_map(|users| {
        users
            .into_iter()
            .enumerate()
            .map(|(i, (verified, rules, working))| {
                let user = i as i64 + 1;
                let methods = verified
                    .iter()
                    .enumerate()
                    .map(|(j, v)| ContactMethod {
                        id: user * 10 + j as i64,
                        kind: ContactKind::Push,
                        address: format!("u{user}m{j}"),
                        verified: *v,
                    })
                    .collect();
                let rules = rules
                    .into_iter()
                    .map(|(urgency, m, delay_minutes)| NotificationRule {
                        urgency,
                        contact_method_id: user * 10 + m,
                        delay_minutes,
                    })
                    .collect();
                let working_hours = working.then(|| {
                    WorkingHoursParts {
                        days: vec!["mon".into(), "wed".into(), "fri".into()],
                        start_time: "09:00".into(),
                        end_time: "17:00".into(),
                        time_zone: "America/New_York".into(),
                    }
                    .parse("")
                    .unwrap()
                });
                (
                    user,
                    UserNotifications {
                        methods,
                        rules,
                        working_hours,
                    },
                )
            })
            .collect()
    })
}

// On-call changes every seven minutes; schedule 3 is empty on odd minutes; team 3 is empty.
struct Directory;

impl Resolver for Directory {
    fn on_call(&self, schedule_id: i64, at: Timestamp) -> Vec<i64> {
        let minute = (at - t0()).num_minutes();
        if schedule_id == 3 && minute % 2 == 1 {
            return vec![];
        }
        vec![(schedule_id + minute / 7) % 6 + 1]
    }
    fn team_members(&self, team_id: i64) -> Vec<i64> {
        match team_id {
            1 => vec![1, 2],
            2 => vec![2, 3, 4, 5],
            _ => vec![],
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Tick,
    Acknowledge,
    Resolve,
    EscalateNow(usize),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Tick),
        1 => Just(Op::Acknowledge),
        1 => Just(Op::Resolve),
        2 => (0usize..4).prop_map(Op::EscalateNow),
        1 => Just(Op::Restart),
    ]
}

// The requests a step implies, counted without the code under test: distinct
// users from the targets, and for each, rules of the urgency whose method is verified.
fn expected_requests(
    p: &EscalationPolicy,
    step: &DueStep,
    urgency: Urgency,
    people: &BTreeMap<i64, UserNotifications>,
) -> usize {
    let mut users = BTreeSet::new();
    for target in &p.levels[step.level].targets {
        match *target {
            Target::User(u) => {
                users.insert(u);
            }
            Target::Schedule(s) => users.extend(Directory.on_call(s, step.at)),
            Target::Team(team) => users.extend(Directory.team_members(team)),
            Target::Policy(_) => {}
        }
    }
    users
        .iter()
        .filter_map(|u| people.get(u))
        .map(|n| {
            n.rules
                .iter()
                .filter(|r| r.urgency == urgency)
                .filter(|r| {
                    n.methods
                        .iter()
                        .any(|m| m.verified && m.id == r.contact_method_id)
                })
                .count()
        })
        .sum()
}

// Each due step, when it was asked for, and before which event (`events.len()`
// for the final look a month later).
struct Run {
    steps: Vec<(DueStep, Timestamp, usize)>,
}

// Only a resolved escalation refuses an acknowledgement or escalate-now.
fn prop_assert_eq_or_refused(r: Result<(), EscalationError>, phase: Phase) {
    if phase == Phase::Resolved {
        assert!(matches!(r, Err(EscalationError::Refused { .. })), "{r:?}");
    } else {
        r.unwrap();
    }
}

// Drives an escalation through `events`, collecting what is due before each event.
fn run(p: &EscalationPolicy, events: &[(u32, Op)], restarts: bool) -> Run {
    let mut s = EscalationState::new(p.clone());
    let mut now = t0();
    s.start(now).unwrap();
    let mut out = Run { steps: vec![] };
    let collect = |s: &mut EscalationState, now: Timestamp, i: usize, out: &mut Run| {
        for d in s.due(now) {
            out.steps.push((d, now, i));
        }
    };
    for (i, (gap, op)) in events.iter().enumerate() {
        now += Duration::minutes(i64::from(*gap));
        collect(&mut s, now, i, &mut out);
        match *op {
            Op::Tick => {}
            Op::Acknowledge => {
                let r = s.acknowledge(now);
                prop_assert_eq_or_refused(r, s.phase);
            }
            Op::Resolve => s.resolve(now).unwrap(),
            Op::EscalateNow(l) => {
                let r = s.escalate_now(l % p.levels.len(), now);
                prop_assert_eq_or_refused(r, s.phase);
            }
            Op::Restart if restarts => {
                s = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            }
            Op::Restart => {}
        }
    }
    collect(&mut s, now + Duration::days(30), events.len(), &mut out);
    assert_eq!(s.next_due(), None, "nothing left after a month");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn undisturbed_escalation_follows_the_plan(p in policy()) {
        let n = p.levels.len();
        let all_zero = p.levels.iter().all(|l| l.delay_minutes == 0);
        let rounds = if all_zero { 1 } else { p.repeat as usize + 1 };
        let mut expected = Vec::new();
        let mut at = t0();
        for k in 0..n * rounds {
            expected.push((k % n, (k / n) as u32, k as u32, at));
            at += Duration::minutes(i64::from(p.levels[k % n].delay_minutes));
        }
        // Woken exactly when due, as the engine is.
        let mut s = EscalationState::new(p.clone());
        s.start(t0()).unwrap();
        let mut got = Vec::new();
        while let Some(next) = s.next_due() {
            prop_assert!(next >= got.last().map(|(_, _, _, a)| *a).unwrap_or(t0()));
            got.extend(s.due(next).into_iter().map(|d| (d.level, d.round, d.seq, d.at)));
        }
        prop_assert_eq!(&got, &expected);
        prop_assert!(s.is_exhausted());
        let plan: Vec<_> = steps(&p)
            .iter()
            .map(|st| (st.level, st.round, t0() + st.at_offset))
            .collect();
        let from_expected: Vec<_> = expected.iter().map(|(l, r, _, a)| (*l, *r, *a)).collect();
        prop_assert_eq!(plan, from_expected);
        prop_assert_eq!(t0() + p.exhausted_offset(), at);
    }

    #[test]
    fn events_never_repeat_or_reorder_steps(
        p in policy(),
        events in proptest::collection::vec((0u32..40, op()), 0..12),
    ) {
        let Run { steps } = run(&p, &events, true);
        // Each step once, numbered in order without gaps.
        for (i, (d, _, _)) in steps.iter().enumerate() {
            prop_assert_eq!(d.seq, i as u32);
        }
        // In time order, never before it is asked for.
        for w in steps.windows(2) {
            prop_assert!(w[0].0.at <= w[1].0.at);
        }
        for (d, asked, _) in &steps {
            prop_assert!(d.at <= *asked);
            prop_assert!(d.level < p.levels.len());
            prop_assert!(d.round <= p.effective_repeat());
        }
        // Nothing is due after an acknowledgement until someone escalates by
        // hand, and nothing at all after a resolve.
        let resolved = events.iter().position(|(_, op)| matches!(op, Op::Resolve));
        if let Some(r) = resolved {
            prop_assert!(steps.iter().all(|(_, _, i)| *i <= r));
        }
        for (a, (_, op)) in events.iter().enumerate() {
            if !matches!(op, Op::Acknowledge) || resolved.is_some_and(|r| r < a) {
                continue;
            }
            let until = events[a + 1..]
                .iter()
                .position(|(_, op)| matches!(op, Op::EscalateNow(_)))
                .map_or(events.len(), |e| a + 1 + e);
            prop_assert!(
                steps.iter().all(|(_, _, i)| *i <= a || *i > until),
                "a step was due between the acknowledgement at event {} and event {}", a, until
            );
        }
        // A restart from the stored snapshot changes nothing.
        let straight = run(&p, &events, false);
        prop_assert_eq!(straight.steps, steps);
    }

    #[test]
    fn requests_are_what_policy_and_rules_imply_with_stable_unique_keys(
        p in policy(),
        people in people(),
        urg in urgency(),
        incident in 1i64..1000,
        events in proptest::collection::vec((0u32..40, op()), 0..8),
    ) {
        let Run { steps } = run(&p, &events, true);
        let mut keys: HashMap<String, (u32, u32, usize, i64, i64)> = HashMap::new();
        let mut total = 0;
        for (d, _, _) in &steps {
            let r = resolve_step(&p, incident, d, urg, &Directory, &people);
            prop_assert_eq!(r.requests.len(), expected_requests(&p, d, urg, &people));
            prop_assert_eq!(r.pages_nobody(), r.requests.is_empty());
            let users: BTreeSet<i64> = r.users.iter().copied().collect();
            prop_assert_eq!(users.len(), r.users.len(), "each user once per step");
            // Recomputing, as a retry or a second node would, gives the same keys.
            let again = resolve_step(&p, incident, d, urg, &Directory, &people);
            prop_assert_eq!(&again, &r);
            for req in &r.requests {
                prop_assert!(req.at >= d.at);
                let tuple = (d.seq, d.round, d.level, req.user_id, req.contact_method_id);
                if let Some(prev) = keys.insert(req.idempotency_key.clone(), tuple) {
                    // Two rules of one user on one method may share the tuple; their
                    // rule indexes differ, so their keys must too.
                    prop_assert!(false, "key {} issued twice: {:?} and {:?}", req.idempotency_key, prev, tuple);
                }
                total += 1;
            }
            // Stopped by an acknowledgement at any time: only what was due before it.
            let ack = d.at + Duration::minutes(3);
            let kept = until_acknowledged(r.requests.clone(), ack);
            prop_assert_eq!(kept.len(), r.requests.iter().filter(|q| q.at < ack).count());
        }
        prop_assert_eq!(keys.len(), total);
    }
}

// A policy whose levels hand off to policies 1..=6; 6 does not exist.
fn handing_off() -> impl Strategy<Value = EscalationPolicy> {
    proptest::collection::vec(proptest::collection::btree_set(1i64..=6, 0..=2), 1..=3).prop_map(
        |levels| EscalationPolicy {
            levels: levels
                .into_iter()
                .map(|ids| Level {
                    targets: std::iter::once(Target::User(1))
                        .chain(ids.into_iter().map(Target::Policy))
                        .collect(),
                    delay_minutes: 5,
                })
                .collect(),
            repeat: 0,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hand_off_loops_are_refused_exactly(
        candidate in handing_off(),
        stored in proptest::collection::vec(handing_off(), 4),
    ) {
        // Editing policy 1; policies 2..=5 are stored. Reachability by transitive closure.
        let edges = |p: &EscalationPolicy| -> Vec<i64> {
            p.levels.iter().flat_map(|l| l.targets.iter()).filter_map(|t| match t {
                Target::Policy(id) => Some(*id),
                _ => None,
            }).collect()
        };
        let mut reach = [[false; 7]; 7];
        for (i, p) in stored.iter().enumerate() {
            for to in edges(p) {
                reach[i + 2][to as usize] = true;
            }
        }
        for k in 1..7 {
            for i in 1..7 {
                for j in 1..7 {
                    reach[i][j] |= reach[i][k] && reach[k][j];
                }
            }
        }
        let mut expected = None;
        'outer: for (i, l) in candidate.levels.iter().enumerate() {
            for (j, t) in l.targets.iter().enumerate() {
                if let Target::Policy(id) = *t {
                    if id == 6 || id == 1 || reach[id as usize][1] {
                        expected = Some(format!("levels[{i}].targets[{j}]"));
                        break 'outer;
                    }
                }
            }
        }
        let lookup = |id: i64| (2..=5).contains(&id).then(|| stored[id as usize - 2].clone());
        let got = candidate.validate(Some(1), &lookup).err().map(|e| e.field);
        prop_assert_eq!(got, expected);
        // The snapshot has no hand-offs left and keeps every level and delay.
        let snap = candidate.snapshot(&lookup);
        prop_assert_eq!(snap.levels.len(), candidate.levels.len());
        prop_assert!(snap.levels.iter().all(|l| l.delay_minutes == 5
            && l.targets.iter().all(|t| !matches!(t, Target::Policy(_)))));
    }
}
