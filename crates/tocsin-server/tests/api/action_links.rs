//! Acknowledge and resolve from the message: a minted link works once, as its
//! user, through the lifecycle (the escalation stops), and is refused when used
//! again, expired, forged or its user deactivated — writing nothing. GET only
//! confirms; titles are escaped; `Accept: application/json` gets JSON.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tocsin_core::action_link::{self, ActionClaim, LinkAction, DEFAULT_LIFETIME};
use tocsin_core::time::Clock;
use tocsin_engine::delivery::RecordingDelivery;

use crate::escalation_engine::{kinds, page, run_until, runner, setup};
use crate::support::{Resp, TestApp};

/// Mints a link as admin; returns its path (`/actions/…`).
async fn mint(app: &TestApp, id: i64, body: Value) -> String {
    let r = app
        .post(&format!("/api/v1/incidents/{id}/action-links"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let url = r.body["url"].as_str().unwrap();
    assert!(url.starts_with(&app.base), "{url}");
    url[app.base.len()..].to_string()
}

/// As a browser would: HTML, and a form POST with an empty body.
async fn browse(app: &TestApp, method: Method, path: &str) -> (StatusCode, String) {
    let mut req = app
        .client
        .request(method.clone(), format!("{}{path}", app.base));
    if method == Method::POST {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body("");
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    (status, r.text().await.unwrap())
}

async fn as_json(app: &TestApp, method: Method, path: &str) -> Resp {
    let r = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    Resp {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
        bytes,
    }
}

async fn status_of(app: &TestApp, id: i64) -> String {
    app.get(&format!("/api/v1/incidents/{id}")).await.body["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn a_link_acknowledges_once_and_stops_the_escalation(app: TestApp) {
    let s = setup(&app).await;
    let ada = s.users[0];
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "Checkout down").await;
    // Ada's push went at once; her SMS waits for minute 2.
    run_until(&app, &[&r], t0 + Duration::minutes(1)).await;
    assert_eq!(rec.requests().len(), 1);
    let link = mint(&app, id, json!({ "action": "acknowledge", "user_id": ada })).await;

    // Opening the link (or a mail scanner fetching it) only asks.
    let before = app.counts().await;
    let (st, page) = browse(&app, Method::GET, &link).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("Acknowledge INC-{id}?")), "{page}");
    assert!(
        page.contains("Checkout down") && page.contains("as Ada"),
        "{page}"
    );
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert_eq!(app.counts().await, before, "GET wrote something");
    assert_eq!(status_of(&app, id).await, "triggered");

    let (st, page) = browse(&app, Method::POST, &link).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!(
            "INC-{id} acknowledged by Ada at 2026-01-01 00:01 UTC"
        )),
        "{page}"
    );
    assert_eq!(status_of(&app, id).await, "acknowledged");
    let tl = app.timeline(id).await;
    let moved = tl
        .iter()
        .find(|e| e["kind"] == "incident.status_changed")
        .expect("status change");
    assert_eq!(
        (moved["actor_id"].as_i64(), moved["actor"].as_str()),
        (Some(ada), Some("Ada"))
    );
    assert_eq!(moved["data"]["to"], "acknowledged");
    assert_eq!(
        kinds(&tl, "escalation.").last().unwrap(),
        "escalation.acknowledged"
    );
    let used = tl
        .iter()
        .find(|e| e["kind"] == "incident.action_link_used")
        .expect("link use on the timeline");
    assert_eq!(used["data"]["action"], "acknowledge");
    assert_eq!(used["data"]["changed"], true);

    // The escalation stopped: Ada's SMS and voice and every later level are not sent.
    run_until(&app, &[&r], t0 + Duration::hours(3)).await;
    assert_eq!(rec.requests().len(), 1);

    // A second use is refused and changes nothing.
    let before = app.counts().await;
    let (st, page) = browse(&app, Method::POST, &link).await;
    assert_eq!(st, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("already used at 2026-01-01 00:01 UTC"),
        "{page}"
    );
    let again = as_json(&app, Method::POST, &link).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "link_used")
    );
    let (st, _) = browse(&app, Method::GET, &link).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(app.counts().await, before);
}

async fn an_expired_link_is_refused(app: TestApp) {
    let id = app.declare(json!({ "title": "Disk full" })).await["id"]
        .as_i64()
        .unwrap();
    let link = mint(
        &app,
        id,
        json!({ "action": "acknowledge", "ttl_minutes": 10 }),
    )
    .await;
    app.clock.advance(Duration::minutes(9));
    assert_eq!(
        as_json(&app, Method::GET, &link).await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::minutes(1));
    let before = app.counts().await;
    let (st, page) = browse(&app, Method::POST, &link).await;
    assert_eq!(st, StatusCode::GONE, "{page}");
    assert!(page.contains("This link has expired"), "{page}");
    let r = as_json(&app, Method::POST, &link).await;
    assert_eq!((r.status, r.code()), (StatusCode::GONE, "link_expired"));
    assert_eq!(app.counts().await, before);
    assert_eq!(status_of(&app, id).await, "triggered");

    // The default lifetime is 24 hours.
    let link = mint(&app, id, json!({ "action": "acknowledge" })).await;
    app.clock.advance(DEFAULT_LIFETIME);
    let r = as_json(&app, Method::POST, &link).await;
    assert_eq!((r.status, r.code()), (StatusCode::GONE, "link_expired"));
    let bad = app
        .post(
            &format!("/api/v1/incidents/{id}/action-links"),
            json!({ "action": "acknowledge", "ttl_minutes": 0 }),
        )
        .await;
    assert_eq!(
        (bad.status, bad.field()),
        (StatusCode::BAD_REQUEST, "ttl_minutes")
    );
}

