//! Escalation engine edge cases: a reopened incident, and an acknowledged
//! incident escalated by hand, must still page and stop as the rules say.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;
use tocsin_core::time::Clock;
use tocsin_engine::delivery::RecordingDelivery;

use crate::escalation_engine::{kinds, page, plan, run_until, runner, setup};
use crate::support::TestApp;

/// Resolved, then reopened: the incident is open again, so "escalate now" pages
/// the named level (it is not refused as if the incident were still resolved).
async fn a_reopened_incident_can_be_escalated(app: TestApp) {
    let s = setup(&app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "reopen me").await;
    run_until(&app, &[&r], t0 + Duration::minutes(1)).await;
    assert_eq!(app.move_to(id, "resolved").await.status, StatusCode::OK);
    let reopened = app.move_to(id, "investigating").await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.body);
    run_until(&app, &[&r], t0 + Duration::minutes(2)).await;
    let e = app
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({ "level": 1 }),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.body);
    assert_eq!(e.body["phase"], "running");
    run_until(&app, &[&r], t0 + Duration::minutes(3)).await;
    let [a, b, _] = s.users;
    assert_eq!(
        plan(&rec.requests(), t0),
        vec![(a, "push".into(), 0), (b, "push".into(), 2)]
    );
}

/// Acknowledged, then escalated by hand: the page runs again, and the person it
/// reaches can stop it by working on the incident (any open status move), as
/// an acknowledgement would; otherwise only resolving could stop it.
async fn a_re_escalated_acknowledged_incident_can_be_stopped(app: TestApp) {
    let s = setup(&app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "ack, escalate, work on it").await;
    run_until(&app, &[&r], t0 + Duration::minutes(1)).await;
    assert_eq!(app.move_to(id, "acknowledged").await.status, StatusCode::OK);
    let e = app
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({ "level": 1 }),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.body);
    // Minute 1: Bo's push now; his SMS would follow at 3, voice at 6, and Cy at 16.
    run_until(&app, &[&r], t0 + Duration::minutes(2)).await;
    let moved = app.move_to(id, "investigating").await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    run_until(&app, &[&r], t0 + Duration::hours(3)).await;
    let [a, b, _] = s.users;
    assert_eq!(
        plan(&rec.requests(), t0),
        vec![(a, "push".into(), 0), (b, "push".into(), 1)]
    );
    let view = app.get(&format!("/api/v1/incidents/{id}/escalation")).await;
    assert_eq!(view.body["phase"], "acknowledged", "{}", view.body);
    let tl = app.timeline(id).await;
    assert_eq!(kinds(&tl, "escalation.acknowledged").len(), 2);
}

crate::both_backends!(
    a_reopened_incident_can_be_escalated,
    a_re_escalated_acknowledged_incident_can_be_stopped,
);
