//! The recipes from the issue as example definitions (they become docs):
//! parsed, dry-run and run through the state machine.

use chrono::Duration;
use serde_json::{json, Map, Value};

use super::action::Action;
use super::guard::{admit, PastRun, Refusal};
use super::plan::{plan, Runs};
use super::run::{apply, next, Decision, Outcome, RunState, RunStatus};
use super::step::StepPath;
use super::trigger::{AlertEvent, Event, Trigger};
use super::{parse, Definition};
use crate::time::Timestamp;

const SEV1: &str = include_str!("examples/sev1-ticket-channel-call.yaml");
const REMEDIATE: &str = include_str!("examples/auto-remediate-stuck-queue.yaml");
const PAGE_DB: &str = include_str!("examples/page-database-team.yaml");

fn t0() -> Timestamp {
    "2026-05-01T12:00:00Z".parse().unwrap()
}

fn incident(severity: &str, priority: &str) -> Value {
    json!({
        "id": 42, "number": "INC-42", "title": "Checkout down", "description": "Card payments fail.",
        "severity": severity, "priority": priority, "services": ["payments"],
        "url": "https://tocsin.example.com/incidents/42",
    })
}

fn alert_ctx(severity: &str) -> Value {
    json!({
        "trigger": {"kind": "alert_fired"},
        "incident": incident(severity, "P1"),
        "alert": {
            "summary": "Payments queue stuck", "severity": "critical",
            "labels": {"alertname": "PaymentsQueueStuck", "env": "prod", "instance": "worker 3", "queue_depth": "1500",
                       "team": "database", "component": "postgres"},
        },
    })
}

fn path(s: &str) -> StepPath {
    s.parse().unwrap()
}

/// Drives a run, answering each execution from `answer` (step path → outcome
/// outputs, or an error for a permanent failure); returns the executed paths.
fn drive(
    def: &Definition,
    mut st: RunState,
    answer: impl Fn(&str) -> Result<Value, String>,
) -> (RunState, Vec<String>) {
    let mut executed = Vec::new();
    let mut now = t0();
    for _ in 0..100 {
        let outcome = match next(def, &st, now) {
            Decision::Start => Outcome::Start,
            Decision::Execute { path, attempt, .. } => {
                executed.push(path.to_string());
                match answer(&path.to_string()) {
                    Ok(outputs) => Outcome::Succeeded {
                        path,
                        attempt,
                        outputs,
                    },
                    Err(error) => Outcome::Failed {
                        path,
                        attempt,
                        error,
                        retryable: false,
                    },
                }
            }
            Decision::Wait { path, until } => {
                now = until;
                Outcome::TimerFired { path }
            }
            Decision::AwaitApproval { path, role, .. } => Outcome::Approval {
                path,
                user_id: 1,
                roles: vec![role],
                approved: true,
                comment: None,
            },
            Decision::Finish { .. } => return (st, executed),
            Decision::Broken { reason } => panic!("{reason}"),
        };
        st = apply(def, &st, &outcome, now).unwrap();
    }
    panic!("the run did not finish");
}

#[test]
fn sev1_ticket_channel_and_call() {
    let def = parse(SEV1).unwrap();
    assert_eq!(def.trigger, Trigger::IncidentDeclared);
    let ctx = json!({"trigger": {"kind": "incident_declared"}, "incident": incident("SEV1", "P1")});
    assert!(def.conditions_hold(&ctx).unwrap());
    assert!(!def
        .conditions_hold(&json!({"incident": incident("SEV2", "P2")}))
        .unwrap());

    let p = plan(&def, &ctx);
    let kinds: Vec<&str> = p.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "jira_create_issue",
            "slack_create_channel",
            "zoom_meeting",
            "jitsi_link",
            "add_note"
        ]
    );
    assert!(p.iter().all(|s| s.error.is_none()), "{p:#?}");
    let Some(Action::JiraCreateIssue(j)) = &p[0].inputs else {
        panic!()
    };
    assert_eq!(j.summary, "INC-42: Checkout down");
    assert_eq!(j.priority.as_deref(), Some("Highest"));
    assert_eq!(j.fields["labels"], r#"["incident", "sev1"]"#);
    let Some(Action::SlackCreateChannel(c)) = &p[1].inputs else {
        panic!()
    };
    assert_eq!(c.name, "inc-42-checkout-down");
    assert_eq!(
        p[3].runs,
        Runs::Depends {
            on: vec!["zoom".into()]
        }
    );
    assert_eq!(p[4].depends_on, ["channel", "jitsi", "ticket", "zoom"]);

    // Zoom is down: the run goes on to the Jitsi fallback and notes every link.
    let st = RunState::new("r1", 1, 1, ctx, t0());
    let (st, executed) = drive(&def, st, |p| match p {
        "steps[0]" => Ok(json!({"key": "OPS-7"})),
        "steps[1]" => Ok(json!({"name": "inc-42-checkout-down"})),
        "steps[2]" => Err("Zoom: 503".into()),
        "steps[3]" => Ok(json!({"url": "https://meet.jit.si/tocsin-inc-42"})),
        _ => Ok(json!({})),
    });
    assert_eq!(
        executed,
        ["steps[0]", "steps[1]", "steps[2]", "steps[3]", "steps[4]"]
    );
    assert_eq!(st.status, RunStatus::Succeeded);
    let Some(Action::AddNote(n)) = &st.record(&path("steps[4]")).unwrap().inputs else {
        panic!()
    };
    assert_eq!(
        n.text,
        "Jira: OPS-7\nSlack: #inc-42-checkout-down\nCall: https://meet.jit.si/tocsin-inc-42"
    );
}

