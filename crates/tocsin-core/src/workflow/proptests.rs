//! Property tests: random workflows driven by random outcome sequences
//! (including duplicate, stale and early deliveries, refused approvers and
//! restarts from stored JSON) never execute a completed step again and always
//! finish within a bound set by the steps and their attempts.

use std::collections::BTreeSet;

use chrono::Duration;
use proptest::prelude::*;
use serde_json::json;

use super::definition::parse;
use super::run::{apply, next, Decision, Outcome, RunState, StepStatus};
use super::step::StepPath;
use crate::time::Timestamp;

#[derive(Debug, Clone)]
enum Node {
    Note {
        attempts: u32,
        cont: bool,
        cond: Option<bool>,
    },
    Wait,
    Approval {
        go_on: bool,
    },
    Branch {
        cond: bool,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => (1u32..=3, any::<bool>(), proptest::option::of(any::<bool>()))
            .prop_map(|(attempts, cont, cond)| Node::Note { attempts, cont, cond }),
        1 => Just(Node::Wait),
        1 => any::<bool>().prop_map(|go_on| Node::Approval { go_on }),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        (
            any::<bool>(),
            proptest::collection::vec(inner.clone(), 0..3),
            proptest::collection::vec(inner, 0..3),
        )
            .prop_map(|(cond, then, otherwise)| Node::Branch {
                cond,
                then,
                otherwise,
            })
    })
}

fn yaml(nodes: &[Node], indent: usize, n: &mut usize, out: &mut String, budget: &mut u64) {
    let pad = " ".repeat(indent);
    for node in nodes {
        *n += 1;
        match node {
            Node::Note {
                attempts,
                cont,
                cond,
            } => {
                *budget += 2 * *attempts as u64 + 1;
                out.push_str(&format!("{pad}- id: s{n}\n{pad}  add_note: {{text: 'note {{{{ incident.number }}}}'}}\n"));
                out.push_str(&format!("{pad}  retry: {{attempts: {attempts}, backoff: 5s}}\n{pad}  continue_on_error: {cont}\n"));
                if let Some(c) = cond {
                    out.push_str(&format!("{pad}  if: '{c}'\n"));
                }
            }
            Node::Wait => {
                *budget += 2;
                out.push_str(&format!("{pad}- id: s{n}\n{pad}  wait: 1m\n"));
            }
            Node::Approval { go_on } => {
                *budget += 2;
                let on = if *go_on { "continue" } else { "fail" };
                out.push_str(&format!("{pad}- id: s{n}\n{pad}  approval: {{role: lead, prompt: ok?, timeout: 10m, on_timeout: {on}}}\n"));
            }
            Node::Branch {
                cond,
                then,
                otherwise,
            } => {
                out.push_str(&format!(
                    "{pad}- id: s{n}\n{pad}  if: '{cond}'\n{pad}  then:\n"
                ));
                if then.is_empty() {
                    out.push_str(&format!("{pad}    []\n"));
                }
                yaml(then, indent + 4, n, out, budget);
                out.push_str(&format!("{pad}  else:\n"));
                if otherwise.is_empty() {
                    out.push_str(&format!("{pad}    []\n"));
                }
                yaml(otherwise, indent + 4, n, out, budget);
            }
        }
    }
}

