//! Grouping alerts into incidents by a key within a window, urgency rules, and
//! incidents acting on their alerts; alert rules refused whole when a part is bad.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ingest::service_with_key;
use crate::support::{Resp, TestApp};

const BY_COMPONENT_AND_GROUP: &str = "{{ labels.component }}/{{ labels.group }}";

async fn put_rules(app: &TestApp, svc: i64, rules: Value) -> Resp {
    app.call(
        Method::PUT,
        &format!("/api/v1/services/{svc}/alert-rules"),
        Some(&app.admin_token),
        Some(rules),
    )
    .await
}

async fn group_by_key(app: &TestApp, svc: i64, window_minutes: u32) {
    let r = put_rules(
        app,
        svc,
        json!({ "grouping": { "mode": "by_key", "key": BY_COMPONENT_AND_GROUP, "window_minutes": window_minutes } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Triggers `dedup` with labels component and group; returns the alert.
async fn fire(
    app: &TestApp,
    key: &str,
    dedup: &str,
    component: &str,
    group: &str,
    severity: &str,
) -> Value {
    let body = json!({ "routing_key": key, "event_action": "trigger", "dedup_key": dedup,
        "payload": { "summary": format!("{dedup} failing"), "source": "host-1", "severity": severity,
                     "component": component, "group": group } });
    let r = app
        .call(Method::POST, "/v2/enqueue", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    open_alert(app, dedup).await
}

async fn source_says(app: &TestApp, key: &str, dedup: &str, action: &str) {
    let body = json!({ "routing_key": key, "event_action": action, "dedup_key": dedup });
    let r = app
        .call(Method::POST, "/v2/enqueue", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

/// The newest alert with this dedup key.
async fn open_alert(app: &TestApp, dedup: &str) -> Value {
    let items = app.get("/api/v1/alerts?limit=500").await.body["items"].clone();
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["dedup_key"] == dedup)
        .cloned()
        .unwrap_or_else(|| panic!("no alert {dedup}"))
}

fn incident_of(alert: &Value) -> i64 {
    alert["incident_id"].as_i64().expect("incident_id")
}

/// The dedup keys of an incident's alerts, sorted.
async fn alerts_of(app: &TestApp, incident: i64) -> Vec<String> {
    let r = app
        .get(&format!("/api/v1/alerts?incident_id={incident}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut keys: Vec<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["dedup_key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

async fn incident(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/v1/incidents/{id}")).await.body
}

async fn incident_count(app: &TestApp, svc: i64) -> usize {
    app.get(&format!("/api/v1/incidents?service_id={svc}&limit=500"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len()
}

/// (kind, alert id) of the timeline's alert events, in order.
async fn alert_events(app: &TestApp, incident: i64) -> Vec<(String, i64)> {
    app.timeline(incident)
        .await
        .iter()
        .filter(|e| e["entity"] == "alert")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["entity_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn same_key_within_the_window_joins_one_incident(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    group_by_key(&app, svc, 10).await;

    let a1 = fire(&app, &key, "disk-db-1", "postgres", "eu", "warning").await;
    let inc = incident_of(&a1);
    app.clock.advance(Duration::minutes(4));
    let a2 = fire(&app, &key, "disk-db-2", "postgres", "eu", "critical").await;
    assert_eq!(incident_of(&a2), inc, "same key within the window joins");
    let other = fire(&app, &key, "disk-db-3", "postgres", "us", "warning").await;
    assert_ne!(
        incident_of(&other),
        inc,
        "another key opens another incident"
    );

    assert_eq!(alerts_of(&app, inc).await, ["disk-db-1", "disk-db-2"]);
    assert_eq!(
        alert_events(&app, inc).await,
        [
            ("alert.triggered".to_string(), a1["id"].as_i64().unwrap()),
            ("alert.triggered".to_string(), a2["id"].as_i64().unwrap()),
        ],
        "every alert of the incident is on its timeline"
    );
    let declared = app
        .timeline(inc)
        .await
        .iter()
        .filter(|e| e["kind"] == "incident.declared")
        .count();
    assert_eq!(declared, 1);
    // A worse alert joining does not change the incident: the first alert classified it.
    let i = incident(&app, inc).await;
    assert_eq!(
        (i["severity"].as_str(), i["urgency"].as_str()),
        (Some("SEV3"), Some("medium"))
    );

    // The window runs from the incident's opening: just inside joins, at its end splits.
    app.clock
        .advance(Duration::minutes(6) - Duration::seconds(1));
    let a4 = fire(&app, &key, "disk-db-4", "postgres", "eu", "warning").await;
    assert_eq!(incident_of(&a4), inc, "9m59s after the first alert joins");
    app.clock.advance(Duration::seconds(1));
    let a5 = fire(&app, &key, "disk-db-5", "postgres", "eu", "warning").await;
    let split = incident_of(&a5);
    assert_ne!(split, inc, "10 minutes after the first alert splits");
    app.clock.advance(Duration::minutes(1));
    let a6 = fire(&app, &key, "disk-db-6", "postgres", "eu", "warning").await;
    assert_eq!(
        incident_of(&a6),
        split,
        "the new incident starts its own window"
    );
    assert_eq!(alerts_of(&app, split).await, ["disk-db-5", "disk-db-6"]);
    assert_eq!(incident_count(&app, svc).await, 3);

    // Repeats of a grouped alert stay counts on the alert.
    fire(&app, &key, "disk-db-1", "postgres", "eu", "warning").await;
    assert_eq!(open_alert(&app, "disk-db-1").await["count"], 2);
    assert_eq!(incident_count(&app, svc).await, 3);
}

async fn per_alert_is_the_default(app: TestApp) {
    let (svc, key) = service_with_key(&app, "web").await;
    let rules = app
        .get(&format!("/api/v1/services/{svc}/alert-rules"))
        .await;
    assert_eq!(rules.status, StatusCode::OK);
    assert_eq!(
        rules.body,
        json!({ "grouping": { "mode": "per_alert", "key": "", "window_minutes": 10 }, "urgency_rules": [] })
    );
    let a1 = fire(&app, &key, "a1", "nginx", "eu", "error").await;
    let a2 = fire(&app, &key, "a2", "nginx", "eu", "error").await;
    assert_ne!(incident_of(&a1), incident_of(&a2));
    assert_eq!(incident_count(&app, svc).await, 2);
}

async fn auto_resolve_waits_for_the_last_grouped_alert(app: TestApp) {
    let (svc, key) = service_with_key(&app, "queue").await;
    group_by_key(&app, svc, 30).await;
    let a1 = fire(&app, &key, "lag-1", "kafka", "eu", "error").await;
    let inc = incident_of(&a1);
    app.clock.advance(Duration::minutes(1));
    fire(&app, &key, "lag-2", "kafka", "eu", "error").await;
    source_says(&app, &key, "lag-1", "resolve").await;
    assert_eq!(open_alert(&app, "lag-1").await["status"], "resolved");
    assert_eq!(
        incident(&app, inc).await["status"],
        "triggered",
        "one alert of two resolved: the incident stays open"
    );
    source_says(&app, &key, "lag-2", "resolve").await;
    assert_eq!(
        incident(&app, inc).await["status"],
        "resolved",
        "the last alert resolved"
    );
    let status_changes = app
        .timeline(inc)
        .await
        .iter()
        .filter(|e| e["kind"] == "incident.status_changed")
        .count();
    assert_eq!(status_changes, 1, "resolved once");

    // Within the window, but the incident is resolved: a new incident.
    app.clock.advance(Duration::minutes(1));
    let a3 = fire(&app, &key, "lag-3", "kafka", "eu", "error").await;
    assert_ne!(incident_of(&a3), inc);
    // The old alert firing again is a new alert too, in the new incident.
    let again = fire(&app, &key, "lag-1", "kafka", "eu", "error").await;
    assert_ne!(again["id"], a1["id"]);
    assert_eq!(incident_of(&again), incident_of(&a3));
}

async fn urgency_rules_set_severity_and_urgency(app: TestApp) {
    let (svc, key) = service_with_key(&app, "api").await;
    let r = put_rules(
        &app,
        svc,
        json!({ "urgency_rules": [
            { "matchers": ["severity=~critical|error", "component=db"], "severity": "SEV2", "urgency": "low" },
            { "matchers": ["component=db"], "severity": "SEV3", "urgency": "high" },
            { "matchers": ["component=db"], "severity": "SEV4" },
            { "matchers": ["group=batch"], "urgency": "low" },
        ] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["urgency_rules"].as_array().unwrap().len(), 4);
    let class = |alert: Value| {
        let app = &app;
        async move {
            let i = incident(app, incident_of(&alert)).await;
            (
                i["severity"].as_str().unwrap().to_string(),
                i["urgency"].as_str().unwrap().to_string(),
            )
        }
    };
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        class(fire(&app, &key, "db-crit", "db", "eu", "critical").await).await,
        s("SEV2", "low"),
        "first rule"
    );
    assert_eq!(
        class(fire(&app, &key, "db-warn", "db", "eu", "warning").await).await,
        s("SEV3", "high"),
        "second rule: the first match wins over the third"
    );
    assert_eq!(
        class(fire(&app, &key, "web-crit", "web", "eu", "critical").await).await,
        s("SEV1", "high"),
        "no rule matches: the default mapping"
    );
    assert_eq!(
        class(fire(&app, &key, "web-info", "web", "eu", "info").await).await,
        s("SEV4", "low"),
        "no rule matches: the default mapping"
    );
    assert_eq!(
        class(fire(&app, &key, "batch-err", "web", "batch", "error").await).await,
        s("SEV2", "low"),
        "a rule setting only urgency keeps the default severity"
    );
}

async fn acknowledging_or_resolving_the_incident_acts_on_its_alerts(app: TestApp) {
    let (svc, key) = service_with_key(&app, "payments").await;
    group_by_key(&app, svc, 10).await;
    let a1 = fire(&app, &key, "p1", "stripe", "eu", "critical").await;
    let inc = incident_of(&a1);
    let a2 = fire(&app, &key, "p2", "stripe", "eu", "critical").await;
    let lone = fire(&app, &key, "p3", "stripe", "us", "critical").await;
    let (id1, id2) = (a1["id"].as_i64().unwrap(), a2["id"].as_i64().unwrap());

    assert_eq!(
        app.move_to(inc, "acknowledged").await.status,
        StatusCode::OK
    );
    assert_eq!(open_alert(&app, "p1").await["status"], "acknowledged");
    assert_eq!(open_alert(&app, "p2").await["status"], "acknowledged");
    assert_eq!(
        open_alert(&app, "p3").await["status"],
        "triggered",
        "another incident's alert is untouched"
    );
    let events = alert_events(&app, inc).await;
    assert_eq!(
        &events[2..],
        [
            ("alert.acknowledged".to_string(), id1),
            ("alert.acknowledged".to_string(), id2)
        ]
    );
    let ack_event = app
        .timeline(inc)
        .await
        .into_iter()
        .find(|e| e["kind"] == "alert.acknowledged")
        .unwrap();
    assert_eq!(ack_event["actor"], "Ada Admin");

    // Working on an incident without acknowledging it first also takes its alerts.
    let lone_inc = incident_of(&lone);
    assert_eq!(
        app.move_to(lone_inc, "investigating").await.status,
        StatusCode::OK
    );
    assert_eq!(open_alert(&app, "p3").await["status"], "acknowledged");

    // An alert joining the acknowledged incident is triggered until someone acts again.
    app.clock.advance(Duration::minutes(2));
    fire(&app, &key, "p4", "stripe", "eu", "critical").await;
    assert_eq!(open_alert(&app, "p4").await["status"], "triggered");

    app.clock.advance(Duration::minutes(1));
    let r = app.move_to(inc, "resolved").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["incident"]["status"], "resolved");
    for dedup in ["p1", "p2", "p4"] {
        let a = open_alert(&app, dedup).await;
        assert_eq!(a["status"], "resolved", "{dedup}");
        assert!(a["resolved_at"].is_string(), "{dedup}");
    }
    let resolved = alert_events(&app, inc)
        .await
        .into_iter()
        .filter(|(k, _)| k == "alert.resolved")
        .count();
    assert_eq!(resolved, 3);
    let status_changes: Vec<Value> = app
        .timeline(inc)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "incident.status_changed")
        .map(|e| e["data"]["to"].clone())
        .collect();
    assert_eq!(
        status_changes,
        [json!("acknowledged"), json!("resolved")],
        "resolving the alerts did not resolve the incident again"
    );

    // The source's own resolve for an alert the incident resolved is dropped quietly.
    let before = app.counts().await;
    source_says(&app, &key, "p1", "resolve").await;
    assert_eq!(app.counts().await, before);
    // And the source firing again opens a new alert in a new incident.
    let again = fire(&app, &key, "p1", "stripe", "eu", "critical").await;
    assert_ne!(incident_of(&again), inc);
    assert_eq!(again["status"], "triggered");
    assert_eq!(open_alert(&app, "p3").await["status"], "acknowledged");
}

async fn a_key_that_fails_to_render_opens_its_own_incident(app: TestApp) {
    let (svc, key) = service_with_key(&app, "batch").await;
    // Compiles, but runs out of its instruction budget on every alert.
    let runaway =
        "{% for a in range(1000) %}{% for b in range(1000) %}{{ b }}{% endfor %}{% endfor %}";
    let r = put_rules(
        &app,
        svc,
        json!({ "grouping": { "mode": "by_key", "key": runaway } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a1 = fire(&app, &key, "j1", "cron", "eu", "error").await;
    let a2 = fire(&app, &key, "j2", "cron", "eu", "error").await;
    assert_ne!(incident_of(&a1), incident_of(&a2), "accepted, not grouped");
}

async fn bad_rules_are_refused_naming_the_field(app: TestApp) {
    let (svc, _) = service_with_key(&app, "infra").await;
    let good = json!({ "grouping": { "mode": "by_key", "key": "{{ labels.alertname }}", "window_minutes": 15 },
                       "urgency_rules": [{ "matchers": ["team=db"], "severity": "SEV1", "urgency": "high" }] });
    let r = put_rules(&app, svc, good.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, good);
    let before = app.counts().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "grouping": { "mode": "by_key", "key": "{{ labels.alertname " } }),
            "grouping.key",
        ),
        (json!({ "grouping": { "mode": "by_key" } }), "grouping.key"),
        (
            json!({ "grouping": { "mode": "by_key", "key": "k", "window_minutes": 0 } }),
            "grouping.window_minutes",
        ),
        (
            json!({ "grouping": { "mode": "by_key", "key": "k", "window_minutes": 1441 } }),
            "grouping.window_minutes",
        ),
        (
            json!({ "grouping": { "window_minutes": -5 } }),
            "grouping.window_minutes",
        ),
        (
            json!({ "grouping": { "mode": "by_label" } }),
            "grouping.mode",
        ),
        (
            json!({ "urgency_rules": [{ "urgency": "low" }, { "matchers": [], "severity": "SEV9" }] }),
            "urgency_rules[1].severity",
        ),
        (
            json!({ "urgency_rules": [{ "matchers": ["team=db", "env=~(prod"], "urgency": "low" }] }),
            "urgency_rules[0].matchers[1]",
        ),
        (
            json!({ "urgency_rules": [{ "matchers": ["team=db"], "urgency": "urgent" }] }),
            "urgency_rules[0].urgency",
        ),
        (
            json!({ "urgency_rules": [{ "matchers": ["team=db"] }] }),
            "urgency_rules[0]",
        ),
        (json!({ "grouping": { "window": 5 } }), "grouping.window"),
    ];
    for (body, field) in cases {
        let r = put_rules(&app, svc, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.code(), "invalid_field", "{body}");
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    assert_eq!(app.counts().await, before, "refused rules wrote nothing");
    assert_eq!(
        app.get(&format!("/api/v1/services/{svc}/alert-rules"))
            .await
            .body,
        good
    );
    let missing = put_rules(&app, 999_999, json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v1/services/999999/alert-rules").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn alert_rules_roles(app: TestApp) {
    let (svc, _) = service_with_key(&app, "search").await;
    let path = format!("/api/v1/services/{svc}/alert-rules");
    let rules = json!({ "grouping": { "mode": "by_key", "key": "{{ source }}", "window_minutes": 5 }, "urgency_rules": [] });
    let (_, viewer) = app.user_with_role("viewer").await;
    let (_, responder) = app.user_with_role("responder").await;
    for token in [&viewer, &responder] {
        let r = app
            .call(Method::PUT, &path, Some(token), Some(rules.clone()))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    assert_eq!(
        app.call(Method::GET, &path, Some(&viewer), None).await.body["grouping"]["mode"],
        "per_alert",
        "nothing was written"
    );
    let r = put_rules(&app, svc, rules.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seen = app.call(Method::GET, &path, Some(&viewer), None).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body, rules);
    let audit = app.store.events(0, 1000).await.unwrap();
    let changed = audit
        .iter()
        .find(|e| e.kind == "service.alert_rules_changed")
        .expect("audited");
    assert_eq!(
        (changed.entity.as_str(), changed.entity_id),
        ("service", svc)
    );
    assert_eq!(changed.actor, "Ada Admin");
}

crate::both_backends!(
    same_key_within_the_window_joins_one_incident,
    per_alert_is_the_default,
    auto_resolve_waits_for_the_last_grouped_alert,
    urgency_rules_set_severity_and_urgency,
    acknowledging_or_resolving_the_incident_acts_on_its_alerts,
    a_key_that_fails_to_render_opens_its_own_incident,
    bad_rules_are_refused_naming_the_field,
    alert_rules_roles,
);

// Two writers (two nodes sharing PostgreSQL, or the writer and the suppression
// worker) taking alerts of the same new group at the same moment open one incident.
async fn concurrent_alerts_of_a_new_group_open_one_incident(app: TestApp) {
    use std::sync::Arc;
    use tocsin_core::alert::{AlertAction, AlertEvent, AlertSeverity, DedupKey};
    use tocsin_store::Inbound;

    let (svc, secret) = service_with_key(&app, "grouped").await;
    let r = put_rules(
        &app,
        svc,
        json!({ "grouping": { "mode": "by_key", "key": "{{ labels.cluster }}", "window_minutes": 10 } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let key = app
        .store
        .integration_key_by_secret(&secret)
        .await
        .unwrap()
        .unwrap();
    let writer = || {
        app.store.alert_writer(
            Arc::new(crate::support::test_settings()),
            Arc::new(app.clock.clone()),
        )
    };
    let (a, b) = (writer(), writer());
    let ev = |dedup: String, cluster: String| AlertEvent {
        action: AlertAction::Trigger,
        dedup_key: DedupKey::parse("dedup_key", &dedup).unwrap(),
        summary: dedup.clone(),
        source: "test".into(),
        severity: AlertSeverity::Error,
        labels: json!({ "cluster": cluster }).as_object().cloned().unwrap(),
        details: Value::Null,
        links: vec![],
        integration: "alertmanager",
    };
    // Each writer takes the same 20 new groups in one notification, at the same time.
    let (rounds, groups) = (3, 20);
    for round in 0..rounds {
        let batch = |writer: &str| -> Vec<Inbound> {
            (0..groups)
                .map(|g| {
                    let e = ev(format!("{writer}-{round}-{g}"), format!("c{round}-{g}"));
                    Inbound::new(&key, e, "{}".into())
                })
                .collect()
        };
        let (x, y) = tokio::join!(
            a.submit(key.clone(), batch("a")),
            b.submit(key.clone(), batch("b"))
        );
        x.unwrap();
        y.unwrap();
    }
    let incidents = app
        .get(&format!("/api/v1/incidents?service_id={svc}&limit=500"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(incidents, rounds * groups, "one incident per group");
}

crate::both_backends!(concurrent_alerts_of_a_new_group_open_one_incident);
