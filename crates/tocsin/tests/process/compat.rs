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

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A running Alertmanager, stopped on drop.
struct Alertmanager(std::process::Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it holds or `secs` pass; Alertmanager delivers on its own schedule.
async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alertmanager_webhook_and_pagerduty_receivers() {
    if !std::path::Path::new(ALERTMANAGER).exists() {
        // .ci/run installs it; elsewhere: apt-get install prometheus-alertmanager
        eprintln!("skipped: {ALERTMANAGER} is not installed");
        return;
    }
    let dir = TempDir::new("alertmanager");
    let server = Server::start(&dir.0, &[]);
    let http = Http::new(&server.url, server.token.as_deref().unwrap());
    let (_, svc) = http
        .post("/api/v1/services", json!({ "name": "prod" }))
        .await
        .unwrap();
    let svc = svc["id"].as_i64().unwrap();
    let mut keys = Vec::new();
    for name in ["am-webhook", "am-pagerduty"] {
        let (_, k) = http
            .post(
                &format!("/api/v1/services/{svc}/integration-keys"),
                json!({ "name": name }),
            )
            .await
            .unwrap();
        keys.push(k["secret"].as_str().unwrap().to_string());
    }
    let config = format!(
        r#"route:
  receiver: tocsin-webhook
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['via="pagerduty"']
      receiver: tocsin-pagerduty
receivers:
  - name: tocsin-webhook
    webhook_configs:
      - url: {url}/integrations/alertmanager/{webhook_key}
        send_resolved: true
  - name: tocsin-pagerduty
    pagerduty_configs:
      - routing_key: {pd_key}
        url: {url}/v2/enqueue
        send_resolved: true
"#,
        url = server.url,
        webhook_key = keys[0],
        pd_key = keys[1]
    );
    let config_path = dir.0.join("alertmanager.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let am_url = format!("http://127.0.0.1:{port}");
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.path={}",
            dir.0.join("am-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let _am = Alertmanager(child);
    let client = reqwest::Client::new();
    eventually(30, "Alertmanager to be ready", async || {
        client
            .get(format!("{am_url}/-/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    let post_alerts = |ends_at: Option<String>| {
        let mut alerts = json!([
            { "labels": { "alertname": "DiskFull", "instance": "db-1", "severity": "critical" },
              "annotations": { "summary": "Disk full on db-1" }, "generatorURL": "http://prometheus:9090/graph" },
            { "labels": { "alertname": "LatencyHigh", "via": "pagerduty", "severity": "warning" },
              "annotations": { "summary": "p99 latency high" } }
        ]);
        if let Some(t) = ends_at {
            for a in alerts.as_array_mut().unwrap() {
                a["endsAt"] = json!(t);
            }
        }
        let (client, am_url) = (client.clone(), am_url.clone());
        async move {
            let r = client
                .post(format!("{am_url}/api/v2/alerts"))
                .json(&alerts)
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success(),
                "alertmanager refused the alerts: {}",
                r.status()
            );
        }
    };
    post_alerts(None).await;
    let alerts_of = |integration: &'static str, status: &'static str| {
        let http = &http;
        async move {
            let (_, page) = http.get(&format!("/api/v1/alerts?service_id={svc}")).await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["integration"] == integration && a["status"] == status)
                .count()
        }
    };
    eventually(30, "both receivers to deliver", async || {
        alerts_of("alertmanager", "triggered").await == 1
            && alerts_of("pagerduty", "triggered").await == 1
    })
    .await;
    let (_, page) = http.get(&format!("/api/v1/alerts?service_id={svc}")).await;
    let disk = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["integration"] == "alertmanager")
        .unwrap()
        .clone();
    assert_eq!(disk["summary"], "Disk full on db-1");
    assert_eq!(disk["severity"], "critical");
    assert_eq!(disk["labels"]["instance"], "db-1");
    assert_eq!(disk["links"][0]["href"], "http://prometheus:9090/graph");
    let (_, inc) = http
        .get(&format!("/api/v1/incidents/{}", disk["incident_id"]))
        .await;
    assert_eq!(inc["status"], "triggered");

    // Alerts that end are sent as resolved by both receivers.
    let past = (tocsin_core::time::Clock::now(&tocsin_core::time::SystemClock)
        - chrono::Duration::seconds(1))
    .to_rfc3339();
    post_alerts(Some(past)).await;
    eventually(30, "both receivers to resolve", async || {
        alerts_of("alertmanager", "resolved").await == 1
            && alerts_of("pagerduty", "resolved").await == 1
    })
    .await;
    let (_, inc) = http
        .get(&format!("/api/v1/incidents/{}", disk["incident_id"]))
        .await;
    assert_eq!(inc["status"], "resolved");
}
