//! The escalation engine over a real database with a fake clock: a full
//! escalation through every level and pass; an acknowledgement at each level
//! stops it; resolution cancels; the notification requests handed to delivery
//! are exactly those the policy and the personal rules imply (no duplicates),
//! also when the engine restarts mid-escalation and when two engines share one
//! PostgreSQL; every step is on the incident's timeline.

use crate::support::user;
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_core::time::{Clock, FakeClock};
use tocsin_engine::delivery::RecordingDelivery;
use tocsin_engine::jobs::Runner;
use tocsin_store::{HandedNotification, Store, StoreOptions};

use crate::support::{Db, TestApp};

/// Rules every paged user gets, high urgency: push at once, SMS after 2
/// minutes, voice after 5; low urgency: email at once.
const HIGH_RULES: [(&str, i64); 3] = [("push", 0), ("sms", 2), ("voice", 5)];

pub(crate) struct Setup {
    pub(crate) users: [i64; 3],
    pub(crate) service: i64,
    pub(crate) policy: i64,
}

/// Contact methods and rules through the API (an admin sets them up).
async fn give_rules(app: &TestApp, user: i64) {
    let mut rules = Vec::new();
    for (kind, delay) in HIGH_RULES.iter().chain([("email", 0)].iter()) {
        let address = match *kind {
            "email" => format!("u{user}@example.com"),
            "push" => format!("ntfy:device-of-{user}"),
            _ => format!("+1555000{user:04}"),
        };
        let r = app
            .post(
                &format!("/api/v1/users/{user}/contact-methods"),
                json!({ "kind": kind, "address": address, "verified": true }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let urgency = if *kind == "email" { "low" } else { "high" };
        rules.push(json!({ "urgency": urgency, "contact_method_id": r.body["id"], "delay_minutes": delay }));
    }
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{user}/notification-rules"),
            Some(&app.admin_token),
            Some(json!({ "rules": rules, "working_hours": null })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Ada (level 0, 10 min), the primary schedule — Bo on call (level 1, 15 min),
/// team SRE — Cy (level 2, 5 min), repeated once: levels at 0, 10, 25, 30, 40,
/// 55 minutes, exhausted at 60.
pub(crate) async fn setup(app: &TestApp) -> Setup {
    let a = user(app, "Ada").await;
    let b = user(app, "Bo").await;
    let c = user(app, "Cy").await;
    for u in [a, b, c] {
        give_rules(app, u).await;
    }
    let s = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Primary", "time_zone": "Europe/Berlin",
                "layers": [{ "name": "weekly", "users": [b, c], "start": "2025-12-29T09:00:00+01:00",
                    "turn": "weekly", "handoff": "09:00" }] }),
        )
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    let s = s.body["id"].as_i64().unwrap();
    let team = app.post("/api/v1/teams", json!({ "name": "SRE" })).await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let team = team.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/teams/{team}/members/{c}"),
            Some(&app.admin_token),
            Some(json!({})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let p = app
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "Checkout", "repeat": 1, "levels": [
                { "targets": [{ "user": a }], "delay_minutes": 10 },
                { "targets": [{ "schedule": s }], "delay_minutes": 15 },
                { "targets": [{ "team": team }], "delay_minutes": 5 }] }),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let policy = p.body["id"].as_i64().unwrap();
    let svc = app
        .post("/api/v1/services", json!({ "name": "checkout" }))
        .await;
    assert_eq!(svc.status, StatusCode::CREATED, "{}", svc.body);
    let service = svc.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/services/{service}/escalation-policy"),
            Some(&app.admin_token),
            Some(json!({ "escalation_policy_id": policy })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    Setup {
        users: [a, b, c],
        service,
        policy,
    }
}

pub(crate) async fn page(app: &TestApp, s: &Setup, title: &str) -> i64 {
    let inc = app
        .declare(json!({ "title": title, "service_ids": [s.service], "page": true }))
        .await;
    inc["id"].as_i64().unwrap()
}

pub(crate) fn runner(store: &Store, clock: &FakeClock, rec: &RecordingDelivery) -> Runner {
    Runner::new(
        store.clone(),
        Arc::new(clock.clone()),
        Arc::new(rec.clone()),
    )
}

/// Ticks at every instant something falls due up to `end`, then at `end`.
pub(crate) async fn run_until(app: &TestApp, runners: &[&Runner], end: DateTime<Utc>) {
    loop {
        let ticks = runners.iter().map(|r| r.tick());
        for t in futures_join_all(ticks).await {
            t.expect("tick");
        }
        match app.store.next_work_due().await.unwrap() {
            Some(next) if next <= end && next > app.clock.now() => app.clock.set(next),
            _ => break,
        }
    }
    app.clock.set(end);
    for r in runners {
        r.tick().await.expect("tick");
    }
}

async fn futures_join_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = fs.collect();
    let mut out = Vec::new();
    // Polled together so two runners really contend.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    if pinned.len() == 2 {
        let b = pinned.pop().unwrap();
        let a = pinned.pop().unwrap();
        let (x, y) = tokio::join!(a, b);
        out.push(x);
        out.push(y);
    } else {
        for f in pinned {
            out.push(f.await);
        }
    }
    out
}

