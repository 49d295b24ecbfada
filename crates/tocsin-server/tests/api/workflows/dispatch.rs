//! Exactly once: two engines on one database (two nodes), racing over the
//! same queued events and due steps, start each run once and call once per
//! step. Alert triggers match on labels.

use std::collections::BTreeSet;

use serde_json::json;
use tocsin_store::{Store, StoreOptions};

use super::{config, create, declare, engine, engine_on, runs_of, service, Fake};
use crate::support::TestApp;

async fn two_engines_dispatch_each_event_once(app: TestApp) {
    let fake = Fake::start().await;
    create(
        &app,
        &format!(
            "name: Once
trigger: incident_declared
steps:
  - http: {{url: '{}/once', method: POST, body: '{{{{ incident.id }}}}'}}
  - add_note: {{text: once}}
limits: {{max_runs_per_hour: 1000}}
",
            fake.base
        ),
    )
    .await;
    let other = Store::connect(
        &app.db_url,
        &StoreOptions {
            max_connections: 5,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (a, _) = engine(&app, &config(true));
    let (b, _) = engine_on(&app, other.clone(), &config(true));
    let mut incidents = Vec::new();
    for i in 0..12 {
        incidents.push(declare(&app, &format!("Storm {i}"), "SEV3", &[]).await);
        if i % 4 == 3 {
            let (ra, rb) = tokio::join!(a.tick(), b.tick());
            ra.unwrap();
            rb.unwrap();
        }
    }
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.tick(), b.tick());
        ra.unwrap();
        rb.unwrap();
    }
    let calls = fake.to("/once");
    let bodies: BTreeSet<String> = calls.iter().map(|c| c.body.clone()).collect();
    let expected: BTreeSet<String> = incidents.iter().map(|i| i.to_string()).collect();
    assert_eq!(bodies, expected);
    assert_eq!(calls.len(), incidents.len(), "one call per incident");
    let keys: BTreeSet<_> = calls.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys.len(), calls.len());
    for inc in &incidents {
        let runs = runs_of(&app, *inc).await;
        assert_eq!(runs.len(), 1, "INC-{inc}: {runs:?}");
        assert_eq!(runs[0]["status"], "succeeded");
        let notes = app
            .timeline(*inc)
            .await
            .iter()
            .filter(|e| e["kind"] == "incident.note_added")
            .count();
        assert_eq!(notes, 1);
    }
    let queue = app
        .counts()
        .await
        .into_iter()
        .find(|(t, _)| t == "workflow_trigger_queue")
        .unwrap();
    assert_eq!(queue.1, 0, "every queued event was dispatched");
    other.close().await;
}

async fn alert_triggers_match_service_and_labels(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    let db = service(&app, "db").await;
    create(
        &app,
        r#"name: Database alerts
trigger:
  alert_fired:
    service: db
    matchers: ['team="database"']
steps:
  - add_note: {text: 'db alert {{ alert.labels.component }} on {{ alert.service }}'}
"#,
    )
    .await;
    // Events with no workflow listening are not queued at all.
    let unrelated = declare(&app, "Not an alert", "SEV3", &[db]).await;
    let key = app
        .post(
            &format!("/api/v1/services/{db}/integration-keys"),
            json!({ "name": "am" }),
        )
        .await
        .body["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/integrations/alertmanager/{key}");
    let send = |labels: serde_json::Value, fp: &str| {
        let body = json!({
            "version": "4", "status": "firing", "receiver": "tocsin", "groupKey": fp,
            "alerts": [{ "status": "firing", "labels": labels, "annotations": { "summary": "disk" },
                         "startsAt": "2026-01-01T00:00:00Z", "fingerprint": fp }]
        });
        app.call(reqwest::Method::POST, &path, None, Some(body))
    };
    let r = send(
        json!({ "alertname": "Disk", "team": "database", "component": "postgres" }),
        "a1",
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = send(json!({ "alertname": "Disk", "team": "web" }), "a2").await;
    assert!(r.status.is_success(), "{}", r.body);
    let tick = engine.tick().await.unwrap();
    assert_eq!(tick.runs, 1, "{tick:?}");
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={db}"))
        .await
        .body;
    let matched = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["team"] == "database")
        .unwrap();
    let inc = matched["incident_id"].as_i64().unwrap();
    let notes: Vec<_> = app
        .timeline(inc)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "incident.note_added")
        .collect();
    assert_eq!(notes[0]["data"]["body"], "db alert postgres on db");
    assert!(runs_of(&app, unrelated).await.is_empty());
}

crate::workflow_tests!(
    two_engines_dispatch_each_event_once,
    alert_triggers_match_service_and_labels,
);
