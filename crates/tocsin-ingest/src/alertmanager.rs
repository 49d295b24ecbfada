//! Prometheus Alertmanager's webhook (`webhook_configs`, payload version 4), and
//! Grafana alerting's webhook contact point, which sends the same shape with a
//! few more fields (`silenceURL`, `dashboardURL`, `panelURL`, `values`).
//!
//! Each alert in the group becomes one event: `firing` triggers, `resolved`
//! resolves, and the alert's `fingerprint` is its dedup key, so repeats of a group
//! notification count instead of multiplying.

use serde_json::{json, Map, Value};
use tocsin_core::alert::{
    AlertAction, AlertEvent, AlertLink, AlertSeverity, DedupKey, MAX_SUMMARY,
};
use tocsin_core::Invalid;

/// Largest notification accepted.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Most alerts in one notification.
pub const MAX_ALERTS: usize = 10_000;

/// Which sender the payload came from; only the integration name differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Prometheus Alertmanager.
    Alertmanager,
    /// Grafana alerting.
    Grafana,
}

/// One parsed alert with its own JSON, kept as the raw payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The normalized event.
    pub event: AlertEvent,
    /// The alert's object from the notification.
    pub raw: String,
}

fn str_map(v: Option<&Value>, field: &str) -> Result<Map<String, Value>, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if !v.is_string() {
                    return Err(Invalid::new(format!("{field}.{k}"), "must be a string"));
                }
            }
            Ok(m.clone())
        }
        Some(_) => Err(Invalid::new(field, "must be an object of strings")),
    }
}

/// Maps the usual `severity` label values to the four levels; unknown ones are errors.
pub fn severity_from_label(s: Option<&str>) -> AlertSeverity {
    match s.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("critical" | "crit" | "page" | "p1" | "fatal" | "emergency" | "alert") => {
            AlertSeverity::Critical
        }
        Some("warning" | "warn" | "medium" | "p3") => AlertSeverity::Warning,
        Some("info" | "informational" | "low" | "none" | "notice" | "p4" | "p5") => {
            AlertSeverity::Info
        }
        _ => AlertSeverity::Error,
    }
}

// Alertmanager always sends a fingerprint; a stable stand-in from the sorted labels
// keeps dedup working for senders that do not.
fn fingerprint(labels: &Map<String, Value>) -> String {
    let mut pairs: Vec<(&String, &Value)> = labels.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let text: String = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}\u{1f}", v.as_str().unwrap_or("")))
        .collect();
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn link(href: Option<&Value>, text: &str) -> Option<AlertLink> {
    href.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|h| AlertLink {
            href: h.to_string(),
            text: Some(text.to_string()),
        })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect()
    }
}

