//! Timer triggers on the fake clock: a schedule at its cron time in its time
//! zone, an incident idle for N minutes.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use tocsin_engine::delivery::RecordingDelivery;
use tocsin_engine::jobs::Runner;

use super::{config, create, declare, engine, runs_of, Fake};
use crate::support::{t, TestApp};

fn jobs(app: &TestApp) -> Runner {
    Runner::new(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        Arc::new(RecordingDelivery::default()),
    )
}

async fn a_schedule_fires_at_its_time_in_its_zone(app: TestApp) {
    let fake = Fake::start().await;
    let (engine, _) = engine(&app, &config(true));
    let runner = jobs(&app);
    // 09:00 in Berlin is 08:00 UTC in winter; the clock starts at midnight UTC.
    let id = create(
        &app,
        &format!(
            "name: Morning check
trigger: {{schedule: {{cron: '0 9 * * *', time_zone: Europe/Berlin}}}}
steps:
  - http: {{url: '{}/morning', method: POST, body: '{{{{ trigger.kind }}}}'}}
",
            fake.base
        ),
    )
    .await;
    app.clock.set(t("2026-01-01T07:59:59Z"));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert!(fake.received().is_empty());
    app.clock.set(t("2026-01-01T08:00:00Z"));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    let calls = fake.to("/morning");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, "schedule");
    // Once a day: nothing more until tomorrow's 08:00 UTC.
    app.clock.set(t("2026-01-02T07:59:00Z"));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert_eq!(fake.to("/morning").len(), 1);
    app.clock.set(t("2026-01-02T08:00:00Z"));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert_eq!(fake.to("/morning").len(), 2);
    let runs = app.get(&format!("/api/v1/workflows/{id}/runs")).await;
    assert_eq!(runs.body.as_array().unwrap().len(), 2);
    assert_eq!(runs.body[0]["trigger"], "schedule");
}

async fn an_idle_incident_triggers_after_quiet_minutes(app: TestApp) {
    let (engine, _) = engine(&app, &config(true));
    let runner = jobs(&app);
    create(
        &app,
        "name: Nudge
trigger: {incident_idle: {after: 30m}}
conditions: incident.status != 'resolved'
steps:
  - add_note: {text: 'No activity for 30 minutes: post an update?'}
",
    )
    .await;
    let inc = declare(&app, "Quiet", "SEV2", &[]).await;
    let t0 = tocsin_core::time::Clock::now(&app.clock);
    engine.tick().await.unwrap();
    // Activity at +20m moves the timer to +50m.
    app.clock.set(t0 + Duration::minutes(20));
    app.post(
        &format!("/api/v1/incidents/{inc}/notes"),
        json!({ "body": "looking" }),
    )
    .await;
    app.clock.set(t0 + Duration::minutes(30));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert!(runs_of(&app, inc).await.is_empty(), "not idle yet");
    app.clock.set(t0 + Duration::minutes(50));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    let runs = runs_of(&app, inc).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["trigger"], "incident_idle");
    // Once per quiet spell: its own note is not activity.
    app.clock.set(t0 + Duration::minutes(200));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert_eq!(runs_of(&app, inc).await.len(), 1);
    // Someone speaks, then falls quiet again: another nudge 30 minutes later.
    app.post(
        &format!("/api/v1/incidents/{inc}/notes"),
        json!({ "body": "still looking" }),
    )
    .await;
    app.clock.set(t0 + Duration::minutes(229));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert_eq!(runs_of(&app, inc).await.len(), 1);
    app.clock.set(t0 + Duration::minutes(231));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert_eq!(runs_of(&app, inc).await.len(), 2);
    // A resolved incident is not idle.
    assert_eq!(
        app.move_to(inc, "resolved").await.status,
        reqwest::StatusCode::OK
    );
    app.clock.set(t0 + Duration::minutes(400));
    runner.tick().await.unwrap();
    engine.tick().await.unwrap();
    assert_eq!(runs_of(&app, inc).await.len(), 2);
}

crate::workflow_tests!(
    a_schedule_fires_at_its_time_in_its_zone,
    an_idle_incident_triggers_after_quiet_minutes,
);
