//! A 2xx means committed: the data survives kill -9, and SIGTERM drains in-flight requests.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::server::{Http, Server, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_nothing_that_was_acknowledged() {
    let dir = TempDir::new("kill9");
    let server = Server::start(&dir.0, &[]);
    let token = server.token.clone().expect("first start prints a token");
    let http = Http::new(&server.url, &token);
    let mut written = Vec::new();
    for i in 0..50 {
        let (status, inc) = http
            .post(
                "/api/v1/incidents",
                json!({ "title": format!("durable {i}"), "labels": [format!("l{i}")] }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{inc}");
        let id = inc["id"].as_i64().unwrap();
        let (status, note) = http
            .post(
                &format!("/api/v1/incidents/{id}/notes"),
                json!({ "body": format!("note {i}") }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{note}");
        written.push(inc);
    }
    server.kill9();

    let server = Server::start(&dir.0, &[]);
    assert!(server.token.is_none(), "a restart must not bootstrap again");
    let http = Http::new(&server.url, &token);
    for inc in &written {
        let id = inc["id"].as_i64().unwrap();
        let (status, back) = http.get(&format!("/api/v1/incidents/{id}")).await;
        assert_eq!(status, 200, "INC-{id} lost after kill -9");
        assert_eq!(&back, inc, "INC-{id} changed after kill -9");
        let (_, notes) = http.get(&format!("/api/v1/incidents/{id}/notes")).await;
        assert_eq!(notes.as_array().unwrap().len(), 1, "note of INC-{id} lost");
    }
    let (_, page) = http.get("/api/v1/incidents?limit=500").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let dir = TempDir::new("sigterm");
    let server = Server::start(&dir.0, &[]);
    let token = server.token.clone().unwrap();
    let acked: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..8 {
        let http = Http::new(&server.url, &token);
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                match http
                    .post(
                        "/api/v1/incidents",
                        json!({ "title": format!("w{w} #{i}") }),
                    )
                    .await
                {
                    Ok((201, inc)) => acked.lock().unwrap().push(inc["id"].as_i64().unwrap()),
                    // Refused or cut off while the server stops: not acknowledged, fine.
                    _ => break,
                }
            }
        }));
    }
    // Stop while writers are busy.
    while acked.lock().unwrap().len() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 100);

    let server = Server::start(&dir.0, &[]);
    let http = Http::new(&server.url, &token);
    for id in &acked {
        let (status, _) = http.get(&format!("/api/v1/incidents/{id}")).await;
        assert_eq!(
            status, 200,
            "INC-{id} was acknowledged before shutdown but is missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_sustained_ingest_keeps_every_accepted_event() {
    let dir = TempDir::new("kill9-ingest");
    let server = Server::start(&dir.0, &[]);
    let token = server.token.clone().unwrap();
    let http = Http::new(&server.url, &token);
    let (_, svc) = http
        .post("/api/v1/services", json!({ "name": "ingest" }))
        .await
        .unwrap();
    let svc = svc["id"].as_i64().unwrap();
    let (_, key) = http
        .post(
            &format!("/api/v1/services/{svc}/integration-keys"),
            json!({ "name": "load" }),
        )
        .await
        .unwrap();
    let routing_key = key["secret"].as_str().unwrap().to_string();
    let accepted: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for s in 0..16 {
        let (http, accepted, routing_key) = (
            Http::new(&server.url, &token),
            accepted.clone(),
            routing_key.clone(),
        );
        senders.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let dedup = format!("s{s}-{i}");
                let event = json!({ "routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup,
                                    "payload": { "summary": "load", "source": "bench", "severity": "warning" } });
                match http.post("/v2/enqueue", event).await {
                    Ok((202, _)) => accepted.lock().unwrap().push(dedup),
                    _ => break,
                }
            }
        }));
    }
    // Kill in the middle of the stream, while batches are being committed.
    while accepted.lock().unwrap().len() < 2000 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill9();
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();

    let server = Server::start(&dir.0, &[]);
    let http = Http::new(&server.url, &token);
    let mut stored = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = http
            .get(&format!(
                "/api/v1/alerts?service_id={svc}&limit=500{cursor}"
            ))
            .await;
        assert_eq!(status, 200);
        stored.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["dedup_key"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let lost: Vec<&String> = accepted.iter().filter(|d| !stored.contains(*d)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted events lost after kill -9, e.g. {:?}",
        lost.len(),
        accepted.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "kill -9 during ingest: {} events accepted, all present after restart ({} stored)",
        accepted.len(),
        stored.len()
    );
}
