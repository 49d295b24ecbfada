//! Configuration snippets for an integration: how to point curl, Alertmanager and
//! Grafana at it. With the secret when it is known (just created), else with the
//! placeholder `<integration key>`.

use axum::http::header::HOST;
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Stands in for the secret, which is shown only when the key is created.
pub(crate) const PLACEHOLDER: &str = "<integration key>";

/// Where to send events with this integration, and ready-to-paste configuration.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Snippets {
    /// PagerDuty Events API v2 endpoint (the key goes in `routing_key`).
    pub(crate) events_v2_url: String,
    /// Alertmanager webhook receiver URL.
    pub(crate) alertmanager_url: String,
    /// Grafana webhook contact point URL.
    pub(crate) grafana_url: String,
    /// Generic JSON webhook URL.
    pub(crate) webhook_url: String,
    /// A trigger sent with curl to the Events API v2.
    pub(crate) curl: String,
    /// A JSON payload sent with curl to the generic webhook.
    pub(crate) webhook_curl: String,
    /// Alertmanager receiver using `webhook_configs` (recommended).
    pub(crate) alertmanager_yaml: String,
    /// Alertmanager receiver using `pagerduty_configs` pointed at Tocsin.
    pub(crate) alertmanager_pagerduty_yaml: String,
    /// Grafana contact points (file provisioning): webhook, and PagerDuty pointed at Tocsin.
    pub(crate) grafana_yaml: String,
}

/// The base URL senders reach this instance at: `public_url`, else the request's host.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let base = match &state.public_url {
        Some(u) => u.clone(),
        None => {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
                })
                .unwrap_or("localhost:8080");
            format!("http://{host}")
        }
    };
    base.trim_end_matches('/').to_string()
}

// A double-quoted YAML scalar: JSON's string syntax is valid YAML.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

// A single-quoted shell word.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The snippets for integration `id` at `base`, with `key` (the secret or the placeholder).
pub(crate) fn snippets(base: &str, id: i64, key: &str) -> Snippets {
    let events_v2_url = format!("{base}/v2/enqueue");
    let alertmanager_url = format!("{base}/integrations/alertmanager/{key}");
    let grafana_url = format!("{base}/integrations/grafana/{key}");
    let webhook_url = format!("{base}/integrations/webhook/{key}");
    let event = serde_json::json!({
        "routing_key": key, "event_action": "trigger", "dedup_key": "disk-full-db-1",
        "payload": { "summary": "Disk full on db-1", "source": "db-1", "severity": "critical" }
    });
    let curl = format!(
        "curl -X POST {} \\\n  -H 'Content-Type: application/json' \\\n  -d {}",
        sh(&events_v2_url),
        sh(&event.to_string())
    );
    let sample = serde_json::json!({ "title": "Disk full on db-1", "severity": "critical", "host": "db-1", "status": "firing" });
    let webhook_curl = format!(
        "curl -X POST {} \\\n  -H 'Content-Type: application/json' \\\n  -d {}",
        sh(&webhook_url),
        sh(&sample.to_string())
    );
    let alertmanager_yaml = format!(
        "receivers:\n  - name: tocsin\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
        q(&alertmanager_url)
    );
    let alertmanager_pagerduty_yaml = format!(
        "receivers:\n  - name: tocsin-pagerduty\n    pagerduty_configs:\n      - routing_key: {}\n        url: {}\n        send_resolved: true\n",
        q(key),
        q(&events_v2_url)
    );
    let grafana_yaml = format!(
        "apiVersion: 1\ncontactPoints:\n  - orgId: 1\n    name: tocsin\n    receivers:\n      - uid: tocsin-webhook-{id}\n        type: webhook\n        settings:\n          url: {}\n          httpMethod: POST\n  - orgId: 1\n    name: tocsin-pagerduty\n    receivers:\n      - uid: tocsin-pagerduty-{id}\n        type: pagerduty\n        settings:\n          integrationKey: {}\n          url: {}\n",
        q(&grafana_url),
        q(key),
        q(&events_v2_url)
    );
    Snippets {
        events_v2_url,
        alertmanager_url,
        grafana_url,
        webhook_url,
        curl,
        webhook_curl,
        alertmanager_yaml,
        alertmanager_pagerduty_yaml,
        grafana_yaml,
    }
}
