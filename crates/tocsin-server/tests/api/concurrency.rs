//! Concurrent writers: every request succeeds and incident numbers stay gapless.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

async fn concurrent_declares_get_unique_gapless_numbers(app: TestApp) {
    let first = app.declare(json!({ "title": "first" })).await["id"]
        .as_i64()
        .unwrap();
    let client = app.client.clone();
    let (base, token) = (app.base.clone(), app.admin_token.clone());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/incidents"))
                .bearer_auth(&token)
                .json(&json!({ "title": format!("storm {i}") }))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let id = body["id"].as_i64().unwrap();
            // Notes and reads interleave with the declares.
            let r = client
                .post(format!("{base}/api/v1/incidents/{first}/notes"))
                .bearer_auth(&token)
                .json(&json!({ "body": format!("note {i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let r = client
                .get(format!("{base}/api/v1/incidents?limit=5"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            id
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        assert!(ids.insert(t.await.unwrap()), "duplicate number");
    }
    let expected: BTreeSet<i64> = (first + 1..=first + 40).collect();
    assert_eq!(ids, expected, "numbers are sequential without gaps");
    let notes = app.get(&format!("/api/v1/incidents/{first}/notes")).await;
    assert_eq!(notes.body.as_array().unwrap().len(), 40);
    assert_eq!(app.timeline(first).await.len(), 41);
}

crate::both_backends!(concurrent_declares_get_unique_gapless_numbers);
