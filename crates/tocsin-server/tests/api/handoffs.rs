//! Handoff notifications over a real database with a fake clock: reminders and
//! start notices handed at exactly the right instants (09:00 local stays 09:00
//! local across a daylight-saving change), to the right users through their
//! first high-urgency channels, each once (every instant is ticked twice, and
//! the engine restarts on a second store); overrides and accepted swaps change
//! who is told, a user continuing their own time is not; each user's settings
//! decide which events; events missed by more than 15 minutes are skipped; the
//! settings API refuses bad input by field and other users.

use crate::support::t;
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tocsin_core::time::{Clock, FakeClock};
use tocsin_engine::delivery::RecordingDelivery;
use tocsin_engine::jobs::Runner;
use tocsin_store::{HandedNotification, Store, StoreOptions};

use crate::support::TestApp;

/// A responder with a token, push and email as high-urgency rules at once
/// (their handoff channels), SMS after 5 minutes and email for low urgency
/// (neither used for handoffs). Returns (id, token).
async fn person(app: &TestApp) -> (i64, String) {
    let (id, token) = app.user_with_role("responder").await;
    let mut methods = Vec::new();
    for (kind, address) in [
        ("push", format!("ntfy:device-{id}")),
        ("email", format!("u{id}@example.com")),
        ("sms", format!("+1555000{id:04}")),
    ] {
        let r = app
            .post(
                &format!("/api/v1/users/{id}/contact-methods"),
                json!({ "kind": kind, "address": address, "verified": true }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        methods.push(r.body["id"].as_i64().unwrap());
    }
    let rules = json!([
        { "urgency": "high", "contact_method_id": methods[0], "delay_minutes": 0 },
        { "urgency": "high", "contact_method_id": methods[2], "delay_minutes": 5 },
        { "urgency": "high", "contact_method_id": methods[1], "delay_minutes": 0 },
        { "urgency": "low", "contact_method_id": methods[1], "delay_minutes": 0 },
    ]);
    let r = put(
        app,
        &app.admin_token,
        &format!("/api/v1/users/{id}/notification-rules"),
        json!({ "rules": rules }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (id, token)
}

async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> crate::support::Resp {
    app.call(Method::PUT, path, Some(token), Some(body)).await
}

async fn settings(app: &TestApp, user: i64, reminder: Option<i64>, notify: bool) {
    let r = put(
        app,
        &app.admin_token,
        &format!("/api/v1/users/{user}/handoff-notifications"),
        json!({ "reminder_minutes": reminder, "notify_on_start": notify }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "reminder_minutes": reminder, "notify_on_start": notify })
    );
}

/// A daily rotation in Europe/Berlin handing off at 09:00 local from `start`.
async fn schedule(app: &TestApp, users: &[i64], start: &str) -> i64 {
    let r = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Primary", "time_zone": "Europe/Berlin",
                "layers": [{ "name": "daily", "users": users, "start": start,
                    "turn": "daily", "handoff": "09:00" }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn runner(store: &Store, clock: &FakeClock, rec: &RecordingDelivery) -> Runner {
    Runner::new(
        store.clone(),
        Arc::new(clock.clone()),
        Arc::new(rec.clone()),
    )
}

/// Ticks twice at every instant something falls due up to `end`, then at `end`.
async fn run_until(app: &TestApp, r: &Runner, end: DateTime<Utc>) {
    loop {
        r.tick().await.expect("tick");
        r.tick().await.expect("second tick");
        match app.store.next_work_due().await.unwrap() {
            Some(next) if next <= end && next > app.clock.now() => app.clock.set(next),
            _ => break,
        }
    }
    app.clock.set(end);
    r.tick().await.expect("tick");
    r.tick().await.expect("second tick");
}

/// (send_at, user, reason, contact kind) of each request, sorted.
fn plan(handed: &[HandedNotification]) -> Vec<(DateTime<Utc>, i64, String, String)> {
    let mut out: Vec<_> = handed
        .iter()
        .map(|h| {
            (
                h.send_at,
                h.user_id,
                h.reason.clone(),
                h.contact_kind.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Each (instant, user, reason) through push and email.
fn through_both(events: &[(&str, i64, &str)]) -> Vec<(DateTime<Utc>, i64, String, String)> {
    let mut out = Vec::new();
    for (at, user, reason) in events {
        for kind in ["email", "push"] {
            out.push((t(at), *user, reason.to_string(), kind.to_string()));
        }
    }
    out.sort();
    out
}

fn once_each(handed: &[HandedNotification]) {
    let keys: BTreeSet<_> = handed.iter().map(|h| &h.idempotency_key).collect();
    assert_eq!(keys.len(), handed.len(), "a request was handed twice");
}

const REMINDER: &str = "handoff_reminder";
const START: &str = "shift_started";

/// Ada and Bo rotate daily at 09:00 Berlin time over the night the clocks go
/// forward (2026-03-29): 09:00 is 08:00Z before and 07:00Z after, and every
/// reminder (60 minutes) and notice comes then, once, through push and email.
async fn reminders_and_notices_follow_local_time_across_dst(app: TestApp) {
    app.clock.set(t("2026-03-27T00:00:00Z"));
    let (ada, _) = person(&app).await;
    let (bo, _) = person(&app).await;
    let s = schedule(&app, &[ada, bo], "2026-03-27T09:00:00+01:00").await;
    // Set after the schedule exists: the change reaches its job.
    settings(&app, ada, Some(60), true).await;
    settings(&app, bo, Some(60), true).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    run_until(&app, &r, t("2026-03-28T12:00:00Z")).await;

    // A restart: a second store on the same database carries on.
    let second_store = Store::connect(
        &app.db_url,
        &StoreOptions {
            max_connections: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rec2 = RecordingDelivery::default();
    let r2 = runner(&second_store, &app.clock, &rec2);
    r2.tick().await.unwrap();
    assert!(rec2.requests().is_empty(), "{:?}", rec2.requests());
    run_until(&app, &r2, t("2026-03-31T00:00:00Z")).await;
    second_store.close().await;

    let mut all = rec.requests();
    all.extend(rec2.requests());
    once_each(&all);
    assert_eq!(
        plan(&all),
        through_both(&[
            ("2026-03-27T07:00:00Z", ada, REMINDER),
            ("2026-03-27T08:00:00Z", ada, START),
            ("2026-03-28T07:00:00Z", bo, REMINDER),
            ("2026-03-28T08:00:00Z", bo, START),
            // Summer time: 09:00 local is 07:00Z.
            ("2026-03-29T06:00:00Z", ada, REMINDER),
            ("2026-03-29T07:00:00Z", ada, START),
            ("2026-03-30T06:00:00Z", bo, REMINDER),
            ("2026-03-30T07:00:00Z", bo, START),
        ])
    );
    // Handed at the very instant they were due, by the engine running then.
    assert!(all.iter().all(|h| h.handed_at == h.send_at), "{all:?}");
    assert_eq!(
        rec.requests().len(),
        8,
        "the first engine ran to Mar 28 12:00Z"
    );
    let notice = all
        .iter()
        .find(|h| h.reason == START && h.user_id == bo && h.contact_kind == "push")
        .unwrap();
    assert_eq!(notice.incident_id, None);
    assert_eq!(notice.address, format!("ntfy:device-{bo}"));
    assert_eq!(notice.message["schedule_id"], s);
    assert_eq!(notice.message["schedule_name"], "Primary");
    assert_eq!(notice.message["time_zone"], "Europe/Berlin");
    assert_eq!(notice.message["starts_at"], "2026-03-28T08:00:00Z");
    // The 23-hour shift of the short night.
    assert_eq!(notice.message["ends_at"], "2026-03-29T07:00:00Z");
    let reminder = all
        .iter()
        .find(|h| h.reason == REMINDER && h.user_id == ada)
        .unwrap();
    assert_eq!(reminder.message["reminder_minutes"], 60);
    assert_eq!(
        reminder.idempotency_key,
        format!(
            "handoff:{s}:{ada}:{}:reminder:c{}",
            t("2026-03-27T08:00:00Z").timestamp_millis(),
            reminder.contact_method_id
        )
    );
    // Running on later sends nothing already sent.
    let again = RecordingDelivery::default();
    let r3 = runner(&app.store, &app.clock, &again);
    r3.tick().await.unwrap();
    assert!(again.requests().is_empty());
}

/// Ada, Bo, Ada, Bo from Jan 1 09:00 Berlin (08:00Z), notices only. An override
/// puts Cy in Bo's place on Jan 2; Bo's own override over the start of his Jan 4
/// shift leaves him one notice, not two. While the engine runs, Ada's swap of
/// Jan 1 18:00–20:00Z is taken by Dee: Dee is told at 18:00Z and Ada again at
/// 20:00Z, when her time resumes (before the job was next due: the acceptance
/// made it look again).
async fn overrides_and_swaps_change_who_is_told(app: TestApp) {
    let (ada, ada_token) = person(&app).await;
    let (bo, _) = person(&app).await;
    let (cy, _) = person(&app).await;
    let (dee, dee_token) = person(&app).await;
    let s = schedule(&app, &[ada, bo], "2026-01-01T09:00:00+01:00").await;
    let over = |user: i64, from: &str, to: &str| json!({ "user_id": user, "starts_at": from, "ends_at": to });
    for body in [
        over(cy, "2026-01-02T08:00:00Z", "2026-01-03T08:00:00Z"),
        over(bo, "2026-01-04T08:00:00Z", "2026-01-04T20:00:00Z"),
    ] {
        let r = app
            .post(&format!("/api/v1/schedules/{s}/overrides"), body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // An override made and deleted again changes nothing.
    let r = app
        .post(
            &format!("/api/v1/schedules/{s}/overrides"),
            over(dee, "2026-01-03T20:00:00Z", "2026-01-03T22:00:00Z"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gone = r.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{s}/overrides/{gone}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    run_until(&app, &r, t("2026-01-01T12:00:00Z")).await;
    let asked = app
        .call(
            Method::POST,
            &format!("/api/v1/schedules/{s}/swap-requests"),
            Some(&ada_token),
            Some(
                json!({ "starts_at": "2026-01-01T18:00:00Z", "ends_at": "2026-01-01T20:00:00Z",
                "note": "dentist" }),
            ),
        )
        .await;
    assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.body);
    let accepted = app
        .call(
            Method::POST,
            &format!("/api/v1/swap-requests/{}/accept", asked.body["id"]),
            Some(&dee_token),
            Some(json!({})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    run_until(&app, &r, t("2026-01-05T12:00:00Z")).await;
    let all = rec.requests();
    once_each(&all);
    assert_eq!(
        plan(&all),
        through_both(&[
            ("2026-01-01T08:00:00Z", ada, START),
            ("2026-01-01T18:00:00Z", dee, START),
            ("2026-01-01T20:00:00Z", ada, START),
            ("2026-01-02T08:00:00Z", cy, START),
            ("2026-01-03T08:00:00Z", ada, START),
            ("2026-01-04T08:00:00Z", bo, START),
            ("2026-01-05T08:00:00Z", ada, START),
        ])
    );
    assert!(all.iter().all(|h| h.handed_at == h.send_at), "{all:?}");
    // Bo's notice covers his whole time, override and turn together.
    let bo_notice = all.iter().find(|h| h.user_id == bo).unwrap();
    assert_eq!(bo_notice.message["ends_at"], "2026-01-05T08:00:00Z");
}

/// Ada wants no reminder, Bo only the reminder (30 minutes), Cy has no
/// high-urgency rule without delay: Ada gets notices, Bo reminders, Cy nothing.
/// Changes made while the engine runs apply at once: Bo's reminder moved to
/// 20 hours comes at once (it is due then), and Cy's new rule, made 5 minutes
/// after his start, still brings him its notice.
async fn each_users_settings_decide_what_they_get(app: TestApp) {
    let (ada, _) = person(&app).await;
    let (bo, _) = person(&app).await;
    let (cy, _) = app.user_with_role("responder").await;
    let r = app
        .post(
            &format!("/api/v1/users/{cy}/contact-methods"),
            json!({ "kind": "sms", "address": "+15550009999", "verified": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let sms = r.body["id"].as_i64().unwrap();
    let r = put(
        &app,
        &app.admin_token,
        &format!("/api/v1/users/{cy}/notification-rules"),
        json!({ "rules": [{ "urgency": "high", "contact_method_id": sms, "delay_minutes": 1 },
                          { "urgency": "low", "contact_method_id": sms, "delay_minutes": 0 }] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    settings(&app, ada, None, true).await;
    settings(&app, bo, Some(30), false).await;
    settings(&app, cy, Some(30), true).await;
    schedule(&app, &[ada, bo, cy], "2026-01-01T09:00:00+01:00").await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    run_until(&app, &r, t("2026-01-01T12:00:00Z")).await;
    // Bo's shift starts Jan 2 08:00Z: a 20-hour reminder is due right now.
    settings(&app, bo, Some(1200), false).await;
    run_until(&app, &r, t("2026-01-03T08:05:00Z")).await;
    let r2 = put(
        &app,
        &app.admin_token,
        &format!("/api/v1/users/{cy}/notification-rules"),
        json!({ "rules": [{ "urgency": "high", "contact_method_id": sms, "delay_minutes": 0 }] }),
    )
    .await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    // (Bo's next reminder is Jan 4 12:00Z, for his shift on Jan 5.)
    run_until(&app, &r, t("2026-01-04T11:00:00Z")).await;
    let all = rec.requests();
    once_each(&all);
    let mut expected = through_both(&[
        ("2026-01-01T08:00:00Z", ada, START),
        ("2026-01-01T12:00:00Z", bo, REMINDER),
        ("2026-01-04T08:00:00Z", ada, START),
    ]);
    expected.push((t("2026-01-03T08:00:00Z"), cy, START.into(), "sms".into()));
    expected.sort();
    assert_eq!(plan(&all), expected);
    let cy_notice = all.iter().find(|h| h.user_id == cy).unwrap();
    assert_eq!(cy_notice.handed_at, t("2026-01-03T08:05:00Z"));
}

/// Ada's shift starts Jan 2 08:00Z with a 60-minute reminder; the engine is
/// down from 06:30Z to 08:30Z: both events are more than 15 minutes old by
/// then and are skipped. Bo's start on Jan 3 is 10 minutes old when the engine
/// next runs: it still goes, late. Ada's reminder on Jan 4 is 20 minutes old
/// when the engine next runs (skipped), her start then goes on time.
async fn events_missed_by_more_than_15_minutes_are_skipped(app: TestApp) {
    let (bo, _) = person(&app).await;
    let (ada, _) = person(&app).await;
    settings(&app, ada, Some(60), true).await;
    settings(&app, bo, Some(60), true).await;
    // Bo from Jan 1 08:00Z, Ada from Jan 2, Bo from Jan 3, Ada from Jan 4.
    schedule(&app, &[bo, ada], "2026-01-01T09:00:00+01:00").await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    run_until(&app, &r, t("2026-01-02T06:30:00Z")).await;
    assert_eq!(rec.requests().len(), 4, "Bo's reminder and notice");
    // Down for two hours.
    app.clock.set(t("2026-01-02T08:30:00Z"));
    r.tick().await.unwrap();
    assert_eq!(rec.requests().len(), 4, "nothing sent late");
    run_until(&app, &r, t("2026-01-03T07:01:00Z")).await;
    assert_eq!(rec.requests().len(), 6, "Bo's reminder");
    // Down from 07:01Z to 08:10Z: the notice is 10 minutes late, and goes.
    app.clock.set(t("2026-01-03T08:10:00Z"));
    r.tick().await.unwrap();
    // Down from 06:30Z to 07:20Z on Jan 4: Ada's reminder (07:00Z) is 20
    // minutes old and skipped; her start at 08:00Z goes on time.
    run_until(&app, &r, t("2026-01-04T06:30:00Z")).await;
    app.clock.set(t("2026-01-04T07:20:00Z"));
    r.tick().await.unwrap();
    run_until(&app, &r, t("2026-01-04T12:00:00Z")).await;
    let all = rec.requests();
    once_each(&all);
    assert_eq!(
        plan(&all),
        through_both(&[
            ("2026-01-01T07:00:00Z", bo, REMINDER),
            ("2026-01-01T08:00:00Z", bo, START),
            ("2026-01-03T07:00:00Z", bo, REMINDER),
            ("2026-01-03T08:00:00Z", bo, START),
            ("2026-01-04T08:00:00Z", ada, START),
        ])
    );
    let late = all
        .iter()
        .find(|h| h.send_at == t("2026-01-03T08:00:00Z"))
        .unwrap();
    assert_eq!(late.handed_at, t("2026-01-03T08:10:00Z"));
}

async fn settings_api_checks_input_and_who_may_change_them(app: TestApp) {
    let (me, my_token) = app.user_with_role("viewer").await;
    let (other, _) = app.user_with_role("responder").await;
    let mine = format!("/api/v1/users/{me}/handoff-notifications");
    let r = app.call(Method::GET, &mine, Some(&my_token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "reminder_minutes": null, "notify_on_start": true })
    );
    let before = app.counts().await;
    for (body, field) in [
        (
            json!({ "reminder_minutes": 0, "notify_on_start": true }),
            "reminder_minutes",
        ),
        (
            json!({ "reminder_minutes": -5, "notify_on_start": true }),
            "reminder_minutes",
        ),
        (
            json!({ "reminder_minutes": 10081, "notify_on_start": true }),
            "reminder_minutes",
        ),
        (
            json!({ "reminder_minutes": "sixty", "notify_on_start": true }),
            "reminder_minutes",
        ),
        (
            json!({ "reminder_minutes": 60, "notify_on_start": "yes" }),
            "notify_on_start",
        ),
        (
            json!({ "reminder_minutes": 60, "notify_on_start": true, "snooze": 1 }),
            "snooze",
        ),
    ] {
        let r = put(&app, &my_token, &mine, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    let r = put(&app, &my_token, &mine, json!({ "reminder_minutes": 60 })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "notify_on_start", "{}", r.body);
    // Another user's settings: refused to a non-admin, even to read.
    let theirs = format!("/api/v1/users/{other}/handoff-notifications");
    let body = json!({ "reminder_minutes": 15, "notify_on_start": false });
    let r = put(&app, &my_token, &theirs, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.call(Method::GET, &theirs, Some(&my_token), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = put(
        &app,
        &app.admin_token,
        "/api/v1/users/999999/handoff-notifications",
        body.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(app.counts().await, before, "nothing written");

    // A viewer sets their own; an admin anyone's; each change is audited once.
    let r = put(
        &app,
        &my_token,
        &mine,
        json!({ "reminder_minutes": 10080, "notify_on_start": false }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put(&app, &app.admin_token, &theirs, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put(&app, &app.admin_token, &theirs, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "a no-op: {}", r.body);
    let r = app.get(&theirs).await;
    assert_eq!(r.body, body);
    let r = app.call(Method::GET, &mine, Some(&my_token), None).await;
    assert_eq!(
        r.body,
        json!({ "reminder_minutes": 10080, "notify_on_start": false })
    );
    let events = app.get("/api/v1/events?limit=1000").await;
    let set: Vec<_> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "user.handoff_notifications_set")
        .collect();
    assert_eq!(set.len(), 2, "{set:?}");
    let to_other = set.iter().find(|e| e["entity_id"] == other).unwrap();
    assert_eq!(
        to_other["data"]["from"],
        json!({ "reminder_minutes": null, "notify_on_start": true })
    );
    assert_eq!(to_other["data"]["to"], body);
}

/// Cy wants a week's notice (10080 minutes) of an override starting Jan 9
/// 12:00Z, beyond the eight days computed when the schedule is made; Ada's
/// start on Jan 5 is the next event then, but the job looks again within a
/// day and reminds Cy on Jan 2 12:00Z. Ada is told again when Cy hands back.
async fn a_reminder_a_week_ahead_is_not_missed(app: TestApp) {
    let (ada, _) = person(&app).await;
    let (cy, _) = person(&app).await;
    settings(&app, cy, Some(10080), false).await;
    let s = schedule(&app, &[ada], "2026-01-05T09:00:00+01:00").await;
    let r = app
        .post(
            &format!("/api/v1/schedules/{s}/overrides"),
            json!({ "user_id": cy, "starts_at": "2026-01-09T12:00:00Z",
                    "ends_at": "2026-01-09T14:00:00Z" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    run_until(&app, &r, t("2026-01-10T00:00:00Z")).await;
    let all = rec.requests();
    once_each(&all);
    assert_eq!(
        plan(&all),
        through_both(&[
            ("2026-01-02T12:00:00Z", cy, REMINDER),
            ("2026-01-05T08:00:00Z", ada, START),
            ("2026-01-09T14:00:00Z", ada, START),
        ])
    );
    assert!(all.iter().all(|h| h.handed_at == h.send_at), "{all:?}");
}

/// A schedule's job comes and goes with the schedule; one made before handoff
/// notifications existed (no job) gets one when the runner starts.
async fn each_schedule_has_one_job(app: TestApp) {
    let (ada, _) = person(&app).await;
    let s = schedule(&app, &[ada], "2026-01-01T09:00:00+01:00").await;
    let jobs = || async { count(&app, "jobs").await };
    assert_eq!(jobs().await, 1);
    let r = app
        .patch(
            &format!("/api/v1/schedules/{s}"),
            json!({ "description": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(jobs().await, 1);
    assert_eq!(
        app.store.arm_handoff_jobs(app.clock.now()).await.unwrap(),
        0
    );

    // As if the schedule predated migration 13: no job. A runner starting at
    // Ada's first start arms it and sends her notice.
    let mut c = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    sqlx::query("DELETE FROM jobs")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    assert_eq!(jobs().await, 0);
    app.clock.set(t("2026-01-01T08:00:00Z"));
    let rec = RecordingDelivery::default();
    let handed = rec.notify.notified();
    tokio::pin!(handed);
    handed.as_mut().enable();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(runner(&app.store, &app.clock, &rec).run(stopped));
    tokio::time::timeout(std::time::Duration::from_secs(10), handed)
        .await
        .expect("the started runner hands Ada's notice");
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(jobs().await, 1);
    assert_eq!(
        plan(&rec.requests()),
        through_both(&[("2026-01-01T08:00:00Z", ada, START)])
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{s}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(jobs().await, 0);
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.counts()
        .await
        .into_iter()
        .find(|(t, _)| t == table)
        .map(|(_, n)| n)
        .unwrap()
}

crate::both_backends!(
    reminders_and_notices_follow_local_time_across_dst,
    overrides_and_swaps_change_who_is_told,
    each_users_settings_decide_what_they_get,
    events_missed_by_more_than_15_minutes_are_skipped,
    settings_api_checks_input_and_who_may_change_them,
    a_reminder_a_week_ahead_is_not_missed,
    each_schedule_has_one_job,
);