async fn forged_links_are_refused(app: TestApp) {
    let id = app.declare(json!({ "title": "Disk full" })).await["id"]
        .as_i64()
        .unwrap();
    let link = mint(&app, id, json!({ "action": "resolve" })).await;
    let token = link.strip_prefix("/actions/").unwrap();
    let before = app.counts().await;
    // One character of the signature changed.
    let mut flipped = token.as_bytes().to_vec();
    let i = token.find('.').unwrap() + 5;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    // The same claim signed with another key.
    let claim = ActionClaim::new(
        id,
        LinkAction::Resolve,
        app.admin_id,
        app.clock.now(),
        DEFAULT_LIFETIME,
        [7; 16],
    );
    let other = action_link::sign(b"some other instance's key, 32 b.", &claim);
    for t in [flipped, other] {
        for method in [Method::GET, Method::POST] {
            let r = as_json(&app, method.clone(), &format!("/actions/{t}")).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::BAD_REQUEST, "invalid_link"),
                "{method} {t}: {}",
                r.body
            );
        }
        let (st, page) = browse(&app, Method::POST, &format!("/actions/{t}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(
            page.contains("not issued by this Tocsin instance"),
            "{page}"
        );
    }
    let cut = &token[..token.len() - 3];
    let r = as_json(&app, Method::POST, &format!("/actions/{cut}")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "malformed_link")
    );
    assert_eq!(app.counts().await, before);
    assert_eq!(status_of(&app, id).await, "triggered");
    // The real one still works.
    let r = as_json(&app, Method::POST, &link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["incident"]["status"], "resolved");
}

async fn the_title_is_escaped(app: TestApp) {
    let title = "<script>alert('pwned')</script> & <b>bold</b>";
    let id = app.declare(json!({ "title": title })).await["id"]
        .as_i64()
        .unwrap();
    let link = mint(&app, id, json!({ "action": "acknowledge" })).await;
    for method in [Method::GET, Method::POST] {
        let (st, page) = browse(&app, method.clone(), &link).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{method}: {page}"
        );
        assert!(
            page.contains(
                "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
            ),
            "{method}: {page}"
        );
    }
}

async fn json_answers(app: TestApp) {
    let id = app.declare(json!({ "title": "Queue backlog" })).await["id"]
        .as_i64()
        .unwrap();
    let link = mint(&app, id, json!({ "action": "acknowledge" })).await;
    let r = as_json(&app, Method::GET, &link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["action"], "acknowledge");
    assert_eq!(r.body["incident"]["id"], id);
    assert_eq!(r.body["incident"]["status"], "triggered");
    assert_eq!(r.body["user"]["id"], app.admin_id);
    assert_eq!(r.body["expires_at"], "2026-01-02T00:00:00Z");
    let r = as_json(&app, Method::POST, &link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["action"], "acknowledge");
    assert_eq!(r.body["changed"], true);
    assert_eq!(r.body["incident"]["status"], "acknowledged");
    assert_eq!(r.body["user"]["name"], "Ada Admin");
    // An acknowledge link on an incident already past triggered answers without error.
    app.move_to(id, "investigating").await;
    let second = mint(&app, id, json!({ "action": "acknowledge" })).await;
    let r = as_json(&app, Method::POST, &second).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["changed"], false);
    assert_eq!(r.body["incident"]["status"], "investigating");
    let third = mint(&app, id, json!({ "action": "acknowledge" })).await;
    let (st, page) = browse(&app, Method::POST, &third).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        page.contains(&format!(
            "INC-{id} was already investigating; nothing changed."
        )),
        "{page}"
    );
    // Unknown incidents and bad bodies at minting.
    let r = app
        .post(
            "/api/v1/incidents/999999/action-links",
            json!({ "action": "resolve" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/action-links"),
            json!({ "action": "close" }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "action"));
}

async fn a_resolve_link_resolves_and_cancels_the_escalation(app: TestApp) {
    let s = setup(&app).await;
    let bo = s.users[1];
    let rec = RecordingDelivery::default();
    let r = runner(&app.store, &app.clock, &rec);
    let t0 = app.clock.now();
    let id = page(&app, &s, "Payments down").await;
    run_until(&app, &[&r], t0 + Duration::minutes(11)).await;
    let handed = rec.requests().len();
    let link = mint(&app, id, json!({ "action": "resolve", "user_id": bo })).await;
    let (st, page) = browse(&app, Method::POST, &link).await;
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!("INC-{id} resolved by Bo at 2026-01-01 00:11 UTC")),
        "{page}"
    );
    assert_eq!(status_of(&app, id).await, "resolved");
    let tl = app.timeline(id).await;
    assert_eq!(
        kinds(&tl, "escalation.").last().unwrap(),
        "escalation.cancelled"
    );
    run_until(&app, &[&r], t0 + Duration::hours(3)).await;
    assert_eq!(rec.requests().len(), handed, "nothing sent after resolving");
    // Resolving a resolved incident changes nothing and is no error.
    let again = mint(&app, id, json!({ "action": "resolve", "user_id": bo })).await;
    let r = as_json(&app, Method::POST, &again).await;
    assert_eq!(
        (r.status, r.body["changed"].as_bool()),
        (StatusCode::OK, Some(false))
    );
}

