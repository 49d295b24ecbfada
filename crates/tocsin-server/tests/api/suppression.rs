//! Suppression: silences, maintenance windows and flapping hold new alerts
//! (stored and visible, no incident) and release them when they end.

use crate::support::t;
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::ingest::service_with_key;
use crate::support::{Resp, TestApp};

fn at(app: &TestApp, by: Duration) -> String {
    use tocsin_core::time::Clock;
    (app.clock.now() + by).to_rfc3339()
}

async fn send(app: &TestApp, key: &str, action: &str, dedup: &str, component: &str) {
    let body = json!({ "routing_key": key, "event_action": action, "dedup_key": dedup,
        "payload": { "summary": format!("{component} is down"), "source": "db-1.prod", "severity": "critical",
                     "component": component } });
    let r = app
        .call(Method::POST, "/v2/enqueue", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

async fn trigger(app: &TestApp, key: &str, dedup: &str, component: &str) {
    send(app, key, "trigger", dedup, component).await
}

/// The newest alert with this dedup key on the service.
async fn alert(app: &TestApp, svc: i64, dedup: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/alerts?service_id={svc}&limit=500"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["dedup_key"] == dedup)
        .cloned()
        .unwrap_or_else(|| panic!("no alert {dedup}"))
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.counts()
        .await
        .into_iter()
        .find(|(t, _)| t == table)
        .unwrap()
        .1
}

async fn silence(app: &TestApp, token: &str, body: Value) -> Resp {
    app.call(Method::POST, "/api/v1/silences", Some(token), Some(body))
        .await
}

async fn created(r: Resp) -> Value {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn event_kinds(app: &TestApp) -> Vec<String> {
    let r = app.get("/api/v1/events?limit=1000").await;
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn a_matching_silence_holds_new_alerts(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    let (_, responder) = app.user_with_role("responder").await;
    let s = created(
        silence(
            &app,
            &responder,
            json!({ "matchers": ["component=\"postgres\"", {"name": "source", "op": "=~", "value": "db-.*"}],
                    "ends_at": at(&app, Duration::hours(1)), "comment": "failover drill" }),
        )
        .await,
    )
    .await;
    assert_eq!(s["state"], "active");
    assert_eq!(
        s["matchers"][1],
        json!({"name": "source", "op": "=~", "value": "db-.*"})
    );
    let sid = s["id"].as_i64().unwrap();

    trigger(&app, &key, "pg", "postgres").await;
    let held = alert(&app, svc, "pg").await;
    assert_eq!(held["suppressed_by"], format!("silence:{sid}"));
    assert_eq!(held["incident_id"], Value::Null);
    assert_eq!(held["status"], "triggered");
    assert_eq!(
        count(&app, "incidents").await,
        0,
        "a held alert opens no incident"
    );

    // Visible with the filter, and only there.
    let only_held = app
        .get(&format!("/api/v1/alerts?service_id={svc}&suppressed=true"))
        .await
        .body;
    assert_eq!(only_held["items"].as_array().unwrap().len(), 1);
    let not_held = app
        .get(&format!("/api/v1/alerts?service_id={svc}&suppressed=false"))
        .await
        .body;
    assert_eq!(not_held["items"].as_array().unwrap().len(), 0);

    // A repeat while the silence holds stays held and is counted.
    trigger(&app, &key, "pg", "postgres").await;
    let again = alert(&app, svc, "pg").await;
    assert_eq!(
        (again["count"].as_i64(), again["suppressed_by"].as_str()),
        (Some(2), held["suppressed_by"].as_str())
    );
    assert_eq!(count(&app, "incidents").await, 0);

    // Not matching: opens its incident as usual.
    trigger(&app, &key, "web", "nginx").await;
    let open = alert(&app, svc, "web").await;
    assert_eq!(open["suppressed_by"], Value::Null);
    assert!(open["incident_id"].is_i64());
    assert_eq!(count(&app, "incidents").await, 1);

    // Resolving a held alert just resolves it.
    send(&app, &key, "resolve", "pg", "postgres").await;
    let resolved = alert(&app, svc, "pg").await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["incident_id"], Value::Null);
    assert_eq!(count(&app, "incidents").await, 1);

    let kinds = event_kinds(&app).await;
    assert!(kinds.contains(&"silence.created".to_string()));
    assert!(kinds.contains(&"alert.suppressed".to_string()));
}

async fn pending_and_expired_silences_hold_nothing(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    let pending = created(
        silence(
            &app,
            &app.admin_token,
            json!({ "matchers": ["component=postgres"], "starts_at": at(&app, Duration::hours(1)),
                    "ends_at": at(&app, Duration::hours(2)) }),
        )
        .await,
    )
    .await;
    assert_eq!(pending["state"], "pending");
    let short = created(
        silence(
            &app,
            &app.admin_token,
            json!({ "matchers": ["component=postgres"], "ends_at": at(&app, Duration::minutes(10)) }),
        )
        .await,
    )
    .await;
    let by_hand = created(
        silence(
            &app,
            &app.admin_token,
            json!({ "matchers": ["component=postgres"], "ends_at": at(&app, Duration::hours(3)) }),
        )
        .await,
    )
    .await;
    let r = app
        .post(
            &format!("/api/v1/silences/{}/expire", by_hand["id"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "expired");

    app.clock.advance(Duration::minutes(11));
    let states = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect()
    };
    let expired = app.get("/api/v1/silences?state=expired").await.body;
    let mut want = vec![
        by_hand["id"].as_i64().unwrap(),
        short["id"].as_i64().unwrap(),
    ];
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(states(&expired), want);
    assert_eq!(
        states(&app.get("/api/v1/silences?state=pending").await.body),
        vec![pending["id"].as_i64().unwrap()]
    );
    assert!(states(&app.get("/api/v1/silences?state=active").await.body).is_empty());
    // The expired silence is kept as history.
    let kept = app
        .get(&format!("/api/v1/silences/{}", by_hand["id"]))
        .await;
    assert_eq!(kept.body["state"], "expired");

    trigger(&app, &key, "pg", "postgres").await;
    let a = alert(&app, svc, "pg").await;
    assert_eq!(a["suppressed_by"], Value::Null, "no silence is in force");
    assert!(a["incident_id"].is_i64());

    // Once the pending one starts, it holds.
    app.clock.advance(Duration::minutes(50));
    trigger(&app, &key, "pg2", "postgres").await;
    assert_eq!(
        alert(&app, svc, "pg2").await["suppressed_by"],
        format!("silence:{}", pending["id"])
    );
}

async fn expiring_a_silence_releases_what_it_held(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    let s = created(
        silence(
            &app,
            &app.admin_token,
            json!({ "matchers": ["component=postgres"], "ends_at": at(&app, Duration::hours(1)) }),
        )
        .await,
    )
    .await;
    trigger(&app, &key, "pg", "postgres").await;
    trigger(&app, &key, "gone", "postgres").await;
    send(&app, &key, "resolve", "gone", "postgres").await;
    assert_eq!(count(&app, "incidents").await, 0);

    let r = app
        .post(&format!("/api/v1/silences/{}/expire", s["id"]), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let released = alert(&app, svc, "pg").await;
    assert_eq!(released["suppressed_by"], Value::Null);
    let inc = released["incident_id"].as_i64().expect("an incident now");
    let timeline = app.timeline(inc).await;
    assert!(
        timeline.iter().any(|e| e["kind"] == "alert.unsuppressed"),
        "{timeline:?}"
    );
    // A resolved held alert stays resolved and opens nothing.
    assert_eq!(alert(&app, svc, "gone").await["incident_id"], Value::Null);
    assert_eq!(count(&app, "incidents").await, 1);
    assert!(event_kinds(&app)
        .await
        .contains(&"silence.expired".to_string()));

    // A silence that simply runs out releases its alert on the next repeat.
    let s2 = created(
        silence(
            &app,
            &app.admin_token,
            json!({ "matchers": ["component=redis"], "ends_at": at(&app, Duration::minutes(5)) }),
        )
        .await,
    )
    .await;
    trigger(&app, &key, "redis", "redis").await;
    assert_eq!(
        alert(&app, svc, "redis").await["suppressed_by"],
        format!("silence:{}", s2["id"])
    );
    app.clock.advance(Duration::minutes(6));
    trigger(&app, &key, "redis", "redis").await;
    let out = alert(&app, svc, "redis").await;
    assert_eq!(out["suppressed_by"], Value::Null);
    assert!(out["incident_id"].is_i64());
    assert_eq!(out["count"], 2);
    assert_eq!(count(&app, "incidents").await, 2);
}

async fn a_service_scoped_silence_holds_only_its_service(app: TestApp) {
    let (a, key_a) = service_with_key(&app, "db").await;
    let (b, key_b) = service_with_key(&app, "web").await;
    let s = created(
        silence(
            &app,
            &app.admin_token,
            json!({ "matchers": ["component=postgres"], "service_id": a, "ends_at": at(&app, Duration::hours(1)) }),
        )
        .await,
    )
    .await;
    assert_eq!(s["service_id"], a);
    trigger(&app, &key_a, "pg", "postgres").await;
    trigger(&app, &key_b, "pg", "postgres").await;
    assert_eq!(
        alert(&app, a, "pg").await["suppressed_by"],
        format!("silence:{}", s["id"])
    );
    let other = alert(&app, b, "pg").await;
    assert_eq!(other["suppressed_by"], Value::Null);
    assert!(other["incident_id"].is_i64());
}

async fn a_one_off_maintenance_window_holds_only_inside_it(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    let (other, other_key) = service_with_key(&app, "web").await;
    let w = created(
        app.post(
            "/api/v1/maintenance-windows",
            json!({ "service_ids": [svc], "description": "db upgrade",
                    "starts_at": at(&app, Duration::hours(1)), "ends_at": at(&app, Duration::hours(2)) }),
        )
        .await,
    )
    .await;
    let wid = w["id"].as_i64().unwrap();
    assert_eq!(w["active"], false);
    trigger(&app, &key, "before", "postgres").await;
    assert!(alert(&app, svc, "before").await["incident_id"].is_i64());

    app.clock.advance(Duration::minutes(90));
    let active = app
        .get(&format!(
            "/api/v1/maintenance-windows?service_id={svc}&active=true"
        ))
        .await
        .body;
    assert_eq!(active.as_array().unwrap().len(), 1);
    assert_eq!(active[0]["id"], wid);
    assert!(app
        .get(&format!(
            "/api/v1/maintenance-windows?service_id={other}&active=true"
        ))
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
    trigger(&app, &key, "during", "postgres").await;
    trigger(&app, &other_key, "during", "postgres").await;
    let held = alert(&app, svc, "during").await;
    assert_eq!(held["suppressed_by"], format!("maintenance:{wid}"));
    assert_eq!(held["incident_id"], Value::Null);
    assert!(
        alert(&app, other, "during").await["incident_id"].is_i64(),
        "another service is not in maintenance"
    );

    app.clock.advance(Duration::minutes(31));
    trigger(&app, &key, "after", "postgres").await;
    assert!(alert(&app, svc, "after").await["incident_id"].is_i64());
    // Still firing when the window ended: the next repeat opens its incident.
    trigger(&app, &key, "during", "postgres").await;
    let released = alert(&app, svc, "during").await;
    assert_eq!(released["suppressed_by"], Value::Null);
    assert!(released["incident_id"].is_i64());
}

async fn a_weekly_maintenance_window_follows_its_time_zone_across_dst(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    // Sundays 01:00–04:00 New York time; DST begins on Sunday 2026-03-08.
    app.clock.set(t("2026-03-08T05:30:00Z")); // 00:30 EST
    let w = created(
        app.post(
            "/api/v1/maintenance-windows",
            json!({ "service_ids": [svc], "days": ["sun"], "start_time": "01:00", "duration_minutes": 180,
                    "time_zone": "America/New_York" }),
        )
        .await,
    )
    .await;
    let reason = format!("maintenance:{}", w["id"]);
    assert_eq!(w["next_start"], "2026-03-08T06:00:00Z");
    let held = |n: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            trigger(app, &key, n, "postgres").await;
            alert(app, svc, n).await["suppressed_by"].clone()
        }
    };
    assert_eq!(held("before").await, Value::Null);
    app.clock.set(t("2026-03-08T06:30:00Z")); // 01:30 EST
    assert_eq!(held("sunday1").await, reason);
    // A week later, after the change: 01:30 EDT is 05:30 UTC (a fixed offset would say 00:30).
    app.clock.set(t("2026-03-15T05:30:00Z"));
    assert_eq!(held("sunday2").await, reason);
    // 04:30 EDT is past the window (a fixed offset would say 03:30, inside).
    app.clock.set(t("2026-03-15T08:30:00Z"));
    assert_eq!(held("later").await, Value::Null);
    let r = app
        .get(&format!("/api/v1/maintenance-windows/{}", w["id"]))
        .await;
    assert_eq!(r.body["next_start"], "2026-03-22T05:00:00Z");
    assert_eq!(r.body["time_zone"], "America/New_York");

    // Change it to Mondays: the window no longer holds anything now, and the next
    // Sunday does not hold.
    let p = app
        .patch(
            &format!("/api/v1/maintenance-windows/{}", w["id"]),
            json!({ "days": ["monday"] }),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["days"], json!(["mon"]));
    app.clock.set(t("2026-03-22T05:30:00Z"));
    assert_eq!(held("sunday3").await, Value::Null);
    let d = app
        .call(
            Method::DELETE,
            &format!("/api/v1/maintenance-windows/{}", w["id"]),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let kinds = event_kinds(&app).await;
    for k in [
        "maintenance_window.created",
        "maintenance_window.updated",
        "maintenance_window.deleted",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k}");
    }
}

async fn deleting_a_window_releases_what_it_held(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    let w = created(
        app.post(
            "/api/v1/maintenance-windows",
            json!({ "service_ids": [svc], "starts_at": at(&app, Duration::zero()), "ends_at": at(&app, Duration::hours(2)) }),
        )
        .await,
    )
    .await;
    trigger(&app, &key, "pg", "postgres").await;
    assert_eq!(
        alert(&app, svc, "pg").await["suppressed_by"],
        format!("maintenance:{}", w["id"])
    );
    let d = app
        .call(
            Method::DELETE,
            &format!("/api/v1/maintenance-windows/{}", w["id"]),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let a = alert(&app, svc, "pg").await;
    assert_eq!(a["suppressed_by"], Value::Null);
    assert!(a["incident_id"].is_i64());
}

async fn flapping_alerts_are_held_until_they_settle(app: TestApp) {
    let (svc, key) = service_with_key(&app, "db").await;
    let rule = app
        .get(&format!("/api/v1/services/{svc}/flapping"))
        .await
        .body;
    assert_eq!(
        rule,
        json!({ "service_id": svc, "max_toggles": 4, "window_minutes": 30, "enabled": true, "default": true })
    );
    // Four openings within 30 minutes page as usual.
    for _ in 0..4 {
        trigger(&app, &key, "flap", "postgres").await;
        assert_eq!(alert(&app, svc, "flap").await["suppressed_by"], Value::Null);
        send(&app, &key, "resolve", "flap", "postgres").await;
        app.clock.advance(Duration::minutes(2));
    }
    assert_eq!(count(&app, "incidents").await, 4);
    // The fifth is held.
    trigger(&app, &key, "flap", "postgres").await;
    let held = alert(&app, svc, "flap").await;
    assert_eq!(held["suppressed_by"], "flapping");
    assert_eq!(held["incident_id"], Value::Null);
    assert_eq!(count(&app, "incidents").await, 4);
    // Still firing a while later, but the openings are still within the window.
    app.clock.advance(Duration::minutes(5));
    trigger(&app, &key, "flap", "postgres").await;
    assert_eq!(alert(&app, svc, "flap").await["suppressed_by"], "flapping");
    // Settled: nothing opened in the last 30 minutes; the next repeat pages.
    app.clock.advance(Duration::minutes(30));
    trigger(&app, &key, "flap", "postgres").await;
    let settled = alert(&app, svc, "flap").await;
    assert_eq!(settled["id"], held["id"]);
    assert_eq!(settled["suppressed_by"], Value::Null);
    assert!(settled["incident_id"].is_i64());
    assert_eq!(count(&app, "incidents").await, 5);

    // A service's own rule: more than 1 opening in 10 minutes.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/services/{svc}/flapping"),
            Some(&app.admin_token),
            Some(json!({ "max_toggles": 1, "window_minutes": 10, "enabled": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["default"], false);
    trigger(&app, &key, "other", "redis").await;
    send(&app, &key, "resolve", "other", "redis").await;
    trigger(&app, &key, "other", "redis").await;
    assert_eq!(alert(&app, svc, "other").await["suppressed_by"], "flapping");
    // Disabled: nothing is held for flapping.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/services/{svc}/flapping"),
            Some(&app.admin_token),
            Some(json!({ "max_toggles": 1, "window_minutes": 10, "enabled": false })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let released = alert(&app, svc, "other").await;
    assert_eq!(
        released["suppressed_by"],
        Value::Null,
        "changing the rule looks again"
    );
    assert!(released["incident_id"].is_i64());
    assert!(event_kinds(&app)
        .await
        .contains(&"flapping_rule.updated".to_string()));
}

async fn bad_input_names_the_field_and_writes_nothing(app: TestApp) {
    let (svc, _) = service_with_key(&app, "db").await;
    let end = at(&app, Duration::hours(1));
    let start = at(&app, Duration::hours(2));
    let weekly = |extra: Value| {
        let mut b = json!({ "service_ids": [svc], "days": ["mon"], "start_time": "02:00",
                            "duration_minutes": 60, "time_zone": "Europe/Berlin" });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": ["a=~("], "ends_at": end }),
            "matchers[0]",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": ["env=prod", {"name": "x", "op": "=~", "value": "(("}], "ends_at": end }),
            "matchers[1]",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": ["env=prod", 7], "ends_at": end }),
            "matchers[1]",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": [], "ends_at": end }),
            "matchers",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": ["a=~\".*\""], "ends_at": end }),
            "matchers",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": ["env=prod"], "starts_at": start, "ends_at": end }),
            "ends_at",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": ["env=prod"] }),
            "ends_at",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            json!({ "matchers": ["env=prod"], "ends_at": end, "service_id": 999999 }),
            "service_id",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            weekly(json!({ "time_zone": "Mars/Olympus" })),
            "time_zone",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            weekly(json!({ "days": ["mon", "funday"] })),
            "days[1]",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            weekly(json!({ "start_time": "25:61" })),
            "start_time",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            weekly(json!({ "duration_minutes": 0 })),
            "duration_minutes",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            weekly(json!({ "service_ids": [999999] })),
            "service_ids[0]",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            weekly(json!({ "service_ids": [] })),
            "service_ids",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            weekly(json!({ "starts_at": start })),
            "days",
        ),
        (
            Method::POST,
            "/api/v1/maintenance-windows".into(),
            json!({ "service_ids": [svc], "starts_at": start, "ends_at": end }),
            "ends_at",
        ),
        (
            Method::PUT,
            format!("/api/v1/services/{svc}/flapping"),
            json!({ "max_toggles": 0, "window_minutes": 30, "enabled": true }),
            "max_toggles",
        ),
        (
            Method::PUT,
            format!("/api/v1/services/{svc}/flapping"),
            json!({ "max_toggles": 4, "window_minutes": 30 }),
            "enabled",
        ),
    ];
    let before = app.counts().await;
    for (method, path, body, field) in cases {
        let r = app
            .call(
                method.clone(),
                &path,
                Some(&app.admin_token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body}: {}",
            r.body
        );
        assert_eq!(r.field(), field, "{method} {path} {body}: {}", r.body);
    }
    assert_eq!(app.counts().await, before, "refused requests wrote nothing");
    for (path, field) in [
        ("/api/v1/alerts?suppressed=maybe", "suppressed"),
        ("/api/v1/silences?state=asleep", "state"),
        ("/api/v1/maintenance-windows?active=yes", "active"),
    ] {
        let r = app.get(path).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, field),
            "{path}"
        );
    }
    // A change that would make a window invalid is refused and changes nothing.
    let w = created(
        app.post("/api/v1/maintenance-windows", weekly(json!({})))
            .await,
    )
    .await;
    let before_patch = app.counts().await;
    let r = app
        .patch(
            &format!("/api/v1/maintenance-windows/{}", w["id"]),
            json!({ "time_zone": "Nowhere/City" }),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "time_zone")
    );
    let r = app
        .patch(
            &format!("/api/v1/maintenance-windows/{}", w["id"]),
            json!({ "starts_at": start }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "days"));
    assert_eq!(app.counts().await, before_patch);
    assert_eq!(
        app.get(&format!("/api/v1/maintenance-windows/{}", w["id"]))
            .await
            .body["time_zone"],
        "Europe/Berlin"
    );
}

async fn roles_are_enforced(app: TestApp) {
    let (svc, _) = service_with_key(&app, "db").await;
    let (_, viewer) = app.user_with_role("viewer").await;
    let (responder_id, responder) = app.user_with_role("responder").await;
    let body = json!({ "matchers": ["env=prod"], "ends_at": at(&app, Duration::hours(1)) });
    assert_eq!(
        silence(&app, &viewer, body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let s = created(silence(&app, &responder, body).await).await;
    assert_eq!(s["created_by"], responder_id);
    assert_eq!(s["created_by_name"], "A responder");
    let expire = format!("/api/v1/silences/{}/expire", s["id"]);
    assert_eq!(
        app.call(Method::POST, &expire, Some(&viewer), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/silences", Some(&viewer), None)
            .await
            .status,
        StatusCode::OK
    );
    let window = json!({ "service_ids": [svc], "starts_at": at(&app, Duration::zero()), "ends_at": at(&app, Duration::hours(1)) });
    let r = app
        .call(
            Method::POST,
            "/api/v1/maintenance-windows",
            Some(&responder),
            Some(window.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    created(app.post("/api/v1/maintenance-windows", window).await).await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/maintenance-windows?service_id={svc}&active=true"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_array().map(|a| a.len())),
        (StatusCode::OK, Some(1))
    );
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/services/{svc}/flapping"),
            Some(&responder),
            Some(json!({ "max_toggles": 2, "window_minutes": 5, "enabled": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/services/{svc}/flapping"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        (r.status, &r.body["default"]),
        (StatusCode::OK, &json!(true))
    );
}

crate::both_backends!(
    a_matching_silence_holds_new_alerts,
    pending_and_expired_silences_hold_nothing,
    expiring_a_silence_releases_what_it_held,
    a_service_scoped_silence_holds_only_its_service,
    a_one_off_maintenance_window_holds_only_inside_it,
    a_weekly_maintenance_window_follows_its_time_zone_across_dst,
    deleting_a_window_releases_what_it_held,
    flapping_alerts_are_held_until_they_settle,
    bad_input_names_the_field_and_writes_nothing,
    roles_are_enforced
);

// What the suppression worker does on its timer: a silence that runs out while its
// alert still fires releases the alert into an incident without waiting for a repeat;
// while the silence holds, a review writes nothing.
async fn the_worker_releases_alerts_when_their_silence_runs_out(app: TestApp) {
    use tocsin_core::time::Clock;
    let (svc, key) = service_with_key(&app, "db").await;
    let settings = crate::support::test_settings();
    created(
        silence(
            &app,
            &app.admin_token,
            json!({ "matchers": ["component=postgres"], "ends_at": at(&app, Duration::minutes(10)) }),
        )
        .await,
    )
    .await;
    trigger(&app, &key, "pg", "postgres").await;
    let review = app
        .store
        .next_suppression_review(app.clock.now())
        .await
        .unwrap();
    let end = review
        .expect("an alert is held")
        .expect("the silence's end");
    assert_eq!(end, app.clock.now() + Duration::minutes(10));

    let before = event_kinds(&app).await.len();
    app.clock.advance(Duration::minutes(9));
    let released = app
        .store
        .release_expired_suppressions(&settings, app.clock.now())
        .await
        .unwrap();
    assert!(released.is_empty());
    assert_eq!(
        event_kinds(&app).await.len(),
        before,
        "a review while held writes nothing"
    );
    assert_eq!(count(&app, "incidents").await, 0);

    app.clock.advance(Duration::minutes(1));
    let released = app
        .store
        .release_expired_suppressions(&settings, app.clock.now())
        .await
        .unwrap();
    let a = alert(&app, svc, "pg").await;
    assert_eq!(released, vec![a["id"].as_i64().unwrap()]);
    assert_eq!(a["suppressed_by"], Value::Null);
    assert!(a["incident_id"].is_i64());
    assert_eq!(a["count"], 1, "released without a repeat");
    assert_eq!(count(&app, "incidents").await, 1);
    assert_eq!(
        app.store
            .next_suppression_review(app.clock.now())
            .await
            .unwrap(),
        None,
        "nothing held any more"
    );
}

crate::both_backends!(the_worker_releases_alerts_when_their_silence_runs_out);

// A window edited to leave a service out stops holding that service's alerts at once;
// those of the services it still covers stay held.
async fn editing_a_window_to_leave_a_service_out_releases_its_alerts(app: TestApp) {
    let (a, key_a) = service_with_key(&app, "db").await;
    let (b, key_b) = service_with_key(&app, "web").await;
    let w = created(
        app.post(
            "/api/v1/maintenance-windows",
            json!({ "service_ids": [a, b], "starts_at": at(&app, Duration::zero()),
                    "ends_at": at(&app, Duration::hours(48)) }),
        )
        .await,
    )
    .await;
    trigger(&app, &key_a, "pg", "postgres").await;
    trigger(&app, &key_b, "nginx", "nginx").await;
    assert_eq!(count(&app, "incidents").await, 0);
    let r = app
        .patch(
            &format!("/api/v1/maintenance-windows/{}", w["id"]),
            json!({ "service_ids": [b] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let released = alert(&app, a, "pg").await;
    assert_eq!(released["suppressed_by"], Value::Null);
    assert!(released["incident_id"].is_i64());
    let still = alert(&app, b, "nginx").await;
    assert_eq!(still["suppressed_by"], format!("maintenance:{}", w["id"]));
    assert_eq!(count(&app, "incidents").await, 1);
}

crate::both_backends!(editing_a_window_to_leave_a_service_out_releases_its_alerts);
