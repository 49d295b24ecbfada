//! PagerDuty Events API v2 at /v2/enqueue: dedup, the alert lifecycle driving the
//! incident, and PagerDuty-style refusals that store nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Resp, TestApp};

/// A service with an integration key; returns (service id, routing key).
pub(crate) async fn service_with_key(app: &TestApp, name: &str) -> (i64, String) {
    let svc = app
        .post("/api/v1/services", json!({ "name": name }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let key = app
        .post(
            &format!("/api/v1/services/{svc}/integration-keys"),
            json!({ "name": "monitoring" }),
        )
        .await;
    (svc, key.body["secret"].as_str().unwrap().to_string())
}

async fn enqueue(app: &TestApp, body: Value) -> Resp {
    app.call(Method::POST, "/v2/enqueue", None, Some(body))
        .await
}

fn trigger(key: &str, dedup: &str, summary: &str, severity: &str) -> Value {
    json!({ "routing_key": key, "event_action": "trigger", "dedup_key": dedup,
            "payload": { "summary": summary, "source": "db-1.prod", "severity": severity, "component": "postgres",
                         "custom_details": { "replication_lag_s": 42 } },
            "links": [{ "href": "https://grafana.example.com/d/db", "text": "Dashboard" }] })
}

async fn dedup_1000_events_over_50_keys_make_50_alerts(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    let client = app.client.clone();
    let mut tasks = Vec::new();
    for worker in 0..10 {
        let (client, base, key) = (client.clone(), app.base.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let n = worker * 100 + i;
                let body = trigger(
                    &key,
                    &format!("disk-{}", n % 50),
                    &format!("Disk full on db-{}", n % 50),
                    "error",
                );
                let r = client
                    .post(format!("{base}/v2/enqueue"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::ACCEPTED);
                let b: Value = r.json().await.unwrap();
                assert_eq!(b["status"], "success");
                assert_eq!(b["message"], "Event processed");
                assert_eq!(b["dedup_key"], format!("disk-{}", n % 50));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}&limit=500"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(alerts.len(), 50, "one alert per dedup key");
    assert_eq!(
        alerts
            .iter()
            .map(|a| a["count"].as_i64().unwrap())
            .sum::<i64>(),
        1000,
        "every event counted"
    );
    assert!(alerts.iter().all(|a| a["count"] == 20));
    let incidents = app
        .get(&format!("/api/v1/incidents?service_id={svc}&limit=500"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(incidents, 50, "one incident per alert");
}

async fn trigger_acknowledge_resolve_drive_the_incident(app: TestApp) {
    let (svc, key) = service_with_key(&app, "checkout").await;
    let r = enqueue(
        &app,
        trigger(&key, "latency-p99", "p99 latency above 2s", "critical"),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .clone();
    let alert = &alerts[0];
    assert_eq!(alert["status"], "triggered");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["labels"]["component"], "postgres");
    assert_eq!(alert["details"]["replication_lag_s"], 42);
    assert_eq!(
        alert["links"][0]["href"],
        "https://grafana.example.com/d/db"
    );
    let incident_id = alert["incident_id"].as_i64().unwrap();
    let inc = app
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await
        .body;
    assert_eq!(inc["title"], "p99 latency above 2s");
    assert_eq!(
        inc["severity"], "SEV1",
        "critical opens the most severe incident"
    );
    assert_eq!(inc["urgency"], "high");
    assert_eq!(inc["service_ids"], json!([svc]));
    assert_eq!(inc["reporter_id"], Value::Null);
    let detail = app
        .get(&format!("/api/v1/alerts/{}", alert["id"]))
        .await
        .body;
    assert!(detail["raw"]
        .as_str()
        .unwrap()
        .contains("p99 latency above 2s"));

    // A repeat counts but does not clutter the timeline.
    enqueue(
        &app,
        trigger(&key, "latency-p99", "p99 latency above 3s", "critical"),
    )
    .await;
    let kinds = |tl: Vec<Value>| {
        tl.iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(app.timeline(incident_id).await),
        [
            "incident.declared",
            "escalation.not_started",
            "alert.triggered"
        ]
    );

    let ack =
        json!({ "routing_key": key, "event_action": "acknowledge", "dedup_key": "latency-p99" });
    assert_eq!(enqueue(&app, ack).await.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{incident_id}"))
            .await
            .body["status"],
        "acknowledged"
    );
    let resolve =
        json!({ "routing_key": key, "event_action": "resolve", "dedup_key": "latency-p99" });
    assert_eq!(
        enqueue(&app, resolve.clone()).await.status,
        StatusCode::ACCEPTED
    );
    let inc = app
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await
        .body;
    assert_eq!(
        inc["status"], "resolved",
        "the incident resolves with its last alert"
    );
    assert_eq!(
        kinds(app.timeline(incident_id).await),
        [
            "incident.declared",
            "escalation.not_started",
            "alert.triggered",
            "alert.acknowledged",
            "incident.status_changed",
            "alert.resolved",
            "incident.status_changed"
        ]
    );
    let a = app
        .get(&format!("/api/v1/alerts/{}", alert["id"]))
        .await
        .body["alert"]
        .clone();
    assert_eq!(
        (a["status"].as_str(), a["count"].as_i64()),
        (Some("resolved"), Some(2))
    );
    assert!(a["resolved_at"].is_string());

    // Resolving again, or acknowledging a key with no open alert, is accepted and dropped.
    let before = app.counts().await;
    assert_eq!(enqueue(&app, resolve).await.status, StatusCode::ACCEPTED);
    let r = enqueue(
        &app,
        json!({ "routing_key": key, "event_action": "acknowledge", "dedup_key": "never-seen" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(app.counts().await, before);

    // After resolution the same key opens a new alert and a new incident.
    enqueue(
        &app,
        trigger(&key, "latency-p99", "p99 latency above 2s again", "warning"),
    )
    .await;
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .clone();
    assert_eq!(alerts.as_array().unwrap().len(), 2);
    assert_ne!(alerts[0]["incident_id"], incident_id);
    let inc2 = app
        .get(&format!("/api/v1/incidents/{}", alerts[0]["incident_id"]))
        .await
        .body;
    assert_eq!(
        (inc2["severity"].as_str(), inc2["urgency"].as_str()),
        (Some("SEV3"), Some("medium"))
    );
    assert_eq!(
        app.get("/api/v1/alerts?status=triggered").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn refusals_look_like_pagerduty_and_store_nothing(app: TestApp) {
    let (svc, key) = service_with_key(&app, "api").await;
    let good = trigger(&key, "k", "s", "error");
    let cases: Vec<(&str, Vec<u8>, &str, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            b"{\"routing_key\": ".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
        ),
        (
            "missing routing_key",
            serde_json::to_vec(&json!({ "event_action": "trigger", "payload": good["payload"] }))
                .unwrap(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "'routing_key' is missing",
        ),
        (
            "unknown routing key",
            serde_json::to_vec(&trigger(
                "0123456789abcdef0123456789abcdef",
                "k",
                "s",
                "error",
            ))
            .unwrap(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "Invalid routing key",
        ),
        (
            "invalid severity",
            serde_json::to_vec(&trigger(&key, "k", "s", "catastrophic")).unwrap(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "'payload.severity' must be one of",
        ),
        (
            "invalid action",
            serde_json::to_vec(
                &json!({ "routing_key": key, "event_action": "snooze", "dedup_key": "k" }),
            )
            .unwrap(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "'event_action' must be one of",
        ),
        (
            "wrong content type",
            serde_json::to_vec(&good).unwrap(),
            "text/plain",
            StatusCode::BAD_REQUEST,
            "Content-Type",
        ),
        (
            "oversize",
            {
                let mut big = trigger(&key, "k", "s", "error");
                big["payload"]["custom_details"] = json!({ "blob": "x".repeat(513 * 1024) });
                serde_json::to_vec(&big).unwrap()
            },
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "512 KB",
        ),
    ];
    for (what, body, ct, status, error) in cases {
        let before = app.counts().await;
        let r = app.raw(Method::POST, "/v2/enqueue", None, ct, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_eq!(r.body["status"], "invalid event", "{what}");
        assert_eq!(r.body["message"], "Event object is invalid", "{what}");
        let errors = r.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: errors is an array: {}", r.body));
        assert!(
            errors.iter().any(|e| e.as_str().unwrap().contains(error)),
            "{what}: {}",
            r.body
        );
        assert_eq!(app.counts().await, before, "{what} stored something");
    }
    // A revoked key is refused like an unknown one.
    let keys = app
        .get(&format!("/api/v1/services/{svc}/integration-keys"))
        .await
        .body;
    let key_id = keys[0]["id"].as_i64().unwrap();
    app.call(
        Method::DELETE,
        &format!("/api/v1/services/{svc}/integration-keys/{key_id}"),
        Some(&app.admin_token),
        None,
    )
    .await;
    let r = enqueue(&app, good).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errors"][0], "Invalid routing key");
    // Alert lists validate their filters too.
    let r = app.get("/api/v1/alerts?status=burning").await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "status"));
}

crate::both_backends!(
    dedup_1000_events_over_50_keys_make_50_alerts,
    trigger_acknowledge_resolve_drive_the_incident,
    refusals_look_like_pagerduty_and_store_nothing,
);

const AM_GROUP: &str = r#"{
  "receiver": "tocsin", "status": "firing", "version": "4", "truncatedAlerts": 0,
  "groupKey": "{}:{alertname=\"HighErrorRate\"}", "externalURL": "http://alertmanager:9093",
  "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
  "commonAnnotations": {},
  "alerts": [
    {"status": "firing", "labels": {"alertname": "HighErrorRate", "severity": "critical", "instance": "web-1"},
     "annotations": {"summary": "5xx above 5% on web-1"}, "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://prometheus:9090/graph?g0.expr=rate", "fingerprint": "aaaa000000000001"},
    {"status": "firing", "labels": {"alertname": "HighErrorRate", "severity": "critical", "instance": "web-2"},
     "annotations": {"summary": "5xx above 5% on web-2"}, "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://prometheus:9090/graph?g0.expr=rate", "fingerprint": "aaaa000000000002"}
  ]}"#;

async fn alertmanager_group_fires_then_resolves(app: TestApp) {
    let (svc, key) = service_with_key(&app, "web").await;
    let path = format!("/integrations/alertmanager/{key}");
    let send = |body: String| {
        app.raw(
            Method::POST,
            &path,
            None,
            "application/json",
            body.into_bytes(),
        )
    };
    let r = send(AM_GROUP.to_string()).await;
    assert_eq!(
        (r.status, r.body["alerts"].as_i64()),
        (StatusCode::OK, Some(2)),
        "{}",
        r.body
    );
    // Alertmanager re-sends the whole group every repeat_interval: counted, not multiplied.
    assert_eq!(send(AM_GROUP.to_string()).await.status, StatusCode::OK);
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a["count"] == 2
        && a["status"] == "triggered"
        && a["integration"] == "alertmanager"));
    let web1 = alerts
        .iter()
        .find(|a| a["dedup_key"] == "aaaa000000000001")
        .unwrap();
    assert_eq!(web1["labels"]["instance"], "web-1");
    assert_eq!(
        web1["links"][0]["href"], "http://prometheus:9090/graph?g0.expr=rate",
        "generatorURL kept as a link"
    );
    assert_eq!(
        web1["details"]["annotations"]["summary"],
        "5xx above 5% on web-1"
    );
    let inc1 = web1["incident_id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{inc1}")).await.body["severity"],
        "SEV1"
    );

    // web-1 recovers, then web-2.
    let resolved_one = AM_GROUP.replacen("\"status\": \"firing\", \"labels\": {\"alertname\": \"HighErrorRate\", \"severity\": \"critical\", \"instance\": \"web-1\"}",
        "\"status\": \"resolved\", \"labels\": {\"alertname\": \"HighErrorRate\", \"severity\": \"critical\", \"instance\": \"web-1\"}", 1);
    assert_ne!(resolved_one, AM_GROUP);
    assert_eq!(send(resolved_one).await.status, StatusCode::OK);
    let status = |id: i64| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/incidents/{id}")).await.body["status"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(status(inc1).await, "resolved");
    let web2_inc = alerts
        .iter()
        .find(|a| a["dedup_key"] == "aaaa000000000002")
        .unwrap()["incident_id"]
        .as_i64()
        .unwrap();
    assert_eq!(status(web2_inc).await, "triggered");
    let all_resolved = AM_GROUP.replace("\"status\": \"firing\"", "\"status\": \"resolved\"");
    assert_eq!(send(all_resolved).await.status, StatusCode::OK);
    assert_eq!(status(web2_inc).await, "resolved");
    assert_eq!(
        app.get(&format!("/api/v1/alerts?service_id={svc}&status=resolved"))
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

async fn grafana_contact_point_payload(app: TestApp) {
    let (svc, key) = service_with_key(&app, "grafana").await;
    let body = r#"{
      "receiver": "Tocsin", "status": "firing", "orgId": 1, "version": "1", "groupKey": "{}:{alertname=\"High memory usage\"}",
      "title": "[FIRING:1] High memory usage", "state": "alerting", "message": "...", "externalURL": "https://grafana.example.com/",
      "groupLabels": {"alertname": "High memory usage"}, "commonLabels": {"alertname": "High memory usage", "team": "blue"},
      "commonAnnotations": {}, "truncatedAlerts": 0,
      "alerts": [{"status": "firing", "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1", "severity": "warning"},
        "annotations": {"description": "The system has high memory usage", "runbook_url": "https://myrunbook.com/runbook/1234",
                        "summary": "This alert was triggered for zone us-1"},
        "startsAt": "2021-10-12T09:51:03.157076+02:00", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit", "fingerprint": "c6eadffa33fcdf37",
        "silenceURL": "https://play.grafana.org/alerting/silence/new", "dashboardURL": "", "panelURL": "",
        "values": {"B": 44.23943737541908, "C": 1}}]}"#;
    let r = app
        .raw(
            Method::POST,
            &format!("/integrations/grafana/{key}"),
            None,
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let a = app
        .get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"][0]
        .clone();
    assert_eq!(
        (a["integration"].as_str(), a["severity"].as_str()),
        (Some("grafana"), Some("warning"))
    );
    assert_eq!(a["summary"], "This alert was triggered for zone us-1");
    assert_eq!(a["details"]["values"]["B"], 44.23943737541908);
    let texts: Vec<&str> = a["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Source", "Silence", "Runbook"],
        "empty dashboard and panel URLs are not links"
    );
}

async fn webhook_refusals_store_nothing(app: TestApp) {
    let (_, key) = service_with_key(&app, "hooks").await;
    let path = format!("/integrations/alertmanager/{key}");
    let cases: Vec<(String, Vec<u8>, StatusCode, &str)> = vec![
        (path.clone(), b"{\"alerts\": [".to_vec(), StatusCode::BAD_REQUEST, "body"),
        (path.clone(), b"{\"receiver\": \"x\"}".to_vec(), StatusCode::BAD_REQUEST, "alerts"),
        (path.clone(), br#"{"alerts": [{"status": "firing", "labels": {"a": "1"}, "fingerprint": "f1"}, {"status": "maybe"}]}"#.to_vec(), StatusCode::BAD_REQUEST, "alerts[1].status"),
        (path.clone(), vec![b' '; 5 * 1024 * 1024], StatusCode::PAYLOAD_TOO_LARGE, ""),
        ("/integrations/alertmanager/not-a-key".to_string(), AM_GROUP.as_bytes().to_vec(), StatusCode::UNAUTHORIZED, "key"),
        ("/integrations/grafana/not-a-key".to_string(), AM_GROUP.as_bytes().to_vec(), StatusCode::UNAUTHORIZED, "key"),
    ];
    for (path, body, status, field) in cases {
        let before = app.counts().await;
        let r = app
            .raw(Method::POST, &path, None, "application/json", body)
            .await;
        assert_eq!((r.status, r.field()), (status, field), "{path}: {}", r.body);
        assert_eq!(
            app.counts().await,
            before,
            "{path}: a refused notification stores none of its alerts"
        );
    }
}

crate::both_backends!(
    alertmanager_group_fires_then_resolves,
    grafana_contact_point_payload,
    webhook_refusals_store_nothing
);

async fn rate_limits_per_integration_key(db: crate::support::Db) {
    let limits = tocsin_server::Limits {
        ingest_rate: tocsin_server::ingest::limit::RateLimit {
            per_second: 10.0,
            burst: 20.0,
        },
        ..tocsin_server::Limits::default()
    };
    let Some(app) =
        crate::support::spawn_app_with(db, crate::support::test_settings(), limits).await
    else {
        return;
    };
    let (_, key) = service_with_key(&app, "noisy").await;
    let (_, other) = service_with_key(&app, "quiet").await;
    for i in 0..20 {
        assert_eq!(
            enqueue(&app, trigger(&key, &format!("k{i}"), "s", "info"))
                .await
                .status,
            StatusCode::ACCEPTED
        );
    }
    let before = app.counts().await;
    let r = enqueue(&app, trigger(&key, "k20", "s", "info")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.body["status"], "throttle event");
    assert_eq!(
        app.counts().await,
        before,
        "a throttled event stores nothing"
    );
    // Other keys are not affected.
    assert_eq!(
        enqueue(&app, trigger(&other, "k", "s", "info"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    // A notification is charged per alert: 15 alerts need 15 tokens.
    let am = |n: usize| {
        let alerts: Vec<Value> = (0..n).map(|i| json!({ "status": "firing", "labels": { "alertname": format!("a{i}") }, "fingerprint": format!("f{i}") })).collect();
        serde_json::to_vec(&json!({ "alerts": alerts })).unwrap()
    };
    let path = format!("/integrations/alertmanager/{key}");
    let r = app
        .raw(Method::POST, &path, None, "application/json", am(15))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{}",
        r.body
    );
    assert_eq!(r.headers["retry-after"], "2");
    // Tokens come back with time (the injected clock), not with waiting.
    app.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(
        app.raw(Method::POST, &path, None, "application/json", am(15))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        enqueue(&app, trigger(&key, "k21", "s", "info"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
}

mod rate_limits {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::rate_limits_per_integration_key(crate::support::Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::rate_limits_per_integration_key(crate::support::Db::Postgres).await;
    }
}

async fn change_events_show_on_services_and_incidents(app: TestApp) {
    let (svc, key) = service_with_key(&app, "deploys").await;
    let change = |summary: &str, ts: Option<&str>| {
        let mut body = json!({ "routing_key": key, "payload": { "summary": summary, "source": "ci", "custom_details": { "build": 7 } },
                               "links": [{ "href": "https://ci.example.com/7", "text": "Build 7" }] });
        if let Some(t) = ts {
            body["payload"]["timestamp"] = json!(t);
        }
        app.call(Method::POST, "/v2/change/enqueue", None, Some(body))
    };
    // Two hours before the incident: not a suspect. Ten minutes before: a suspect.
    let r = change("Deploy checkout v41", Some("2025-12-31T22:00:00Z")).await;
    assert_eq!(
        (r.status, r.body["message"].as_str()),
        (StatusCode::ACCEPTED, Some("Change event processed")),
        "{}",
        r.body
    );
    assert!(r.body.get("dedup_key").is_none());
    change("Deploy checkout v42", Some("2025-12-31T23:50:00.000+0000")).await;
    let inc = app
        .declare(json!({ "title": "Checkout errors", "service_ids": [svc] }))
        .await["id"]
        .as_i64()
        .unwrap();
    app.clock.advance(chrono::Duration::minutes(5));
    change("Rollback to v41", None).await; // no timestamp: now
    let other = app.declare(json!({ "title": "Elsewhere" })).await["id"]
        .as_i64()
        .unwrap();

    let on_service = app
        .get(&format!("/api/v1/services/{svc}/changes"))
        .await
        .body;
    let summaries = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["summary"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        summaries(&on_service),
        [
            "Rollback to v41",
            "Deploy checkout v42",
            "Deploy checkout v41"
        ]
    );
    assert_eq!(on_service[1]["details"]["build"], 7);
    assert_eq!(on_service[1]["links"][0]["text"], "Build 7");
    let on_incident = app
        .get(&format!("/api/v1/incidents/{inc}/changes"))
        .await
        .body;
    assert_eq!(
        summaries(&on_incident),
        ["Rollback to v41", "Deploy checkout v42"]
    );
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{other}/changes"))
            .await
            .body,
        json!([])
    );

    // Refusals are PagerDuty's and store nothing.
    let before = app.counts().await;
    let r = app
        .call(
            Method::POST,
            "/v2/change/enqueue",
            None,
            Some(json!({ "routing_key": key, "payload": { "source": "ci" } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["errors"][0].as_str().unwrap().contains("summary"),
        "{}",
        r.body
    );
    let r = app
        .call(
            Method::POST,
            "/v2/change/enqueue",
            None,
            Some(json!({ "routing_key": "nope", "payload": { "summary": "x" } })),
        )
        .await;
    assert_eq!(r.body["errors"][0], "Invalid routing key");
    assert_eq!(app.counts().await, before);
}

crate::both_backends!(change_events_show_on_services_and_incidents);

// One notification whose events take every path of the group-commit writer: repeats
// of open alerts summed into one statement, a key that opens and repeats, a key whose
// trigger and resolve must keep their order, and repeats that merge labels and keep
// what they do not mention.
async fn one_batch_mixes_bulk_repeats_with_ordered_events(app: TestApp) {
    use std::sync::Arc;
    use tocsin_core::alert::{AlertAction, AlertEvent, AlertSeverity, DedupKey};
    use tocsin_store::Inbound;

    let (svc, secret) = service_with_key(&app, "batch").await;
    let key = app
        .store
        .integration_key_by_secret(&secret)
        .await
        .unwrap()
        .unwrap();
    let ev = |action, dedup: &str, summary: &str, labels: Value, details: Value| AlertEvent {
        action,
        dedup_key: DedupKey::parse("dedup_key", dedup).unwrap(),
        summary: summary.into(),
        source: "test".into(),
        severity: AlertSeverity::Warning,
        labels: labels.as_object().cloned().unwrap_or_default(),
        details,
        links: vec![],
        integration: "pagerduty",
    };
    let writer = app.store.alert_writer(
        Arc::new(crate::support::test_settings()),
        Arc::new(app.clock.clone()),
    );
    // Open "open-1" first, so the batch below finds it open.
    let first = ev(
        AlertAction::Trigger,
        "open-1",
        "first",
        json!({"a": "1"}),
        json!({"kept": true}),
    );
    writer
        .submit(key.clone(), vec![Inbound::new(&key, first, "{}".into())])
        .await
        .unwrap();
    let t = AlertAction::Trigger;
    let events = vec![
        ev(t, "open-1", "second", json!({"b": "2"}), Value::Null),
        ev(t, "new-1", "opens", json!({}), Value::Null),
        ev(t, "flip", "flip opens", json!({}), Value::Null),
        ev(t, "open-1", "third", json!({"a": "3"}), Value::Null),
        ev(AlertAction::Resolve, "flip", "", json!({}), Value::Null),
        ev(t, "new-1", "repeats", json!({}), Value::Null),
        ev(t, "flip", "flip reopens", json!({}), Value::Null),
    ];
    let before = app.store.events(0, 10_000).await.unwrap().len();
    let outcomes = writer
        .submit(
            key.clone(),
            events
                .into_iter()
                .map(|e| Inbound::new(&key, e, "{\"raw\": 1}".into()))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 7);
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}&limit=50"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    let by = |k: &str| -> Vec<Value> {
        alerts
            .iter()
            .filter(|a| a["dedup_key"] == k)
            .cloned()
            .collect()
    };
    let open1 = &by("open-1")[0];
    assert_eq!(open1["count"], 3, "two repeats summed onto the open alert");
    assert_eq!(open1["summary"], "third", "the last repeat's summary wins");
    assert_eq!(
        open1["labels"],
        json!({"a": "3", "b": "2"}),
        "labels merged in order"
    );
    assert_eq!(
        open1["details"],
        json!({"kept": true}),
        "details not mentioned are kept"
    );
    let new1 = by("new-1");
    assert_eq!(new1.len(), 1);
    assert_eq!(
        (new1[0]["count"].clone(), new1[0]["summary"].clone()),
        (json!(2), json!("repeats"))
    );
    let flip = by("flip");
    assert_eq!(
        flip.len(),
        2,
        "trigger, resolve, trigger: two alerts, in order"
    );
    let statuses: Vec<&str> = flip.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert!(
        statuses.contains(&"resolved") && statuses.contains(&"triggered"),
        "{statuses:?}"
    );
    let (raw_alert, raw) = app
        .store
        .alert(open1["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!((raw_alert.count, raw.as_str()), (3, "{\"raw\": 1}"));
    // The repeats are in the event log once, with how often each alert repeated.
    let events = app.store.events(0, 10_000).await.unwrap();
    let repeats: Vec<_> = events[before..]
        .iter()
        .filter(|e| e.kind == "alert.repeated")
        .collect();
    assert_eq!(repeats.len(), 1, "one repeat event for the batch");
    let counts = &repeats[0].data["repeats"];
    assert_eq!(counts[open1["id"].to_string()], 2);
    assert_eq!(counts[new1[0]["id"].to_string()], 1);
}

crate::both_backends!(one_batch_mixes_bulk_repeats_with_ordered_events);

// A notification refused by the store keeps nothing, not even the repeats the batch
// counted in bulk: its sender retries, and a retry must not count them twice. The
// other notifications of the batch commit.
async fn a_refused_notification_keeps_none_of_its_bulk_counted_repeats(app: TestApp) {
    use std::sync::Arc;
    use tocsin_core::alert::{AlertAction, AlertEvent, AlertSeverity, DedupKey};
    use tocsin_store::Inbound;

    let (svc, secret) = service_with_key(&app, "refusals").await;
    let key = app
        .store
        .integration_key_by_secret(&secret)
        .await
        .unwrap()
        .unwrap();
    let ev = |dedup: &str| AlertEvent {
        action: AlertAction::Trigger,
        dedup_key: DedupKey::parse("dedup_key", dedup).unwrap(),
        summary: format!("{dedup} is down"),
        source: "test".into(),
        severity: AlertSeverity::Critical,
        labels: Default::default(),
        details: Value::Null,
        links: vec![],
        integration: "pagerduty",
    };
    let good = app.store.alert_writer(
        Arc::new(crate::support::test_settings()),
        Arc::new(app.clock.clone()),
    );
    good.submit(
        key.clone(),
        vec![Inbound::new(&key, ev("open"), "{}".into())],
    )
    .await
    .unwrap();
    // Settings with a custom field that every new incident must fill: opening fails.
    let mut strict = crate::support::test_settings();
    strict.custom_fields[0].required = true;
    let bad = app
        .store
        .alert_writer(Arc::new(strict), Arc::new(app.clock.clone()));
    let r = bad
        .submit(
            key.clone(),
            vec![
                Inbound::new(&key, ev("open"), "{}".into()),
                Inbound::new(&key, ev("new"), "{}".into()),
            ],
        )
        .await;
    assert!(
        r.is_err(),
        "opening an incident without its required field is refused"
    );
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(alerts.len(), 1, "the new alert is not stored");
    assert_eq!(
        alerts[0]["count"], 1,
        "the repeat counted in bulk was undone"
    );
    // A repeat alone still goes through that writer.
    bad.submit(
        key.clone(),
        vec![Inbound::new(&key, ev("open"), "{}".into())],
    )
    .await
    .unwrap();
    let (a, _) = app
        .store
        .alert(alerts[0]["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(a.count, 2);
}

crate::both_backends!(a_refused_notification_keeps_none_of_its_bulk_counted_repeats);

// PostgreSQL stores no NUL in text or JSON: an event carrying one is stored with
// U+FFFD instead, and its repeats count like any other (on both back ends alike).
async fn nul_characters_in_events_are_stored_replaced(app: TestApp) {
    let (svc, key) = service_with_key(&app, "nul").await;
    let body = json!({ "routing_key": key, "event_action": "trigger", "dedup_key": "nul\u{0}key",
        "payload": { "summary": "disk\u{0}full", "source": "db\u{0}1", "severity": "error",
                     "component": "pg\u{0}", "custom_details": { "k\u{0}": ["v\u{0}"] } },
        "links": [{ "href": "https://x/\u{0}", "text": "t\u{0}" }] });
    for _ in 0..2 {
        let r = enqueue(&app, body.clone()).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    let change = app
        .call(
            Method::POST,
            "/v2/change/enqueue",
            None,
            Some(json!({ "routing_key": key, "payload": { "summary": "deploy\u{0}", "source": "ci\u{0}",
                        "custom_details": { "a\u{0}": "b\u{0}" } } })),
        )
        .await;
    assert_eq!(change.status, StatusCode::ACCEPTED, "{}", change.body);
    let alerts = app
        .get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["count"], 2);
    assert_eq!(a["summary"], "disk\u{FFFD}full");
    assert_eq!(a["dedup_key"], "nul\u{FFFD}key");
    assert_eq!(a["labels"]["component"], "pg\u{FFFD}");
    assert_eq!(a["details"]["k\u{FFFD}"][0], "v\u{FFFD}");
    assert!(!a.to_string().contains("\\u0000"), "{a}");
}

crate::both_backends!(nul_characters_in_events_are_stored_replaced);
