//! The running server pages: an alert sent to `tocsin serve` (wall clock, real
//! job runner) has its first notification request handed to delivery within
//! moments, and that survives a kill -9 and restart without being handed again.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{Http, Server, TempDir};

async fn put(http: &Http, path: &str, body: Value) -> u16 {
    http.client
        .put(format!("{}{path}", http.url))
        .bearer_auth(&http.token)
        .json(&body)
        .send()
        .await
        .expect("PUT")
        .status()
        .as_u16()
}

/// Polls until the incident has a handed notification (at most 20 s).
async fn handed(http: &Http, incident: i64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, list) = http
            .get(&format!("/api/v1/incidents/{incident}/notifications"))
            .await;
        assert_eq!(status, 200, "{list}");
        let done: Vec<Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["status"] == "handed")
            .cloned()
            .collect();
        if !done.is_empty() {
            return done;
        }
        assert!(Instant::now() < deadline, "nothing handed: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_paged_by_the_running_server() {
    let dir = TempDir::new("paging");
    let server = Server::start(&dir.0, &[]);
    let token = server.token.clone().expect("first start prints a token");
    let http = Http::new(&server.url, &token);
    let (_, me) = http.get("/api/v1/me").await;
    let me = me["user"]["id"].as_i64().expect("my id");
    let (s, method) = http
        .post(
            &format!("/api/v1/users/{me}/contact-methods"),
            json!({ "kind": "push", "address": "ntfy:phone-1", "verified": true }),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{method}");
    let rules = json!({ "rules": [{ "urgency": "high", "contact_method_id": method["id"], "delay_minutes": 0 }],
                        "working_hours": null });
    assert_eq!(
        put(
            &http,
            &format!("/api/v1/users/{me}/notification-rules"),
            rules
        )
        .await,
        200
    );
    let (s, policy) = http
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "ops", "levels": [{ "targets": [{ "user": me }], "delay_minutes": 30 }] }),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{policy}");
    let (_, service) = http
        .post("/api/v1/services", json!({ "name": "web" }))
        .await
        .unwrap();
    let sid = service["id"].as_i64().unwrap();
    assert_eq!(
        put(
            &http,
            &format!("/api/v1/services/{sid}/escalation-policy"),
            json!({ "escalation_policy_id": policy["id"] })
        )
        .await,
        200
    );
    let (_, key) = http
        .post(
            &format!("/api/v1/services/{sid}/integration-keys"),
            json!({ "name": "am" }),
        )
        .await
        .unwrap();
    let (s, _) = http
        .post(
            "/v2/enqueue",
            json!({ "routing_key": key["secret"], "event_action": "trigger", "dedup_key": "web-down",
                    "payload": { "summary": "web down", "source": "lb", "severity": "critical" } }),
        )
        .await
        .unwrap();
    assert_eq!(s, 202);
    let (_, list) = http.get("/api/v1/incidents").await;
    let incident = list["items"][0]["id"].as_i64().expect("an incident");
    let first = handed(&http, incident).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["user_id"], me);
    assert_eq!(first[0]["contact_kind"], "push");

    // After kill -9 and a restart, the step is not run again.
    server.kill9();
    let server = Server::start(&dir.0, &[]);
    let http = Http::new(&server.url, &token);
    let (_, esc) = http
        .get(&format!("/api/v1/incidents/{incident}/escalation"))
        .await;
    assert_eq!(esc["phase"], "running");
    assert_eq!(
        esc["next_level"], 0,
        "next is the second pass's level 0, in 30 minutes"
    );
    let (_, list) = http
        .get(&format!("/api/v1/incidents/{incident}/notifications"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    server.terminate();
}
