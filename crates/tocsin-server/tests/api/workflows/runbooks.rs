//! Runbooks: written and versioned over the API, attached by their rules or
//! by hand, ticked by people (on the timeline, with who and when), and an
//! item's step run with one click through the run engine against a local
//! server, its outputs recorded on the item and the timeline.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{config, declare, engine, kinds, run, service, Fake};
use crate::support::TestApp;

/// A runbook whose first item checks a health endpoint on `base`.
pub fn failover(base: &str) -> String {
    format!(
        "# Payments failover

- [ ] Check the primary's health
  ```tocsin-step
  http:
    method: POST
    url: {base}/health
    body: '{{\"incident\": \"{{{{ incident.number }}}}\"}}'
  ```
- [ ] Tell support
"
    )
}

/// Creates a runbook as admin; its id.
pub async fn create_runbook(app: &TestApp, body: Value) -> i64 {
    let r = app.post("/api/v1/runbooks", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn on_incident(app: &TestApp, inc: i64) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/incidents/{inc}/runbooks")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

fn events<'a>(timeline: &'a [Value], kind: &str) -> Vec<&'a Value> {
    timeline.iter().filter(|e| e["kind"] == kind).collect()
}

async fn runbooks_are_written_versioned_and_checked(app: TestApp) {
    let fake = Fake::start().await;
    service(&app, "payments").await;
    let id = create_runbook(
        &app,
        json!({ "name": "Failover", "markdown": failover(&fake.base),
                "attach": { "services": ["payments"], "severities": ["SEV1"] } }),
    )
    .await;
    let r = app.get(&format!("/api/v1/runbooks/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "Failover");
    assert_eq!(r.body["title"], "Payments failover");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["items"], 2);
    assert_eq!(r.body["steps"], 1);
    assert_eq!(r.body["attach"]["services"], json!(["payments"]));
    assert_eq!(r.body["checklist"][0]["step"], "http");
    assert_eq!(r.body["checklist"][1]["step"], Value::Null);
    // The rules became the markdown's front matter: one exportable document.
    let md = r.body["markdown"].as_str().unwrap();
    assert!(
        md.starts_with("---\nattach:\n  services: [\"payments\"]\n"),
        "{md}"
    );

    // A viewer reads; a responder may not write.
    let (_, viewer) = app.user_with_role("viewer").await;
    let (_, responder) = app.user_with_role("responder").await;
    let list = app
        .call(Method::GET, "/api/v1/runbooks", Some(&viewer), None)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    let before = app.counts().await;
    for (method, path) in [
        (Method::POST, "/api/v1/runbooks".to_string()),
        (Method::PUT, format!("/api/v1/runbooks/{id}")),
        (Method::DELETE, format!("/api/v1/runbooks/{id}")),
    ] {
        let r = app
            .call(
                method,
                &path,
                Some(&responder),
                Some(json!({ "name": "X", "markdown": "- [ ] a" })),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }

    // Bad input is refused naming the field, and nothing is written.
    for (body, field) in [
        (json!({ "name": " ", "markdown": "- [ ] a" }), "name"),
        (json!({ "markdown": "- [ ] a" }), "name"),
        (json!({ "name": "Failover", "markdown": "- [ ] a" }), "name"),
        (
            json!({ "name": "B", "markdown": "- [ ] a\n```tocsin-step\nhttp: {url: 'ftp://x'}\n```\n" }),
            "items[0].step.http.url",
        ),
        (
            json!({ "name": "B", "markdown": "# T\n```tocsin-step\nwait: 1m\n```\n" }),
            "markdown",
        ),
        (
            json!({ "name": "B", "markdown": "- [ ] a", "attach": { "services": ["nope"] } }),
            "attach.services[0]",
        ),
        (
            json!({ "name": "B", "markdown": "- [ ] a", "attach": { "severities": ["SEV9"] } }),
            "attach.severities[0]",
        ),
        (
            json!({ "name": "B", "markdown": "- [ ] a", "attach": { "incident_types": ["x"] } }),
            "attach.incident_types[0]",
        ),
        (
            json!({ "name": "B", "markdown": "- [ ] a\n```tocsin-step\ncommand: {name: rm}\n```\n" }),
            "items[0].step.command.name",
        ),
        (
            json!({ "name": "B", "markdown": "- [ ] a\n```tocsin-step\nhttp: {url: 'https://x.example', headers: {A: '{{ secrets.NOPE }}'}}\n```\n" }),
            "items[0].step.http.headers.A",
        ),
        (
            json!({ "name": "B", "markdown": "- [ ] a", "extra": 1 }),
            "extra",
        ),
    ] {
        let r = app.post("/api/v1/runbooks", body.clone()).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::CONFLICT,
            "{body}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    assert_eq!(app.counts().await, before);

    // An incident gets version 1; an edit makes version 2 and leaves the copy.
    let payments = service(&app, "payments-2").await;
    let inc = declare(&app, "Checkout down", "SEV3", &[payments]).await;
    let a = app
        .post(
            &format!("/api/v1/incidents/{inc}/runbooks"),
            json!({ "runbook_id": id }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let put = app
        .call(
            Method::PUT,
            &format!("/api/v1/runbooks/{id}"),
            Some(&app.admin_token),
            Some(json!({ "name": "Failover v2", "markdown": "# New\n- [ ] only one\n" })),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["version"], 2);
    assert_eq!(put.body["attach"]["services"], json!([]));
    let versions = app.get(&format!("/api/v1/runbooks/{id}/versions")).await;
    let v = versions.body.as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0]["version"].clone(), v[0]["name"].clone()),
        (json!(2), json!("Failover v2"))
    );
    assert!(v[1]["markdown"]
        .as_str()
        .unwrap()
        .contains("Check the primary"));
    let copy = &on_incident(&app, inc).await[0];
    assert_eq!(copy["version"], 1);
    assert_eq!(copy["name"], "Failover");
    assert_eq!(copy["total"], 2);
    assert_eq!(copy["items"][0]["text"], "Check the primary's health");

    // Deleting frees the name; the copy on the incident stays.
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/runbooks/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/runbooks/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    create_runbook(
        &app,
        json!({ "name": "Failover v2", "markdown": "- [ ] x" }),
    )
    .await;
    assert_eq!(on_incident(&app, inc).await[0]["name"], "Failover");
}

async fn rules_attach_runbooks_once_by_service_severity_and_type(app: TestApp) {
    let payments = service(&app, "payments").await;
    let search = service(&app, "search").await;
    let db = create_runbook(
        &app,
        json!({ "name": "Database", "markdown": "# DB\n- [ ] Look at replication lag\n",
                "attach": { "services": ["payments"], "severities": ["SEV1", "SEV2"] } }),
    )
    .await;
    // Rules may also come in the markdown's front matter.
    let sec = create_runbook(
        &app,
        json!({ "name": "Security", "markdown": "---\nattach:\n  incident_types: [security]\n---\n- [ ] Rotate keys\n" }),
    )
    .await;
    create_runbook(&app, json!({ "name": "By hand", "markdown": "- [ ] x" })).await;

    let quiet = declare(&app, "Search slow", "SEV1", &[search]).await;
    assert!(on_incident(&app, quiet).await.is_empty());
    let inc = declare(&app, "Checkout slow", "SEV3", &[payments]).await;
    assert!(on_incident(&app, inc).await.is_empty());
    // The severity rises: the rules match now.
    let r = app
        .patch(
            &format!("/api/v1/incidents/{inc}"),
            json!({ "severity": "SEV1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let on = on_incident(&app, inc).await;
    assert_eq!(on.len(), 1);
    assert_eq!(on[0]["runbook_id"], db);
    assert_eq!(on[0]["how"], "rule");
    let attached = events(&app.timeline(inc).await, "runbook.attached")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0]["data"]["runbook"], "Database");
    assert_eq!(attached[0]["data"]["how"], "rule");
    // Changing it again attaches nothing twice.
    app.patch(
        &format!("/api/v1/incidents/{inc}"),
        json!({ "severity": "SEV2" }),
    )
    .await;
    app.patch(
        &format!("/api/v1/incidents/{inc}"),
        json!({ "service_ids": [payments, search] }),
    )
    .await;
    assert_eq!(on_incident(&app, inc).await.len(), 1);
    // Detached by a person, rules do not bring it back; a person may.
    let (_, responder) = app.user_with_role("responder").await;
    let d = app
        .call(
            Method::DELETE,
            &format!("/api/v1/incidents/{inc}/runbooks/{db}"),
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    app.patch(
        &format!("/api/v1/incidents/{inc}"),
        json!({ "severity": "SEV1" }),
    )
    .await;
    assert!(on_incident(&app, inc).await.is_empty());
    assert!(kinds(&app, inc)
        .await
        .contains(&"runbook.detached".to_string()));
    let again = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{inc}/runbooks"),
            Some(&responder),
            Some(json!({ "name": "Database" })),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["how"], "hand");
    let twice = app
        .post(
            &format!("/api/v1/incidents/{inc}/runbooks"),
            json!({ "runbook_id": db }),
        )
        .await;
    assert_eq!(twice.status, StatusCode::OK);
    assert_eq!(on_incident(&app, inc).await.len(), 1);
    // By type, at declaration.
    let breach = app
        .declare(json!({ "title": "Leaked key", "type": "security" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let on = on_incident(&app, breach).await;
    assert_eq!(on.len(), 1, "{on:?}");
    assert_eq!(on[0]["runbook_id"], sec);
    // Refused attachments name the field; viewers may not attach.
    for (body, field) in [
        (json!({ "name": "nope" }), "name"),
        (json!({}), "runbook_id"),
        (
            json!({ "runbook_id": db, "name": "Database" }),
            "runbook_id",
        ),
    ] {
        let r = app
            .post(&format!("/api/v1/incidents/{inc}/runbooks"), body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.field(), field);
    }
    let (_, viewer) = app.user_with_role("viewer").await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{quiet}/runbooks"),
            Some(&viewer),
            Some(json!({ "runbook_id": db })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn ticks_are_kept_with_who_and_when_on_the_timeline(app: TestApp) {
    let id = create_runbook(
        &app,
        json!({ "name": "Checklist", "markdown": "- [ ] one\n- [ ] two\n" }),
    )
    .await;
    let inc = declare(&app, "Broken", "SEV2", &[]).await;
    app.post(
        &format!("/api/v1/incidents/{inc}/runbooks"),
        json!({ "runbook_id": id }),
    )
    .await;
    let (responder_id, responder) = app.user_with_role("responder").await;
    let (_, viewer) = app.user_with_role("viewer").await;
    let item = format!("/api/v1/incidents/{inc}/runbooks/{id}/items/1");
    app.clock.advance(chrono::Duration::minutes(5));
    let r = app
        .call(
            Method::PUT,
            &item,
            Some(&responder),
            Some(json!({ "checked": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["done"], 1);
    assert_eq!(r.body["items"][1]["ticked"], true);
    assert_eq!(r.body["items"][1]["by"], responder_id);
    assert_eq!(r.body["items"][1]["at"], "2026-01-01T00:05:00Z");
    assert_eq!(r.body["items"][0]["ticked"], false);
    // The same again changes nothing.
    app.call(
        Method::PUT,
        &item,
        Some(&responder),
        Some(json!({ "checked": true })),
    )
    .await;
    let t = app.timeline(inc).await;
    let checked = events(&t, "runbook.item_checked");
    assert_eq!(checked.len(), 1);
    let e = checked[0];
    assert_eq!(e["actor"], "A responder");
    assert_eq!(e["actor_id"], responder_id);
    assert_eq!(e["data"]["runbook"], "Checklist");
    assert_eq!(e["data"]["text"], "two");
    assert_eq!(e["data"]["item"], 1);
    assert_eq!(e["data"]["by"], responder_id);
    assert_eq!(e["data"]["by_name"], "A responder");
    assert_eq!(e["data"]["at"], "2026-01-01T00:05:00Z");
    let r = app
        .call(
            Method::PUT,
            &item,
            Some(&app.admin_token),
            Some(json!({ "checked": false })),
        )
        .await;
    assert_eq!(r.body["items"][1]["ticked"], false);
    assert_eq!(r.body["items"][1]["by"], app.admin_id);
    assert!(kinds(&app, inc)
        .await
        .contains(&"runbook.item_unchecked".to_string()));
    // Viewers may not tick; bad items are refused by name.
    let before = app.counts().await;
    let r = app
        .call(
            Method::PUT,
            &item,
            Some(&viewer),
            Some(json!({ "checked": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for (path, body, status, field) in [
        (
            format!("/api/v1/incidents/{inc}/runbooks/{id}/items/7"),
            json!({ "checked": true }),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            format!("/api/v1/incidents/{inc}/runbooks/{id}/items/x"),
            json!({ "checked": true }),
            StatusCode::BAD_REQUEST,
            "index",
        ),
        (
            item.clone(),
            json!({ "checked": "yes" }),
            StatusCode::BAD_REQUEST,
            "checked",
        ),
        (item.clone(), json!({}), StatusCode::BAD_REQUEST, "checked"),
        (
            format!("/api/v1/incidents/{inc}/runbooks/999/items/0"),
            json!({ "checked": true }),
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let r = app
            .call(Method::PUT, &path, Some(&responder), Some(body))
            .await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.field(), field, "{path}: {}", r.body);
    }
    assert_eq!(app.counts().await, before);
}

async fn one_click_runs_the_step_and_records_its_outputs(app: TestApp) {
    let fake = Fake::start().await;
    let (engine, _) = engine(&app, &config(true));
    let id = create_runbook(
        &app,
        json!({ "name": "Failover", "markdown": failover(&fake.base) }),
    )
    .await;
    let inc = declare(&app, "Checkout down", "SEV2", &[]).await;
    app.post(
        &format!("/api/v1/incidents/{inc}/runbooks"),
        json!({ "runbook_id": id }),
    )
    .await;
    let (responder_id, responder) = app.user_with_role("responder").await;
    let run_path = format!("/api/v1/incidents/{inc}/runbooks/{id}/items/0/run");
    let r = app
        .call(Method::POST, &run_path, Some(&responder), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let run_id = r.body["run_id"].as_i64().unwrap();
    assert_eq!(r.body["runbook"]["items"][0]["run"]["status"], "pending");
    // A second click while it runs is refused.
    let again = app
        .call(Method::POST, &run_path, Some(&responder), None)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "run_in_progress");
    // The engine carries it out: one call, rendered, with the attempt's key.
    engine.tick().await.unwrap();
    let calls = fake.to("/health");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].body, format!("{{\"incident\": \"INC-{inc}\"}}"));
    assert_eq!(
        calls[0].key.as_deref(),
        Some(format!("{run_id}:steps[0]:1").as_str())
    );
    let detail = run(&app, run_id).await;
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["incident_id"], inc);
    assert_eq!(detail["started_by"], responder_id);
    assert_eq!(
        detail["workflow_name"],
        "Runbook Failover: Check the primary's health"
    );
    // The item has the outcome and is ticked for whoever ran it.
    let on = &on_incident(&app, inc).await[0];
    let item = &on["items"][0];
    assert_eq!(item["run"]["run_id"], run_id);
    assert_eq!(item["run"]["status"], "succeeded");
    assert_eq!(item["output"]["status"], 200);
    assert_eq!(item["output"]["body"]["id"], 42);
    assert_eq!(item["ticked"], true);
    assert_eq!(item["by"], responder_id);
    let t = app.timeline(inc).await;
    let started = events(&t, "runbook.item_run_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["actor_id"], responder_id);
    assert_eq!(started[0]["data"]["run_id"], run_id);
    assert_eq!(started[0]["data"]["step_kind"], "http");
    let finished = events(&t, "runbook.item_run_finished");
    assert_eq!(finished.len(), 1);
    let d = &finished[0]["data"];
    assert_eq!(d["runbook"], "Failover");
    assert_eq!(d["text"], "Check the primary's health");
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["by"], responder_id);
    assert_eq!(d["by_name"], "A responder");
    assert_eq!(d["output_summary"], "HTTP 200: {\"id\":42,\"ok\":true}");
    assert_eq!(d["outputs"]["status"], 200);
    assert_eq!(d["ticked"], true);
    let k = kinds(&app, inc).await;
    for kind in [
        "workflow.run_started",
        "workflow.step_succeeded",
        "workflow.run_finished",
    ] {
        assert!(k.contains(&kind.to_string()), "{kind} in {k:?}");
    }
    // The runbook's workflow is no standing workflow.
    assert_eq!(app.get("/api/v1/workflows").await.body, json!([]));

    // A failing run is recorded, and the item stays unticked.
    fake.answer_with("/health", &[500]);
    let item0 = format!("/api/v1/incidents/{inc}/runbooks/{id}/items/0");
    app.call(
        Method::PUT,
        &item0,
        Some(&responder),
        Some(json!({ "checked": false })),
    )
    .await;
    let r = app
        .call(Method::POST, &run_path, Some(&responder), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let failed_run = r.body["run_id"].as_i64().unwrap();
    engine.tick().await.unwrap();
    let item = &on_incident(&app, inc).await[0]["items"][0];
    assert_eq!(item["run"]["run_id"], failed_run);
    assert_eq!(item["run"]["status"], "failed");
    assert!(
        item["run"]["error"].as_str().unwrap().contains("HTTP 500"),
        "{item}"
    );
    assert_eq!(item["ticked"], false);
    let t = app.timeline(inc).await;
    let last = *events(&t, "runbook.item_run_finished").last().unwrap();
    assert_eq!(last["data"]["status"], "failed");
    assert!(last["data"]["error"].as_str().unwrap().contains("HTTP 500"));

    // An item without a step, a viewer, a detached runbook: refused.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{inc}/runbooks/{id}/items/1/run"),
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "no_step");
    let (_, viewer) = app.user_with_role("viewer").await;
    let r = app.call(Method::POST, &run_path, Some(&viewer), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.call(
        Method::DELETE,
        &format!("/api/v1/incidents/{inc}/runbooks/{id}"),
        Some(&responder),
        None,
    )
    .await;
    let r = app
        .call(Method::POST, &run_path, Some(&responder), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(fake.to("/health").len(), 2);
}

crate::workflow_tests!(
    runbooks_are_written_versioned_and_checked,
    rules_attach_runbooks_once_by_service_severity_and_type,
    ticks_are_kept_with_who_and_when_on_the_timeline,
    one_click_runs_the_step_and_records_its_outputs,
);
