//! Guardrails: workflows that trigger each other stop, outgoing HTTP stays
//! off private and link-local addresses unless allowed, commands run only
//! from the allowlist, and definitions naming what does not exist are refused.

use chrono::Duration;
use serde_json::json;

use super::{config, create, declare, engine, run, runs_of, save, Fake};
use crate::support::TestApp;

async fn two_workflows_that_trigger_each_other_stop(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    for (from, to) in [("SEV1", "SEV2"), ("SEV2", "SEV1")] {
        create(
            &app,
            &format!(
                "name: {from} to {to}
trigger: {{incident_changed: {{field: severity, to: [{from}]}}}}
steps:
  - update_incident: {{severity: {to}}}
"
            ),
        )
        .await;
    }
    let inc = declare(&app, "Ping-pong", "SEV3", &[]).await;
    let r = app
        .patch(
            &format!("/api/v1/incidents/{inc}"),
            json!({ "severity": "SEV1" }),
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::OK);
    // Each tick runs what the previous one's changes triggered.
    for _ in 0..20 {
        let t = engine.tick().await.unwrap();
        if t.events == 0 && t.steps == 0 {
            break;
        }
    }
    let runs = runs_of(&app, inc).await;
    assert!(
        (2..=5).contains(&runs.len()),
        "stopped after {} runs: {runs:?}",
        runs.len()
    );
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    let timeline = app.timeline(inc).await;
    let refused: Vec<_> = timeline
        .iter()
        .filter(|e| e["kind"] == "workflow.run_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let why = refused[0]["data"]["reason"].as_str().unwrap();
    assert!(why.contains("chain") || why.contains("ran"), "{why}");
    // The chain is on record: the last run names the runs before it.
    let last = run(&app, runs[0]["id"].as_i64().unwrap()).await;
    assert_eq!(last["chain"].as_array().unwrap().len(), runs.len() - 1);
    // Changes were made as the workflows.
    assert!(timeline
        .iter()
        .any(|e| e["kind"] == "incident.updated" && e["actor"] == "workflow SEV1 to SEV2"));
}

async fn http_steps_refuse_loopback_and_metadata_unless_allowed(app: TestApp) {
    let fake = Fake::start().await;
    create(
        &app,
        &format!(
            "name: Private
trigger: incident_declared
steps:
  - http: {{url: '{}/local'}}
    continue_on_error: true
  - http: {{url: 'http://169.254.169.254/latest/meta-data/', timeout: 2s}}
",
            fake.base
        ),
    )
    .await;
    let denied = declare(&app, "Denied", "SEV3", &[]).await;
    let (strict, _) = engine(&app, &config(false));
    strict.tick().await.unwrap();
    let id = runs_of(&app, denied).await[0]["id"].as_i64().unwrap();
    let r = run(&app, id).await;
    assert_eq!(r["status"], "failed");
    let local = r["steps"][0]["error"].as_str().unwrap();
    assert!(
        local.contains("127.0.0.1") && local.contains("loopback"),
        "{local}"
    );
    let meta = r["steps"][1]["error"].as_str().unwrap();
    assert!(
        meta.contains("169.254.169.254") && meta.contains("link-local"),
        "{meta}"
    );
    assert_eq!(r["steps"][0]["attempt"], 1, "a refusal is not retried");
    assert!(fake.received().is_empty());
    // Allowed by configuration, the loopback call goes through.
    let allowed = declare(&app, "Allowed", "SEV3", &[]).await;
    let (open, _) = engine(&app, &config(true));
    open.tick().await.unwrap();
    let id = runs_of(&app, allowed).await[0]["id"].as_i64().unwrap();
    let r = run(&app, id).await;
    assert_eq!(r["steps"][0]["status"], "succeeded", "{r}");
    assert_eq!(fake.to("/local").len(), 1);
    assert_eq!(
        r["steps"][1]["status"], "failed",
        "169.254/16 is still refused"
    );
}

async fn commands_run_from_the_allowlist_only(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    let r = save(
        &app,
        "name: Bad\ntrigger: incident_declared\nsteps:\n  - command: {name: rm, args: ['-rf', '/']}\n",
    )
    .await;
    assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "steps[0].command.name");
    create(
        &app,
        "name: Commands
trigger: incident_declared
steps:
  - id: hello
    command: {name: echo, args: ['hello', '{{ incident.title }}; rm -rf /']}
  - add_note: {text: 'said {{ steps.hello.outputs.stdout }}'}
  - command: {name: sleep, args: ['5'], timeout: 1s}
",
    )
    .await;
    let inc = declare(&app, "Echo", "SEV3", &[]).await;
    engine.tick().await.unwrap();
    let id = runs_of(&app, inc).await[0]["id"].as_i64().unwrap();
    let r = run(&app, id).await;
    assert_eq!(r["steps"][0]["status"], "succeeded", "{r}");
    // Arguments are arguments, not a shell line.
    assert_eq!(
        r["steps"][0]["outputs"]["stdout"],
        "fixed hello Echo; rm -rf /\n"
    );
    assert_eq!(r["steps"][0]["outputs"]["exit_code"], 0);
    let sleep = &r["steps"][2];
    assert_eq!(sleep["status"], "failed", "{r}");
    assert!(
        sleep["error"].as_str().unwrap().contains("killed"),
        "{sleep}"
    );
    assert_eq!(r["status"], "failed");
    app.clock.advance(Duration::minutes(1));
    assert_eq!(engine.tick().await.unwrap().steps, 0);
}

async fn definitions_naming_what_does_not_exist_are_refused(app: TestApp) {
    for (yaml, field) in [
        (
            "name: S\ntrigger: incident_declared\nsteps:\n  - http: {url: 'https://x.example', headers: {A: '{{ secrets.NOPE }}'}}\n",
            "steps[0].http.headers.A",
        ),
        (
            "name: C\ntrigger: incident_declared\nsteps:\n  - notify: {channel: nowhere, message: hi}\n",
            "steps[0].notify.channel",
        ),
        ("name: P\ntrigger: incident_declared\nsteps: []\n", "steps"),
        ("name: [", "definition"),
    ] {
        let before = app.counts().await;
        let r = save(&app, yaml).await;
        assert_eq!(r.status, reqwest::StatusCode::BAD_REQUEST, "{yaml}: {}", r.body);
        assert_eq!(r.field(), field, "{yaml}");
        assert_eq!(app.counts().await, before);
    }
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/workflows",
            Some(&app.admin_token),
            "text/plain",
            b"name: x".to_vec(),
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    create(
        &app,
        "name: Named\ntrigger: incident_declared\nsteps:\n  - notify: {channel: ops, message: hi}\n",
    )
    .await;
    let r = save(
        &app,
        "name: Named\ntrigger: incident_declared\nsteps:\n  - notify: {channel: ops, message: hi}\n",
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (reqwest::StatusCode::CONFLICT, "name")
    );
}

crate::workflow_tests!(
    two_workflows_that_trigger_each_other_stop,
    http_steps_refuse_loopback_and_metadata_unless_allowed,
    commands_run_from_the_allowlist_only,
    definitions_naming_what_does_not_exist_are_refused,
);