/// (user, kind, minutes after `t0`) of each handed request.
pub(crate) fn plan(handed: &[HandedNotification], t0: DateTime<Utc>) -> Vec<(i64, String, i64)> {
    let mut out: Vec<_> = handed
        .iter()
        .map(|h| {
            (
                h.user_id,
                h.contact_kind.clone(),
                (h.send_at - t0).num_minutes(),
            )
        })
        .collect();
    out.sort_by_key(|(u, k, m)| (*m, *u, k.clone()));
    out
}

/// What the policy and the rules imply for one incident: each level's user
/// at the level's time, each rule at its delay, for levels due before `until`
/// and requests due strictly before `stop` (acknowledgement or resolution).
fn expected(s: &Setup, stop: i64) -> Vec<(i64, String, i64)> {
    let [a, b, c] = s.users;
    let levels = [(0, a), (10, b), (25, c), (30, a), (40, b), (55, c)];
    let mut out = Vec::new();
    for (at, u) in levels {
        for (kind, delay) in HIGH_RULES {
            if at + delay < stop && at < stop {
                out.push((u, kind.to_string(), at + delay));
            }
        }
    }
    out.sort_by_key(|(u, k, m)| (*m, *u, k.clone()));
    out
}

pub(crate) fn unique_keys(handed: &[HandedNotification]) {
    let keys: BTreeSet<_> = handed.iter().map(|h| &h.idempotency_key).collect();
    assert_eq!(keys.len(), handed.len(), "a request was handed twice");
}

pub(crate) fn kinds(timeline: &[Value], prefix: &str) -> Vec<String> {
    timeline
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

async fn full_escalation_runs_every_level_and_pass_then_exhausts(app: TestApp) {
    let s = setup(&app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "Checkout down").await;
    run_until(&app, &[&r], t0 + Duration::hours(3)).await;
    let handed = rec.requests();
    unique_keys(&handed);
    assert_eq!(plan(&handed, t0), expected(&s, i64::MAX));
    assert_eq!(handed.len(), 18);
    // Handed exactly when due: the fake clock stopped at every due instant.
    assert!(handed.iter().all(|h| h.handed_at == h.send_at));
    let tl = app.timeline(id).await;
    let esc = kinds(&tl, "escalation.");
    assert_eq!(esc[0], "escalation.started");
    assert_eq!(
        esc.iter().filter(|k| *k == "escalation.notified").count(),
        6
    );
    assert_eq!(esc.last().unwrap(), "escalation.exhausted");
    let notified: Vec<_> = tl
        .iter()
        .filter(|e| e["kind"] == "escalation.notified")
        .map(|e| {
            (
                e["data"]["level"].as_i64().unwrap(),
                e["data"]["round"].as_i64().unwrap(),
                e["data"]["users"].clone(),
            )
        })
        .collect();
    let [a, b, c] = s.users;
    assert_eq!(
        notified,
        vec![
            (0, 0, json!([a])),
            (1, 0, json!([b])),
            (2, 0, json!([c])),
            (0, 1, json!([a])),
            (1, 1, json!([b])),
            (2, 1, json!([c]))
        ]
    );
    let view = app.get(&format!("/api/v1/incidents/{id}/escalation")).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    assert_eq!(view.body["phase"], "exhausted");
    assert_eq!(view.body["escalation_policy_id"], s.policy);
    let listed = app
        .get(&format!("/api/v1/incidents/{id}/notifications"))
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 18);
    // The job is gone once nothing is left to do.
    // Only the schedule's handoff job is left.
    assert_eq!(count(&app, "jobs").await, count(&app, "schedules").await);
    // Running again later hands nothing more.
    run_until(&app, &[&r], t0 + Duration::hours(6)).await;
    assert_eq!(rec.requests().len(), 18);
}

