//! Alerts as the sources sent them: the list (filters, pages) and one alert
//! with every normalized field and its raw payload. Silences and maintenance
//! windows, which hold alerts back, are in `alerts/suppression.rs`.

mod suppression;

pub(crate) use suppression::{local_input, local_time};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use tocsin_core::alert::AlertStatus;
use tocsin_core::model::Service;

use super::common::{invalid, page, Chrome, WebResult};
use super::dashboard::{alert_rows, AlertRow};
use super::session::AsViewer;
use crate::api::path_id;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/{id}", get(detail))
        .merge(suppression::routes())
}

/// A choice in a `<select>`.
pub(crate) struct Opt {
    pub value: String,
    pub label: String,
}

/// A form or query value with blanks as absent.
pub(crate) fn some(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Every service as a choice, by name.
pub(crate) async fn service_opts(state: &AppState) -> WebResult<Vec<Opt>> {
    Ok(choices(&state.store.services().await?))
}

fn choices(services: &[Service]) -> Vec<Opt> {
    services
        .iter()
        .map(|s| Opt {
            value: s.id.to_string(),
            label: s.name.clone(),
        })
        .collect()
}

/// The list's query, as its filter form sends it.
#[derive(Debug, Default, Deserialize)]
struct ListForm {
    service_id: Option<String>,
    status: Option<String>,
    /// `yes`: only alerts held by a silence, maintenance window or flapping; `no`: only those not.
    held: Option<String>,
    /// The id the page starts below (newest first).
    before_id: Option<String>,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<AlertRow>,
    services: Vec<Opt>,
    service_id: String,
    status: String,
    held: String,
    next: Option<String>,
    first: Option<String>,
}

const PAGE: i64 = 50;

fn query_string(f: &ListForm, before: Option<i64>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("service_id", &f.service_id),
        ("status", &f.status),
        ("held", &f.held),
    ] {
        if let Some(v) = some(v) {
            q.append_pair(k, &v);
        }
    }
    if let Some(b) = before {
        q.append_pair("before_id", &b.to_string());
    }
    q.finish()
}

fn opt_id(field: &str, v: &Option<String>) -> WebResult<Option<i64>> {
    some(v)
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| invalid(field, format!("`{s}` is not an id")))
        })
        .transpose()
}

async fn list(
    State(state): State<AppState>,
    who: AsViewer,
    Query(f): Query<ListForm>,
) -> WebResult<Response> {
    let chrome = Chrome::new(&who.0, "alerts", "Alerts").live("alerts");
    let status = match some(&f.status) {
        None => None,
        Some(s) => Some(AlertStatus::parse(&s).ok_or_else(|| {
            invalid(
                "status",
                format!("`{s}` is not one of: triggered, acknowledged, resolved"),
            )
        })?),
    };
    let held = match some(&f.held).as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(s) => return Err(invalid("held", format!("`{s}` is not yes or no"))),
    };
    let before = opt_id("before_id", &f.before_id)?;
    let mut alerts = state
        .store
        .alerts(
            opt_id("service_id", &f.service_id)?,
            status,
            None,
            held,
            before,
            PAGE + 1,
        )
        .await?;
    let services = state.store.services().await?;
    let more = alerts.len() as i64 > PAGE;
    alerts.truncate(PAGE as usize);
    let next = more
        .then(|| alerts.last().map(|a| a.id))
        .flatten()
        .map(|id| format!("/alerts?{}", query_string(&f, Some(id))));
    let body = ListPage {
        rows: alert_rows(
            &chrome,
            &services.iter().map(|s| (s.id, s.name.clone())).collect(),
            &alerts,
        ),
        services: choices(&services),
        service_id: some(&f.service_id).unwrap_or_default(),
        status: some(&f.status).unwrap_or_default(),
        held: some(&f.held).unwrap_or_default(),
        next,
        first: before.map(|_| format!("/alerts?{}", query_string(&f, None))),
        chrome,
    };
    Ok(page(&body))
}

/// A link an alert carries; only http(s) ones become links on the page.
struct LinkView {
    href: String,
    text: String,
    safe: bool,
}

/// Why an alert is held, and where to see the thing holding it.
struct Held {
    text: String,
    href: Option<String>,
}

#[derive(Template)]
#[template(path = "alert.html")]
struct DetailPage {
    chrome: Chrome,
    id: i64,
    summary: String,
    status: &'static str,
    severity: &'static str,
    service_id: i64,
    service: String,
    dedup_key: String,
    source: String,
    integration: String,
    count: i64,
    first_seen: String,
    last_seen: String,
    resolved: Option<String>,
    incident: Option<(String, String)>,
    held: Option<Held>,
    labels: Vec<(String, String)>,
    links: Vec<LinkView>,
    details: Option<String>,
    raw: String,
}

/// A label's value as text: strings as they are, anything else as JSON.
fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_web_link(href: &str) -> bool {
    let h = href.trim_start().to_ascii_lowercase();
    h.starts_with("https://") || h.starts_with("http://")
}

fn held(by: &str) -> Held {
    let href = match by.split_once(':') {
        Some(("silence", id)) => Some(format!("/alerts/silences#silence-{id}")),
        Some(("maintenance", id)) => Some(format!("/alerts/maintenance#window-{id}")),
        _ => None,
    };
    let text = match by.split_once(':') {
        Some(("silence", id)) => format!("silence {id}"),
        Some(("maintenance", id)) => format!("maintenance window {id}"),
        _ => by.to_string(),
    };
    Held { text, href }
}

/// The raw payload, pretty-printed when it is JSON (an email is shown as it came).
fn pretty(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_string())
}

async fn detail(
    State(state): State<AppState>,
    who: AsViewer,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let (a, raw) = state.store.alert(path_id("id", &id)?).await?;
    let service = state.store.service(a.service_id).await?;
    let chrome = Chrome::new(&who.0, "alerts", format!("Alert {}", a.id));
    let details = match &a.details {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => None,
        d => serde_json::to_string_pretty(d).ok(),
    };
    let body = DetailPage {
        id: a.id,
        summary: a.summary.clone(),
        status: a.status.as_str(),
        severity: a.severity.as_str(),
        service_id: a.service_id,
        service: service.name,
        dedup_key: a.dedup_key.clone(),
        source: a.source.clone(),
        integration: a.integration.clone(),
        count: a.count,
        first_seen: chrome.time(&a.first_seen),
        last_seen: chrome.time(&a.last_seen),
        resolved: a.resolved_at.as_ref().map(|t| chrome.time(t)),
        incident: a.incident_id.map(|i| {
            let n = tocsin_core::incident::format_number(i);
            (n.clone(), n)
        }),
        held: a.suppressed_by.as_deref().map(held),
        labels: a
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), label_text(v)))
            .collect(),
        links: a
            .links
            .iter()
            .map(|l| LinkView {
                safe: is_web_link(&l.href),
                text: l.text.clone().unwrap_or_else(|| l.href.clone()),
                href: l.href.clone(),
            })
            .collect(),
        details,
        raw: pretty(&raw),
        chrome,
    };
    Ok(page(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_links_are_links() {
        assert!(is_web_link("https://grafana.example/d/1"));
        assert!(is_web_link("HTTP://x"));
        assert!(!is_web_link("javascript:alert(1)"));
        assert!(!is_web_link(" data:text/html,<b>"));
        assert!(!is_web_link("//evil.example"));
    }

    #[test]
    fn raw_payloads_are_pretty_when_json() {
        assert_eq!(pretty("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(pretty("Subject: hi"), "Subject: hi");
    }
}
