//! Notifications survive kill -9 of the server mid-delivery: after a restart,
//! every requested notification reaches the receiver, and the only ones that
//! arrive twice are those the server was inside the call for when it died
//! (the documented at-least-once case), each with its idempotency key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::server::{Http, Server, TempDir};

const ALERTS: usize = 20;
/// Requests the receiver answers before it starts hanging.
const ANSWERED: usize = 5;
/// The webhook channel's concurrency: this many calls hang when the server dies.
const IN_FLIGHT: usize = 4;

#[derive(Clone, Default)]
struct Receiver {
    // Every request's idempotency key, in arrival order.
    keys: Arc<Mutex<Vec<String>>>,
    // Keys of requests held open (the server is inside the call).
    hung: Arc<Mutex<BTreeSet<String>>>,
    // After the kill: answer everything.
    healthy: Arc<AtomicBool>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> &'static str {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let n = {
        let mut keys = r.keys.lock().unwrap();
        keys.push(key.clone());
        keys.len()
    };
    if n > ANSWERED && !r.healthy.load(Ordering::SeqCst) {
        r.hung.lock().unwrap().insert(key);
        std::future::pending::<()>().await;
    }
    "ok"
}

async fn put(http: &Http, path: &str, body: Value) {
    let r = http
        .client
        .put(format!("{}{path}", http.url))
        .bearer_auth(&http.token)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status().as_u16(), 200, "{path}");
}

/// Notification deliveries of every incident, by state.
async fn deliveries(http: &Http) -> BTreeMap<String, usize> {
    let (_, list) = http.get("/api/v1/incidents?limit=100").await;
    let mut states = BTreeMap::new();
    for inc in list["items"].as_array().unwrap() {
        let (_, n) = http
            .get(&format!("/api/v1/incidents/{}/notifications", inc["id"]))
            .await;
        for x in n.as_array().unwrap() {
            let state = x["delivery"].as_str().unwrap_or("none").to_string();
            *states.entry(state).or_default() += 1;
        }
    }
    states
}

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_delivery_loses_nothing_and_repeats_only_calls_in_flight() {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let dir = TempDir::new("delivery");
    let config = dir.0.join("tocsin.toml");
    std::fs::write(
        &config,
        format!(
            "[notify.webhook]\nsecret = \"kill-test\"\n\
             [notify.limits.webhook]\nconcurrency = {IN_FLIGHT}\ntimeout_seconds = 30\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let data = dir.0.join("data");
    let server = Server::start(&data, &["--config", &config]);
    let token = server.token.clone().expect("first start prints a token");
    let http = Http::new(&server.url, &token);
    let (_, me) = http.get("/api/v1/me").await;
    let me = me["user"]["id"].as_i64().unwrap();
    let (s, method) = http
        .post(
            &format!("/api/v1/users/{me}/contact-methods"),
            json!({ "kind": "webhook", "address": hook, "verified": true }),
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{method}");
    put(
        &http,
        &format!("/api/v1/users/{me}/notification-rules"),
        json!({ "rules": [{ "urgency": "high", "contact_method_id": method["id"], "delay_minutes": 0 }] }),
    )
    .await;
    let (_, policy) = http
        .post(
            "/api/v1/escalation-policies",
            json!({ "name": "ops", "levels": [{ "targets": [{ "user": me }], "delay_minutes": 30 }] }),
        )
        .await
        .unwrap();
    let (_, service) = http
        .post("/api/v1/services", json!({ "name": "web" }))
        .await
        .unwrap();
    let sid = service["id"].as_i64().unwrap();
    put(
        &http,
        &format!("/api/v1/services/{sid}/escalation-policy"),
        json!({ "escalation_policy_id": policy["id"] }),
    )
    .await;
    let (_, key) = http
        .post(
            &format!("/api/v1/services/{sid}/integration-keys"),
            json!({ "name": "am" }),
        )
        .await
        .unwrap();
    for i in 0..ALERTS {
        let (s, _) = http
            .post(
                "/v2/enqueue",
                json!({ "routing_key": key["secret"], "event_action": "trigger",
                        "dedup_key": format!("host-{i}"),
                        "payload": { "summary": format!("host {i} down"), "source": "lb",
                                     "severity": "critical" } }),
            )
            .await
            .unwrap();
        assert_eq!(s, 202);
    }
    // Five answered and recorded, four calls open inside the server: kill it there.
    wait_for("answered sends recorded and calls in flight", async || {
        receiver.hung.lock().unwrap().len() == IN_FLIGHT
            && deliveries(&http).await.get("sent") == Some(&ANSWERED)
    })
    .await;
    let in_flight = receiver.hung.lock().unwrap().clone();
    server.kill9();
    receiver.healthy.store(true, Ordering::SeqCst);

    let server = Server::start(&data, &["--config", &config]);
    let http = Http::new(&server.url, &token);
    wait_for("every notification sent", async || {
        deliveries(&http).await.get("sent") == Some(&ALERTS)
    })
    .await;
    let keys = receiver.keys.lock().unwrap().clone();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &keys {
        assert!(!k.is_empty(), "every request carries its idempotency key");
        *counts.entry(k.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), ALERTS, "every notification arrived");
    let twice: BTreeSet<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.to_string())
        .collect();
    assert!(counts.values().all(|n| *n <= 2), "{counts:?}");
    assert_eq!(
        twice, in_flight,
        "only the calls in flight at the kill are repeated"
    );
    server.terminate();
    let _ = stop.send(());
    let _ = serving.await;
}
