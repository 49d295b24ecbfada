//! The run state machine, step by step.

use std::collections::BTreeMap;

use chrono::Duration;
use serde_json::{json, Value};

use super::*;
use crate::workflow::definition::parse;
use crate::workflow::step::StepPath;

fn t0() -> Timestamp {
    "2026-05-01T12:00:00Z".parse().unwrap()
}

fn ctx(severity: &str) -> Value {
    json!({
        "trigger": {"kind": "incident_declared"},
        "incident": {"id": 42, "number": "INC-42", "title": "Checkout down", "severity": severity, "services": ["payments"]},
    })
}

fn started(def: &Definition, severity: &str) -> RunState {
    let st = RunState::new("run-1", 7, 3, ctx(severity), t0());
    assert_eq!(next(def, &st, t0()), Decision::Start);
    apply(def, &st, &Outcome::Start, t0()).unwrap()
}

fn path(s: &str) -> StepPath {
    s.parse().unwrap()
}

fn ok(p: &str, attempt: u32, outputs: Value) -> Outcome {
    Outcome::Succeeded {
        path: path(p),
        attempt,
        outputs,
    }
}

fn fail(p: &str, attempt: u32, retryable: bool) -> Outcome {
    Outcome::Failed {
        path: path(p),
        attempt,
        error: "HTTP 502".into(),
        retryable,
    }
}

fn executes(d: &Decision) -> (String, u32) {
    match d {
        Decision::Execute { path, attempt, .. } => (path.to_string(), *attempt),
        other => panic!("expected execute, got {other:?}"),
    }
}

const TWO_STEPS: &str = "
name: Two steps
trigger: incident_declared
steps:
  - id: ticket
    github_create_issue:
      repo: acme/api
      title: '{{ incident.number }}: {{ incident.title }}'
  - add_note:
      text: 'Issue {{ steps.ticket.outputs.number }}'
";

