//! Approvals: a run waits until someone holding the role decides; others are
//! refused and change nothing. Cancelling stops a run.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{config, create, declare, engine, kinds, run, runs_of};
use crate::support::TestApp;

const GATED: &str = "name: Restart with approval
trigger: incident_declared
steps:
  - id: ask
    approval:
      role: commander
      prompt: 'Restart the workers for {{ incident.number }}?'
      timeout: 15m
  - add_note: {text: 'approved by {{ steps.ask.outputs.by }}'}
";

async fn an_approval_waits_for_the_right_role(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    create(&app, GATED).await;
    let (commander, commander_token) = app.user_with_role("responder").await;
    let (_, other_token) = app.user_with_role("responder").await;
    let (_, viewer_token) = app.user_with_role("viewer").await;
    let inc = declare(&app, "Needs a restart", "SEV1", &[]).await;
    let r = app
        .patch(
            &format!("/api/v1/incidents/{inc}"),
            json!({ "roles": { "commander": [commander] } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    engine.tick().await.unwrap();
    let id = runs_of(&app, inc).await[0]["id"].as_i64().unwrap();
    let waiting = run(&app, id).await;
    assert_eq!(waiting["status"], "awaiting_approval");
    assert_eq!(
        waiting["steps"][0]["inputs"]["approval"]["prompt"],
        format!("Restart the workers for INC-{inc}?")
    );
    assert!(kinds(&app, inc)
        .await
        .contains(&"workflow.approval_requested".to_string()));
    let path = format!("/api/v1/workflow-runs/{id}/approve");
    // A viewer may not approve at all; a responder without the role may not
    // approve this one; neither changes the run.
    let r = app
        .call(Method::POST, &path, Some(&viewer_token), Some(json!({})))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .call(Method::POST, &path, Some(&other_token), Some(json!({})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "not_allowed"),
        "{}",
        r.body
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("commander"));
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/workflow-runs/{id}/refuse"),
            Some(&other_token),
            Some(json!({ "comment": "no" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        run(&app, id).await,
        waiting,
        "refused decisions change nothing"
    );
    // Time passing short of the deadline changes nothing either.
    app.clock.advance(Duration::minutes(10));
    engine.tick().await.unwrap();
    assert_eq!(run(&app, id).await["status"], "awaiting_approval");
    let r = app
        .call(
            Method::POST,
            &path,
            Some(&commander_token),
            Some(json!({ "comment": "go" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["steps"][0]["decided_by"], commander);
    engine.tick().await.unwrap();
    let done = run(&app, id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let notes: Vec<_> = app
        .timeline(inc)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "incident.note_added")
        .collect();
    assert_eq!(notes[0]["data"]["body"], format!("approved by {commander}"));
    // Deciding again: nothing waits.
    let r = app
        .call(Method::POST, &path, Some(&commander_token), Some(json!({})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "not_awaiting_approval")
    );
}

async fn an_unanswered_approval_fails_and_a_run_can_be_cancelled(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    create(&app, GATED).await;
    let late = declare(&app, "Nobody answers", "SEV2", &[]).await;
    let stopped = declare(&app, "Stopped", "SEV2", &[]).await;
    engine.tick().await.unwrap();
    let stop_id = runs_of(&app, stopped).await[0]["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/workflow-runs/{stop_id}/cancel"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    app.clock.advance(Duration::minutes(15));
    engine.tick().await.unwrap();
    let r = &runs_of(&app, late).await[0];
    assert_eq!(r["status"], "failed");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("nobody approved in time"),
        "{r}"
    );
    assert_eq!(runs_of(&app, stopped).await[0]["status"], "cancelled");
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/workflow-runs/{stop_id}/cancel"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

crate::workflow_tests!(
    an_approval_waits_for_the_right_role,
    an_unanswered_approval_fails_and_a_run_can_be_cancelled,
);
