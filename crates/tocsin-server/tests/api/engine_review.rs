//! Escalation engine edge cases: a reopened incident must still page and stop
//! as the rules say.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;
use tocsin_core::time::Clock;
use tocsin_engine::delivery::RecordingDelivery;

use crate::escalation_engine::{page, plan, run_until, runner, setup};
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

crate::both_backends!(a_reopened_incident_can_be_escalated,);
