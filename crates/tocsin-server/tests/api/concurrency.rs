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

/// An alert event locks its alert before the incident; resolving the incident
/// locks the incident before its alerts. When the two cross on PostgreSQL, the
/// database kills one as a deadlock: the API request is run again, not failed.
async fn resolving_while_an_alert_event_holds_the_alert_is_retried_not_failed(app: TestApp) {
    use sqlx::Connection;
    let svc = app
        .post(
            "/api/v1/services",
            serde_json::json!({ "name": "crossing" }),
        )
        .await;
    let key = app
        .post(
            &format!("/api/v1/services/{}/integration-keys", svc.body["id"]),
            serde_json::json!({ "name": "k" }),
        )
        .await;
    let sent = app
        .client
        .post(format!("{}/v2/enqueue", app.base))
        .json(
            &serde_json::json!({ "routing_key": key.body["secret"], "event_action": "trigger",
            "dedup_key": "x", "payload": { "summary": "x", "source": "x", "severity": "error" } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), reqwest::StatusCode::ACCEPTED);
    let alerts = app.get("/api/v1/alerts").await;
    let alert = alerts.body["items"][0].clone();
    let (alert_id, incident_id) = (
        alert["id"].as_i64().unwrap(),
        alert["incident_id"].as_i64().unwrap(),
    );

    // Another transaction (as an alert event would) holds the alert…
    let mut other = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT id FROM alerts WHERE id = $1 FOR UPDATE")
        .bind(alert_id)
        .execute(&mut other)
        .await
        .unwrap();
    // …while resolving locks the incident and waits for the alert.
    let (client, url, token) = (
        app.client.clone(),
        format!("{}/api/v1/incidents/{incident_id}/status", app.base),
        app.admin_token.clone(),
    );
    let resolving = tokio::spawn(async move {
        client
            .post(url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "status": "resolved" }))
            .send()
            .await
            .unwrap()
            .status()
    });
    let mut watch = sqlx::AnyConnection::connect(&app.db_url).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the resolve never waited for the alert"
        );
        tokio::task::yield_now().await;
    }
    // Now the other transaction wants the incident: a deadlock. PostgreSQL
    // looks for it once per waiter, `deadlock_timeout` after that waiter began
    // to wait, so it is normally the resolve (it waited first) that is killed
    // and run again. On a loaded machine the resolve's one look can come
    // before this request waits; then this transaction is the one killed, and
    // the resolve must still succeed once it is gone.
    let crossing = sqlx::query("SELECT id FROM incidents WHERE id = $1 FOR UPDATE")
        .bind(incident_id)
        .execute(&mut other)
        .await;
    if let Err(e) = crossing {
        let code = e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("40P01"), "only a deadlock: {e}");
    }
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(resolving.await.unwrap(), reqwest::StatusCode::OK);
    let inc = app.get(&format!("/api/v1/incidents/{incident_id}")).await;
    assert_eq!(inc.body["status"], "resolved");
}

mod crossing_locks {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        match crate::support::spawn_app(crate::support::Db::Postgres).await {
            Some(app) => {
                super::resolving_while_an_alert_event_holds_the_alert_is_retried_not_failed(app)
                    .await
            }
            None => eprintln!("skipped: TOCSIN_TEST_POSTGRES_URL is not set"),
        }
    }
}