pub(crate) async fn count(app: &TestApp, table: &str) -> i64 {
    app.counts()
        .await
        .into_iter()
        .find(|(t, _)| t == table)
        .map(|(_, n)| n)
        .unwrap()
}

async fn acknowledging_at_each_level_stops_the_escalation(app: TestApp) {
    let s = setup(&app).await;
    for (level, at) in [(0i64, 0i64), (1, 10), (2, 25)] {
        let rec = RecordingDelivery::default();
        let r = runner(&app.store, &app.clock, &rec);
        let t0 = app.clock.now();
        let id = page(&app, &s, &format!("ack at level {level}")).await;
        // One minute after the level was notified: its push went, SMS and voice wait.
        run_until(&app, &[&r], t0 + Duration::minutes(at + 1)).await;
        let moved = app.move_to(id, "acknowledged").await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        run_until(&app, &[&r], t0 + Duration::hours(3)).await;
        let handed = rec.requests();
        unique_keys(&handed);
        assert_eq!(
            plan(&handed, t0),
            expected(&s, at + 1),
            "ack at level {level}"
        );
        assert_eq!(handed.len() as i64, 3 * level + 1);
        let tl = app.timeline(id).await;
        let ack = tl
            .iter()
            .find(|e| e["kind"] == "escalation.acknowledged")
            .expect("ack event");
        assert_eq!(ack["data"]["cancelled_notifications"], 2);
        assert_eq!(
            kinds(&tl, "escalation.notified").len() as i64,
            level + 1,
            "no level after the acknowledgement"
        );
        let view = app.get(&format!("/api/v1/incidents/{id}/escalation")).await;
        assert_eq!(view.body["phase"], "acknowledged");
        let listed = app
            .get(&format!("/api/v1/incidents/{id}/notifications"))
            .await;
        let cancelled = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["status"] == "cancelled")
            .count();
        assert_eq!(cancelled, 2);
    }
    // Only the schedule's handoff job is left.
    assert_eq!(count(&app, "jobs").await, count(&app, "schedules").await);
}

