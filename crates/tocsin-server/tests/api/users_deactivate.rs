//! Deactivating a user that on-call duty names (a schedule layer, an override not
//! yet ended, an escalation policy level) is refused with 409 naming them, and
//! changes nothing; once nothing names them, it goes through.

use crate::support::user;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::TestApp;

async fn created(app: &TestApp, path: &str, body: Value) -> i64 {
    let r = app.post(path, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn layer(name: &str, users: &[i64]) -> Value {
    json!({ "name": name, "users": users, "start": "2025-12-01T00:00:00Z",
        "turn": "daily", "handoff": "09:00" })
}

async fn deactivation_is_refused_while_on_call_duty_names_the_user(app: TestApp) {
    let ada = user(&app, "Ada").await; // in a layer and a policy
    let bo = user(&app, "Bo").await; // covers with an override that has not ended
    let cy = user(&app, "Cy").await; // covered once, in the past
    let di = user(&app, "Di").await; // named by a policy only
    let eve = user(&app, "Eve").await; // stays in the layers
    let platform = created(
        &app,
        "/api/v1/schedules",
        json!({ "name": "Platform", "time_zone": "UTC",
            "layers": [layer("days", &[ada, eve]), layer("nights", &[eve])] }),
    )
    .await;
    // The fake clock stands at 2026-01-01T00:00Z.
    for (who, starts, ends) in [
        (bo, "2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z"),
        (cy, "2025-12-30T12:00:00Z", "2025-12-31T00:00:00Z"),
    ] {
        created(
            &app,
            &format!("/api/v1/schedules/{platform}/overrides"),
            json!({ "user_id": who, "starts_at": starts, "ends_at": ends }),
        )
        .await;
    }
    let checkout = created(
        &app,
        "/api/v1/escalation-policies",
        json!({ "name": "Checkout", "levels": [
            { "targets": [{ "schedule": platform }], "delay_minutes": 10 },
            { "targets": [{ "user": di }, { "user": ada }], "delay_minutes": 10 } ] }),
    )
    .await;

    let before = app.counts().await;
    let held = |id: i64, by: &str| {
        format!("user {id} is on call in {by}; take them out of those first (an override can cover their turns)")
    };
    for (id, message) in [
        (
            ada,
            held(
                ada,
                &format!("the layers of schedule(s) `Platform` ({platform}); escalation policy(ies) `Checkout` ({checkout})"),
            ),
        ),
        (
            bo,
            held(bo, &format!("overrides not yet ended on schedule(s) `Platform` ({platform})")),
        ),
        (
            di,
            held(di, &format!("escalation policy(ies) `Checkout` ({checkout})")),
        ),
    ] {
        let r = app
            .patch(
                &format!("/api/v1/users/{id}"),
                json!({ "active": false, "name": "Renamed" }),
            )
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::CONFLICT, "conflict", "active"),
            "{}",
            r.body
        );
        assert_eq!(r.body["error"]["message"], message);
        let kept = app.get(&format!("/api/v1/users/{id}")).await;
        assert_eq!(kept.body["active"], true);
        assert_ne!(kept.body["name"], "Renamed", "nothing of the request applied");
    }
    assert_eq!(app.counts().await, before, "nothing written");

    // An override that has ended holds nobody.
    let r = app
        .patch(&format!("/api/v1/users/{cy}"), json!({ "active": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);

    // Once the override has ended, Bo can go.
    app.clock.advance(Duration::days(1));
    let r = app
        .patch(&format!("/api/v1/users/{bo}"), json!({ "active": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Taken out of the schedule, Ada is still held by the policy alone; out of
    // both, she goes.
    let r = app
        .patch(
            &format!("/api/v1/schedules/{platform}"),
            json!({ "layers": [layer("days", &[eve]), layer("nights", &[eve])] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .patch(&format!("/api/v1/users/{ada}"), json!({ "active": false }))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Checkout") && !message.contains("Platform"),
        "{message}"
    );
    let r = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/escalation-policies/{checkout}"),
            Some(&app.admin_token),
            Some(json!({ "name": "Checkout", "levels": [
                { "targets": [{ "schedule": platform }], "delay_minutes": 10 },
                { "targets": [{ "user": di }], "delay_minutes": 10 } ] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .patch(&format!("/api/v1/users/{ada}"), json!({ "active": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);

    // Other changes to someone on call are not held up, nor is activating.
    let r = app
        .patch(&format!("/api/v1/users/{di}"), json!({ "name": "Di Dee" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .patch(&format!("/api/v1/users/{ada}"), json!({ "active": true }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

crate::both_backends!(deactivation_is_refused_while_on_call_duty_names_the_user);
