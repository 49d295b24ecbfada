//! Escalation policies through the API: CRUD with events, validation that names
//! the field and writes nothing (no levels, empty targets, unknown targets, a
//! hand-off loop, a delay out of range), deletion refused while in use, who each
//! level would page (users, a schedule across a handoff, a team, a hand-off), a
//! service's on-call through its policy, and roles.

use crate::support::{t, user};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestApp;

async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/escalation-policies", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn put(app: &TestApp, path: &str, body: Value) -> crate::support::Resp {
    app.call(Method::PUT, path, Some(&app.admin_token), Some(body))
        .await
}

async fn delete(app: &TestApp, path: &str) -> crate::support::Resp {
    app.call(Method::DELETE, path, Some(&app.admin_token), None)
        .await
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

/// The user ids of each level of an on-call answer.
fn level_users(body: &Value) -> Vec<Vec<i64>> {
    body["levels"]
        .as_array()
        .unwrap_or_else(|| panic!("no levels: {body}"))
        .iter()
        .map(|l| {
            l["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["user_id"].as_i64().unwrap())
                .collect()
        })
        .collect()
}

async fn crud_round_trip(app: TestApp) {
    let a = user(&app, "Ada").await;
    let created = create(
        &app,
        json!({ "name": "Platform", "description": "primary",
            "levels": [{ "targets": [{ "user": a }], "delay_minutes": 15 }], "repeat": 2 }),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["levels"][0]["targets"], json!([{ "user": a }]));
    assert_eq!(created["repeat"], 2);
    let got = app.get(&format!("/api/v1/escalation-policies/{id}")).await;
    assert_eq!((got.status, &got.body), (StatusCode::OK, &created));
    let list = app.get("/api/v1/escalation-policies").await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);

    let dup = app
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "Platform", "levels": [{ "targets": [{ "user": a }], "delay_minutes": 5 }] }),
        )
        .await;
    assert_eq!((dup.status, dup.field()), (StatusCode::CONFLICT, "name"));

    app.clock.advance(chrono::Duration::minutes(5));
    let replaced = put(
        &app,
        &format!("/api/v1/escalation-policies/{id}"),
        json!({ "name": "Platform 2", "levels": [
            { "targets": [{ "user": a }], "delay_minutes": 10 },
            { "targets": [{ "user": a }], "delay_minutes": 0 }] }),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["name"], "Platform 2");
    assert_eq!(replaced.body["description"], "");
    assert_eq!(replaced.body["repeat"], 0);
    assert_eq!(replaced.body["levels"].as_array().unwrap().len(), 2);
    assert_ne!(replaced.body["updated_at"], created["updated_at"]);

    let del = delete(&app, &format!("/api/v1/escalation-policies/{id}")).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    let gone = app.get(&format!("/api/v1/escalation-policies/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        event_kinds(&app, "escalation_policy").await,
        [
            "escalation_policy.created",
            "escalation_policy.updated",
            "escalation_policy.deleted"
        ]
    );
    let counts = app.counts().await;
    assert!(
        counts.contains(&("escalation_policies".to_string(), 0)),
        "{counts:?}"
    );
}

