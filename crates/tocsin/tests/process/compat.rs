//! Real clients, unchanged but for their base URL, talking to Tocsin.

use std::process::Command;

use serde_json::{json, Value};

use crate::server::{Http, Server, TempDir};

const PAGERDUTY_CLIENT: &str = r#"
import json, sys
import pagerduty
def connect(routing_key):
    c = pagerduty.EventsApiV2Client(routing_key)
    # The client's setter accepts only https:// (production Tocsin sits behind TLS);
    # the test server is plain HTTP on loopback, so the base URL is set directly.
    c._url = sys.argv[2]
    return c
client = connect(sys.argv[1])
key = client.trigger("Disk full on db-1", "db-1.prod", dedup_key="disk-db-1", severity="error",
                     custom_details={"free_mb": 12}, links=[{"href": "https://grafana.example.com/d/db", "text": "Dashboard"}])
again = client.trigger("Disk full on db-1", "db-1.prod", dedup_key="disk-db-1", severity="error")
client.acknowledge(key)
client.resolve(key)
generated = client.trigger("Queue backlog", "worker-3", severity="warning")
try:
    connect("0" * 32).trigger("x", "y")
    refused = None
except Exception as e:
    refused = type(e).__name__
print(json.dumps({"key": key, "again": again, "generated": generated, "refused": refused}))
"#;

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_official_python_client() {
    if !python_has("pagerduty") {
        // .ci/run installs it; elsewhere: python3 -m pip install pagerduty
        eprintln!("skipped: the Python package `pagerduty` is not installed");
        return;
    }
    let dir = TempDir::new("pd-client");
    let server = Server::start(&dir.0, &[]);
    let http = Http::new(&server.url, server.token.as_deref().unwrap());
    let (_, svc) = http
        .post("/api/v1/services", json!({ "name": "db" }))
        .await
        .unwrap();
    let svc = svc["id"].as_i64().unwrap();
    let (_, key) = http
        .post(
            &format!("/api/v1/services/{svc}/integration-keys"),
            json!({ "name": "pd-client" }),
        )
        .await
        .unwrap();
    let routing_key = key["secret"].as_str().unwrap().to_string();
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", PAGERDUTY_CLIENT, &routing_key, &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("client output");
    assert_eq!(result["key"], "disk-db-1");
    assert_eq!(result["again"], "disk-db-1");
    assert_eq!(
        result["generated"].as_str().unwrap().len(),
        32,
        "a generated dedup key is returned"
    );
    assert!(
        result["refused"].is_string(),
        "an unknown routing key is an error for the client: {result}"
    );

    let (_, alerts) = http.get(&format!("/api/v1/alerts?service_id={svc}")).await;
    let alerts = alerts["items"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let disk = alerts
        .iter()
        .find(|a| a["dedup_key"] == "disk-db-1")
        .unwrap();
    assert_eq!(
        (disk["status"].as_str(), disk["count"].as_i64()),
        (Some("resolved"), Some(2))
    );
    assert_eq!(disk["details"]["free_mb"], 12);
    assert_eq!(disk["links"][0]["text"], "Dashboard");
    let (_, inc) = http
        .get(&format!("/api/v1/incidents/{}", disk["incident_id"]))
        .await;
    assert_eq!(inc["status"], "resolved");
    let queue = alerts
        .iter()
        .find(|a| a["dedup_key"] == result["generated"])
        .unwrap();
    assert_eq!(
        (queue["status"].as_str(), queue["severity"].as_str()),
        (Some("triggered"), Some("warning"))
    );
}