/// Parses a notification into one event per alert, or the first problem found.
pub fn parse(body: &[u8], flavor: Flavor) -> Result<Vec<Parsed>, Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Invalid::new("body", format!("not valid JSON: {e}")))?;
    let Value::Object(top) = value else {
        return Err(Invalid::new("body", "must be a JSON object"));
    };
    let alerts = match top.get("alerts") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Invalid::new("alerts", "must be an array")),
        None => return Err(Invalid::new("alerts", "is missing")),
    };
    if alerts.len() > MAX_ALERTS {
        return Err(Invalid::new(
            "alerts",
            format!("at most {MAX_ALERTS} alerts in one notification"),
        ));
    }
    let common = str_map(top.get("commonLabels"), "commonLabels")?;
    let external = top.get("externalURL").cloned().unwrap_or(Value::Null);
    let integration = match flavor {
        Flavor::Alertmanager => "alertmanager",
        Flavor::Grafana => "grafana",
    };
    let mut out = Vec::with_capacity(alerts.len());
    for (i, a) in alerts.iter().enumerate() {
        let field = |f: &str| format!("alerts[{i}].{f}");
        let Value::Object(obj) = a else {
            return Err(Invalid::new(format!("alerts[{i}]"), "must be an object"));
        };
        let action = match obj.get("status").and_then(Value::as_str) {
            Some("firing") => AlertAction::Trigger,
            Some("resolved") => AlertAction::Resolve,
            Some(other) => {
                return Err(Invalid::new(
                    field("status"),
                    format!("must be firing or resolved, not `{other}`"),
                ))
            }
            None => return Err(Invalid::new(field("status"), "is missing")),
        };
        let mut labels = common.clone();
        labels.extend(str_map(obj.get("labels"), &field("labels"))?);
        let annotations = str_map(obj.get("annotations"), &field("annotations"))?;
        let fp = match obj.get("fingerprint") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => fingerprint(&labels),
            Some(_) => return Err(Invalid::new(field("fingerprint"), "must be a string")),
        };
        let dedup_key = DedupKey::parse(&field("fingerprint"), &fp)?;
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        let summary = annotations
            .get("summary")
            .or_else(|| annotations.get("description"))
            .and_then(Value::as_str)
            .or_else(|| label("alertname"))
            .unwrap_or("Alert")
            .to_string();
        let source = label("instance")
            .or_else(|| label("job"))
            .or_else(|| external.as_str())
            .unwrap_or(integration)
            .to_string();
        let mut links: Vec<AlertLink> = Vec::new();
        links.extend(link(obj.get("generatorURL"), "Source"));
        links.extend(link(obj.get("silenceURL"), "Silence"));
        links.extend(link(obj.get("dashboardURL"), "Dashboard"));
        links.extend(link(obj.get("panelURL"), "Panel"));
        links.extend(link(annotations.get("runbook_url"), "Runbook"));
        let mut details = json!({ "annotations": annotations, "startsAt": obj.get("startsAt"), "endsAt": obj.get("endsAt") });
        for k in ["groupKey", "receiver", "externalURL"] {
            if let Some(v) = top.get(k) {
                details[k] = v.clone();
            }
        }
        for k in ["values", "valueString"] {
            if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
                details[k] = v.clone();
            }
        }
        let event = AlertEvent {
            action,
            dedup_key,
            summary: truncate(&summary, MAX_SUMMARY),
            source,
            severity: severity_from_label(label("severity")),
            labels,
            details,
            links,
            integration,
        };
        out.push(Parsed {
            event,
            raw: a.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "receiver": "tocsin", "status": "firing",
      "alerts": [
        {"status": "firing", "labels": {"alertname": "ProbeFailure", "instance": "https://server.example.org", "severity": "critical"},
         "annotations": {"summary": "BlackBox Probe Failure: https://server.example.org", "runbook_url": "https://runbooks/probe"},
         "startsAt": "2023-02-06T13:08:45.828Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0", "fingerprint": "1a30ba71cca2921f"},
        {"status": "resolved", "labels": {"alertname": "ProbeFailure", "instance": "https://other.example.org"},
         "annotations": {}, "startsAt": "2023-02-06T13:08:45.828Z", "endsAt": "2023-02-06T13:20:00Z", "fingerprint": "2b41"}
      ],
      "groupLabels": {"alertname": "ProbeFailure"}, "commonLabels": {"alertname": "ProbeFailure", "job": "http_checks"},
      "commonAnnotations": {}, "externalURL": "http://prometheus.example.org:9093", "version": "4",
      "groupKey": "{}:{alertname=\"ProbeFailure\"}", "truncatedAlerts": 0}"#;

    #[test]
    fn each_alert_becomes_an_event() {
        let out = parse(SAMPLE.as_bytes(), Flavor::Alertmanager).unwrap();
        assert_eq!(out.len(), 2);
        let a = &out[0].event;
        assert_eq!(
            (a.action, a.dedup_key.as_str(), a.severity),
            (
                AlertAction::Trigger,
                "1a30ba71cca2921f",
                AlertSeverity::Critical
            )
        );
        assert_eq!(
            a.summary,
            "BlackBox Probe Failure: https://server.example.org"
        );
        assert_eq!(a.source, "https://server.example.org");
        assert_eq!(
            a.labels["job"], "http_checks",
            "common labels apply to every alert"
        );
        assert_eq!(a.links[0].text.as_deref(), Some("Source"));
        assert_eq!(a.links[1].href, "https://runbooks/probe");
        assert_eq!(a.details["groupKey"], "{}:{alertname=\"ProbeFailure\"}");
        let b = &out[1].event;
        assert_eq!(
            (b.action, b.summary.as_str(), b.severity),
            (AlertAction::Resolve, "ProbeFailure", AlertSeverity::Error)
        );
    }

    #[test]
    fn fingerprints_are_stable_when_missing() {
        let body = r#"{"alerts": [{"status": "firing", "labels": {"b": "2", "a": "1"}}, {"status": "firing", "labels": {"a": "1", "b": "2"}}]}"#;
        let out = parse(body.as_bytes(), Flavor::Grafana).unwrap();
        assert_eq!(out[0].event.dedup_key, out[1].event.dedup_key);
        assert_eq!(out[0].event.integration, "grafana");
    }

    #[test]
    fn problems_name_the_field() {
        let bad = |b: &str| parse(b.as_bytes(), Flavor::Alertmanager).unwrap_err().field;
        assert_eq!(bad("{"), "body");
        assert_eq!(bad("[]"), "body");
        assert_eq!(bad("{}"), "alerts");
        assert_eq!(bad(r#"{"alerts": {}}"#), "alerts");
        assert_eq!(
            bad(r#"{"alerts": [{"status": "pending"}]}"#),
            "alerts[0].status"
        );
        assert_eq!(
            bad(r#"{"alerts": [{"status": "firing", "labels": {"x": 1}}]}"#),
            "alerts[0].labels.x"
        );
        assert_eq!(
            bad(r#"{"alerts": [{"status": "firing", "fingerprint": 7}]}"#),
            "alerts[0].fingerprint"
        );
    }

    #[test]
    fn severity_labels() {
        assert_eq!(severity_from_label(Some("PAGE")), AlertSeverity::Critical);
        assert_eq!(severity_from_label(Some("warn")), AlertSeverity::Warning);
        assert_eq!(severity_from_label(Some("none")), AlertSeverity::Info);
        assert_eq!(severity_from_label(None), AlertSeverity::Error);
    }
}