#[test]
fn auto_remediation_with_cool_down_and_approval() {
    let def = parse(REMEDIATE).unwrap();
    let labels: Map<String, Value> = alert_ctx("SEV1")["alert"]["labels"]
        .as_object()
        .cloned()
        .unwrap();
    let fired = |service| {
        Event::AlertFired(AlertEvent {
            service,
            service_id: 3,
            alert: &labels,
        })
    };
    assert!(def.trigger.matches(&fired("payments")));
    assert!(!def.trigger.matches(&fired("search")));
    assert_eq!(
        def.secret_names().into_iter().collect::<Vec<_>>(),
        ["PAYMENTS_ADMIN_TOKEN"]
    );
    assert_eq!(
        def.command_names().into_iter().collect::<Vec<_>>(),
        ["restart-payments-worker"]
    );
    assert!(def.conditions_hold(&alert_ctx("SEV1")).unwrap());

    let p = plan(&def, &alert_ctx("SEV1"));
    assert_eq!(
        p[0].path,
        StepPath::gate(),
        "SEV1 waits for the commander first"
    );
    let Some(Action::Http(h)) = &p[1].inputs else {
        panic!()
    };
    assert_eq!(
        h.url,
        "https://payments-admin.example.com/workers/worker%203/health"
    );
    assert_eq!(
        h.headers["Authorization"],
        "Bearer [secret PAYMENTS_ADMIN_TOKEN]"
    );
    assert_eq!(
        p[2].runs,
        Runs::Depends {
            on: vec!["health".into()]
        }
    );
    assert!(plan(&def, &alert_ctx("SEV3"))
        .iter()
        .all(|s| !s.path.is_gate()));

    // Unhealthy: approved, restarted, waited, noted.
    let st = RunState::new("r2", 2, 5, alert_ctx("SEV1"), t0());
    let (st, executed) = drive(&def, st, |p| match p {
        "steps[0]" => Ok(json!({"status": 503, "body": {"status": "stuck"}})),
        "steps[1].then[0]" => Ok(json!({"exit_code": 0})),
        _ => Ok(json!({})),
    });
    assert_eq!(
        executed,
        ["steps[0]", "steps[1].then[0]", "steps[1].then[2]"]
    );
    assert_eq!(st.record(&StepPath::gate()).unwrap().decided_by, Some(1));
    let Some(Action::Command(c)) = &st.record(&path("steps[1].then[0]")).unwrap().inputs else {
        panic!()
    };
    assert_eq!(c.args, ["--instance", "worker 3", "--reason", "tocsin r2"]);

    // Healthy: nothing restarted.
    let st = RunState::new("r3", 2, 5, alert_ctx("SEV3"), t0());
    let (_, executed) = drive(&def, st, |p| match p {
        "steps[0]" => Ok(json!({"status": 200, "body": {"status": "ok"}})),
        _ => Ok(json!({})),
    });
    assert_eq!(executed, ["steps[0]", "steps[1].else[0]"]);

    // The cool-down holds a second run for the same incident for 30 minutes.
    let past = [PastRun {
        workflow_id: 2,
        subject: Some("incident:42".into()),
        started_at: t0(),
    }];
    let later = t0() + Duration::minutes(5);
    assert!(matches!(
        admit(&def.limits, 2, Some("incident:42"), &[], &past, later),
        Err(Refusal::CoolingDown { .. })
    ));
    assert!(admit(
        &def.limits,
        2,
        Some("incident:42"),
        &[],
        &past,
        t0() + Duration::minutes(30)
    )
    .is_ok());
}

#[test]
fn page_the_database_team_when_a_label_matches() {
    let def = parse(PAGE_DB).unwrap();
    let mut labels: Map<String, Value> = alert_ctx("SEV2")["alert"]["labels"]
        .as_object()
        .cloned()
        .unwrap();
    let ev = |l: &Map<String, Value>| {
        def.trigger.matches(&Event::AlertFired(AlertEvent {
            service: "any",
            service_id: 1,
            alert: l,
        }))
    };
    assert!(ev(&labels));
    labels.insert("component".into(), json!("elasticsearch"));
    assert!(!ev(&labels));
    let p = plan(&def, &alert_ctx("SEV2"));
    let Some(Action::Page(page)) = &p[0].inputs else {
        panic!()
    };
    assert_eq!(
        page.target,
        super::action::PageTarget::EscalationPolicy("Database".into())
    );
    assert_eq!(
        page.message.as_deref(),
        Some("Payments queue stuck (postgres on worker 3)")
    );
    assert!(p.iter().all(|s| s.runs == Runs::Yes && s.error.is_none()));
}