#[test]
fn runs_steps_in_order_with_stable_keys() {
    let def = parse(TWO_STEPS).unwrap();
    let st = started(&def, "SEV2");
    let d = next(&def, &st, t0());
    let Decision::Execute {
        idempotency_key,
        action,
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(idempotency_key, "run-1:steps[0]:1");
    let Action::GithubCreateIssue(g) = action else {
        panic!()
    };
    assert_eq!(g.title, "INC-42: Checkout down");
    // Asking again (a restart before the outcome) gives the same decision.
    assert_eq!(next(&def, &st, t0() + Duration::minutes(5)), d);
    let st = apply(
        &def,
        &st,
        &Outcome::Started {
            path: path("steps[0]"),
            attempt: 1,
        },
        t0(),
    )
    .unwrap();
    assert_eq!(next(&def, &st, t0()), d, "started is not done");
    let st = apply(&def, &st, &ok("steps[0]", 1, json!({"number": 17})), t0()).unwrap();
    let d2 = next(&def, &st, t0());
    let Decision::Execute {
        action: Action::AddNote(n),
        ..
    } = &d2
    else {
        panic!("{d2:?}")
    };
    assert_eq!(n.text, "Issue 17");
    let st = apply(&def, &st, &ok("steps[1]", 1, json!({})), t0()).unwrap();
    assert_eq!(
        next(&def, &st, t0()),
        Decision::Finish {
            status: RunStatus::Succeeded,
            error: None
        }
    );
    assert_eq!(st.cursor, None);
    assert_eq!(st.records.len(), 2);
    assert_eq!(
        apply(&def, &st, &Outcome::Start, t0()),
        Err(RunError::Finished)
    );
}

#[test]
fn stale_and_duplicate_outcomes_change_nothing() {
    let def = parse(TWO_STEPS).unwrap();
    let st = started(&def, "SEV2");
    let after = apply(&def, &st, &ok("steps[0]", 1, json!({})), t0()).unwrap();
    // The same outcome delivered twice: the second is stale.
    assert!(matches!(
        apply(&def, &after, &ok("steps[0]", 1, json!({})), t0()),
        Err(RunError::Stale { .. })
    ));
    // An outcome for a step not reached yet, or for another attempt.
    assert!(matches!(
        apply(&def, &st, &ok("steps[1]", 1, json!({})), t0()),
        Err(RunError::Stale { .. })
    ));
    assert!(matches!(
        apply(&def, &st, &ok("steps[0]", 2, json!({})), t0()),
        Err(RunError::Stale { .. })
    ));
    let pending = RunState::new("r", 1, 1, ctx("SEV2"), t0());
    assert_eq!(
        apply(&def, &pending, &ok("steps[0]", 1, json!({})), t0()),
        Err(RunError::NotStarted)
    );
    assert_eq!(
        apply(&def, &st, &Outcome::Start, t0()),
        Err(RunError::AlreadyStarted)
    );
}

const RETRYING: &str = "
name: Retry
trigger: incident_declared
steps:
  - id: call
    http: {url: 'https://api.example.com/hook'}
    retry: {attempts: 3, backoff: 10s, factor: 2}
  - add_note: {text: done}
";

#[test]
fn retryable_failures_back_off_then_fail_the_run() {
    let def = parse(RETRYING).unwrap();
    let st = started(&def, "SEV2");
    let st = apply(&def, &st, &fail("steps[0]", 1, true), t0()).unwrap();
    assert_eq!(st.status, RunStatus::Waiting);
    let until = t0() + Duration::seconds(10);
    assert_eq!(
        next(&def, &st, t0()),
        Decision::Wait {
            path: path("steps[0]"),
            until
        }
    );
    assert_eq!(
        apply(
            &def,
            &st,
            &Outcome::TimerFired {
                path: path("steps[0]")
            },
            t0()
        ),
        Err(RunError::TooEarly {
            path: "steps[0]".into(),
            due: until
        })
    );
    // Due: execute attempt 2 directly, or after the timer outcome; same key.
    let direct = next(&def, &st, until);
    assert_eq!(executes(&direct), ("steps[0]".into(), 2));
    let st = apply(
        &def,
        &st,
        &Outcome::TimerFired {
            path: path("steps[0]"),
        },
        until,
    )
    .unwrap();
    assert_eq!(next(&def, &st, until), direct);
    let t2 = until + Duration::seconds(1);
    let st = apply(&def, &st, &fail("steps[0]", 2, true), t2).unwrap();
    assert_eq!(
        next(&def, &st, t2),
        Decision::Wait {
            path: path("steps[0]"),
            until: t2 + Duration::seconds(20)
        }
    );
    let t3 = t2 + Duration::seconds(20);
    let st = apply(&def, &st, &fail("steps[0]", 3, true), t3).unwrap();
    assert_eq!(st.status, RunStatus::Failed);
    assert_eq!(st.error.as_deref(), Some("steps[0]: HTTP 502"));
    assert_eq!(st.records[0].attempt, 3);
    assert!(
        st.record(&path("steps[1]")).is_none(),
        "nothing after the failure ran"
    );
}

#[test]
fn permanent_failures_do_not_retry_and_continue_on_error_goes_on() {
    let def = parse(RETRYING).unwrap();
    let st = started(&def, "SEV2");
    let st = apply(&def, &st, &fail("steps[0]", 1, false), t0()).unwrap();
    assert_eq!(st.status, RunStatus::Failed);
    let def = parse(&RETRYING.replace("retry:", "continue_on_error: true\n    retry:")).unwrap();
    let st = started(&def, "SEV2");
    let st = apply(&def, &st, &fail("steps[0]", 1, false), t0()).unwrap();
    assert_eq!(executes(&next(&def, &st, t0())), ("steps[1]".into(), 1));
    let st = apply(&def, &st, &ok("steps[1]", 1, json!({})), t0()).unwrap();
    assert_eq!(st.status, RunStatus::Succeeded);
    assert_eq!(st.records[0].status, StepStatus::Failed);
}

const BRANCHING: &str = "
name: Branch
trigger: incident_declared
steps:
  - id: probe
    http:
      url: https://api.example.com/health
      capture: {healthy: response.body.status == 'ok', version: response.body.version}
  - id: choose
    if: not vars.healthy
    then:
      - id: restart
        command: {name: restart-api, args: ['--version', '{{ vars.version }}']}
    else:
      - add_note: {text: healthy}
  - if: incident.severity == 'SEV1'
    add_note: {text: only for SEV1}
  - add_note: {text: 'restart was {{ steps.restart.status }}'}
";

#[test]
fn captures_choose_branches_and_ifs_skip() {
    let def = parse(BRANCHING).unwrap();
    let st = started(&def, "SEV2");
    let st = apply(
        &def,
        &st,
        &ok(
            "steps[0]",
            1,
            json!({"status": 503, "body": {"status": "down", "version": "1.2"}}),
        ),
        t0(),
    )
    .unwrap();
    assert_eq!(st.vars["healthy"], json!(false));
    let d = next(&def, &st, t0());
    let Decision::Execute {
        path: p,
        action: Action::Command(c),
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(p.to_string(), "steps[1].then[0]");
    assert_eq!(c.args, ["--version", "1.2"]);
    assert_eq!(
        st.record(&path("steps[1]")).unwrap().outputs,
        Some(json!({"branch": "then"}))
    );
    let st = apply(
        &def,
        &st,
        &ok("steps[1].then[0]", 1, json!({"exit_code": 0})),
        t0(),
    )
    .unwrap();
    // steps[2] is skipped (SEV2), steps[3] is next; the else branch never ran.
    let d = next(&def, &st, t0());
    let Decision::Execute {
        path: p,
        action: Action::AddNote(n),
        ..
    } = &d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        (p.to_string(), n.text.as_str()),
        ("steps[3]".into(), "restart was succeeded")
    );
    assert_eq!(
        st.record(&path("steps[2]")).unwrap().status,
        StepStatus::Skipped
    );
    assert!(st.record(&path("steps[1].else[0]")).is_none());
}

#[test]
fn a_capture_that_cannot_be_evaluated_fails_the_step() {
    let def =
        parse(&BRANCHING.replace("response.body.version", "response.body.version + 1")).unwrap();
    let st = started(&def, "SEV2");
    let st = apply(
        &def,
        &st,
        &ok("steps[0]", 1, json!({"body": {"version": "x"}})),
        t0(),
    )
    .unwrap();
    assert_eq!(st.status, RunStatus::Failed);
    assert!(
        st.error
            .as_deref()
            .unwrap()
            .contains("steps[0].http.capture.version"),
        "{:?}",
        st.error
    );
}

const WAITING: &str = "
name: Wait and approve
trigger: incident_declared
steps:
  - wait: 10m
  - id: ok
    approval: {role: commander, prompt: 'Restart {{ incident.number }}?', timeout: 30m}
  - add_note: {text: 'approved by {{ steps.ok.outputs.by }}'}
";

#[test]
fn waits_and_approvals() {
    let def = parse(WAITING).unwrap();
    let st = started(&def, "SEV2");
    let due = t0() + Duration::minutes(10);
    assert_eq!(
        next(&def, &st, t0()),
        Decision::Wait {
            path: path("steps[0]"),
            until: due
        }
    );
    assert!(matches!(
        apply(
            &def,
            &st,
            &Outcome::TimerFired {
                path: path("steps[0]")
            },
            t0()
        ),
        Err(RunError::TooEarly { .. })
    ));
    let st = apply(
        &def,
        &st,
        &Outcome::TimerFired {
            path: path("steps[0]"),
        },
        due,
    )
    .unwrap();
    let deadline = due + Duration::minutes(30);
    assert_eq!(
        next(&def, &st, due),
        Decision::AwaitApproval {
            path: path("steps[1]"),
            role: "commander".into(),
            prompt: "Restart INC-42?".into(),
            deadline
        }
    );
    assert_eq!(st.status, RunStatus::AwaitingApproval);
    let approve = |roles: &[&str], approved| Outcome::Approval {
        path: path("steps[1]"),
        user_id: 5,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        approved,
        comment: None,
    };
    assert_eq!(
        apply(&def, &st, &approve(&["responder"], true), due),
        Err(RunError::NotApprover {
            role: "commander".into()
        })
    );
    let refused = apply(&def, &st, &approve(&["commander"], false), due).unwrap();
    assert_eq!(refused.status, RunStatus::Failed);
    assert_eq!(
        refused.error.as_deref(),
        Some("steps[1]: refused by user 5")
    );
    let st = apply(&def, &st, &approve(&["commander", "responder"], true), due).unwrap();
    let Decision::Execute {
        action: Action::AddNote(n),
        ..
    } = next(&def, &st, due)
    else {
        panic!()
    };
    assert_eq!(n.text, "approved by 5");
}

#[test]
fn approval_timeouts_fail_or_go_on() {
    let def = parse(WAITING).unwrap();
    let st = started(&def, "SEV2");
    let due = t0() + Duration::minutes(10);
    let st = apply(
        &def,
        &st,
        &Outcome::TimerFired {
            path: path("steps[0]"),
        },
        due,
    )
    .unwrap();
    let late = due + Duration::minutes(30);
    let timed_out = apply(
        &def,
        &st,
        &Outcome::TimerFired {
            path: path("steps[1]"),
        },
        late,
    )
    .unwrap();
    assert_eq!(timed_out.status, RunStatus::Failed);
    let def =
        parse(&WAITING.replace("timeout: 30m", "timeout: 30m, on_timeout: continue")).unwrap();
    let st = started(&def, "SEV2");
    let st = apply(
        &def,
        &st,
        &Outcome::TimerFired {
            path: path("steps[0]"),
        },
        due,
    )
    .unwrap();
    let st = apply(
        &def,
        &st,
        &Outcome::TimerFired {
            path: path("steps[1]"),
        },
        late,
    )
    .unwrap();
    assert_eq!(executes(&next(&def, &st, late)).0, "steps[2]");
}

#[test]
fn high_severities_wait_at_the_gate() {
    let def = parse(&format!("{TWO_STEPS}limits: {{requires_approval_for: [SEV1], approver_role: lead, approval_timeout: 15m}}\n")).unwrap();
    let st = started(&def, "SEV1");
    let Decision::AwaitApproval {
        path: p,
        role,
        deadline,
        ..
    } = next(&def, &st, t0())
    else {
        panic!()
    };
    assert_eq!((p.to_string(), role.as_str()), ("gate".into(), "lead"));
    assert_eq!(deadline, t0() + Duration::minutes(15));
    let approve = Outcome::Approval {
        path: StepPath::gate(),
        user_id: 1,
        roles: vec!["lead".into()],
        approved: true,
        comment: None,
    };
    let st2 = apply(&def, &st, &approve, t0()).unwrap();
    assert_eq!(executes(&next(&def, &st2, t0())).0, "steps[0]");
    let st3 = apply(
        &def,
        &st,
        &Outcome::TimerFired {
            path: StepPath::gate(),
        },
        deadline,
    )
    .unwrap();
    assert_eq!(st3.status, RunStatus::Failed);
    // Below the threshold there is no gate.
    let st = started(&def, "SEV2");
    assert_eq!(executes(&next(&def, &st, t0())).0, "steps[0]");
}

#[test]
fn a_restart_resumes_from_the_stored_state() {
    let def = parse(TWO_STEPS).unwrap();
    let st = started(&def, "SEV2");
    let st = apply(&def, &st, &ok("steps[0]", 1, json!({"number": 3})), t0()).unwrap();
    let stored = serde_json::to_string(&st).unwrap();
    let back: RunState = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, st);
    assert_eq!(
        executes(&next(&def, &back, t0())),
        ("steps[1]".into(), 1),
        "the completed step is not repeated"
    );
}

