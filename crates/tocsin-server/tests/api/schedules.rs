//! On-call schedules through the API: CRUD with events, final shifts equal to
//! what `tocsin_core::schedule::final_shifts` computes (across a DST change, with
//! layer precedence and overrides), who is on call now, a user's shifts across
//! schedules, bad input that names the field and writes nothing, and roles.

use crate::support::{t, user};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_core::schedule::{final_shifts, Override, ScheduleParts};

use crate::support::TestApp;

async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/schedules", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

/// (user id, start, end, layer) of each shift in a response.
fn shifts(body: &Value) -> Vec<(i64, DateTime<Utc>, DateTime<Utc>, Option<u64>)> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|s| {
            (
                s["user_id"].as_i64().unwrap(),
                t(s["starts_at"].as_str().unwrap()),
                t(s["ends_at"].as_str().unwrap()),
                s["layer"].as_u64(),
            )
        })
        .collect()
}

/// What the pure computation says for the stored schedule and overrides.
async fn computed(
    app: &TestApp,
    id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(i64, DateTime<Utc>, DateTime<Utc>, Option<u64>)> {
    let s = app.store.schedule(id).await.unwrap();
    let parts = ScheduleParts {
        time_zone: s.time_zone.clone(),
        layers: s.layers.clone(),
    };
    let os: Vec<Override> = app
        .store
        .overrides(id, from, to)
        .await
        .unwrap()
        .iter()
        .map(|o| o.as_override())
        .collect();
    final_shifts(&parts.parse().unwrap(), &os, from, to)
        .iter()
        .map(|s| (s.user_id, s.starts_at, s.ends_at, s.layer.map(|l| l as u64)))
        .collect()
}

async fn event_kinds(app: &TestApp, entity: &str) -> Vec<String> {
    let r = app.get("/api/v1/events?limit=1000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == entity)
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn crud_round_trip(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    let created = create(
        &app,
        json!({ "name": "Platform", "description": "primary", "time_zone": "Europe/Berlin",
            "layers": [{ "name": "weekly", "users": [a, b], "start": "2026-03-02T08:00:00Z",
                "turn": "weekly", "handoff": "09:00" }] }),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["time_zone"], "Europe/Berlin");
    assert_eq!(created["layers"][0]["users"], json!([a, b]));
    let got = app.get(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created);
    let list = app.get("/api/v1/schedules").await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["id"], id);

    // A second schedule with the same name is refused.
    let dup = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Platform", "time_zone": "UTC",
                "layers": [{ "name": "x", "users": [a], "start": "2026-03-02T08:00:00Z", "turn": "daily", "handoff": "09:00" }] }),
        )
        .await;
    assert_eq!((dup.status, dup.field()), (StatusCode::CONFLICT, "name"));

    app.clock.advance(chrono::Duration::minutes(5));
    let patched = app
        .patch(
            &format!("/api/v1/schedules/{id}"),
            json!({ "name": "Platform primary", "time_zone": "America/New_York",
                "layers": [{ "name": "daily", "users": [b], "start": "2026-03-02T14:00:00Z", "turn": "days",
                    "turn_length": 2, "handoff": "09:30",
                    "restrictions": [{ "days": ["mon", "tue"], "start_time": "09:00", "end_time": "17:00" }] }] }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["name"], "Platform primary");
    assert_eq!(patched.body["description"], "primary");
    assert_eq!(patched.body["time_zone"], "America/New_York");
    assert_eq!(patched.body["layers"][0]["turn_length"], 2);
    assert_eq!(
        patched.body["layers"][0]["restrictions"][0]["days"],
        json!(["mon", "tue"])
    );
    assert_ne!(patched.body["updated_at"], created["updated_at"]);
    let got = app.get(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(got.body, patched.body);

    // Only the description: the layers stay.
    let described = app
        .patch(
            &format!("/api/v1/schedules/{id}"),
            json!({ "description": "nights" }),
        )
        .await;
    assert_eq!(described.status, StatusCode::OK, "{}", described.body);
    assert_eq!(described.body["layers"], patched.body["layers"]);

    let o = app
        .post(
            &format!("/api/v1/schedules/{id}/overrides"),
            json!({ "user_id": a, "starts_at": "2026-03-03T10:00:00Z", "ends_at": "2026-03-03T12:00:00Z" }),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    assert_eq!(o.body["created_by"], app.admin_id);

    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    let gone = app.get(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let gone = app.get(&format!("/api/v1/schedules/{id}/overrides")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        event_kinds(&app, "schedule").await,
        [
            "schedule.created",
            "schedule.updated",
            "schedule.updated",
            "schedule.deleted"
        ]
    );
    assert_eq!(
        event_kinds(&app, "schedule_override").await,
        ["schedule_override.created"]
    );
    let counts = app.counts().await;
    for table in ["schedules", "schedule_overrides"] {
        assert!(
            counts.contains(&(table.to_string(), 0)),
            "{table}: {counts:?}"
        );
    }
}

async fn daily_handoff_stays_at_nine_local_across_dst(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    // 2026-03-05 09:00 EST is 14:00Z; the clocks go forward on 2026-03-08, after
    // which 09:00 EDT is 13:00Z.
    let s = create(
        &app,
        json!({ "name": "NY", "time_zone": "America/New_York",
            "layers": [{ "name": "primary", "users": [a, b], "start": "2026-03-05T14:00:00Z",
                "turn": "daily", "handoff": "09:00" }] }),
    )
    .await;
    let id = s["id"].as_i64().unwrap();
    let (from, to) = ("2026-03-06T00:00:00Z", "2026-03-11T00:00:00Z");
    let r = app
        .get(&format!(
            "/api/v1/schedules/{id}/shifts?from={from}&to={to}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = shifts(&r.body);
    let l = Some(0);
    assert_eq!(
        got,
        [
            (a, t("2026-03-06T00:00:00Z"), t("2026-03-06T14:00:00Z"), l),
            (b, t("2026-03-06T14:00:00Z"), t("2026-03-07T14:00:00Z"), l),
            // 23 hours: the night the clocks go forward.
            (a, t("2026-03-07T14:00:00Z"), t("2026-03-08T13:00:00Z"), l),
            (b, t("2026-03-08T13:00:00Z"), t("2026-03-09T13:00:00Z"), l),
            (a, t("2026-03-09T13:00:00Z"), t("2026-03-10T13:00:00Z"), l),
            (b, t("2026-03-10T13:00:00Z"), t("2026-03-11T00:00:00Z"), l),
        ]
    );
    assert_eq!(got, computed(&app, id, t(from), t(to)).await);
    assert_eq!(r.body[0]["user_name"], "Ada");
    assert_eq!(r.body[1]["user_name"], "Bo");
    assert_eq!(r.body[0]["layer_name"], "primary");
    assert_eq!(r.body[0]["schedule_name"], "NY");

    // The default range: from now (the fake clock) for seven days.
    app.clock.set(t("2026-03-06T20:00:00Z"));
    let r = app.get(&format!("/api/v1/schedules/{id}/shifts")).await;
    let got = shifts(&r.body);
    assert_eq!(got.first().unwrap().1, t("2026-03-06T20:00:00Z"));
    assert_eq!(got.last().unwrap().2, t("2026-03-13T20:00:00Z"));
    assert_eq!(
        got,
        computed(
            &app,
            id,
            t("2026-03-06T20:00:00Z"),
            t("2026-03-13T20:00:00Z")
        )
        .await
    );
}

async fn layers_precedence_overrides_and_on_call(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    let c = user(&app, "Cy").await;
    // Layer 0: Ada always; layer 1 (higher): Bo on weekdays 09:00–17:00 UTC.
    let s = create(
        &app,
        json!({ "name": "Primary", "time_zone": "UTC", "layers": [
            { "name": "base", "users": [a], "start": "2026-03-01T00:00:00Z", "turn": "daily", "handoff": "00:00" },
            { "name": "business", "users": [b], "start": "2026-03-01T00:00:00Z", "turn": "weekly", "handoff": "00:00",
              "restrictions": [{ "days": ["mon", "tue", "wed", "thu", "fri"], "start_time": "09:00", "end_time": "17:00" }] }
        ] }),
    )
    .await;
    let id = s["id"].as_i64().unwrap();
    // Cy covers Monday 10:00–12:00 (2026-03-02 is a Monday).
    let o = app
        .post(
            &format!("/api/v1/schedules/{id}/overrides"),
            json!({ "user_id": c, "starts_at": "2026-03-02T10:00:00Z", "ends_at": "2026-03-02T12:00:00Z" }),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    let oid = o.body["id"].as_i64().unwrap();
    let (from, to) = ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z");
    let r = app
        .get(&format!(
            "/api/v1/schedules/{id}/shifts?from={from}&to={to}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = shifts(&r.body);
    assert_eq!(
        got,
        [
            (
                a,
                t("2026-03-02T00:00:00Z"),
                t("2026-03-02T09:00:00Z"),
                Some(0)
            ),
            (
                b,
                t("2026-03-02T09:00:00Z"),
                t("2026-03-02T10:00:00Z"),
                Some(1)
            ),
            (
                c,
                t("2026-03-02T10:00:00Z"),
                t("2026-03-02T12:00:00Z"),
                None
            ),
            (
                b,
                t("2026-03-02T12:00:00Z"),
                t("2026-03-02T17:00:00Z"),
                Some(1)
            ),
            (
                a,
                t("2026-03-02T17:00:00Z"),
                t("2026-03-03T00:00:00Z"),
                Some(0)
            ),
        ]
    );
    assert_eq!(got, computed(&app, id, t(from), t(to)).await);
    assert_eq!(r.body[2]["layer_name"], Value::Null);

    let listed = app
        .get(&format!(
            "/api/v1/schedules/{id}/overrides?from={from}&to={to}"
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["id"], oid);
    // An override outside the range is not listed.
    let later = app
        .get(&format!(
            "/api/v1/schedules/{id}/overrides?from=2026-03-02T12:00:00Z&to=2026-03-03T00:00:00Z"
        ))
        .await;
    assert_eq!(later.body, json!([]));

    // On call now (the fake clock) is Cy, by the override.
    app.clock.set(t("2026-03-02T11:30:00Z"));
    let now = app.get(&format!("/api/v1/schedules/{id}/on-call")).await;
    assert_eq!(now.status, StatusCode::OK, "{}", now.body);
    assert_eq!(now.body["at"], "2026-03-02T11:30:00Z");
    assert_eq!(now.body["shift"]["user_id"], c);
    assert_eq!(now.body["shift"]["user_name"], "Cy");
    assert_eq!(now.body["shift"]["ends_at"], "2026-03-02T12:00:00Z");
    assert_eq!(now.body["shift"]["layer"], Value::Null);
    assert_eq!(now.body["override_id"], oid);
    // At 13:00 Bo, from the business layer, since 12:00 until 17:00.
    let at = app
        .get(&format!(
            "/api/v1/schedules/{id}/on-call?at=2026-03-02T13:00:00Z"
        ))
        .await;
    assert_eq!(at.body["shift"]["user_id"], b);
    assert_eq!(at.body["shift"]["layer"], 1);
    assert_eq!(at.body["shift"]["layer_name"], "business");
    assert_eq!(at.body["shift"]["starts_at"], "2026-03-02T12:00:00Z");
    assert_eq!(at.body["shift"]["ends_at"], "2026-03-02T17:00:00Z");
    assert_eq!(at.body["override_id"], Value::Null);
    // At 20:00 Ada until Tuesday 09:00.
    let at = app
        .get(&format!(
            "/api/v1/schedules/{id}/on-call?at=2026-03-02T20:00:00Z"
        ))
        .await;
    assert_eq!(at.body["shift"]["user_id"], a);
    assert_eq!(at.body["shift"]["ends_at"], "2026-03-03T09:00:00Z");

    // A responder removes the cover: Bo again.
    let (_, responder) = app.user_with_role("responder").await;
    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{id}/overrides/{oid}"),
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    let now = app.get(&format!("/api/v1/schedules/{id}/on-call")).await;
    assert_eq!(now.body["shift"]["user_id"], b);
    let again = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{id}/overrides/{oid}"),
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

async fn a_users_shifts_across_two_schedules(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    let c = user(&app, "Cy").await;
    let s1 = create(
        &app,
        json!({ "name": "Primary", "time_zone": "UTC", "layers": [
            { "name": "base", "users": [a], "start": "2026-03-01T00:00:00Z", "turn": "daily", "handoff": "00:00" },
            { "name": "business", "users": [b], "start": "2026-03-01T00:00:00Z", "turn": "weekly", "handoff": "00:00",
              "restrictions": [{ "days": ["mon"], "start_time": "09:00", "end_time": "17:00" }] }
        ] }),
    )
    .await;
    let s2 = create(
        &app,
        json!({ "name": "Secondary", "time_zone": "UTC", "layers": [
            { "name": "halves", "users": [c, a], "start": "2026-03-02T00:00:00Z", "turn": "hours", "turn_length": 12, "handoff": "00:00" }
        ] }),
    )
    .await;
    let (id1, id2) = (s1["id"].as_i64().unwrap(), s2["id"].as_i64().unwrap());
    let r = app
        .get(&format!(
            "/api/v1/users/{a}/shifts?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got: Vec<_> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["schedule_id"].as_i64().unwrap(),
                s["starts_at"].as_str().unwrap().to_string(),
                s["ends_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                id1,
                "2026-03-02T00:00:00Z".into(),
                "2026-03-02T09:00:00Z".into()
            ),
            (
                id2,
                "2026-03-02T12:00:00Z".into(),
                "2026-03-03T00:00:00Z".into()
            ),
            (
                id1,
                "2026-03-02T17:00:00Z".into(),
                "2026-03-03T00:00:00Z".into()
            ),
        ]
    );
    assert!(r.body.as_array().unwrap().iter().all(|s| s["user_id"] == a));
    let none = app.get("/api/v1/users/999999/shifts").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

async fn bad_input_names_the_field_and_writes_nothing(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    let gone = user(&app, "Gone").await;
    let off = app
        .patch(&format!("/api/v1/users/{gone}"), json!({ "active": false }))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let layer = |users: Value| json!({ "name": "l", "users": users, "start": "2026-03-02T00:00:00Z", "turn": "daily", "handoff": "09:00" });
    let upper = |users: Value| {
        let mut l = layer(users);
        l["name"] = json!("upper");
        l
    };
    let mut windowed = layer(json!([a, b]));
    windowed["restrictions"] = json!([
        { "days": ["mon", "tue", "wed", "thu", "fri"], "start_time": "09:00", "end_time": "17:00" },
        { "days": ["fri"], "start_time": "16:30", "end_time": "09:00" }
    ]);
    let s = create(
        &app,
        json!({ "name": "Ok", "time_zone": "UTC", "layers": [layer(json!([a]))] }),
    )
    .await;
    let id = s["id"].as_i64().unwrap();
    // The same user twice apart is a rotation, not a mistake.
    create(
        &app,
        json!({ "name": "Apart", "time_zone": "UTC", "layers": [layer(json!([a, b, a, b]))] }),
    )
    .await;
    let before = app.counts().await;
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(
                json!({ "name": "x", "time_zone": "Mars/Olympus", "layers": [layer(json!([a]))] }),
            ),
            "time_zone",
        ),
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(json!({ "name": "x", "time_zone": "UTC", "layers": [layer(json!([]))] })),
            "layers[0].users",
        ),
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(
                json!({ "name": "x", "time_zone": "UTC", "layers": [layer(json!([a])), upper(json!([a, b, 999999]))] }),
            ),
            "layers[1].users[2]",
        ),
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(json!({ "name": "x", "time_zone": "UTC", "layers": [layer(json!([gone]))] })),
            "layers[0].users[0]",
        ),
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(json!({ "name": "x", "time_zone": "UTC", "layers": [] })),
            "layers",
        ),
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(json!({ "name": " ", "time_zone": "UTC", "layers": [layer(json!([a]))] })),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/schedules/{id}"),
            Some(json!({ "name": "renamed", "layers": [layer(json!([a, 999999]))] })),
            "layers[0].users[1]",
        ),
        (
            Method::PATCH,
            format!("/api/v1/schedules/{id}"),
            Some(json!({ "time_zone": "Nowhere" })),
            "time_zone",
        ),
        // Overlaps within a layer: windows sharing minutes, one user twice in a
        // row (also across the wrap-around), two layers with one name.
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(json!({ "name": "x", "time_zone": "UTC", "layers": [windowed.clone()] })),
            "layers[0].restrictions[1]",
        ),
        (
            Method::PATCH,
            format!("/api/v1/schedules/{id}"),
            Some(json!({ "layers": [layer(json!([a, b, b]))] })),
            "layers[0].users[2]",
        ),
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(json!({ "name": "x", "time_zone": "UTC", "layers": [layer(json!([a, b, a]))] })),
            "layers[0].users[2]",
        ),
        (
            Method::POST,
            "/api/v1/schedules".into(),
            Some(
                json!({ "name": "x", "time_zone": "UTC", "layers": [layer(json!([a])), layer(json!([b]))] }),
            ),
            "layers[1].name",
        ),
        (
            Method::POST,
            format!("/api/v1/schedules/{id}/overrides"),
            Some(
                json!({ "user_id": a, "starts_at": "2026-03-02T12:00:00Z", "ends_at": "2026-03-02T10:00:00Z" }),
            ),
            "ends_at",
        ),
        (
            Method::POST,
            format!("/api/v1/schedules/{id}/overrides"),
            Some(
                json!({ "user_id": 999999, "starts_at": "2026-03-02T10:00:00Z", "ends_at": "2026-03-02T12:00:00Z" }),
            ),
            "user_id",
        ),
        (
            Method::POST,
            format!("/api/v1/schedules/{id}/overrides"),
            Some(
                json!({ "user_id": gone, "starts_at": "2026-03-02T10:00:00Z", "ends_at": "2026-03-02T12:00:00Z" }),
            ),
            "user_id",
        ),
        (
            Method::POST,
            format!("/api/v1/schedules/{id}/overrides"),
            Some(
                json!({ "user_id": a, "starts_at": "yesterday", "ends_at": "2026-03-02T12:00:00Z" }),
            ),
            "starts_at",
        ),
        (
            Method::GET,
            format!(
                "/api/v1/schedules/{id}/shifts?from=2026-01-01T00:00:00Z&to=2026-04-04T00:00:01Z"
            ),
            None,
            "to",
        ),
        (
            Method::GET,
            format!(
                "/api/v1/schedules/{id}/shifts?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"
            ),
            None,
            "to",
        ),
        (
            Method::GET,
            format!("/api/v1/schedules/{id}/shifts?from=2026-03-02"),
            None,
            "from",
        ),
        (
            Method::GET,
            format!("/api/v1/schedules/{id}/on-call?at=noon"),
            None,
            "at",
        ),
        (
            Method::GET,
            format!("/api/v1/schedules/{id}/overrides?to=2026-13-01T00:00:00Z"),
            None,
            "to",
        ),
        (
            Method::GET,
            format!("/api/v1/users/{a}/shifts?from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z"),
            None,
            "to",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = app
            .call(method.clone(), &path, Some(&app.admin_token), body.clone())
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, field),
            "{method} {path} {body:?}: {}",
            r.body
        );
    }
    let r = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "x", "time_zone": "UTC", "layers": [windowed] }),
        )
        .await;
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("fri") && message.contains("layers[0].restrictions[0] (09:00–17:00)"),
        "{message}"
    );
    // Exactly 93 days is allowed.
    let r = app
        .get(&format!(
            "/api/v1/schedules/{id}/shifts?from=2026-01-01T00:00:00Z&to=2026-04-04T00:00:00Z"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for path in [
        "/api/v1/schedules/999999".to_string(),
        "/api/v1/schedules/999999/shifts".into(),
        "/api/v1/schedules/999999/on-call".into(),
    ] {
        assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.counts().await, before);
    let kept = app.get(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(kept.body, s);
}

async fn roles_viewers_read_responders_arrange_cover(app: TestApp) {
    let a = user(&app, "Ada").await;
    let (_, viewer) = app.user_with_role("viewer").await;
    let (_, responder) = app.user_with_role("responder").await;
    let body = json!({ "name": "Primary", "time_zone": "UTC", "layers": [
        { "name": "base", "users": [a], "start": "2026-03-01T00:00:00Z", "turn": "daily", "handoff": "00:00" }] });
    let before = app.counts().await;
    for token in [&viewer, &responder] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/schedules",
                Some(token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    assert_eq!(app.counts().await, before);
    let id = create(&app, body).await["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/schedules/{id}"),
            Some(&responder),
            Some(json!({ "name": "mine" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let cover = json!({ "user_id": a, "starts_at": "2026-03-02T10:00:00Z", "ends_at": "2026-03-02T12:00:00Z" });
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/schedules/{id}/overrides"),
            Some(&viewer),
            Some(cover.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/schedules/{id}/overrides"),
            Some(&responder),
            Some(cover),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for path in [
        format!("/api/v1/schedules/{id}"),
        format!("/api/v1/schedules/{id}/shifts"),
        format!("/api/v1/schedules/{id}/on-call"),
        format!("/api/v1/schedules/{id}/overrides"),
        format!("/api/v1/users/{a}/shifts"),
    ] {
        let r = app.call(Method::GET, &path, Some(&viewer), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
}

crate::both_backends!(
    crud_round_trip,
    daily_handoff_stays_at_nine_local_across_dst,
    layers_precedence_overrides_and_on_call,
    a_users_shifts_across_two_schedules,
    bad_input_names_the_field_and_writes_nothing,
    roles_viewers_read_responders_arrange_cover,
);