async fn resolving_cancels_everything_pending(app: TestApp) {
    let s = setup(&app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "resolve me").await;
    run_until(&app, &[&r], t0 + Duration::minutes(11)).await;
    assert_eq!(rec.requests().len(), 4); // Ada's three, Bo's push
                                         // /metrics shows the work waiting, and work left behind when nobody runs it.
    let metrics = |app: &TestApp| {
        let (client, url) = (app.client.clone(), format!("{}/metrics", app.base));
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let text = metrics(&app).await;
    assert!(
        text.contains("tocsin_jobs{kind=\"escalation\"} 1"),
        "{text}"
    );
    assert!(text.contains("tocsin_notifications_scheduled 2"), "{text}");
    assert!(text.contains("tocsin_notifications_overdue 0"), "{text}");
    app.clock.set(t0 + Duration::minutes(20));
    let text = metrics(&app).await;
    assert!(text.contains("tocsin_notifications_overdue 2"), "{text}");
    assert!(
        text.contains("tocsin_jobs_overdue{kind=\"escalation\"} 0"),
        "{text}"
    );
    app.clock.set(t0 + Duration::minutes(27));
    let text = metrics(&app).await;
    assert!(
        text.contains("tocsin_jobs_overdue{kind=\"escalation\"} 1"),
        "{text}"
    );
    app.clock.set(t0 + Duration::minutes(11));
    let moved = app.move_to(id, "resolved").await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    run_until(&app, &[&r], t0 + Duration::hours(3)).await;
    assert_eq!(plan(&rec.requests(), t0), expected(&s, 11));
    let tl = app.timeline(id).await;
    let cancel = tl
        .iter()
        .find(|e| e["kind"] == "escalation.cancelled")
        .expect("cancel event");
    assert_eq!(cancel["data"]["cancelled_notifications"], 2);
    let view = app.get(&format!("/api/v1/incidents/{id}/escalation")).await;
    assert_eq!(view.body["phase"], "resolved");
    // Only the schedule's handoff job is left.
    assert_eq!(count(&app, "jobs").await, count(&app, "schedules").await);
    // Escalating a resolved incident is refused.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({ "level": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
}

async fn escalate_now_moves_to_the_named_level(app: TestApp) {
    let s = setup(&app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "escalate me").await;
    run_until(&app, &[&r], t0 + Duration::minutes(1)).await;
    assert_eq!(app.move_to(id, "acknowledged").await.status, StatusCode::OK);
    // Acknowledged, then escalated by hand to level 2 at minute 3.
    run_until(&app, &[&r], t0 + Duration::minutes(3)).await;
    let e = app
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({ "level": 2 }),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.body);
    assert_eq!(e.body["phase"], "running");
    // Level 2 now (Cy: 3 rules), then its 5-minute delay leads to the next pass.
    run_until(
        &app,
        &[&r],
        t0 + Duration::minutes(8) - Duration::seconds(1),
    )
    .await;
    let [a, _, c] = s.users;
    let got = plan(&rec.requests(), t0);
    assert_eq!(
        got,
        vec![
            (a, "push".into(), 0),
            (c, "push".into(), 3),
            (c, "sms".into(), 5)
        ],
    );
    let bad = app
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({ "level": 7 }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.field(), "level");
    let tl = app.timeline(id).await;
    assert_eq!(kinds(&tl, "escalation.escalated").len(), 1);
}