#[test]
fn secrets_are_markers_in_stored_inputs_and_values_only_for_execution() {
    let def = parse(
        "name: S
trigger: incident_declared
steps:
  - http:
      url: https://api.example.com/x
      headers: {Authorization: 'Bearer {{ secrets.TOKEN }}'}
",
    )
    .unwrap();
    let st = started(&def, "SEV2");
    let Decision::Execute {
        action: Action::Http(h),
        path: p,
        ..
    } = next(&def, &st, t0())
    else {
        panic!()
    };
    assert_eq!(h.headers["Authorization"], "Bearer [secret TOKEN]");
    assert!(!serde_json::to_string(&st).unwrap().contains("hunter2"));
    let secrets = BTreeMap::from([("TOKEN".to_string(), "hunter2".to_string())]);
    let Action::Http(real) = render_step(&def, &st, &p, Some(&secrets)).unwrap() else {
        panic!()
    };
    assert_eq!(real.headers["Authorization"], "Bearer hunter2");
}

#[test]
fn render_errors_fail_the_step_and_cancel_stops_the_run() {
    let def = parse(
        "name: E
trigger: incident_declared
steps:
  - continue_on_error: true
    update_incident: {status: '{{ incident.title }}'}
  - add_note: {text: next}
",
    )
    .unwrap();
    let st = started(&def, "SEV2");
    let rec = st.record(&path("steps[0]")).unwrap();
    assert_eq!(rec.status, StepStatus::Failed);
    assert!(rec
        .error
        .as_deref()
        .unwrap()
        .contains("steps[0].update_incident.status"));
    assert_eq!(executes(&next(&def, &st, t0())).0, "steps[1]");
    let st = apply(
        &def,
        &st,
        &Outcome::Cancel {
            reason: "incident resolved".into(),
        },
        t0(),
    )
    .unwrap();
    assert_eq!(st.status, RunStatus::Cancelled);
    assert_eq!(
        st.record(&path("steps[1]")).unwrap().status,
        StepStatus::Cancelled
    );
    assert_eq!(
        next(&def, &st, t0()),
        Decision::Finish {
            status: RunStatus::Cancelled,
            error: Some("incident resolved".into())
        }
    );
}

#[test]
fn finished_runs_move_nowhere() {
    for (from, to) in RUN_TRANSITIONS {
        assert_eq!(to.is_empty(), from.is_finished(), "{from:?}");
        assert!(
            !to.contains(&RunStatus::Pending),
            "nothing goes back to pending"
        );
    }
    assert!(RunStatus::Running.can_move_to(RunStatus::Running));
    assert!(!RunStatus::Failed.can_move_to(RunStatus::Failed));
}
