//! Contact method verification and test notifications through the API: a code
//! goes out as an outbox row and only its salted hash stays on the method; wrong,
//! expired and exhausted codes; one code and one test a minute; a new address is
//! unverified again; only admins provision verified methods; nobody else verifies
//! or tests your methods; unverified methods are never tested.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use tocsin_core::time::Clock;

use crate::support::{Resp, TestApp};

fn methods_path(user: i64) -> String {
    format!("/api/v1/users/{user}/contact-methods")
}

fn method_path(user: i64, method: i64, rest: &str) -> String {
    format!("/api/v1/users/{user}/contact-methods/{method}{rest}")
}

async fn as_(app: &TestApp, token: &str, path: &str, body: Option<Value>) -> Resp {
    app.call(Method::POST, path, Some(token), body).await
}

// A user (of `role`) with one unverified SMS method they added themselves.
async fn user_with_method(app: &TestApp, role: &str) -> (i64, String, i64) {
    let (user, token) = app.user_with_role(role).await;
    let r = as_(
        app,
        &token,
        &methods_path(user),
        Some(json!({ "kind": "sms", "address": "+15551234567" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["verified"], false, "{}", r.body);
    (user, token, r.body["id"].as_i64().unwrap())
}

async fn db(app: &TestApp) -> sqlx::AnyConnection {
    sqlx::AnyConnection::connect(&app.db_url).await.unwrap()
}

// The outbox row: (reason, incident_id, status, message).
async fn outbox_row(app: &TestApp, id: &Value) -> (String, Option<i64>, String, Value) {
    let row = sqlx::query(
        "SELECT reason, incident_id, status, message FROM notification_requests WHERE id = $1",
    )
    .bind(id.as_i64().unwrap())
    .fetch_one(&mut db(app).await)
    .await
    .unwrap();
    let message: String = row.get("message");
    (
        row.get("reason"),
        row.get("incident_id"),
        row.get("status"),
        serde_json::from_str(&message).unwrap(),
    )
}

// Every text column of the method's row, as stored.
async fn method_texts(app: &TestApp, method: i64) -> Vec<String> {
    let row = sqlx::query(
        "SELECT address, label, verify_salt, verify_code_hash FROM contact_methods WHERE id = $1",
    )
    .bind(method)
    .fetch_one(&mut db(app).await)
    .await
    .unwrap();
    (0..4)
        .filter_map(|i| row.get::<Option<String>, _>(i))
        .collect()
}

async fn outbox_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM notification_requests")
        .fetch_one(&mut db(app).await)
        .await
        .unwrap()
}

async fn send_code(app: &TestApp, token: &str, user: i64, method: i64) -> Resp {
    as_(
        app,
        token,
        &method_path(user, method, "/verification"),
        None,
    )
    .await
}

async fn verify(app: &TestApp, token: &str, user: i64, method: i64, code: &str) -> Resp {
    as_(
        app,
        token,
        &method_path(user, method, "/verify"),
        Some(json!({ "code": code })),
    )
    .await
}

async fn test_it(app: &TestApp, token: &str, user: i64, method: i64) -> Resp {
    as_(app, token, &method_path(user, method, "/test"), None).await
}

// Sends a code and reads it back from the outbox, the way delivery would.
async fn code_sent(app: &TestApp, token: &str, user: i64, method: i64) -> String {
    let r = send_code(app, token, user, method).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let (_, _, _, message) = outbox_row(app, &r.body["notification_request_id"]).await;
    message["code"].as_str().unwrap().to_string()
}

fn wrong(code: &str) -> String {
    let last = (code.as_bytes()[5] - b'0' + 1) % 10;
    format!("{}{last}", &code[..5])
}

async fn a_code_goes_out_hashed_and_verifies_the_method(app: TestApp) {
    let (user, token, sms) = user_with_method(&app, "responder").await;
    let r = send_code(&app, &token, user, sms).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let key = r.body["idempotency_key"].as_str().unwrap();
    assert!(key.starts_with(&format!("verification:{sms}:")), "{key}");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(r.body["expires_at"].clone()).unwrap();
    assert_eq!(expires, app.clock.now() + Duration::minutes(15));

    // Delivery finds it in the outbox, handed now, about no incident.
    let (reason, incident, status, message) =
        outbox_row(&app, &r.body["notification_request_id"]).await;
    assert_eq!(
        (reason.as_str(), incident, status.as_str()),
        ("verification", None, "handed")
    );
    let code = message["code"].as_str().unwrap().to_string();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{message}"
    );
    assert_eq!(message["expires_minutes"], 15);
    // At rest, the method keeps a salted hash, not the code.
    let texts = method_texts(&app, sms).await;
    assert_eq!(texts.len(), 4, "salt and hash are stored: {texts:?}");
    assert!(texts.iter().all(|t| !t.contains(&code)), "{texts:?}");

    // Not yet verified: no test notification, and nothing queued.
    let before = outbox_count(&app).await;
    let r = test_it(&app, &token, user, sms).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "method_id");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not verified"));
    assert_eq!(outbox_count(&app).await, before);

    // One code a minute.
    app.clock.advance(Duration::seconds(20));
    let r = send_code(&app, &token, user, sms).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "verification_too_soon");
    assert_eq!(r.headers["retry-after"], "40");

    let r = verify(&app, &token, user, sms, &wrong(&code)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "code");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("4 tries left"));
    let r = verify(&app, &token, user, sms, "12345").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "code");

    let r = verify(&app, &token, user, sms, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["verified"], true);
    assert_eq!(method_texts(&app, sms).await.len(), 2, "the hash is gone");
    let listed = app.get(&methods_path(user)).await;
    assert_eq!(listed.body[0]["verified"], true);
    // Verified: another code is refused.
    let r = send_code(&app, &token, user, sms).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    // A test notification: queued like any other, one a minute.
    let r = test_it(&app, &token, user, sms).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert!(r.body["idempotency_key"]
        .as_str()
        .unwrap()
        .starts_with(&format!("test:{sms}:")));
    let (reason, incident, status, _) = outbox_row(&app, &r.body["notification_request_id"]).await;
    assert_eq!(
        (reason.as_str(), incident, status.as_str()),
        ("test", None, "handed")
    );
    let r = test_it(&app, &token, user, sms).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "test_too_soon");
    app.clock.advance(Duration::seconds(61));
    let r = test_it(&app, &token, user, sms).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);

    let events = app.get("/api/v1/events?limit=1000").await;
    let kinds: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "contact_method" && e["entity_id"] == sms)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "contact_method.created",
        "contact_method.verification_sent",
        "contact_method.verified",
        "contact_method.tested",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(
        !events.body.to_string().contains(&code),
        "the code is in no event"
    );
}

