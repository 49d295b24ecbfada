//! Contact methods and notification rules through the API: CRUD with events and
//! normalized addresses, a bad address of each kind named `address`, bad rules
//! and working hours named by field with nothing written, a method a rule names
//! cannot be deleted, rules keep their order, and each user manages only their
//! own unless an admin.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{Resp, TestApp};

fn methods_path(user: i64) -> String {
    format!("/api/v1/users/{user}/contact-methods")
}

fn method_path(user: i64, method: i64) -> String {
    format!("/api/v1/users/{user}/contact-methods/{method}")
}

fn rules_path(user: i64) -> String {
    format!("/api/v1/users/{user}/notification-rules")
}

async fn as_(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    app.call(method, path, Some(token), body).await
}

async fn add(app: &TestApp, user: i64, kind: &str, address: &str) -> i64 {
    let r = app
        .post(
            &methods_path(user),
            json!({ "kind": kind, "address": address }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn put_rules(app: &TestApp, user: i64, body: Value) -> Resp {
    as_(
        app,
        &app.admin_token,
        Method::PUT,
        &rules_path(user),
        Some(body),
    )
    .await
}

fn rule(urgency: &str, method: i64, delay: u32) -> Value {
    json!({ "urgency": urgency, "contact_method_id": method, "delay_minutes": delay })
}

async fn event_kinds(app: &TestApp) -> Vec<(String, String)> {
    let r = app.get("/api/v1/events?limit=1000").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "contact_method" || e["kind"] == "user.notification_setup_set")
        .map(|e| {
            (
                e["entity"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn crud_round_trip(app: TestApp) {
    let (user, _) = app.user_with_role("responder").await;
    let r = app
        .post(
            &methods_path(user),
            json!({ "kind": "sms", "address": " +1 (555) 123-4567 ", "label": "Personal phone" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let sms = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["user_id"], user);
    assert_eq!(r.body["kind"], "sms");
    assert_eq!(r.body["address"], "+15551234567");
    assert_eq!(r.body["label"], "Personal phone");
    assert_eq!(r.body["verified"], false, "a new method is unverified");

    let r = app
        .post(
            &methods_path(user),
            json!({ "kind": "email", "address": "Cy@Example.COM" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let email = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["address"], "Cy@example.com");
    assert_eq!(r.body["label"], "Work email", "the default label");
    let hook = add(&app, user, "webhook", "https://hooks.example.com/cy").await;
    // The same number as a voice method is another method.
    add(&app, user, "voice", "+15551234567").await;

    // The same number written differently is the same method.
    let before = app.counts().await;
    let r = app
        .post(
            &methods_path(user),
            json!({ "kind": "sms", "address": "+1 555-123-4567" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.field(), "address");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already has the sms contact method +15551234567"),
        "{}",
        r.body
    );
    assert_eq!(app.counts().await, before);

    let r = app.get(&methods_path(user)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ids: Vec<i64> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(&ids[..3], &[sms, email, hook], "oldest first");

    // Change the address (normalized for its kind) and the label.
    app.clock.advance(chrono::Duration::minutes(5));
    let r = app
        .patch(
            &method_path(user, sms),
            json!({ "address": "+44 (20) 7946-0958", "label": "UK phone" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["address"], "+442079460958");
    assert_eq!(r.body["label"], "UK phone");
    assert_eq!(r.body["kind"], "sms");
    assert_ne!(r.body["updated_at"], r.body["created_at"]);
    // Only the label: the address stays.
    let r = app
        .patch(&method_path(user, email), json!({ "label": "Inbox" }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["address"], "Cy@example.com");
    assert_eq!(r.body["label"], "Inbox");
    // Onto another method's address: 409, unchanged.
    let r = app
        .patch(
            &method_path(user, sms),
            json!({ "address": "+44 20 7946 0958" }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the same address is a no-op: {}",
        r.body
    );
    add(&app, user, "sms", "+15550000000").await;
    let before = app.counts().await;
    let r = app
        .patch(
            &method_path(user, sms),
            json!({ "address": "+15550000000" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.field(), "address");
    assert_eq!(app.counts().await, before);

    let r = app
        .call(
            Method::DELETE,
            &method_path(user, hook),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app
        .call(
            Method::DELETE,
            &method_path(user, hook),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app.get(&methods_path(user)).await;
    assert!(!r.body.as_array().unwrap().iter().any(|m| m["id"] == hook));

    assert_eq!(
        event_kinds(&app).await,
        [
            "contact_method.created",
            "contact_method.created",
            "contact_method.created",
            "contact_method.created",
            "contact_method.updated",
            "contact_method.updated",
            "contact_method.created",
            "contact_method.deleted",
        ]
        .map(|k| ("contact_method".to_string(), k.to_string()))
    );

    // An unknown user, and a method of another user, are not found.
    let r = app.get(&methods_path(999_999)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let other = add(&app, app.admin_id, "email", "ada.pager@example.com").await;
    for (method, body) in [
        (Method::PATCH, Some(json!({ "label": "mine now" }))),
        (Method::DELETE, None),
    ] {
        let r = as_(
            &app,
            &app.admin_token,
            method,
            &method_path(user, other),
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    let r = app.get(&methods_path(app.admin_id)).await;
    assert_eq!(r.body[0]["label"], "Work email", "untouched");
}

async fn a_bad_address_of_each_kind_names_address(app: TestApp) {
    let (user, _) = app.user_with_role("viewer").await;
    let before = app.counts().await;
    for (kind, address) in [
        ("email", "not-an-email"),
        ("email", ""),
        ("sms", "555 123 4567"),
        ("sms", "+1 555"),
        ("voice", "+1 555 CALL NOW"),
        ("voice", "+0123456789"),
        ("push", ""),
        ("push", "device-token-without-a-service"),
        ("push", "ntfy:has spaces in it"),
        ("push", &"x".repeat(513)),
        ("chat", "  "),
        ("chat", "@vi"),
        ("chat", "teams:not-a-url"),
        ("webhook", "hooks.example.com/x"),
        ("webhook", "ftp://hooks.example.com/x"),
        ("webhook", "https://"),
    ] {
        let r = app
            .post(
                &methods_path(user),
                json!({ "kind": kind, "address": address }),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{kind} {address:?}: {}",
            r.body
        );
        assert_eq!(r.field(), "address", "{kind} {address:?}: {}", r.body);
    }
    for (body, field) in [
        (json!({ "kind": "pager", "address": "x" }), "kind"),
        (json!({ "address": "a@example.com" }), "kind"),
        (json!({ "kind": "email" }), "address"),
        (
            json!({ "kind": "email", "address": "a@example.com", "label": "" }),
            "label",
        ),
        (
            json!({ "kind": "email", "address": "a@example.com", "label": "l".repeat(101) }),
            "label",
        ),
        (
            json!({ "kind": "email", "address": "a@example.com", "verified": "yes" }),
            "verified",
        ),
    ] {
        let r = app.post(&methods_path(user), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    assert_eq!(app.counts().await, before, "nothing written");

    // A new address is read as the method's kind.
    let sms = add(&app, user, "sms", "+15551234567").await;
    let before = app.counts().await;
    for body in [
        json!({ "address": "cy@example.com" }),
        json!({ "address": "+1" }),
        json!({ "label": "" }),
        json!({ "kind": "email" }),
    ] {
        let r = app.patch(&method_path(user, sms), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    assert_eq!(app.counts().await, before, "nothing written");
    let r = app.get(&methods_path(user)).await;
    assert_eq!(r.body[0]["address"], "+15551234567");
}

async fn bad_rules_and_working_hours_name_the_field(app: TestApp) {
    let (user, _) = app.user_with_role("responder").await;
    let (other, _) = app.user_with_role("responder").await;
    let push = add(&app, user, "push", "ntfy:device-token-1").await;
    let sms = add(&app, user, "sms", "+15551234567").await;
    let theirs = add(&app, other, "sms", "+15557654321").await;
    let hours =
        json!({ "days": ["mon"], "start_time": "09:00", "end_time": "17:00", "time_zone": "UTC" });
    let good = json!({ "rules": [rule("high", push, 0)], "working_hours": hours });
    let r = put_rules(&app, user, good.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = app.get(&rules_path(user)).await.body;

    let with_rules = |rules: Value| json!({ "rules": rules, "working_hours": hours });
    let with_hours = |h: Value| json!({ "rules": [], "working_hours": h });
    let mut h_missing = hours.clone();
    h_missing.as_object_mut().unwrap().remove("time_zone");
    let mut h_extra = hours.clone();
    h_extra["lunch"] = json!("12:00");
    let before = app.counts().await;
    for (body, field) in [
        (
            with_rules(json!([rule("high", 999_999, 0)])),
            "rules[0].contact_method_id",
        ),
        (
            with_rules(json!([rule("high", push, 0), rule("high", theirs, 2)])),
            "rules[1].contact_method_id",
        ),
        (
            with_rules(json!([rule("low", sms, 1441)])),
            "rules[0].delay_minutes",
        ),
        (
            with_rules(json!([rule("high", sms, 2), rule("high", sms, 2)])),
            "rules[1]",
        ),
        (
            with_rules(json!([rule("urgent", sms, 2)])),
            "rules[0].urgency",
        ),
        (
            with_rules(
                json!([{ "urgency": "high", "contact_method_id": sms, "delay_minutes": -1 }]),
            ),
            "rules[0].delay_minutes",
        ),
        (
            with_rules(
                json!([{ "urgency": "high", "contact_method_id": sms, "delay_minutes": 1, "repeat": 3 }]),
            ),
            "rules[0].repeat",
        ),
        (
            with_rules(json!([{ "urgency": "high", "delay_minutes": 1 }])),
            "rules[0].contact_method_id",
        ),
        (
            with_rules(json!((0..51)
                .map(|i| rule("high", sms, i))
                .collect::<Vec<_>>())),
            "rules",
        ),
        (json!({ "working_hours": null }), "rules"),
        (json!({ "rules": [], "pager": true }), "pager"),
        (
            with_hours(
                json!({ "days": ["mon"], "start_time": "09:00", "end_time": "17:00", "time_zone": "Mars/Olympus" }),
            ),
            "working_hours.time_zone",
        ),
        (with_hours(h_missing), "working_hours.time_zone"),
        (with_hours(h_extra), "working_hours.lunch"),
        (
            with_hours(
                json!({ "days": ["mon", "someday"], "start_time": "09:00", "end_time": "17:00", "time_zone": "UTC" }),
            ),
            "working_hours.days[1]",
        ),
        (
            with_hours(
                json!({ "days": [], "start_time": "09:00", "end_time": "17:00", "time_zone": "UTC" }),
            ),
            "working_hours.days",
        ),
        (
            with_hours(
                json!({ "days": ["mon"], "start_time": "9am", "end_time": "17:00", "time_zone": "UTC" }),
            ),
            "working_hours.start_time",
        ),
        (
            with_hours(
                json!({ "days": ["mon"], "start_time": "18:00", "end_time": "17:00", "time_zone": "UTC" }),
            ),
            "working_hours.end_time",
        ),
    ] {
        let r = put_rules(&app, user, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.field(), field, "{body}: {}", r.body);
    }
    assert_eq!(app.counts().await, before, "nothing written");
    assert_eq!(app.get(&rules_path(user)).await.body, stored, "unchanged");
}

async fn rules_keep_their_order_and_hours_are_normalized(app: TestApp) {
    let (user, _) = app.user_with_role("viewer").await;
    let r = app.get(&rules_path(user)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({ "rules": [], "working_hours": null }),
        "a new user has none"
    );

    let push = add(&app, user, "push", "ntfy:device-token-1").await;
    let sms = add(&app, user, "sms", "+15551234567").await;
    let voice = add(&app, user, "voice", "+15551234567").await;
    // Not sorted by anything: the order written is the order kept.
    let rules = json!([
        rule("high", voice, 5),
        rule("low", push, 0),
        rule("high", push, 0),
        rule("high", sms, 2),
        rule("low", sms, 30),
    ]);
    let r = put_rules(
        &app,
        user,
        json!({ "rules": rules, "working_hours": {
            "days": ["fri", "Monday", "wed", "mon"], "start_time": "9:00", "end_time": "17:30",
            "time_zone": "Europe/Berlin" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let want = json!({ "rules": rules, "working_hours": {
        "days": ["mon", "wed", "fri"], "start_time": "09:00", "end_time": "17:30",
        "time_zone": "Europe/Berlin" } });
    assert_eq!(r.body, want);
    assert_eq!(app.get(&rules_path(user)).await.body, want);
    // The store hands the engine the same rules, in the same order.
    let setup = app.store.notification_setup(user).await.unwrap();
    assert_eq!(serde_json::to_value(&setup.rules).unwrap(), rules);

    // The same again records nothing; a change records one event.
    let events = event_kinds(&app).await.len();
    let r = put_rules(&app, user, want.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(event_kinds(&app).await.len(), events);
    let r = put_rules(
        &app,
        user,
        json!({ "rules": [rule("high", sms, 0), rule("high", voice, 5)] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["working_hours"], Value::Null, "left out: any time");
    assert_eq!(r.body["rules"][0]["contact_method_id"], sms);
    let kinds = event_kinds(&app).await;
    assert_eq!(kinds.len(), events + 1);
    assert_eq!(
        kinds.last().unwrap(),
        &(
            "user".to_string(),
            "user.notification_setup_set".to_string()
        )
    );
}

async fn a_method_a_rule_names_cannot_be_deleted(app: TestApp) {
    let (user, token) = app.user_with_role("responder").await;
    let push = add(&app, user, "push", "ntfy:device-token-1").await;
    let sms = add(&app, user, "sms", "+15551234567").await;
    let r = put_rules(
        &app,
        user,
        json!({ "rules": [rule("high", push, 0), rule("high", sms, 2), rule("low", sms, 0)] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let before = app.counts().await;
    for t in [&token, &app.admin_token] {
        let r = as_(&app, t, Method::DELETE, &method_path(user, sms), None).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("rules[1], rules[2]"), "{msg}");
        assert!(!msg.contains("rules[0]"), "{msg}");
    }
    assert_eq!(app.counts().await, before, "nothing deleted");
    assert_eq!(
        app.get(&methods_path(user))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Once no rule names it, it goes.
    let r = put_rules(&app, user, json!({ "rules": [rule("high", push, 0)] })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = as_(&app, &token, Method::DELETE, &method_path(user, sms), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app.get(&methods_path(user)).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["id"], push);
}

async fn each_user_manages_their_own_and_admins_anyones(app: TestApp) {
    let (viewer, viewer_token) = app.user_with_role("viewer").await;
    let (responder, responder_token) = app.user_with_role("responder").await;

    // A viewer manages their own, end to end.
    let own = |m, path: String, body| {
        let t = viewer_token.clone();
        let app = &app;
        async move { as_(app, &t, m, &path, body).await }
    };
    let r = own(
        Method::POST,
        methods_path(viewer),
        Some(json!({ "kind": "chat", "address": "slack:@vi" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let chat = r.body["id"].as_i64().unwrap();
    let r = own(
        Method::PATCH,
        method_path(viewer, chat),
        Some(json!({ "label": "Team chat" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = own(
        Method::PUT,
        rules_path(viewer),
        Some(json!({ "rules": [rule("high", chat, 0)] })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = own(Method::GET, methods_path(viewer), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[0]["label"], "Team chat");
    let r = own(Method::GET, rules_path(viewer), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["rules"][0]["contact_method_id"], chat);
    // The viewer's user, events and actor are theirs.
    let r = app.get("/api/v1/events?limit=1000").await;
    let last = r.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor_id"], viewer);

    // A responder can neither read nor change the viewer's, and nothing changes.
    let methods_before = app.get(&methods_path(viewer)).await.body;
    let rules_before = app.get(&rules_path(viewer)).await.body;
    let counts = app.counts().await;
    for (method, path, body) in [
        (Method::GET, methods_path(viewer), None),
        (
            Method::POST,
            methods_path(viewer),
            Some(json!({ "kind": "email", "address": "evil@example.com" })),
        ),
        (
            Method::PATCH,
            method_path(viewer, chat),
            Some(json!({ "address": "@evil" })),
        ),
        (Method::DELETE, method_path(viewer, chat), None),
        (Method::GET, rules_path(viewer), None),
        (
            Method::PUT,
            rules_path(viewer),
            Some(json!({ "rules": [] })),
        ),
    ] {
        let r = as_(&app, &responder_token, method.clone(), &path, body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            r.body
        );
        assert_eq!(r.code(), "not_allowed", "{method} {path}");
    }
    assert_eq!(app.counts().await, counts, "nothing written");
    assert_eq!(app.get(&methods_path(viewer)).await.body, methods_before);
    assert_eq!(app.get(&rules_path(viewer)).await.body, rules_before);

    // Nor can the viewer touch the responder's, or reach their method through their own id.
    let theirs = add(&app, responder, "email", "re@example.com").await;
    let r = own(Method::GET, methods_path(responder), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = own(
        Method::PATCH,
        method_path(viewer, theirs),
        Some(json!({ "label": "mine" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = own(
        Method::PUT,
        rules_path(viewer),
        Some(json!({ "rules": [rule("high", theirs, 0)] })),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), "rules[0].contact_method_id");

    // An admin manages anyone's.
    let r = app
        .patch(
            &method_path(viewer, chat),
            json!({ "label": "Set by admin" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put_rules(&app, viewer, json!({ "rules": [] })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .call(
            Method::DELETE,
            &method_path(viewer, chat),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = own(Method::GET, methods_path(viewer), None).await;
    assert_eq!(r.body, json!([]));
}

crate::both_backends!(
    crud_round_trip,
    a_bad_address_of_each_kind_names_address,
    bad_rules_and_working_hours_name_the_field,
    rules_keep_their_order_and_hours_are_normalized,
    a_method_a_rule_names_cannot_be_deleted,
    each_user_manages_their_own_and_admins_anyones
);
