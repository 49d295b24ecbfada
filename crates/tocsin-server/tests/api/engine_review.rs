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

/// As many paged declarations at once as the pool has connections: each waits
/// for the incident counter holding a connection, so the one holding the
/// counter must find everything it reads inside its own transaction. Reading
/// the escalation policy on another pooled connection waited out the pool's
/// acquire timeout and failed the request (PostgreSQL; SQLite writers queue
/// before taking a connection).
async fn paged_declarations_at_once_do_not_starve_the_pool(app: TestApp) {
    let s = setup(&app).await;
    let started = std::time::Instant::now();
    let (client, base, token) = (
        app.client.clone(),
        app.base.clone(),
        app.admin_token.clone(),
    );
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let service = s.service;
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/incidents"))
                .bearer_auth(&token)
                .json(&json!({ "title": format!("storm {i}"), "service_ids": [service], "page": true }))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}

/// The timeline says why each level was notified: a level reached by
/// "escalate now" was escalated by hand, not left unacknowledged by the level
/// before it; the levels after it follow on as usual.
async fn the_timeline_says_a_level_was_escalated_by_hand(app: TestApp) {
    let s = setup(&app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "why was I paged").await;
    run_until(&app, &[&r], t0 + Duration::minutes(1)).await;
    let e = app
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({ "level": 2 }),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.body);
    // Level 2 at minute 1, then level 0 of the next pass at minute 6.
    run_until(&app, &[&r], t0 + Duration::minutes(7)).await;
    let reasons: Vec<(i64, String)> = app
        .timeline(id)
        .await
        .iter()
        .filter(|e| e["kind"] == "escalation.notified")
        .map(|e| {
            (
                e["data"]["level"].as_i64().unwrap(),
                e["data"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            (0, "incident triggered".to_string()),
            (2, "escalated by hand".to_string()),
            (0, "pass 2 of the policy".to_string()),
        ]
    );
}

crate::both_backends!(
    a_reopened_incident_can_be_escalated,
    a_re_escalated_acknowledged_incident_can_be_stopped,
    paged_declarations_at_once_do_not_starve_the_pool,
    the_timeline_says_a_level_was_escalated_by_hand,
);
