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
