//! Runs from trigger to timeline: steps in order, retries that give up
//! visibly, a restart mid-run, dry-runs, versions.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{config, create, declare, engine, kinds, run, runs_of, service, Fake};
use crate::support::TestApp;

fn sev1_workflow(fake: &Fake) -> String {
    format!(
        r#"
name: SEV1 on payments
trigger: incident_declared
conditions: incident.severity == "SEV1" and "payments" in incident.services
steps:
  - id: ticket
    name: Open the ticket
    http:
      method: POST
      url: "{base}/tickets"
      headers: {{X-Incident: "{{{{ incident.number }}}}"}}
      body: '{{"title": "{{{{ incident.title }}}}"}}'
      capture: {{ticket_id: response.body.id}}
  - name: Note the ticket
    add_note:
      text: "Ticket {{{{ vars.ticket_id }}}} opened for {{{{ incident.number }}}}"
"#,
        base = fake.base
    )
}

async fn sev1_declared_on_a_service_runs_its_workflow(app: TestApp) {
    let fake = Fake::start().await;
    let (engine, _) = engine(&app, &config(true));
    let payments = service(&app, "payments").await;
    let other = service(&app, "search").await;
    create(&app, &sev1_workflow(&fake)).await;
    let inc = declare(&app, "Checkout down", "SEV1", &[payments]).await;
    let quiet = declare(&app, "Search slow", "SEV1", &[other]).await;
    let minor = declare(&app, "Checkout slow", "SEV3", &[payments]).await;
    let tick = engine.tick().await.unwrap();
    assert_eq!((tick.events, tick.runs), (3, 1), "{tick:?}");
    // One call, with the rendered inputs and the attempt's idempotency key.
    let calls = fake.to("/tickets");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].body, r#"{"title": "Checkout down"}"#);
    assert_eq!(calls[0].headers["x-incident"], format!("INC-{inc}"));
    assert_eq!(calls[0].headers["content-type"], "application/json");
    let runs = runs_of(&app, inc).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    let id = runs[0]["id"].as_i64().unwrap();
    assert_eq!(
        calls[0].key.as_deref(),
        Some(format!("{id}:steps[0]:1").as_str())
    );
    let detail = run(&app, id).await;
    let steps = detail["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["status"], "succeeded");
    assert_eq!(steps[0]["attempt"], 1);
    assert_eq!(steps[0]["outputs"]["status"], 200);
    assert_eq!(
        steps[0]["inputs"]["http"]["url"],
        format!("{}/tickets", fake.base)
    );
    assert_eq!(detail["vars"]["ticket_id"], 42);
    // The note and a summary line per run on the timeline.
    let timeline = app.timeline(inc).await;
    let note = timeline
        .iter()
        .find(|e| e["kind"] == "incident.note_added")
        .expect("note");
    assert_eq!(
        note["data"]["body"],
        format!("Ticket 42 opened for INC-{inc}")
    );
    assert_eq!(note["actor"], "workflow SEV1 on payments");
    let k = kinds(&app, inc).await;
    for kind in [
        "workflow.run_started",
        "workflow.step_succeeded",
        "workflow.run_finished",
    ] {
        assert!(k.contains(&kind.to_string()), "{kind} in {k:?}");
    }
    assert!(runs_of(&app, quiet).await.is_empty());
    assert!(runs_of(&app, minor).await.is_empty());
    // Nothing more to do.
    assert_eq!(engine.tick().await.unwrap().steps, 0);
    assert_eq!(fake.received().len(), 1);
}

