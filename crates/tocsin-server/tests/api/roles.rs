//! Role enforcement, table-driven from the served OpenAPI document: every
//! operation x (no token, forged token, viewer, responder, admin).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::TestApp;

const RANK: [&str; 3] = ["viewer", "responder", "admin"];

fn rank(role: &str) -> usize {
    RANK.iter()
        .position(|r| *r == role)
        .unwrap_or_else(|| panic!("unknown role {role} in the OpenAPI document"))
}

/// Fills every `{param}` with an id that does not exist.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str("999999");
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn operations(doc: &Value) -> Vec<(Method, String, Option<String>)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let needed = op["security"][0]["token"][0].as_str().map(str::to_string);
            ops.push((m, path.clone(), needed));
        }
    }
    ops
}

async fn send(
    app: &TestApp,
    method: &Method,
    path: &str,
    token: Option<&str>,
) -> crate::support::Resp {
    let body = matches!(*method, Method::POST | Method::PATCH | Method::PUT)
        .then(|| serde_json::json!({}));
    app.call(method.clone(), path, token, body).await
}

async fn every_endpoint_enforces_its_role(app: TestApp) {
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    let (_, viewer) = app.user_with_role("viewer").await;
    let (_, responder) = app.user_with_role("responder").await;
    let tokens = [
        ("viewer", viewer),
        ("responder", responder),
        ("admin", app.admin_token.clone()),
    ];
    let before = app.counts().await;
    let ops = operations(&doc);
    assert!(
        ops.len() >= 40,
        "expected the whole API, found {} operations",
        ops.len()
    );
    let mut public = 0;
    for (method, path, needed) in &ops {
        let url = concrete(path);
        let what = format!("{method} {path}");
        let anon = send(&app, method, &url, None).await;
        let forged = send(
            &app,
            method,
            &url,
            Some("tcs_0000000000000000000000000000000000000000"),
        )
        .await;
        if path.starts_with("/integrations/") {
            // Authenticated by the integration key in the path; a user's token is no key.
            for token in [None, Some(app.admin_token.as_str())] {
                let r = send(&app, method, &url, token).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{what} with a made-up key: {}",
                    r.body
                );
                assert_eq!(r.field(), "key", "{what}");
            }
            continue;
        }
        let Some(needed) = needed else {
            public += 1;
            assert!(
                !matches!(
                    anon.status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ),
                "{what} is public: {}",
                anon.body
            );
            continue;
        };
        assert_eq!(
            anon.status,
            StatusCode::UNAUTHORIZED,
            "{what} without a token: {}",
            anon.body
        );
        assert_eq!(anon.code(), "unauthenticated", "{what}");
        assert_eq!(
            forged.status,
            StatusCode::UNAUTHORIZED,
            "{what} with a forged token"
        );
        for (role, token) in &tokens {
            let r = send(&app, method, &url, Some(token)).await;
            if rank(role) >= rank(needed) {
                assert!(
                    !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                    "{what} needs {needed}; {role} must get past auth but got {}: {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{what} needs {needed}; {role} must be refused: {}",
                    r.body
                );
                assert_eq!(r.code(), "forbidden", "{what}");
            }
        }
    }
    // The /v2/ endpoints take no token: they authenticate by the routing key in the body;
    // a heartbeat ping (GET and POST), a calendar feed and an action link (GET
    // confirms, POST acts) by the secret in their path; Twilio's SMS, voice and
    // status webhooks by X-Twilio-Signature (here unconfigured: 404, see twilio_replies.rs).
    // Public status pages (HTML, JSON, feeds, subscribing and mail links) take
    // no token; an internal page checks the session or token itself
    // (status_public.rs).
    let status_pages = ops
        .iter()
        .filter(|(_, path, _)| path.starts_with("/status/"))
        .count();
    assert_eq!(status_pages, 23, "the public status-page routes");
    assert_eq!(
        public - status_pages, 14,
        "only healthz, readyz, metrics, openapi.json, /v2/enqueue, /v2/change/enqueue, the heartbeat ping, the calendar feed, the action link and the Twilio SMS, voice and status webhooks take no token"
    );
    // Refused and invalid requests wrote nothing. The one valid request with an
    // empty body, POST /api/v1/me/calendar-feed, created each role's own feed
    // (one row and one event each).
    let after = app.counts().await;
    let expected: Vec<(String, i64)> = before
        .into_iter()
        .map(|(t, n)| match t.as_str() {
            "events" | "calendar_feeds" => (t, n + 3),
            _ => (t, n),
        })
        .collect();
    assert_eq!(after, expected);
}

async fn a_viewer_cannot_change_an_incident(app: TestApp) {
    // Beyond 403: the incident is untouched and its timeline unchanged.
    let (_, viewer) = app.user_with_role("viewer").await;
    let id = app
        .declare(serde_json::json!({ "title": "read only" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let before = app.timeline(id).await.len();
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/incidents/{id}"),
            serde_json::json!({ "title": "changed" }),
        ),
        (
            Method::POST,
            format!("/api/v1/incidents/{id}/status"),
            serde_json::json!({ "status": "acknowledged" }),
        ),
        (
            Method::POST,
            format!("/api/v1/incidents/{id}/notes"),
            serde_json::json!({ "body": "hi" }),
        ),
    ] {
        let r = app.call(method, &path, Some(&viewer), Some(body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let inc = app.get(&format!("/api/v1/incidents/{id}")).await.body;
    assert_eq!(inc["title"], "read only");
    assert_eq!(inc["status"], "triggered");
    assert_eq!(app.timeline(id).await.len(), before);
}

crate::both_backends!(
    every_endpoint_enforces_its_role,
    a_viewer_cannot_change_an_incident
);
