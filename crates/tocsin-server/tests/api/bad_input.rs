//! Bad input gets the documented error, names the field, and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tocsin_server::Limits;

use crate::support::{spawn_app_with, test_settings, Db, TestApp};

/// Sends raw bytes as a request and checks status, code and field, and that no row changed.
async fn refused(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    want: (StatusCode, &str, &str),
) {
    let before = app.counts().await;
    let r = app
        .raw(
            method.clone(),
            path,
            Some(&app.admin_token),
            content_type,
            body,
        )
        .await;
    let shown = String::from_utf8_lossy(&r.bytes)
        .chars()
        .take(300)
        .collect::<String>();
    assert_eq!(r.status, want.0, "{method} {path}: {shown}");
    assert_eq!(r.code(), want.1, "{method} {path}: {shown}");
    assert_eq!(r.field(), want.2, "{method} {path}: {shown}");
    assert!(!r.body["error"]["message"].as_str().unwrap_or("").is_empty());
    assert_eq!(
        app.counts().await,
        before,
        "{method} {path} wrote something: {shown}"
    );
}

async fn bad_json_bodies_are_refused_and_write_nothing(app: TestApp) {
    let svc = app
        .post("/api/v1/services", json!({ "name": "checkout" }))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let id = app
        .declare(json!({ "title": "existing", "service_ids": [svc] }))
        .await["id"]
        .as_i64()
        .unwrap();
    let j = "application/json";
    let bad = StatusCode::BAD_REQUEST;
    let cases: Vec<(Method, String, &str, Vec<u8>, (StatusCode, &str, &str))> = vec![
        (Method::POST, "/api/v1/incidents".into(), j, b"{\"title\": ".to_vec(), (bad, "malformed_json", "")),
        (Method::POST, "/api/v1/incidents".into(), j, b"not json".to_vec(), (bad, "malformed_json", "")),
        (Method::POST, "/api/v1/incidents".into(), j, b"".to_vec(), (bad, "malformed_json", "")),
        (Method::POST, "/api/v1/incidents".into(), j, b"[]".to_vec(), (bad, "invalid_field", "body")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": 5}"#.to_vec(), (bad, "invalid_field", "title")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"description": "x"}"#.to_vec(), (bad, "invalid_field", "title")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "   "}"#.to_vec(), (bad, "invalid_field", "title")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "colour": "red"}"#.to_vec(), (bad, "invalid_field", "colour")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "impact": "huge"}"#.to_vec(), (bad, "invalid_field", "impact")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "status": "closed"}"#.to_vec(), (bad, "invalid_field", "status")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "status": "asleep"}"#.to_vec(), (bad, "invalid_field", "status")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "severity": "SEV9"}"#.to_vec(), (bad, "invalid_field", "severity")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "type": "weather"}"#.to_vec(), (bad, "invalid_field", "type")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "service_ids": ["a"]}"#.to_vec(), (bad, "invalid_field", "service_ids[0]")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "service_ids": [424242]}"#.to_vec(), (bad, "invalid_field", "service_ids")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "assignee_id": 424242}"#.to_vec(), (bad, "invalid_field", "assignee_id")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "detected_at": "yesterday"}"#.to_vec(), (bad, "invalid_field", "detected_at")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "occurred_at": "2026-01-02T00:00:00Z", "detected_at": "2026-01-01T00:00:00Z"}"#.to_vec(), (bad, "invalid_field", "detected_at")),
        (Method::POST, "/api/v1/incidents".into(), j, br#"{"title": "x", "related": [{"kind": "sibling", "incident_id": 1}]}"#.to_vec(), (bad, "invalid_field", "related[0].kind")),
        (Method::POST, "/api/v1/incidents".into(), "text/plain", br#"{"title": "x"}"#.to_vec(), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "")),
        (Method::PATCH, format!("/api/v1/incidents/{id}"), j, br#"{"title": null}"#.to_vec(), (bad, "invalid_field", "title")),
        (Method::PATCH, format!("/api/v1/incidents/{id}"), j, br#"{"status": "resolved"}"#.to_vec(), (bad, "invalid_field", "status")),
        (Method::PATCH, format!("/api/v1/incidents/{id}"), j, br#"{"labels": ["ok", ""]}"#.to_vec(), (bad, "invalid_field", "labels")),
        (Method::PATCH, format!("/api/v1/incidents/{id}"), j, br#"{"related": [{"kind": "related", "incident_id": 424242}]}"#.to_vec(), (bad, "invalid_field", "related")),
        (Method::PATCH, "/api/v1/incidents/abc".into(), j, br#"{"title": "y"}"#.to_vec(), (bad, "invalid_field", "id")),
        (Method::PATCH, "/api/v1/incidents/INC-424242".into(), j, br#"{"title": "y"}"#.to_vec(), (StatusCode::NOT_FOUND, "not_found", "")),
        (Method::POST, format!("/api/v1/incidents/{id}/status"), j, br#"{"status": "done"}"#.to_vec(), (bad, "invalid_field", "status")),
        (Method::POST, format!("/api/v1/incidents/{id}/notes"), j, br#"{"body": "  "}"#.to_vec(), (bad, "invalid_field", "body")),
        (Method::POST, format!("/api/v1/incidents/{id}/notes"), j, br#"{"body": "x", "kind": "gossip"}"#.to_vec(), (bad, "invalid_field", "kind")),
        (Method::POST, format!("/api/v1/incidents/{id}/notes"), j, br#"{"body": "x", "approved_by": 1}"#.to_vec(), (bad, "invalid_field", "approved_by")),
        (Method::POST, "/api/v1/services".into(), j, br#"{"name": "checkout"}"#.to_vec(), (StatusCode::CONFLICT, "conflict", "name")),
        (Method::POST, "/api/v1/users".into(), j, br#"{"name": "x", "email": "not-an-email"}"#.to_vec(), (bad, "invalid_field", "email")),
        (Method::POST, "/api/v1/users".into(), j, br#"{"name": "x", "email": "x@example.com", "role": "root"}"#.to_vec(), (bad, "invalid_field", "role")),
        (Method::GET, "/api/v1/incidents?status=nope".into(), j, vec![], (bad, "invalid_field", "status")),
        (Method::GET, "/api/v1/incidents?limit=0".into(), j, vec![], (bad, "invalid_field", "limit")),
        (Method::GET, "/api/v1/incidents?cursor=garbage".into(), j, vec![], (bad, "invalid_field", "cursor")),
    ];
    for (method, path, ct, body, want) in cases {
        refused(&app, method, &path, ct, body, want).await;
    }
}

async fn oversized_bodies_get_413(app: TestApp) {
    let id = app.declare(json!({ "title": "big" })).await["id"]
        .as_i64()
        .unwrap();
    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    refused(
        &app,
        Method::POST,
        "/api/v1/incidents",
        "application/json",
        huge.into_bytes(),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", ""),
    )
    .await;
    // Attachments have their own limit; this app allows 10 MiB.
    let big = vec![7u8; 10 * 1024 * 1024 + 1];
    let path = format!("/api/v1/incidents/{id}/attachments?filename=big.bin");
    refused(
        &app,
        Method::POST,
        &path,
        "application/octet-stream",
        big,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", ""),
    )
    .await;
    let path = format!("/api/v1/incidents/{id}/attachments?filename=../etc/passwd");
    refused(
        &app,
        Method::POST,
        &path,
        "text/plain",
        b"x".to_vec(),
        (StatusCode::BAD_REQUEST, "invalid_field", "filename"),
    )
    .await;
    let path = format!("/api/v1/incidents/{id}/attachments");
    refused(
        &app,
        Method::POST,
        &path,
        "text/plain",
        b"x".to_vec(),
        (StatusCode::BAD_REQUEST, "invalid_field", "query"),
    )
    .await;
}

async fn limits_are_configurable(db: Db) {
    let limits = Limits {
        max_body_bytes: 2048,
        max_attachment_bytes: 100,
        ..Limits::default()
    };
    let Some(app) = spawn_app_with(db, test_settings(), limits).await else {
        return;
    };
    let id = app.declare(json!({ "title": "small" })).await["id"]
        .as_i64()
        .unwrap();
    let body = format!("{{\"title\": \"{}\"}}", "x".repeat(3000));
    refused(
        &app,
        Method::POST,
        "/api/v1/incidents",
        "application/json",
        body.into_bytes(),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", ""),
    )
    .await;
    let path = format!("/api/v1/incidents/{id}/attachments?filename=a.bin");
    refused(
        &app,
        Method::POST,
        &path,
        "application/octet-stream",
        vec![1; 101],
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", ""),
    )
    .await;
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&app.admin_token),
            "application/octet-stream",
            vec![1; 100],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

mod configurable_limits {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::limits_are_configurable(super::Db::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::limits_are_configurable(super::Db::Postgres).await;
    }
}

crate::both_backends!(
    bad_json_bodies_are_refused_and_write_nothing,
    oversized_bodies_get_413
);