async fn a_failing_step_retries_then_fails_visibly(app: TestApp) {
    let fake = Fake::start().await;
    let (engine, _) = engine(&app, &config(true));
    fake.answer_with("/hook", &[503, 503, 503, 503]);
    create(
        &app,
        &format!(
            "name: Flaky hook
trigger: incident_declared
steps:
  - http: {{url: '{}/hook', method: POST, body: hi}}
    retry: {{attempts: 3, backoff: 10s, factor: 2}}
  - add_note: {{text: never}}
",
            fake.base
        ),
    )
    .await;
    let inc = declare(&app, "Flaky", "SEV2", &[]).await;
    engine.tick().await.unwrap();
    assert_eq!(fake.to("/hook").len(), 1);
    let r = &runs_of(&app, inc).await[0];
    assert_eq!(r["status"], "waiting", "{r}");
    // The incident goes on meanwhile.
    assert_eq!(
        app.move_to(inc, "acknowledged").await.status,
        StatusCode::OK
    );
    // Not before the backoff…
    app.clock.advance(Duration::seconds(9));
    engine.tick().await.unwrap();
    assert_eq!(fake.to("/hook").len(), 1);
    app.clock.advance(Duration::seconds(1));
    engine.tick().await.unwrap();
    assert_eq!(fake.to("/hook").len(), 2);
    app.clock.advance(Duration::seconds(20));
    engine.tick().await.unwrap();
    let calls = fake.to("/hook");
    assert_eq!(calls.len(), 3);
    let keys: Vec<_> = calls.iter().map(|c| c.key.clone().unwrap()).collect();
    assert!(
        keys[0].ends_with(":1") && keys[1].ends_with(":2") && keys[2].ends_with(":3"),
        "{keys:?}"
    );
    let id = runs_of(&app, inc).await[0]["id"].as_i64().unwrap();
    let detail = run(&app, id).await;
    assert_eq!(detail["status"], "failed");
    assert!(
        detail["error"].as_str().unwrap().contains("HTTP 503"),
        "{detail}"
    );
    assert_eq!(detail["steps"][0]["attempt"], 3);
    assert_eq!(
        detail["steps"].as_array().unwrap().len(),
        1,
        "nothing after it ran"
    );
    let timeline = app.timeline(inc).await;
    let failed = timeline
        .iter()
        .find(|e| e["kind"] == "workflow.step_failed")
        .expect("step failure on the timeline");
    assert!(failed["data"]["error"].as_str().unwrap().contains("503"));
    let finished = timeline
        .iter()
        .find(|e| e["kind"] == "workflow.run_finished")
        .expect("run end on the timeline");
    assert_eq!(finished["data"]["status"], "failed");
    assert!(!timeline.iter().any(|e| e["kind"] == "incident.note_added"));
    assert_eq!(app.move_to(inc, "resolved").await.status, StatusCode::OK);
    app.clock.advance(Duration::hours(1));
    engine.tick().await.unwrap();
    assert_eq!(fake.to("/hook").len(), 3, "a failed run is over");
}

async fn a_restart_after_the_call_sends_the_same_key_again(app: TestApp) {
    let fake = Fake::start().await;
    create(
        &app,
        &format!(
            "name: Two calls
trigger: incident_declared
steps:
  - http: {{url: '{b}/one', method: POST}}
  - wait: 1m
  - http: {{url: '{b}/two', method: POST}}
  - add_note: {{text: done}}
",
            b = fake.base
        ),
    )
    .await;
    let inc = declare(&app, "Restart", "SEV2", &[]).await;
    let (first, _) = engine(&app, &config(true));
    // Step one runs and is recorded; the run waits a minute.
    first.tick().await.unwrap();
    assert_eq!(fake.to("/one").len(), 1);
    app.clock.advance(Duration::minutes(1));
    // The first engine claims step three, makes the call, and dies before
    // recording it.
    let claimed = first.claim().await.unwrap().expect("a due step");
    assert_eq!(claimed.path.to_string(), "steps[2]");
    let key = claimed.idempotency_key.clone();
    reqwest::Client::new()
        .post(format!("{}/two", fake.base))
        .header("Idempotency-Key", &key)
        .send()
        .await
        .unwrap();
    drop(claimed);
    drop(first);
    // Another engine finds nothing to do while the lease holds…
    let (second, _) = engine(&app, &config(true));
    assert_eq!(second.tick().await.unwrap().steps, 0);
    // …and after it, takes the same attempt up with the same key.
    app.clock.advance(Duration::minutes(2));
    second.tick().await.unwrap();
    let one = fake.to("/one");
    let two = fake.to("/two");
    assert_eq!(one.len(), 1, "a recorded step is not repeated");
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].key.as_deref(), Some(key.as_str()));
    assert_eq!(
        two[1].key.as_deref(),
        Some(key.as_str()),
        "the same attempt, the same key"
    );
    let r = &runs_of(&app, inc).await[0];
    assert_eq!(r["status"], "succeeded", "{r}");
    let notes = app.timeline(inc).await;
    assert_eq!(
        notes
            .iter()
            .filter(|e| e["kind"] == "incident.note_added")
            .count(),
        1
    );
}

