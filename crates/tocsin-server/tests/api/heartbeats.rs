//! Heartbeats: a missed ping raises one alert (and incident) once interval+grace
//! have passed, the next ping resolves it; the checker runs on the fake clock.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_engine::heartbeat::check_heartbeats;

use crate::support::{test_settings, Resp, TestApp};

async fn service(app: &TestApp, name: &str) -> i64 {
    let r = app.post("/api/v1/services", json!({ "name": name })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// Creates a heartbeat; returns (id, ping key).
async fn heartbeat(app: &TestApp, svc: i64, interval: i64, grace: i64) -> (i64, String) {
    let r = app
        .post(
            &format!("/api/v1/services/{svc}/heartbeats"),
            json!({ "name": "nightly-backup", "interval_seconds": interval, "grace_seconds": grace }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "waiting");
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with(r.body["prefix"].as_str().unwrap()));
    (r.body["id"].as_i64().unwrap(), secret)
}

async fn ping(app: &TestApp, method: Method, key: &str) -> Resp {
    app.call(method, &format!("/api/v1/heartbeats/{key}"), None, None)
        .await
}

async fn check(app: &TestApp) -> usize {
    check_heartbeats(
        &app.store,
        &test_settings(),
        tocsin_core::time::Clock::now(&app.clock),
    )
    .await
    .expect("check")
}

async fn alerts(app: &TestApp, svc: i64) -> Vec<Value> {
    app.get(&format!("/api/v1/alerts?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn state(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/v1/heartbeat-monitors/{id}"))
        .await
        .body["state"]
        .clone()
}

async fn heartbeat_events(app: &TestApp, id: i64) -> Vec<String> {
    app.get("/api/v1/events?limit=1000")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "heartbeat" && e["entity_id"] == id)
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn missed_ping_raises_one_alert_and_the_next_ping_resolves_it(app: TestApp) {
    let svc = service(&app, "backups").await;
    let (id, key) = heartbeat(&app, svc, 60, 30).await;
    let r = ping(&app, Method::POST, &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "up");

    // Exactly interval + grace after the ping is still on time.
    app.clock.advance(Duration::seconds(90));
    assert_eq!(check(&app).await, 0);
    assert!(alerts(&app, svc).await.is_empty());
    assert_eq!(state(&app, id).await, "up");

    app.clock.advance(Duration::milliseconds(1));
    assert_eq!(check(&app).await, 1);
    let a = alerts(&app, svc).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["integration"], "heartbeat");
    assert_eq!(a[0]["dedup_key"], format!("heartbeat-{id}"));
    assert_eq!(a[0]["severity"], "critical");
    assert_eq!(a[0]["status"], "triggered");
    assert!(a[0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("Heartbeat nightly-backup missed"));
    let incident_id = a[0]["incident_id"].as_i64().unwrap();
    let inc = app
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await
        .body;
    assert_eq!(inc["status"], "triggered");
    assert_eq!(inc["service_ids"], json!([svc]));
    assert_eq!(state(&app, id).await, "down");

    // Checking again, now or later, does not raise it again.
    assert_eq!(check(&app).await, 0);
    app.clock.advance(Duration::hours(3));
    assert_eq!(check(&app).await, 0);
    let a = alerts(&app, svc).await;
    assert_eq!((a.len(), a[0]["count"].as_i64()), (1, Some(1)));
    let incidents = app
        .get(&format!("/api/v1/incidents?service_id={svc}"))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(incidents, 1);

    // The next ping (GET works too) resolves the alert, and the incident follows.
    let r = ping(&app, Method::GET, &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(state(&app, id).await, "up");
    let a = alerts(&app, svc).await;
    assert_eq!(a[0]["status"], "resolved");
    let inc = app
        .get(&format!("/api/v1/incidents/{incident_id}"))
        .await
        .body;
    assert_eq!(inc["status"], "resolved");
    assert_eq!(
        heartbeat_events(&app, id).await,
        [
            "heartbeat.created",
            "heartbeat.up",
            "heartbeat.down",
            "heartbeat.up"
        ]
    );

    // Missing again opens a new alert.
    app.clock.advance(Duration::seconds(91));
    assert_eq!(check(&app).await, 1);
    assert_eq!(alerts(&app, svc).await.len(), 2);
}

async fn a_heartbeat_never_pinged_goes_down_after_interval_and_grace_from_creation(app: TestApp) {
    let svc = service(&app, "cron").await;
    let (id, _key) = heartbeat(&app, svc, 300, 0).await;
    app.clock.advance(Duration::seconds(299));
    assert_eq!(check(&app).await, 0);
    app.clock.advance(Duration::seconds(1));
    assert_eq!(check(&app).await, 0, "not before interval + grace");
    assert_eq!(state(&app, id).await, "waiting");
    app.clock.advance(Duration::seconds(1));
    assert_eq!(check(&app).await, 1);
    assert_eq!(state(&app, id).await, "down");
    assert!(alerts(&app, svc).await[0]["summary"]
        .as_str()
        .unwrap()
        .contains("never pinged"));
    assert_eq!(
        app.store.next_heartbeat_due().await.unwrap(),
        None,
        "a heartbeat that is down is due no more"
    );
}

async fn heartbeats_are_managed_by_admins_and_pinged_by_key(app: TestApp) {
    let svc = service(&app, "reports").await;
    let (id, key) = heartbeat(&app, svc, 60, 0).await;
    let (_, viewer) = app.user_with_role("viewer").await;
    let (_, responder) = app.user_with_role("responder").await;

    let list = app.get(&format!("/api/v1/services/{svc}/heartbeats")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert!(
        list.body[0].get("secret").is_none(),
        "the key is shown once"
    );
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/heartbeat-monitors/{id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    for token in [&viewer, &responder] {
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/services/{svc}/heartbeats"),
                Some(token),
                Some(json!({ "name": "x", "interval_seconds": 60 })),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/heartbeat-monitors/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }

    // Patching the interval moves the deadline from the last ping (here: creation).
    let created = app
        .get(&format!("/api/v1/heartbeat-monitors/{id}"))
        .await
        .body;
    let r = app
        .patch(
            &format!("/api/v1/heartbeat-monitors/{id}"),
            json!({ "interval_seconds": 120, "grace_seconds": 30, "name": "weekly-report" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "weekly-report");
    let moved = chrono::DateTime::parse_from_rfc3339(r.body["due_at"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(created["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(moved, Duration::seconds(90));

    // The key is the only credential a ping needs; a token is no key.
    let r = ping(&app, Method::POST, &app.admin_token).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = ping(&app, Method::GET, "hb_doesnotexist").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(ping(&app, Method::POST, &key).await.status, StatusCode::OK);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/heartbeat-monitors/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/heartbeat-monitors/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ping(&app, Method::POST, &key).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_heartbeat_moves_between_services_but_not_while_down(app: TestApp) {
    let svc = service(&app, "etl").await;
    let other = service(&app, "etl-v2").await;
    let (id, _) = heartbeat(&app, svc, 10, 0).await;
    let r = app
        .patch(
            &format!("/api/v1/heartbeat-monitors/{id}"),
            json!({ "service_id": other }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["service_id"], other);
    app.clock.advance(Duration::seconds(11));
    assert_eq!(check(&app).await, 1);
    assert_eq!(
        alerts(&app, other).await.len(),
        1,
        "the alert goes to its new service"
    );
    assert!(alerts(&app, svc).await.is_empty());
    let r = app
        .patch(
            &format!("/api/v1/heartbeat-monitors/{id}"),
            json!({ "service_id": svc }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::CONFLICT, "service_id"));

    // Deleting it while down resolves its alert.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/heartbeat-monitors/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(alerts(&app, other).await[0]["status"], "resolved");
}

async fn deleting_a_down_heartbeat_resolves_its_alert(app: TestApp) {
    let svc = service(&app, "etl").await;
    let (id, _) = heartbeat(&app, svc, 10, 0).await;
    app.clock.advance(Duration::seconds(11));
    assert_eq!(check(&app).await, 1);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/heartbeat-monitors/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(alerts(&app, svc).await[0]["status"], "resolved");
}

async fn bad_heartbeat_input_names_the_field_and_writes_nothing(app: TestApp) {
    let svc = service(&app, "batch").await;
    let (id, _) = heartbeat(&app, svc, 60, 0).await;
    let before = app.counts().await;
    let path = format!("/api/v1/services/{svc}/heartbeats");
    for (body, field) in [
        (
            json!({ "name": "a", "interval_seconds": 0 }),
            "interval_seconds",
        ),
        (
            json!({ "name": "a", "interval_seconds": -5 }),
            "interval_seconds",
        ),
        (
            json!({ "name": "a", "interval_seconds": 60, "grace_seconds": -1 }),
            "grace_seconds",
        ),
        (
            json!({ "name": "a", "interval_seconds": "often" }),
            "interval_seconds",
        ),
        (json!({ "name": "a" }), "interval_seconds"),
        (json!({ "name": " ", "interval_seconds": 60 }), "name"),
        (
            json!({ "name": "a", "interval_seconds": 60, "every": 1 }),
            "every",
        ),
    ] {
        let r = app.post(&path, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    for (body, field) in [
        (json!({ "interval_seconds": 0 }), "interval_seconds"),
        (json!({ "grace_seconds": -1 }), "grace_seconds"),
        (json!({ "service_id": 999999 }), "service_id"),
        (json!({ "service_id": "batch" }), "service_id"),
    ] {
        let r = app
            .patch(&format!("/api/v1/heartbeat-monitors/{id}"), body.clone())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.field(), field);
    }
    // An unknown service in the path is not found.
    let r = app
        .post(
            "/api/v1/services/999999/heartbeats",
            json!({ "name": "a", "interval_seconds": 60 }),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(app.counts().await, before);
}

crate::both_backends!(
    missed_ping_raises_one_alert_and_the_next_ping_resolves_it,
    a_heartbeat_never_pinged_goes_down_after_interval_and_grace_from_creation,
    heartbeats_are_managed_by_admins_and_pinged_by_key,
    deleting_a_down_heartbeat_resolves_its_alert,
    a_heartbeat_moves_between_services_but_not_while_down,
    bad_heartbeat_input_names_the_field_and_writes_nothing
);

// A heartbeat that misses while its service is in maintenance is held like any alert,
// and does not keep the checker from taking other heartbeats down.
async fn a_heartbeat_missing_during_maintenance_is_held_and_others_still_go_down(app: TestApp) {
    use tocsin_core::time::Clock;
    let quiet = service(&app, "quiet").await;
    let busy = service(&app, "busy").await;
    let now = app.clock.now();
    let r = app
        .post(
            "/api/v1/maintenance-windows",
            json!({ "description": "upgrade", "service_ids": [quiet],
                    "starts_at": now.to_rfc3339(), "ends_at": (now + chrono::Duration::hours(2)).to_rfc3339() }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (held_hb, _) = heartbeat(&app, quiet, 60, 0).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let (other_hb, _) = heartbeat(&app, busy, 60, 0).await;
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(check(&app).await, 2, "both heartbeats go down");
    assert_eq!(state(&app, held_hb).await, "down");
    assert_eq!(state(&app, other_hb).await, "down");
    let held = alerts(&app, quiet).await;
    assert_eq!(held.len(), 1);
    assert!(
        held[0]["suppressed_by"]
            .as_str()
            .unwrap()
            .starts_with("maintenance:"),
        "{}",
        held[0]
    );
    assert_eq!(held[0]["incident_id"], Value::Null);
    assert!(alerts(&app, busy).await[0]["incident_id"].is_i64());
}

crate::both_backends!(a_heartbeat_missing_during_maintenance_is_held_and_others_still_go_down);