fn t0() -> Timestamp {
    "2026-05-01T12:00:00Z".parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn runs_never_repeat_completed_steps_and_always_finish(
        nodes in proptest::collection::vec(node(), 1..5),
        gate in any::<bool>(),
        choices in proptest::collection::vec(0u8..8, 0..80),
    ) {
        let mut steps = String::new();
        let mut budget = 4u64;
        yaml(&nodes, 2, &mut 0, &mut steps, &mut budget);
        let limits = if gate { "limits: {requires_approval_for: [SEV1], approver_role: lead}\n" } else { "" };
        let def = parse(&format!("name: P\ntrigger: incident_declared\nsteps:\n{steps}{limits}")).unwrap();
        let ctx = json!({"incident": {"number": "INC-1", "severity": "SEV1"}});
        let mut st = RunState::new("r", 1, 1, ctx, t0());
        let mut now = t0();
        let mut done: BTreeSet<StepPath> = BTreeSet::new();
        let mut choices = choices.into_iter();
        let mut decisions = 0u64;
        loop {
            decisions += 1;
            prop_assert!(decisions <= budget + 2, "no end after {decisions} decisions (bound {budget})");
            let d = next(&def, &st, now);
            let c = choices.next().unwrap_or(0);
            // A restart: the stored JSON says the same thing.
            let stored: RunState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
            prop_assert_eq!(&next(&def, &stored, now), &d);
            let outcome = match &d {
                Decision::Start => Outcome::Start,
                Decision::Finish { .. } => break,
                Decision::Broken { reason } => return Err(TestCaseError::fail(reason.clone())),
                Decision::Execute { path, attempt, .. } => {
                    prop_assert!(!done.contains(path), "{} executed after it completed", path);
                    if c == 5 {
                        // A late duplicate of an outcome for a completed step is refused.
                        if let Some(p) = done.iter().next() {
                            let dup = Outcome::Succeeded { path: p.clone(), attempt: 1, outputs: json!({}) };
                            prop_assert!(apply(&def, &st, &dup, now).is_err());
                        }
                    }
                    if c == 6 {
                        let wrong = Outcome::Succeeded { path: path.clone(), attempt: attempt + 1, outputs: json!({}) };
                        prop_assert!(apply(&def, &st, &wrong, now).is_err());
                    }
                    match c {
                        1 | 2 => Outcome::Failed { path: path.clone(), attempt: *attempt, error: "boom".into(), retryable: c == 1 },
                        3 => Outcome::Started { path: path.clone(), attempt: *attempt },
                        _ => Outcome::Succeeded { path: path.clone(), attempt: *attempt, outputs: json!({"ok": true}) },
                    }
                }
                Decision::Wait { path, until } => {
                    if c == 1 && *until > now {
                        let early = Outcome::TimerFired { path: path.clone() };
                        prop_assert!(apply(&def, &st, &early, now).is_err());
                    }
                    if c != 2 {
                        now = now.max(*until);
                    }
                    Outcome::TimerFired { path: path.clone() }
                }
                Decision::AwaitApproval { path, deadline, .. } => {
                    let by = |roles: &[&str], approved| Outcome::Approval {
                        path: path.clone(), user_id: 9, roles: roles.iter().map(|r| r.to_string()).collect(), approved, comment: None,
                    };
                    match c {
                        1 => {
                            prop_assert!(apply(&def, &st, &by(&["viewer"], true), now).is_err());
                            by(&["lead"], true)
                        }
                        2 => by(&["lead"], false),
                        3 => {
                            now = *deadline;
                            Outcome::TimerFired { path: path.clone() }
                        }
                        _ => by(&["lead"], true),
                    }
                }
            };
            match apply(&def, &st, &outcome, now) {
                Ok(new) => {
                    if let Outcome::Succeeded { path, .. } = &outcome {
                        done.insert(path.clone());
                    }
                    st = new;
                }
                // Only a timer before its time may be refused here (choice 2 above).
                Err(e) => prop_assert!(matches!(e, super::run::RunError::TooEarly { .. }), "{e}"),
            }
            if !matches!(d, Decision::Execute { .. }) {
                now += Duration::seconds(1);
            }
        }
        prop_assert!(st.status.is_finished());
        let mut paths: Vec<&StepPath> = st.records.iter().map(|r| &r.path).collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        prop_assert_eq!(paths.len(), n, "a step was recorded twice");
        prop_assert!(st.records.iter().all(|r| r.status.is_done()), "{:?}", st.records);
        for r in &st.records {
            if r.status == StepStatus::Succeeded && r.kind == "add_note" {
                prop_assert!(done.contains(&r.path));
            }
        }
    }
}
