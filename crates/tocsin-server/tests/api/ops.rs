//! Health, readiness and metrics.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

async fn health_readiness_and_metrics(app: TestApp) {
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    for _ in 0..3 {
        app.declare(json!({ "title": "m" })).await;
    }
    let id = app.declare(json!({ "title": "acked" })).await["id"]
        .as_i64()
        .unwrap();
    app.move_to(id, "acknowledged").await;
    let r = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(r.bytes).unwrap();
    assert!(
        text.contains("tocsin_incidents{status=\"triggered\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("tocsin_incidents{status=\"acknowledged\"} 1"),
        "{text}"
    );
    assert!(text.contains("tocsin_http_requests_total{method=\"POST\",route=\"/api/v1/incidents\",status=\"201\"} 4"), "{text}");
    assert!(text.contains("tocsin_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/incidents/{id}/status\"} 1"), "{text}");
    assert!(text.contains("tocsin_up 1"));
    // The route template is the label, never the raw path with its ids.
    assert!(
        !text.contains(&format!("/api/v1/incidents/{id}/")),
        "{text}"
    );
}

crate::both_backends!(health_readiness_and_metrics);

// The alert writer's counters: what each committed event did, batches, the queue.
async fn metrics_count_what_inbound_events_did(app: TestApp) {
    let (_, key) = crate::ingest::service_with_key(&app, "metered").await;
    let send = |action: &str, dedup: &str| {
        json!({ "routing_key": key, "event_action": action, "dedup_key": dedup,
                "payload": { "summary": "s", "source": "h", "severity": "error" } })
    };
    for body in [
        send("trigger", "a"),
        send("trigger", "a"),
        send("trigger", "a"),
        send("trigger", "b"),
        send("resolve", "b"),
        send("resolve", "never-opened"),
    ] {
        let r = app
            .call(Method::POST, "/v2/enqueue", None, Some(body))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    let text =
        String::from_utf8(app.call(Method::GET, "/metrics", None, None).await.bytes).unwrap();
    for line in [
        "tocsin_alert_events_total{outcome=\"opened\"} 2",
        "tocsin_alert_events_total{outcome=\"repeated\"} 2",
        "tocsin_alert_events_total{outcome=\"updated\"} 1",
        "tocsin_alert_events_total{outcome=\"dropped\"} 1",
        "tocsin_alert_events_total{outcome=\"suppressed\"} 0",
        "tocsin_alert_batches_failed_total 0",
        "tocsin_alert_queue 0",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    let batches: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tocsin_alert_batches_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&batches), "{batches}");
}

crate::both_backends!(metrics_count_what_inbound_events_did);