async fn bad_policies_name_the_field_and_write_nothing(app: TestApp) {
    let a = user(&app, "Ada").await;
    let p1 = create(
        &app,
        json!({ "name": "A", "levels": [{ "targets": [{ "user": a }], "delay_minutes": 5 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // B hands off to A; then A handing off to B would loop.
    let p2 = create(
        &app,
        json!({ "name": "B", "levels": [{ "targets": [{ "policy": p1 }], "delay_minutes": 5 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let before = app.counts().await;
    let ok_level = json!({ "targets": [{ "user": a }], "delay_minutes": 5 });
    let cases = [
        (json!({ "name": "X", "levels": [] }), "levels"),
        (
            json!({ "name": "X", "levels": [{ "targets": [], "delay_minutes": 5 }] }),
            "levels[0].targets",
        ),
        (
            json!({ "name": "X", "levels": [ok_level, { "targets": [{ "user": a }, { "user": 999999 }], "delay_minutes": 5 }] }),
            "levels[1].targets[1]",
        ),
        (
            json!({ "name": "X", "levels": [{ "targets": [{ "schedule": 999999 }], "delay_minutes": 5 }] }),
            "levels[0].targets[0]",
        ),
        (
            json!({ "name": "X", "levels": [{ "targets": [{ "team": 999999 }], "delay_minutes": 5 }] }),
            "levels[0].targets[0]",
        ),
        (
            json!({ "name": "X", "levels": [{ "targets": [{ "policy": 999999 }], "delay_minutes": 5 }] }),
            "levels[0].targets[0]",
        ),
        (
            json!({ "name": "X", "levels": [{ "targets": [{ "user": a }], "delay_minutes": 1441 }] }),
            "levels[0].delay_minutes",
        ),
        (
            json!({ "name": "X", "levels": [ok_level], "repeat": 10 }),
            "repeat",
        ),
        (json!({ "name": " ", "levels": [ok_level] }), "name"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/escalation-policies", body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::BAD_REQUEST, field),
            "{body}: {}",
            r.body
        );
    }
    // The loop A -> B -> A, written as a change to A.
    let r = put(
        &app,
        &format!("/api/v1/escalation-policies/{p1}"),
        json!({ "name": "A", "levels": [ok_level, { "targets": [{ "user": a }, { "policy": p2 }], "delay_minutes": 5 }] }),
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "levels[1].targets[1]"),
        "{}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("leads back"),
        "{}",
        r.body
    );
    // A policy handing off to itself.
    let r = put(
        &app,
        &format!("/api/v1/escalation-policies/{p1}"),
        json!({ "name": "A", "levels": [{ "targets": [{ "policy": p1 }], "delay_minutes": 5 }] }),
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "levels[0].targets[0]")
    );
    assert_eq!(app.counts().await, before);
    let stored = app.get(&format!("/api/v1/escalation-policies/{p1}")).await;
    assert_eq!(stored.body["levels"], json!([ok_level]));
}

async fn delete_is_refused_while_in_use(app: TestApp) {
    let a = user(&app, "Ada").await;
    let p1 = create(
        &app,
        json!({ "name": "A", "levels": [{ "targets": [{ "user": a }], "delay_minutes": 5 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let p2 = create(
        &app,
        json!({ "name": "B", "levels": [{ "targets": [{ "policy": p1 }], "delay_minutes": 5 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let svc = app
        .post("/api/v1/services", json!({ "name": "checkout" }))
        .await;
    assert_eq!(svc.status, StatusCode::CREATED, "{}", svc.body);
    let svc = svc.body["id"].as_i64().unwrap();
    let set = put(
        &app,
        &format!("/api/v1/services/{svc}/escalation-policy"),
        json!({ "escalation_policy_id": p2 }),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["escalation_policy_id"], p2);

    // p1 is handed off to by p2; p2 is used by the service.
    let r = delete(&app, &format!("/api/v1/escalation-policies/{p1}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&p2.to_string()));
    let r = delete(&app, &format!("/api/v1/escalation-policies/{p2}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("service(s) [{svc}]")));

    // An unknown policy is refused naming the field.
    let r = put(
        &app,
        &format!("/api/v1/services/{svc}/escalation-policy"),
        json!({ "escalation_policy_id": 999999 }),
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::BAD_REQUEST, "escalation_policy_id")
    );
    // Cleared, then both go.
    let r = put(
        &app,
        &format!("/api/v1/services/{svc}/escalation-policy"),
        json!({ "escalation_policy_id": null }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["escalation_policy_id"], Value::Null);
    for p in [p2, p1] {
        let r = delete(&app, &format!("/api/v1/escalation-policies/{p}")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    assert_eq!(
        event_kinds(&app, "service").await,
        [
            "service.created",
            "service.escalation_policy_set",
            "service.escalation_policy_set"
        ]
    );
    // The service itself is unchanged and can still be deleted.
    let r = delete(&app, &format!("/api/v1/services/{svc}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

async fn on_call_follows_users_schedules_teams_and_hand_offs(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    let c = user(&app, "Cy").await;
    let d = user(&app, "Di").await;
    // Daily handoff at 09:00 UTC: Ada from 2026-03-02 09:00, Bo from 2026-03-03 09:00.
    let s = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Primary", "time_zone": "UTC",
                "layers": [{ "name": "daily", "users": [a, b], "start": "2026-03-02T09:00:00Z",
                    "turn": "daily", "handoff": "09:00" }] }),
        )
        .await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    let s = s.body["id"].as_i64().unwrap();
    let team = app.post("/api/v1/teams", json!({ "name": "SRE" })).await;
    assert_eq!(team.status, StatusCode::CREATED, "{}", team.body);
    let team = team.body["id"].as_i64().unwrap();
    for u in [c, d] {
        let r = put(
            &app,
            &format!("/api/v1/teams/{team}/members/{u}"),
            json!({}),
        )
        .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let other = create(
        &app,
        json!({ "name": "Other", "levels": [
            { "targets": [{ "user": d }], "delay_minutes": 5 },
            { "targets": [{ "user": b }], "delay_minutes": 5 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let p = create(
        &app,
        json!({ "name": "Main", "levels": [
            { "targets": [{ "schedule": s }], "delay_minutes": 10 },
            { "targets": [{ "user": c }], "delay_minutes": 10 },
            { "targets": [{ "team": team }, { "policy": other }], "delay_minutes": 10 }], "repeat": 1 }),
    )
    .await["id"]
        .as_i64()
        .unwrap();

    let r = app
        .get(&format!(
            "/api/v1/escalation-policies/{p}/on-call?at=2026-03-02T10:00:00Z"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The team's members (Cy, Di), then the hand-off's first level (Di again: once).
    assert_eq!(level_users(&r.body), [vec![a], vec![c], vec![c, d]]);
    assert_eq!(r.body["levels"][0]["users"][0]["user_name"], "Ada");
    assert_eq!(
        r.body["levels"][0]["users"][0]["target"],
        json!({ "schedule": s })
    );
    assert_eq!(
        r.body["levels"][2]["users"][1]["target"],
        json!({ "team": team })
    );
    assert_eq!(r.body["levels"][1]["delay_minutes"], 10);
    assert_eq!(t(r.body["at"].as_str().unwrap()), t("2026-03-02T10:00:00Z"));

    // After the handoff, Bo is on call; `at` defaults to the clock.
    app.clock.set(t("2026-03-03T09:00:00Z"));
    let r = app
        .get(&format!("/api/v1/escalation-policies/{p}/on-call"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(level_users(&r.body)[0], vec![b]);
    assert_eq!(r.body["levels"][0]["users"][0]["user_name"], "Bo");

    // A hand-off alone shows where its users come from.
    let h = create(
        &app,
        json!({ "name": "Hand-off", "levels": [{ "targets": [{ "policy": other }], "delay_minutes": 0 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .get(&format!("/api/v1/escalation-policies/{h}/on-call"))
        .await;
    assert_eq!(level_users(&r.body), [vec![d]]);
    assert_eq!(
        r.body["levels"][0]["users"][0]["target"],
        json!({ "policy": other })
    );

    // An override on the schedule wins.
    let o = app
        .post(
            &format!("/api/v1/schedules/{s}/overrides"),
            json!({ "user_id": c, "starts_at": "2026-03-03T09:00:00Z", "ends_at": "2026-03-03T10:00:00Z" }),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    let r = app
        .get(&format!("/api/v1/escalation-policies/{p}/on-call"))
        .await;
    assert_eq!(level_users(&r.body)[0], vec![c]);

    // A team or schedule a policy names cannot be deleted from under it.
    let before = app.counts().await;
    for path in [
        format!("/api/v1/teams/{team}"),
        format!("/api/v1/schedules/{s}"),
    ] {
        let r = delete(&app, &path).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&p.to_string()),
            "{}",
            r.body
        );
    }
    assert_eq!(
        app.counts().await,
        before,
        "refused deletions write nothing"
    );

    let bad = app
        .get(&format!("/api/v1/escalation-policies/{p}/on-call?at=soon"))
        .await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, "at"));
    let missing = app.get("/api/v1/escalation-policies/999999/on-call").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn service_on_call_goes_through_its_policy(app: TestApp) {
    let a = user(&app, "Ada").await;
    let b = user(&app, "Bo").await;
    let s = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Primary", "time_zone": "UTC",
                "layers": [{ "name": "daily", "users": [a, b], "start": "2026-03-02T09:00:00Z",
                    "turn": "daily", "handoff": "09:00" }] }),
        )
        .await;
    let s = s.body["id"].as_i64().unwrap();
    let p = create(
        &app,
        json!({ "name": "Main", "levels": [{ "targets": [{ "schedule": s }], "delay_minutes": 5 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let svc = app
        .post("/api/v1/services", json!({ "name": "checkout" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let r = app.get(&format!("/api/v1/services/{svc}/on-call")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["escalation_policy"], Value::Null);

    let set = put(
        &app,
        &format!("/api/v1/services/{svc}/escalation-policy"),
        json!({ "escalation_policy_id": p }),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let r = app
        .get(&format!(
            "/api/v1/services/{svc}/on-call?at=2026-03-03T08:59:00Z"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["service_id"], svc);
    assert_eq!(r.body["escalation_policy"]["escalation_policy_id"], p);
    assert_eq!(level_users(&r.body["escalation_policy"]), [vec![a]]);
    let r = app
        .get(&format!(
            "/api/v1/services/{svc}/on-call?at=2026-03-03T09:00:00Z"
        ))
        .await;
    assert_eq!(level_users(&r.body["escalation_policy"]), [vec![b]]);
    let missing = app.get("/api/v1/services/999999/on-call").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn roles_are_enforced(app: TestApp) {
    let a = user(&app, "Ada").await;
    let p = create(
        &app,
        json!({ "name": "Main", "levels": [{ "targets": [{ "user": a }], "delay_minutes": 5 }] }),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let (_, viewer) = app.user_with_role("viewer").await;
    let (_, responder) = app.user_with_role("responder").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/escalation-policies/{p}/on-call"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body =
        json!({ "name": "X", "levels": [{ "targets": [{ "user": a }], "delay_minutes": 5 }] });
    let r = app
        .call(
            Method::POST,
            "/api/v1/escalation-policies",
            Some(&responder),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/escalation-policies/{p}"),
            Some(&responder),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/escalation-policies/{p}"),
            Some(&responder),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .call(Method::GET, "/api/v1/escalation-policies", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

crate::both_backends!(
    crud_round_trip,
    bad_policies_name_the_field_and_write_nothing,
    delete_is_refused_while_in_use,
    on_call_follows_users_schedules_teams_and_hand_offs,
    service_on_call_goes_through_its_policy,
    roles_are_enforced,
);