async fn a_dry_run_shows_the_plan_and_changes_nothing(app: TestApp) {
    let fake = Fake::start().await;
    let (engine, _) = engine(&app, &config(true));
    let payments = service(&app, "payments").await;
    let inc = declare(&app, "Checkout down", "SEV1", &[payments]).await;
    engine.tick().await.unwrap();
    app.post(
        "/api/v1/secrets",
        json!({ "name": "TOKEN", "value": "dry-run-secret-value" }),
    )
    .await;
    let id = create(
        &app,
        &format!(
            "name: Planned
trigger: incident_declared
enabled: false
conditions: incident.severity == 'SEV1'
steps:
  - id: call
    http:
      url: '{}/plan'
      headers: {{Authorization: 'Bearer {{{{ secrets.TOKEN }}}}'}}
  - if: incident.severity == 'SEV2'
    then: [{{add_note: {{text: sev2}}}}]
    else: [{{add_note: {{text: 'not sev2: {{{{ steps.call.outputs.status }}}}'}}}}]
",
            fake.base
        ),
    )
    .await;
    let before = app.counts().await;
    let r = app
        .post(
            &format!("/api/v1/workflows/{id}/dry-run"),
            json!({ "incident_id": format!("INC-{inc}") }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["conditions_hold"], true);
    let steps = r.body["steps"].as_array().unwrap();
    assert_eq!(steps[0]["runs"]["runs"], "yes");
    assert_eq!(
        steps[0]["inputs"]["http"]["headers"]["Authorization"],
        "Bearer [secret TOKEN]"
    );
    assert_eq!(steps[1]["note"], "takes else");
    assert_eq!(steps[2]["runs"]["runs"], "not_taken");
    assert_eq!(steps[3]["depends_on"], json!(["call"]));
    assert!(!r.body.to_string().contains("dry-run-secret-value"));
    engine.tick().await.unwrap();
    assert_eq!(app.counts().await, before, "a dry-run writes nothing");
    assert!(fake.received().is_empty(), "and calls nothing");
    // An incident that does not exist, inputs a non-manual workflow has not.
    let r = app
        .post(
            &format!("/api/v1/workflows/{id}/dry-run"),
            json!({ "incident_id": 99999 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/workflows/{id}/dry-run"),
            json!({ "inputs": { "x": 1 } }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "inputs"));
}

async fn edits_are_versions_and_export_returns_the_yaml(app: TestApp) {
    let v1 = "name: Versioned\ntrigger: {manual: {inputs: {why: {required: true}}}}\nsteps:\n  - add_note: {text: 'v1 {{ inputs.why }}'}\n";
    let id = create(&app, v1).await;
    let inc = declare(&app, "Versions", "SEV3", &[]).await;
    let (engine, _) = engine(&app, &config(true));
    let runs_path = format!("/api/v1/workflows/{id}/runs");
    let start = |why: &str| {
        app.post(
            &runs_path,
            json!({ "incident_id": inc, "inputs": { "why": why } }),
        )
    };
    let r = start("first").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let first_version = r.body["version_id"].as_i64().unwrap();
    let v2 = v1.replace("v1", "v2");
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/workflows/{id}"),
            Some(&app.admin_token),
            Some(json!({ "yaml": v2 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let r = start("second").await;
    assert_ne!(r.body["version_id"].as_i64().unwrap(), first_version);
    engine.tick().await.unwrap();
    let notes: Vec<String> = app
        .timeline(inc)
        .await
        .iter()
        .filter(|e| e["kind"] == "incident.note_added")
        .map(|e| e["data"]["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        notes,
        ["v1 first", "v2 second"],
        "each run follows its version"
    );
    let versions = app.get(&format!("/api/v1/workflows/{id}/versions")).await;
    assert_eq!(versions.body.as_array().unwrap().len(), 2);
    assert_eq!(versions.body[0]["version"], 2);
    let export = app.get(&format!("/api/v1/workflows/{id}/export")).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/yaml"));
    assert_eq!(String::from_utf8(export.bytes).unwrap(), v2);
    // Inputs are checked; a workflow not started by hand is refused.
    let r = app
        .post(
            &format!("/api/v1/workflows/{id}/runs"),
            json!({ "incident_id": inc }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "inputs.why")
    );
    let auto = create(
        &app,
        "name: Auto\ntrigger: incident_declared\nsteps: [{add_note: {text: x}}]\n",
    )
    .await;
    let r = app
        .post(
            &format!("/api/v1/workflows/{auto}/runs"),
            json!({ "incident_id": inc }),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "not_manual"));
    // Deleted: gone from the list, the name free, its runs still readable.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/workflows/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/workflows/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(runs_of(&app, inc).await.len(), 2);
    create(&app, v1).await;
}

crate::workflow_tests!(
    sev1_declared_on_a_service_runs_its_workflow,
    a_failing_step_retries_then_fails_visibly,
    a_restart_after_the_call_sends_the_same_key_again,
    a_dry_run_shows_the_plan_and_changes_nothing,
    edits_are_versions_and_export_returns_the_yaml,
);
