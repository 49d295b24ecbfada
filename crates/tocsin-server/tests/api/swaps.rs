//! Shift swaps through the API: a request, an acceptance that puts the acceptor on
//! call over the range (and nowhere else), refusals that name the field and write
//! nothing, who may accept, decline and cancel, two acceptors at once, and expiry.
//!
//! The clock starts at 2026-01-01T00:00Z. The schedule rotates Ada and Bo daily at
//! 00:00 UTC from then, so Ada is on call on odd days of January, Bo on even ones.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Resp, TestApp};

/// Responders Ada (on call Jan 1, 3, 5, …) and Bo (Jan 2, 4, …), Cy (in no
/// layer), and the schedule.
struct Team {
    ada: (i64, String),
    bo: (i64, String),
    cy: (i64, String),
    schedule: i64,
}

async fn team(app: &TestApp) -> Team {
    let ada = app.user_with_role("responder").await;
    let bo = app.user_with_role("responder").await;
    let cy = app.user_with_role("responder").await;
    let r = app
        .post(
            "/api/v1/schedules",
            json!({ "name": "Platform", "time_zone": "UTC",
                "layers": [{ "name": "daily", "users": [ada.0, bo.0],
                    "start": "2026-01-01T00:00:00Z", "turn": "daily", "handoff": "00:00" }] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let schedule = r.body["id"].as_i64().unwrap();
    Team {
        ada,
        bo,
        cy,
        schedule,
    }
}

async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> Resp {
    app.call(Method::POST, path, Some(token), Some(body)).await
}

async fn ask(app: &TestApp, t: &Team, token: &str, body: Value) -> Resp {
    post_as(
        app,
        token,
        &format!("/api/v1/schedules/{}/swap-requests", t.schedule),
        body,
    )
    .await
}

/// Ada asks to be covered on Jan 3 06:00–12:00 (her shift); returns the request.
async fn ada_asks(app: &TestApp, t: &Team, extra: Value) -> Value {
    let mut body = json!({ "starts_at": "2026-01-03T06:00:00Z", "ends_at": "2026-01-03T12:00:00Z",
        "note": "dentist" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = ask(app, t, &t.ada.1, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn act(app: &TestApp, token: &str, id: i64, action: &str) -> Resp {
    post_as(
        app,
        token,
        &format!("/api/v1/swap-requests/{id}/{action}"),
        json!({}),
    )
    .await
}

/// Who is on call at `at`, and the override putting them there.
async fn on_call(app: &TestApp, schedule: i64, at: &str) -> (i64, Option<i64>) {
    let r = app
        .get(&format!("/api/v1/schedules/{schedule}/on-call?at={at}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (
        r.body["shift"]["user_id"].as_i64().unwrap(),
        r.body["override_id"].as_i64(),
    )
}

async fn events(app: &TestApp, entity: &str) -> Vec<Value> {
    let r = app.get("/api/v1/events?limit=1000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == entity)
        .cloned()
        .collect()
}

fn count(counts: &[(String, i64)], table: &str) -> i64 {
    counts.iter().find(|(t, _)| t == table).unwrap().1
}

/// The ids of a schedule's requests with `status`.
async fn listed(app: &TestApp, schedule: i64, status: &str) -> Vec<i64> {
    let r = app
        .get(&format!(
            "/api/v1/schedules/{schedule}/swap-requests?status={status}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    ids(&r.body)
}

fn ids(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

async fn request_accept_and_the_acceptor_is_on_call(app: TestApp) {
    let t = team(&app).await;
    let (ada, bo) = (t.ada.0, t.bo.0);
    assert_eq!(
        on_call(&app, t.schedule, "2026-01-03T08:00:00Z").await,
        (ada, None)
    );

    let req = ada_asks(&app, &t, json!({})).await;
    let id = req["id"].as_i64().unwrap();
    assert_eq!(req["status"], "open");
    assert_eq!(req["requested_by"], ada);
    assert_eq!(req["schedule_id"], t.schedule);
    assert_eq!(req["note"], "dentist");
    assert_eq!(req["offered_to"], Value::Null);
    assert_eq!(req["override_id"], Value::Null);

    // Everyone, viewers included, sees it.
    let (_, viewer) = app.user_with_role("viewer").await;
    let open = app
        .call(
            Method::GET,
            &format!("/api/v1/schedules/{}/swap-requests?status=open", t.schedule),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    assert_eq!(open.body, json!([req]));
    let got = app
        .call(
            Method::GET,
            &format!("/api/v1/swap-requests/{id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!((got.status, &got.body), (StatusCode::OK, &req));

    let before = app.counts().await;
    app.clock.advance(Duration::hours(1));
    let accepted = act(&app, &t.bo.1, id, "accept").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "accepted");
    assert_eq!(accepted.body["accepted_by"], bo);
    assert_eq!(accepted.body["accepted_at"], "2026-01-01T01:00:00Z");
    let override_id = accepted.body["override_id"].as_i64().expect("override id");

    // One override and two events (the override's and the request's), nothing else.
    let after = app.counts().await;
    for (table, n) in &before {
        let grew = match table.as_str() {
            "schedule_overrides" => 1,
            "events" => 2,
            _ => 0,
        };
        assert_eq!(count(&after, table), n + grew, "{table}");
    }

    // Bo is on call over the range, from the override; Ada on either side of it.
    let at = |s: &'static str| on_call(&app, t.schedule, s);
    assert_eq!(at("2026-01-03T06:00:00Z").await, (bo, Some(override_id)));
    assert_eq!(at("2026-01-03T11:59:00Z").await, (bo, Some(override_id)));
    assert_eq!(at("2026-01-03T05:59:00Z").await, (ada, None));
    assert_eq!(at("2026-01-03T12:00:00Z").await, (ada, None));

    // The override is like any other: listed, and in the shifts.
    let overrides = app
        .get(&format!(
            "/api/v1/schedules/{}/overrides?from=2026-01-03T00:00:00Z&to=2026-01-04T00:00:00Z",
            t.schedule
        ))
        .await;
    assert_eq!(
        overrides.body.as_array().unwrap().len(),
        1,
        "{}",
        overrides.body
    );
    assert_eq!(overrides.body[0]["id"], override_id);
    assert_eq!(overrides.body[0]["user_id"], bo);
    assert_eq!(overrides.body[0]["created_by"], bo);
    let shifts = app
        .get(&format!(
            "/api/v1/schedules/{}/shifts?from=2026-01-03T00:00:00Z&to=2026-01-04T00:00:00Z",
            t.schedule
        ))
        .await;
    let spans: Vec<_> = shifts
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user_id"].as_i64().unwrap(),
                s["starts_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            (ada, "2026-01-03T00:00:00Z".to_string()),
            (bo, "2026-01-03T06:00:00Z".to_string()),
            (ada, "2026-01-03T12:00:00Z".to_string()),
        ]
    );

    // The request reads as accepted everywhere; it is no longer open.
    let got = app.get(&format!("/api/v1/swap-requests/{id}")).await;
    assert_eq!(got.body, accepted.body);
    assert_eq!(listed(&app, t.schedule, "open").await, Vec::<i64>::new());
    assert_eq!(listed(&app, t.schedule, "accepted").await, [id]);

    // The events: the request's two, and the override's naming the request.
    let kinds: Vec<_> = events(&app, "shift_swap_request")
        .await
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["entity_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("shift_swap_request.created".to_string(), id),
            ("shift_swap_request.accepted".to_string(), id)
        ]
    );
    let o = events(&app, "schedule_override").await;
    assert_eq!(o.len(), 1);
    assert_eq!(o[0]["kind"], "schedule_override.created");
    assert_eq!(o[0]["entity_id"], override_id);
    assert_eq!(o[0]["data"]["swap_request_id"], id);
    assert_eq!(o[0]["actor_id"], bo);

    // A second acceptance, or a cancellation, is refused naming the status.
    let before = app.counts().await;
    for (token, action) in [(&t.cy.1, "accept"), (&t.ada.1, "cancel")] {
        let r = act(&app, token, id, action).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::CONFLICT, "conflict", "status"),
            "{action}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("accepted"),
            "{}",
            r.body
        );
    }
    assert_eq!(app.counts().await, before);
}

async fn bad_requests_name_the_field_and_write_nothing(app: TestApp) {
    let t = team(&app).await;
    let (viewer_id, viewer) = app.user_with_role("viewer").await;
    let gone = app.user_with_role("responder").await.0;
    let r = app
        .patch(&format!("/api/v1/users/{gone}"), json!({ "active": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let range = |s: &str, e: &str| json!({ "starts_at": s, "ends_at": e });
    let offered = |to: Value| json!({ "starts_at": "2026-01-03T06:00:00Z", "ends_at": "2026-01-03T12:00:00Z", "offered_to": to });
    let before = app.counts().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "empty range",
            range("2026-01-03T06:00:00Z", "2026-01-03T06:00:00Z"),
            "ends_at",
        ),
        (
            "end before start",
            range("2026-01-03T06:00:00Z", "2026-01-03T05:00:00Z"),
            "ends_at",
        ),
        (
            "in the past",
            range("2025-12-31T06:00:00Z", "2025-12-31T12:00:00Z"),
            "starts_at",
        ),
        (
            "starting now",
            range("2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z"),
            "starts_at",
        ),
        (
            "longer than 31 days",
            range("2026-01-03T00:00:00Z", "2026-02-03T00:01:00Z"),
            "ends_at",
        ),
        (
            "Bo's day, not Ada's",
            range("2026-01-02T06:00:00Z", "2026-01-02T12:00:00Z"),
            "starts_at",
        ),
        ("no such user", offered(json!(999_999)), "offered_to"),
        ("a deactivated user", offered(json!(gone)), "offered_to"),
        ("a viewer", offered(json!(viewer_id)), "offered_to"),
        ("herself", offered(json!(t.ada.0)), "offered_to"),
        (
            "a note too long",
            json!({ "starts_at": "2026-01-03T06:00:00Z", "ends_at": "2026-01-03T12:00:00Z",
                "note": "x".repeat(2001) }),
            "note",
        ),
        (
            "no start",
            json!({ "ends_at": "2026-01-03T12:00:00Z" }),
            "starts_at",
        ),
        (
            "not a time",
            range("tomorrow", "2026-01-03T12:00:00Z"),
            "starts_at",
        ),
        (
            "an unknown field",
            json!({ "starts_at": "2026-01-03T06:00:00Z", "ends_at": "2026-01-03T12:00:00Z", "user_id": 1 }),
            "user_id",
        ),
    ];
    for (what, body, field) in cases {
        let r = ask(&app, &t, &t.ada.1, body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::BAD_REQUEST, "invalid_field", field),
            "{what}: {}",
            r.body
        );
    }
    let r = ask(
        &app,
        &t,
        &viewer,
        range("2026-01-03T06:00:00Z", "2026-01-03T12:00:00Z"),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = post_as(
        &app,
        &t.ada.1,
        "/api/v1/schedules/999999/swap-requests",
        range("2026-01-03T06:00:00Z", "2026-01-03T12:00:00Z"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .get(&format!(
            "/api/v1/schedules/{}/swap-requests?status=pending",
            t.schedule
        ))
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "status"));
    assert_eq!(app.counts().await, before);

    // A range that overlaps her shifts at all is hers to ask about.
    let r = ask(
        &app,
        &t,
        &t.ada.1,
        range("2026-01-02T18:00:00Z", "2026-01-03T01:00:00Z"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn who_may_accept_decline_and_cancel(app: TestApp) {
    let t = team(&app).await;
    let to_bo = ada_asks(&app, &t, json!({ "offered_to": t.bo.0 })).await;
    let to_bo = to_bo["id"].as_i64().unwrap();
    let anyone = ada_asks(&app, &t, json!({})).await["id"].as_i64().unwrap();
    let third = ada_asks(&app, &t, json!({})).await["id"].as_i64().unwrap();

    let before = app.counts().await;
    for (who, token, id, action) in [
        ("Ada, her own", &t.ada.1, anyone, "accept"),
        ("an admin, offered to Bo", &app.admin_token, to_bo, "accept"),
        ("Cy, offered to Bo", &t.cy.1, to_bo, "accept"),
        ("Cy, offered to Bo", &t.cy.1, to_bo, "decline"),
        ("Bo, offered to nobody", &t.bo.1, anyone, "decline"),
        ("Bo, not his", &t.bo.1, anyone, "cancel"),
        ("Ada", &t.ada.1, 999_999, "accept"),
    ] {
        let r = act(&app, token, id, action).await;
        let expected = if id == 999_999 {
            (StatusCode::NOT_FOUND, "not_found")
        } else {
            (StatusCode::FORBIDDEN, "not_allowed")
        };
        assert_eq!(
            (r.status, r.code()),
            expected,
            "{who} {action}s {id}: {}",
            r.body
        );
    }
    assert_eq!(app.counts().await, before);

    // Bo declines what was offered to him; then it can no longer be accepted.
    app.clock.advance(Duration::minutes(10));
    let r = act(&app, &t.bo.1, to_bo, "decline").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "declined");
    assert_eq!(r.body["closed_by"], t.bo.0);
    assert_eq!(r.body["closed_at"], "2026-01-01T00:10:00Z");
    let r = act(&app, &t.bo.1, to_bo, "accept").await;
    assert_eq!((r.status, r.field()), (StatusCode::CONFLICT, "status"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("declined"));

    // Ada cancels her own; an admin cancels anyone's.
    let r = act(&app, &t.ada.1, anyone, "cancel").await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (StatusCode::OK, &json!("cancelled"))
    );
    let r = act(&app, &app.admin_token, third, "cancel").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["closed_by"], app.admin_id);
    let r = act(&app, &t.cy.1, third, "accept").await;
    assert_eq!((r.status, r.field()), (StatusCode::CONFLICT, "status"));

    assert_eq!(listed(&app, t.schedule, "declined").await, [to_bo]);
    assert_eq!(listed(&app, t.schedule, "cancelled").await, [anyone, third]);
    assert_eq!(listed(&app, t.schedule, "open").await, Vec::<i64>::new());
    let all = app
        .get(&format!("/api/v1/schedules/{}/swap-requests", t.schedule))
        .await;
    assert_eq!(ids(&all.body), [to_bo, anyone, third]);
    let kinds: Vec<_> = events(&app, "shift_swap_request")
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "shift_swap_request.created",
            "shift_swap_request.created",
            "shift_swap_request.created",
            "shift_swap_request.declined",
            "shift_swap_request.cancelled",
            "shift_swap_request.cancelled",
        ]
    );
    assert_eq!(count(&app.counts().await, "schedule_overrides"), 0);

    // Deleting the schedule takes its requests with it.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{}", t.schedule),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(count(&app.counts().await, "shift_swap_requests"), 0);
    let r = app.get(&format!("/api/v1/swap-requests/{to_bo}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn two_acceptors_at_once_one_wins(app: TestApp) {
    let t = team(&app).await;
    for round in 0..5 {
        // Each round on another of Ada's days: once covered, a range is no longer hers.
        let day = 3 + 2 * round;
        let r = ask(
            &app,
            &t,
            &t.ada.1,
            json!({ "starts_at": format!("2026-01-{day:02}T06:00:00Z"),
                "ends_at": format!("2026-01-{day:02}T12:00:00Z") }),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_i64().unwrap();
        let overrides = count(&app.counts().await, "schedule_overrides");
        let (b, c) = tokio::join!(
            act(&app, &t.bo.1, id, "accept"),
            act(&app, &t.cy.1, id, "accept")
        );
        let mut statuses = [b.status, c.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}: {} / {}",
            b.body,
            c.body
        );
        let (winner, loser) = if b.status == StatusCode::OK {
            (&b, &c)
        } else {
            (&c, &b)
        };
        assert_eq!((loser.code(), loser.field()), ("conflict", "status"));
        assert_eq!(
            count(&app.counts().await, "schedule_overrides"),
            overrides + 1
        );
        let stored = app.get(&format!("/api/v1/swap-requests/{id}")).await;
        assert_eq!(stored.body, winner.body);
    }
}

async fn unaccepted_requests_expire_at_their_start(app: TestApp) {
    let t = team(&app).await;
    let id = ada_asks(&app, &t, json!({})).await["id"].as_i64().unwrap();
    // A minute before its start it is still open.
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-01-03T05:59:00Z")
            .unwrap()
            .into(),
    );
    assert_eq!(listed(&app, t.schedule, "open").await, [id]);
    assert_eq!(listed(&app, t.schedule, "expired").await, Vec::<i64>::new());
    app.clock.advance(Duration::minutes(1));
    let got = app.get(&format!("/api/v1/swap-requests/{id}")).await;
    assert_eq!(got.body["status"], "expired");
    assert_eq!(listed(&app, t.schedule, "open").await, Vec::<i64>::new());
    assert_eq!(listed(&app, t.schedule, "expired").await, [id]);

    let before = app.counts().await;
    for action in ["accept", "cancel"] {
        let token = if action == "accept" {
            &t.bo.1
        } else {
            &t.ada.1
        };
        let r = act(&app, token, id, action).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::CONFLICT, "conflict", "status"),
            "{action}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("expired"),
            "{}",
            r.body
        );
    }
    assert_eq!(app.counts().await, before);
    // Ada is still on call: nothing was overridden.
    assert_eq!(
        on_call(&app, t.schedule, "2026-01-03T08:00:00Z").await,
        (t.ada.0, None)
    );
}

crate::both_backends!(
    request_accept_and_the_acceptor_is_on_call,
    bad_requests_name_the_field_and_write_nothing,
    who_may_accept_decline_and_cancel,
    two_acceptors_at_once_one_wins,
    unaccepted_requests_expire_at_their_start,
);