async fn expired_and_exhausted_codes_need_a_new_code(app: TestApp) {
    let (user, token, sms) = user_with_method(&app, "viewer").await;
    let code = code_sent(&app, &token, user, sms).await;
    app.clock.advance(Duration::minutes(15));
    let r = verify(&app, &token, user, sms, &code).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "code");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));

    // A new code replaces the old one, which stops working.
    let code = code_sent(&app, &token, user, sms).await;
    for left in (0..5).rev() {
        let r = verify(&app, &token, user, sms, &wrong(&code)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{left} tries left")));
    }
    // Five wrong tries: even the right code is refused until a new one is sent.
    let r = verify(&app, &token, user, sms, &code).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "verification_attempts_exhausted");
    assert!(
        !r.headers.contains_key("retry-after"),
        "waiting does not help"
    );
    app.clock.advance(Duration::seconds(60));
    let code = code_sent(&app, &token, user, sms).await;
    let r = verify(&app, &token, user, sms, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["verified"], true);
}

async fn a_new_address_is_unverified_and_only_admins_provision(app: TestApp) {
    let (user, token) = app.user_with_role("responder").await;
    // An admin provisions a verified method.
    let r = app
        .post(
            &methods_path(user),
            json!({ "kind": "email", "address": "cy@example.com", "verified": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["verified"], true);
    let email = r.body["id"].as_i64().unwrap();
    // The user may not.
    let before = app.counts().await;
    let r = as_(
        &app,
        &token,
        &methods_path(user),
        Some(json!({ "kind": "sms", "address": "+15551234567", "verified": true })),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(app.counts().await, before);

    // A new label keeps it verified; a new address does not.
    let patch = |body: Value| {
        let token = token.clone();
        let app = &app;
        async move {
            app.call(
                Method::PATCH,
                &method_path(user, email, ""),
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let r = patch(json!({ "label": "Inbox" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["verified"], true);
    let r = patch(json!({ "address": "cy@other.example.com" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["verified"], false);
    let r = patch(json!({ "verified": true })).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // A code sent to the old address does not verify the new one.
    let code = code_sent(&app, &token, user, email).await;
    let r = patch(json!({ "address": "cy@third.example.com" })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = verify(&app, &token, user, email, &code).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "code");
    // Moving the address is no way around one code a minute (nor a way to
    // send codes to many numbers quickly).
    let r = send_code(&app, &token, user, email).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    app.clock.advance(Duration::seconds(60));
    code_sent(&app, &token, user, email).await;

    // An admin may move and verify in one change.
    let r = app
        .patch(
            &method_path(user, email, ""),
            json!({ "address": "cy@fourth.example.com", "verified": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["verified"], true);

    // Rules may name an unverified method (set up first, verify later).
    let r = as_(
        &app,
        &token,
        &methods_path(user),
        Some(json!({ "kind": "sms", "address": "+15551234567" })),
    )
    .await;
    assert_eq!(r.body["verified"], false, "{}", r.body);
    let sms = r.body["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/users/{user}/notification-rules"),
            Some(&token),
            Some(json!({ "rules": [
                { "urgency": "high", "contact_method_id": sms, "delay_minutes": 0 }
            ] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn nobody_else_verifies_or_tests_your_methods(app: TestApp) {
    let (user, token, sms) = user_with_method(&app, "responder").await;
    let (_, viewer) = app.user_with_role("viewer").await;
    let code = code_sent(&app, &token, user, sms).await;
    let before = app.counts().await;
    for r in [
        send_code(&app, &viewer, user, sms).await,
        verify(&app, &viewer, user, sms, &code).await,
        test_it(&app, &viewer, user, sms).await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    assert_eq!(app.counts().await, before, "nothing written");
    // Another user's method under your own id is not found.
    let (other, other_token) = app.user_with_role("viewer").await;
    let r = verify(&app, &other_token, other, sms, &code).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // Admins may, for anyone.
    let r = verify(&app, &app.admin_token, user, sms, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = test_it(&app, &app.admin_token, user, sms).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
}

// Ada's method of `kind`, moved to a new (so unverified) address by an admin.
async fn unverify(app: &TestApp, user: i64, kind: &str, address: &str) {
    let methods = app.get(&methods_path(user)).await;
    let id = methods
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == kind)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = app
        .patch(&method_path(user, id, ""), json!({ "address": address }))
        .await;
    assert_eq!(r.body["verified"], false, "{}", r.body);
}

/// Paging skips an unverified method, and a request waiting for its time is
/// not sent to a method that became unverified meanwhile (a new number).
async fn unverified_methods_are_never_paged(app: TestApp) {
    use crate::escalation_engine::{page, run_until, runner, setup};
    let s = setup(&app).await;
    let ada = s.users[0];
    // Ada's rules: push at once, SMS after 2 minutes, voice after 5.
    unverify(&app, ada, "push", "ntfy:new-phone").await;
    let rec = tocsin_engine::delivery::RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    page(&app, &s, "unverified").await;
    run_until(&app, &[&r], t0 + Duration::minutes(1)).await;
    unverify(&app, ada, "sms", "+15550001111").await;
    run_until(&app, &[&r], t0 + Duration::minutes(6)).await;
    let kinds: Vec<String> = rec
        .requests()
        .into_iter()
        .filter(|h| h.user_id == ada)
        .map(|h| h.contact_kind)
        .collect();
    assert_eq!(kinds, ["voice"], "only the method still verified");
}

crate::both_backends!(
    unverified_methods_are_never_paged,
    a_code_goes_out_hashed_and_verifies_the_method,
    expired_and_exhausted_codes_need_a_new_code,
    a_new_address_is_unverified_and_only_admins_provision,
    nobody_else_verifies_or_tests_your_methods
);