async fn a_deactivated_user_is_refused(app: TestApp) {
    let (uid, token) = app.user_with_role("responder").await;
    let id = app.declare(json!({ "title": "Disk full" })).await["id"]
        .as_i64()
        .unwrap();
    // A responder mints for themselves, not for someone else.
    let own = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/action-links"),
            Some(&token),
            Some(json!({ "action": "acknowledge" })),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_eq!(own.body["user_id"], uid);
    let other = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/action-links"),
            Some(&token),
            Some(json!({ "action": "acknowledge", "user_id": app.admin_id })),
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::FORBIDDEN, "not_allowed")
    );
    let link = own.body["url"].as_str().unwrap()[app.base.len()..].to_string();
    let r = app
        .patch(&format!("/api/v1/users/{uid}"), json!({ "active": false }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let before = app.counts().await;
    let (st, page) = browse(&app, Method::POST, &link).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("deactivated"), "{page}");
    let r = as_json(&app, Method::POST, &link).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "user_inactive")
    );
    assert_eq!(
        app.counts().await,
        before,
        "nothing written, the nonce neither"
    );
    assert_eq!(status_of(&app, id).await, "triggered");
    // Nor is a link minted for them any more; nor for a viewer.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/action-links"),
            json!({ "action": "acknowledge", "user_id": uid }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "user_id"));
    let (viewer, _) = app.user_with_role("viewer").await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/action-links"),
            json!({ "action": "acknowledge", "user_id": viewer }),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, "user_id"));
    // Reactivated, the same link works (it was never used).
    app.patch(&format!("/api/v1/users/{uid}"), json!({ "active": true }))
        .await;
    let r = as_json(&app, Method::POST, &link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn the_signing_key_is_made_once_and_shared(app: TestApp) {
    let id = app.declare(json!({ "title": "Disk full" })).await["id"]
        .as_i64()
        .unwrap();
    let keys = |c: Vec<(String, i64)>| c.into_iter().find(|(t, _)| t == "signing_keys").unwrap().1;
    assert_eq!(keys(app.counts().await), 0);
    // Two links minted at once by two "nodes" (stores on one database) share one key.
    let other = tocsin_store::Store::connect(&app.db_url, &Default::default())
        .await
        .unwrap();
    let now = app.clock.now();
    let (a, b) = tokio::join!(
        app.store.action_link(
            id,
            LinkAction::Acknowledge,
            app.admin_id,
            now,
            DEFAULT_LIFETIME
        ),
        other.action_link(id, LinkAction::Resolve, app.admin_id, now, DEFAULT_LIFETIME)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(keys(app.counts().await), 1);
    // Either node's link works through the server.
    let r = as_json(&app, Method::GET, &format!("/actions/{a}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = as_json(&app, Method::POST, &format!("/actions/{b}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["incident"]["status"], "resolved");
    other.close().await;
}

async fn two_taps_at_once_act_once(app: TestApp) {
    let id = app.declare(json!({ "title": "Disk full" })).await["id"]
        .as_i64()
        .unwrap();
    let link = mint(&app, id, json!({ "action": "acknowledge" })).await;
    let (a, b) = tokio::join!(
        as_json(&app, Method::POST, &link),
        as_json(&app, Method::POST, &link)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} {}",
        a.body,
        b.body
    );
    let tl = app.timeline(id).await;
    assert_eq!(
        tl.iter()
            .filter(|e| e["kind"] == "incident.action_link_used")
            .count(),
        1
    );
}

crate::both_backends!(
    a_link_acknowledges_once_and_stops_the_escalation,
    an_expired_link_is_refused,
    forged_links_are_refused,
    the_title_is_escaped,
    json_answers,
    a_resolve_link_resolves_and_cancels_the_escalation,
    a_deactivated_user_is_refused,
    the_signing_key_is_made_once_and_shared,
    two_taps_at_once_act_once
);
