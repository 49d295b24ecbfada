//! Attachments round-trip with their SHA-256; full-text search finds notes.

use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::TestApp;

async fn attachments_round_trip_with_sha256(app: TestApp) {
    let id = app.declare(json!({ "title": "attach" })).await["id"]
        .as_i64()
        .unwrap();
    // Every byte value, repeated, and a stretch of zeros: binary must survive untouched.
    let mut data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    data.extend(std::iter::repeat_n(0u8, 4096));
    let expected = hex::encode(Sha256::digest(&data));
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/incidents/INC-{id}/attachments?filename=heap%20dump.bin"),
            Some(&app.admin_token),
            "application/x-dump",
            data.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["sha256"], expected);
    assert_eq!(r.body["size"], data.len() as i64);
    assert_eq!(r.body["filename"], "heap dump.bin");
    assert_eq!(r.body["content_type"], "application/x-dump");
    let att = r.body["id"].as_i64().unwrap();
    let list = app
        .get(&format!("/api/v1/incidents/{id}/attachments"))
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    let d = app
        .get(&format!("/api/v1/incidents/{id}/attachments/{att}"))
        .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.bytes, data);
    assert_eq!(hex::encode(Sha256::digest(&d.bytes)), expected);
    assert_eq!(d.headers["content-type"], "application/x-dump");
    assert_eq!(d.headers["x-content-type-options"], "nosniff");
    assert!(d.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(
        d.headers["etag"].to_str().unwrap(),
        format!("\"sha256-{expected}\"")
    );
    // An attachment is reachable only through its own incident.
    let other = app.declare(json!({ "title": "other" })).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{other}/attachments/{att}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Approvals record who approved.
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/incidents/{id}/attachments?filename=change.pdf&kind=approval"),
            Some(&app.admin_token),
            "application/pdf",
            b"%PDF".to_vec(),
        )
        .await;
    assert_eq!(r.body["kind"], "approval");
    assert_eq!(r.body["approved_by"], app.admin_id);
}

async fn search_finds_an_incident_by_a_word_of_a_note(app: TestApp) {
    let a = app
        .declare(json!({ "title": "Checkout latency", "description": "p99 above 2s" }))
        .await["id"]
        .as_i64()
        .unwrap();
    let b = app.declare(json!({ "title": "Login errors" })).await["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/incidents/{b}/notes"),
            json!({ "body": "The frobnicator daemon leaked file descriptors" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let ids = |r: crate::support::Resp| -> Vec<i64> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(app.get("/api/v1/incidents?q=frobnicator").await),
        vec![b]
    );
    assert_eq!(
        ids(app.get("/api/v1/incidents?q=FROBNICATOR%20daemon").await),
        vec![b],
        "case-insensitive, words ANDed"
    );
    assert_eq!(
        ids(app.get("/api/v1/incidents?q=leaking").await),
        vec![b],
        "stemmed"
    );
    assert_eq!(
        ids(app.get("/api/v1/incidents?q=latency").await),
        vec![a],
        "title"
    );
    assert_eq!(
        ids(app.get("/api/v1/incidents?q=frobnicator%20latency").await),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(app
            .get("/api/v1/incidents?q=frobnicator&status=resolved")
            .await),
        Vec::<i64>::new(),
        "combined with filters"
    );
    // Search syntax in the query is taken as words, never as an error.
    for q in [
        "%22frob%22%20OR%20(x*",
        "NEAR(a%20b)",
        "%27%3B%20DROP%20TABLE%20incidents%3B--",
        "***",
    ] {
        let r = app.get(&format!("/api/v1/incidents?q={q}")).await;
        assert_eq!(r.status, StatusCode::OK, "q={q}: {}", r.body);
    }
    // Edits are searchable at once.
    app.patch(
        &format!("/api/v1/incidents/{a}"),
        json!({ "root_cause": "exhausted connection pool" }),
    )
    .await;
    assert_eq!(ids(app.get("/api/v1/incidents?q=pool").await), vec![a]);
}

crate::both_backends!(
    attachments_round_trip_with_sha256,
    search_finds_an_incident_by_a_word_of_a_note
);