/// The engine is stopped mid-escalation and a new one (a new store, as after a
/// restart) carries on: nothing lost, nothing repeated.
async fn a_restarted_engine_neither_loses_nor_repeats_a_step(app: TestApp) {
    let s = setup(&app).await;
    let t0 = app.clock.now();
    let ids = [page(&app, &s, "one").await, page(&app, &s, "two").await];
    let first = RecordingDelivery::default();
    run_until(
        &app,
        &[&runner(&app.store, &app.clock, &first)],
        t0 + Duration::minutes(12),
    )
    .await;
    let second_store = Store::connect(
        &app.db_url,
        &StoreOptions {
            max_connections: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let second = RecordingDelivery::default();
    let r2 = runner(&second_store, &app.clock, &second);
    // The restarted engine first runs at the time it was stopped: nothing is due twice.
    r2.tick().await.unwrap();
    assert!(second.requests().is_empty(), "{:?}", second.requests());
    run_until(&app, &[&r2], t0 + Duration::hours(3)).await;
    let mut all = first.requests();
    all.extend(second.requests());
    unique_keys(&all);
    assert_eq!(all.len(), 36);
    for id in ids {
        let mine: Vec<_> = all
            .iter()
            .filter(|h| h.incident_id == Some(id))
            .cloned()
            .collect();
        assert_eq!(plan(&mine, t0), expected(&s, i64::MAX));
    }
    second_store.close().await;
}

/// Two engines (two stores, as on two nodes) share one PostgreSQL and run at
/// the same instants: every request is handed once, by one of them.
async fn two_engines_on_one_postgres_hand_each_request_once(app: TestApp) {
    let s = setup(&app).await;
    let t0 = app.clock.now();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(page(&app, &s, &format!("incident {i}")).await);
    }
    let other = Store::connect(
        &app.db_url,
        &StoreOptions {
            max_connections: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (ra, rb) = (RecordingDelivery::default(), RecordingDelivery::default());
    let a = runner(&app.store, &app.clock, &ra);
    let b = runner(&other, &app.clock, &rb);
    run_until(&app, &[&a, &b], t0 + Duration::hours(3)).await;
    let mut all = ra.requests();
    all.extend(rb.requests());
    unique_keys(&all);
    assert_eq!(all.len(), 18 * ids.len());
    for id in &ids {
        let mine: Vec<_> = all
            .iter()
            .filter(|h| h.incident_id == Some(*id))
            .cloned()
            .collect();
        assert_eq!(plan(&mine, t0), expected(&s, i64::MAX));
    }
    other.close().await;
}

/// An alert opens an incident on the service and its on-call is paged at once.
async fn an_alert_pages_the_services_on_call(app: TestApp) {
    let s = setup(&app).await;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let key = app
        .post(
            &format!("/api/v1/services/{}/integration-keys", s.service),
            json!({ "name": "prometheus" }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let t0 = app.clock.now();
    let sent = app
        .client
        .post(format!("{}/v2/enqueue", app.base))
        .json(&json!({ "routing_key": key.body["secret"], "event_action": "trigger", "dedup_key": "disk",
                       "payload": { "summary": "Disk full", "source": "db-1", "severity": "critical" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    r.tick().await.unwrap();
    let [a, _, _] = s.users;
    assert_eq!(plan(&rec.requests(), t0), vec![(a, "push".to_string(), 0)]);
    let id = rec.requests()[0].incident_id.unwrap();
    let tl = app.timeline(id).await;
    assert_eq!(
        kinds(&tl, "escalation."),
        ["escalation.started", "escalation.notified"]
    );
    // The alert resolving resolves the incident, which cancels what was pending.
    let resolved = app
        .client
        .post(format!("{}/v2/enqueue", app.base))
        .json(&json!({ "routing_key": key.body["secret"], "event_action": "resolve", "dedup_key": "disk" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), StatusCode::ACCEPTED);
    run_until(&app, &[&r], t0 + Duration::hours(2)).await;
    assert_eq!(rec.requests().len(), 1);
    let view = app.get(&format!("/api/v1/incidents/{id}/escalation")).await;
    assert_eq!(view.body["phase"], "resolved");
}

/// Low urgency uses the low-urgency rules, and waits for the user's working hours.
async fn low_urgency_waits_for_working_hours(app: TestApp) {
    let s = setup(&app).await;
    let [a, b, _] = s.users;
    let path = format!("/api/v1/users/{a}/notification-rules");
    let mut setup_a = app.get(&path).await.body;
    // 2026-01-01 is a Thursday; 00:00 UTC is 01:00 in Berlin.
    setup_a["working_hours"] = json!({ "days": ["mon", "tue", "wed", "thu", "fri"],
        "start_time": "09:00", "end_time": "17:00", "time_zone": "Europe/Berlin" });
    let r = app
        .call(Method::PUT, &path, Some(&app.admin_token), Some(setup_a))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let inc = app
        .declare(
            json!({ "title": "slow reports", "service_ids": [s.service], "page": true,
                         "urgency": "low", "impact": "low" }),
        )
        .await;
    let id = inc["id"].as_i64().unwrap();
    run_until(&app, &[&r], t0 + Duration::minutes(20)).await;
    // Bo (no working hours) got his email with level 1; Ada's waits for 09:00 Berlin.
    assert_eq!(
        plan(&rec.requests(), t0),
        vec![(b, "email".to_string(), 10)]
    );
    let listed = app
        .get(&format!("/api/v1/incidents/{id}/notifications"))
        .await;
    let ada: Vec<_> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["user_id"] == a)
        .cloned()
        .collect();
    assert_eq!(ada.len(), 1);
    assert_eq!(ada[0]["status"], "scheduled");
    assert_eq!(ada[0]["send_at"], "2026-01-01T08:00:00Z");
    run_until(&app, &[&r], t0 + Duration::hours(9)).await;
    let handed: Vec<_> = rec
        .requests()
        .into_iter()
        .filter(|h| h.user_id == a)
        .collect();
    assert_eq!(
        handed.len(),
        2,
        "both passes' emails, at the start of working hours"
    );
    assert!(handed
        .iter()
        .all(|h| h.contact_kind == "email"
            && h.handed_at.to_rfc3339() == "2026-01-01T08:00:00+00:00"));
}

/// A request waits minutes for its time: it goes to the address as it is then,
/// and not at all to a contact method deleted meanwhile.
async fn waiting_requests_follow_address_changes_and_deletions(app: TestApp) {
    let s = setup(&app).await;
    let [a, _, c] = s.users;
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    page(&app, &s, "moving numbers").await;
    run_until(&app, &[&r], t0 + Duration::minutes(1)).await;
    let methods = app.get(&format!("/api/v1/users/{a}/contact-methods")).await;
    let sms = methods
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "sms")
        .unwrap()["id"]
        .clone();
    let changed = app
        .patch(
            &format!("/api/v1/users/{a}/contact-methods/{sms}"),
            json!({ "address": "+15550009999", "verified": true }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    run_until(&app, &[&r], t0 + Duration::minutes(26)).await;
    let ada_sms: Vec<_> = rec
        .requests()
        .into_iter()
        .filter(|h| h.user_id == a && h.contact_kind == "sms")
        .collect();
    assert_eq!(ada_sms[0].address, "+15550009999");
    // Cy (paged at minute 25) drops SMS from his rules and deletes the number
    // before his SMS at 27 is due: it is not sent.
    let rules_path = format!("/api/v1/users/{c}/notification-rules");
    let mut rules = app.get(&rules_path).await.body;
    let cy_methods = app
        .get(&format!("/api/v1/users/{c}/contact-methods"))
        .await
        .body;
    let cy_sms = cy_methods
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "sms")
        .unwrap()["id"]
        .clone();
    rules["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["contact_method_id"] != cy_sms);
    let put = app
        .call(
            Method::PUT,
            &rules_path,
            Some(&app.admin_token),
            Some(rules),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{c}/contact-methods/{cy_sms}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert!(del.status.is_success(), "{}", del.body);
    run_until(&app, &[&r], t0 + Duration::minutes(29)).await;
    let cy: Vec<_> = rec
        .requests()
        .into_iter()
        .filter(|h| h.user_id == c)
        .map(|h| h.contact_kind)
        .collect();
    assert_eq!(cy, ["push"]);
}

/// The runner is cut off at arbitrary points (its future dropped mid-transaction,
/// as a crash would), again and again; a fresh runner then finishes. Every step
/// is in the outbox exactly once: nothing lost, nothing repeated.
async fn a_runner_cut_off_anywhere_loses_and_repeats_nothing(app: TestApp) {
    let s = setup(&app).await;
    let t0 = app.clock.now();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(page(&app, &s, &format!("cut {i}")).await);
    }
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let end = t0 + Duration::hours(2);
    let mut cut = 0u64;
    let stuck_deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        for _ in 0..3 {
            cut = (cut * 7 + 3) % 2000;
            let _ =
                tokio::time::timeout(std::time::Duration::from_micros(50 + cut), r.tick()).await;
        }
        r.tick().await.expect("tick after cuts");
        match app.store.next_work_due().await.unwrap() {
            // On PostgreSQL a cut query can still hold its row lock on the server
            // for a moment, and the tick skips the locked job (SKIP LOCKED); the
            // real runner looks again shortly, and so does this loop.
            Some(next) if next <= app.clock.now() => {
                assert!(
                    std::time::Instant::now() < stuck_deadline,
                    "work due at {next} is never done"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Some(next) if next <= end => app.clock.set(next),
            _ => break,
        }
    }
    let mut handed = Vec::new();
    for id in &ids {
        let listed = app
            .get(&format!("/api/v1/incidents/{id}/notifications"))
            .await;
        let rows = listed.body.as_array().unwrap().clone();
        assert_eq!(rows.len(), 18, "incident {id}: {rows:?}");
        assert!(rows.iter().all(|n| n["status"] == "handed"), "{rows:?}");
        handed.extend(rows);
    }
    let keys: BTreeSet<_> = handed
        .iter()
        .map(|n| n["idempotency_key"].to_string())
        .collect();
    assert_eq!(keys.len(), 18 * ids.len());
    // What delivery was told is a subset: a cut between the commit and the call
    // leaves rows handed but untold, which delivery picks up from the outbox.
    assert!(rec.requests().len() <= keys.len());
}

async fn paging_refuses_what_it_cannot_do(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "no-policy" }))
        .await;
    let svc = svc.body["id"].as_i64().unwrap();
    let before = app.counts().await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({ "title": "x", "service_ids": [svc], "page": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "page");
    let r = app
        .post(
            "/api/v1/incidents",
            json!({ "title": "x", "service_ids": [svc], "page": true, "status": "investigating" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "page");
    assert_eq!(
        app.counts().await,
        before,
        "a refused declaration wrote something"
    );
    // Without `page`, a declared incident is not paged.
    let inc = app
        .declare(json!({ "title": "quiet", "service_ids": [svc] }))
        .await;
    let id = inc["id"].as_i64().unwrap();
    let r = app.get(&format!("/api/v1/incidents/{id}/escalation")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/escalate"),
            json!({ "level": 0 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "level");
}

crate::both_backends!(
    full_escalation_runs_every_level_and_pass_then_exhausts,
    acknowledging_at_each_level_stops_the_escalation,
    resolving_cancels_everything_pending,
    escalate_now_moves_to_the_named_level,
    a_restarted_engine_neither_loses_nor_repeats_a_step,
    paging_refuses_what_it_cannot_do,
    an_alert_pages_the_services_on_call,
    low_urgency_waits_for_working_hours,
    waiting_requests_follow_address_changes_and_deletions,
    a_runner_cut_off_anywhere_loses_and_repeats_nothing,
);

/// A runner on another node (another store on the same PostgreSQL), asleep with
/// nothing due, is woken by the NOTIFY of the transaction that pages: it hands
/// the first notification at once rather than after its 30-second sleep.
async fn another_nodes_runner_is_woken_by_notify(app: TestApp) {
    let s = setup(&app).await;
    let other = Store::connect(
        &app.db_url,
        &StoreOptions {
            max_connections: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rec = RecordingDelivery::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(runner(&other, &app.clock, &rec).run(stopped));
    // Let it start, find nothing due, listen and go to sleep.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .store
        .next_work_due()
        .await
        .unwrap()
        .is_some_and(|t| t <= app.clock.now())
    {
        assert!(std::time::Instant::now() < deadline, "runner did not start");
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let handed = rec.notify.notified();
    let t = std::time::Instant::now();
    page(&app, &s, "wake up").await;
    tokio::time::timeout(std::time::Duration::from_secs(10), handed)
        .await
        .expect("the other node's runner was not woken");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(rec.requests().len(), 1);
    let _ = stop.send(true);
    running.await.unwrap();
    other.close().await;
}

mod two_engines {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        match crate::support::spawn_app(super::Db::Postgres).await {
            Some(app) => super::two_engines_on_one_postgres_hand_each_request_once(app).await,
            None => eprintln!("skipped: TOCSIN_TEST_POSTGRES_URL is not set"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notify_wakes_another_node() {
        match crate::support::spawn_app(super::Db::Postgres).await {
            Some(app) => super::another_nodes_runner_is_woken_by_notify(app).await,
            None => eprintln!("skipped: TOCSIN_TEST_POSTGRES_URL is not set"),
        }
    }
}
