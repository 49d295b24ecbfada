//! PagerDuty Events API v2 (`POST /v2/enqueue`), as PagerDuty documents it:
//! `routing_key`, `event_action` trigger|acknowledge|resolve, `dedup_key` (at most
//! 255 characters; generated when a trigger has none), and for triggers a
//! `payload` with `summary` (at most 1024 characters), `source`, `severity`
//! critical|error|warning|info, optional `timestamp`, `component`, `group`,
//! `class`, `custom_details`, plus `images`, `links`, `client` and `client_url`.
//! Every problem found is listed, as PagerDuty's `errors` array does.

use rand::Rng;
use serde_json::{Map, Value};
use tocsin_core::alert::{
    AlertAction, AlertEvent, AlertLink, AlertSeverity, DedupKey, NewChange, MAX_SUMMARY,
};

/// PagerDuty's payload limit.
pub const MAX_BODY: usize = 512 * 1024;

/// A parsed event with the routing key that names its integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueue {
    /// The integration key.
    pub routing_key: String,
    /// The normalized event.
    pub event: AlertEvent,
}

/// Why an event was refused: PagerDuty's `errors` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub Vec<String>);

fn text<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    errors: &mut Vec<String>,
    required: bool,
) -> Option<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            if required {
                errors.push(format!("'{key}' is missing or blank"));
            }
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() && required => {
            errors.push(format!("'{key}' is missing or blank"));
            None
        }
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            errors.push(format!("'{key}' must be a string"));
            None
        }
    }
}

fn links(top: &Map<String, Value>, errors: &mut Vec<String>) -> Vec<AlertLink> {
    let mut out = Vec::new();
    for (field, url_key) in [("links", "href"), ("images", "src")] {
        match top.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let url = item.get(url_key).and_then(Value::as_str);
                    let label = item
                        .get("text")
                        .or_else(|| item.get("alt"))
                        .and_then(Value::as_str);
                    match url {
                        Some(u) if !u.is_empty() => out.push(AlertLink {
                            href: item
                                .get("href")
                                .and_then(Value::as_str)
                                .filter(|_| field == "images")
                                .unwrap_or(u)
                                .to_string(),
                            text: label.map(str::to_string),
                        }),
                        _ => errors.push(format!("'{field}[{i}].{url_key}' is missing or blank")),
                    }
                }
            }
            Some(_) => errors.push(format!("'{field}' must be an array")),
        }
    }
    if let (Some(Value::String(url)), client) = (
        top.get("client_url"),
        top.get("client").and_then(Value::as_str),
    ) {
        out.push(AlertLink {
            href: url.clone(),
            text: client.map(str::to_string),
        });
    }
    out
}

fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    // PagerDuty's own example uses +0000 (no colon), which RFC 3339 does not allow.
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn valid_timestamp(s: &str) -> bool {
    parse_timestamp(s).is_some()
}

/// Parses a `/v2/change/enqueue` body: `routing_key`, `payload.summary` (required,
/// at most 1024 characters), `payload.source`, `payload.timestamp`,
/// `payload.custom_details` and `links`.
pub fn parse_change(body: &[u8]) -> Result<(String, NewChange), Rejection> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Rejection(vec![format!("Invalid JSON: {e}")]))?;
    let Value::Object(top) = value else {
        return Err(Rejection(vec!["The event must be a JSON object".into()]));
    };
    let mut errors = Vec::new();
    let routing_key = text(&top, "routing_key", &mut errors, true).map(str::to_string);
    let mut change = NewChange {
        summary: String::new(),
        source: String::new(),
        occurred_at: None,
        details: Value::Null,
        links: Vec::new(),
    };
    match top.get("payload") {
        Some(Value::Object(p)) => {
            if let Some(s) = text(p, "summary", &mut errors, true) {
                if s.chars().count() > MAX_SUMMARY {
                    errors.push(format!(
                        "'payload.summary' must be at most {MAX_SUMMARY} characters"
                    ));
                }
                change.summary = s.to_string();
            }
            change.source = text(p, "source", &mut errors, false)
                .unwrap_or("")
                .to_string();
            if let Some(ts) = text(p, "timestamp", &mut errors, false) {
                change.occurred_at = parse_timestamp(ts);
                if change.occurred_at.is_none() {
                    errors.push(format!(
                        "'payload.timestamp' is not an ISO 8601 time: '{ts}'"
                    ));
                }
            }
            change.details = p.get("custom_details").cloned().unwrap_or(Value::Null);
        }
        Some(_) => errors.push("'payload' must be an object".into()),
        None => errors.push("'payload' is missing; a change needs payload.summary".into()),
    }
    change.links = links(&top, &mut errors);
    match (errors.is_empty(), routing_key) {
        (true, Some(k)) => Ok((k, change)),
        _ => Err(Rejection(errors)),
    }
}

/// A dedup key for a trigger that brought none: always a new alert.
pub fn fresh_dedup_key() -> String {
    hex::encode(rand::thread_rng().gen::<[u8; 16]>())
}

/// Parses an `/v2/enqueue` body.
pub fn parse(body: &[u8]) -> Result<Enqueue, Rejection> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Rejection(vec![format!("Invalid JSON: {e}")]))?;
    let Value::Object(top) = value else {
        return Err(Rejection(vec!["The event must be a JSON object".into()]));
    };
    let mut errors = Vec::new();
    let routing_key = text(&top, "routing_key", &mut errors, true).map(str::to_string);
    let action = match text(&top, "event_action", &mut errors, true) {
        Some("trigger") => Some(AlertAction::Trigger),
        Some("acknowledge") => Some(AlertAction::Acknowledge),
        Some("resolve") => Some(AlertAction::Resolve),
        Some(other) => {
            errors.push(format!(
                "'event_action' must be one of trigger, acknowledge or resolve, not '{other}'"
            ));
            None
        }
        None => None,
    };
    let dedup = text(&top, "dedup_key", &mut errors, false).map(str::to_string);
    let dedup_key = match (&dedup, action) {
        (Some(k), _) => DedupKey::parse("dedup_key", k)
            .map_err(|e| errors.push(format!("'dedup_key' {}", e.message)))
            .ok(),
        (None, Some(AlertAction::Trigger)) => DedupKey::parse("dedup_key", &fresh_dedup_key()).ok(),
        (None, Some(_)) => {
            errors.push("'dedup_key' is required to acknowledge or resolve".into());
            None
        }
        (None, None) => None,
    };
    let mut summary = String::new();
    let mut source = String::new();
    let mut severity = AlertSeverity::Critical;
    let mut labels = Map::new();
    let mut details = Value::Null;
    if action == Some(AlertAction::Trigger) {
        match top.get("payload") {
            Some(Value::Object(p)) => {
                if let Some(s) = text(p, "summary", &mut errors, true) {
                    if s.chars().count() > MAX_SUMMARY {
                        errors.push(format!("'payload.summary' must be at most {MAX_SUMMARY} characters"));
                    }
                    summary = s.to_string();
                }
                source = text(p, "source", &mut errors, true).unwrap_or("").to_string();
                if let Some(s) = text(p, "severity", &mut errors, true) {
                    match AlertSeverity::parse(s) {
                        Some(v) => severity = v,
                        None => errors.push(format!("'payload.severity' must be one of critical, error, warning or info, not '{s}'")),
                    }
                }
                if let Some(ts) = text(p, "timestamp", &mut errors, false) {
                    if !valid_timestamp(ts) {
                        errors.push(format!("'payload.timestamp' is not an ISO 8601 time: '{ts}'"));
                    }
                }
                for key in ["component", "group", "class"] {
                    if let Some(v) = text(p, key, &mut errors, false) {
                        labels.insert(key.into(), Value::String(v.to_string()));
                    }
                }
                if !source.is_empty() {
                    labels.insert("source".into(), Value::String(source.clone()));
                }
                details = p.get("custom_details").cloned().unwrap_or(Value::Null);
                if let Some(ts) = p.get("timestamp") {
                    details = match details {
                        Value::Object(mut m) => {
                            m.entry("timestamp").or_insert(ts.clone());
                            Value::Object(m)
                        }
                        Value::Null => serde_json::json!({ "timestamp": ts }),
                        other => serde_json::json!({ "details": other, "timestamp": ts }),
                    };
                }
            }
            Some(_) => errors.push("'payload' must be an object".into()),
            None => errors.push("'payload' is missing; a trigger needs payload.summary, payload.source and payload.severity".into()),
        }
    }
    let links = links(&top, &mut errors);
    if !errors.is_empty() {
        return Err(Rejection(errors));
    }
    let (Some(routing_key), Some(action), Some(dedup_key)) = (routing_key, action, dedup_key)
    else {
        return Err(Rejection(vec!["Event object is invalid".into()]));
    };
    Ok(Enqueue {
        routing_key,
        event: AlertEvent {
            action,
            dedup_key,
            summary,
            source,
            severity,
            labels,
            details,
            links,
            integration: "pagerduty",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(body: &str) -> Vec<String> {
        parse(body.as_bytes()).unwrap_err().0
    }

    #[test]
    fn the_documented_example_parses() {
        let body = r#"{
          "payload": {"summary": "Example alert on host1.example.com", "timestamp": "2015-07-17T08:42:58.315+0000",
            "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
            "severity": "info", "component": "postgres", "group": "prod-datapipe", "class": "deploy",
            "custom_details": {"ping time": "1500ms", "load avg": 0.75}},
          "routing_key": "samplekeyhere", "dedup_key": "samplekeyhere",
          "images": [{"src": "https://www.pagerduty.com/logo.png", "href": "https://example.com/", "alt": "Example text"}],
          "links": [{"href": "https://example.com/", "text": "Link text"}],
          "event_action": "trigger", "client": "Sample Monitoring Service", "client_url": "https://monitoring.example.com"}"#;
        let e = parse(body.as_bytes()).unwrap();
        assert_eq!(e.routing_key, "samplekeyhere");
        assert_eq!(e.event.action, AlertAction::Trigger);
        assert_eq!(e.event.severity, AlertSeverity::Info);
        assert_eq!(e.event.labels["component"], "postgres");
        assert_eq!(e.event.details["load avg"], 0.75);
        assert_eq!(e.event.links.len(), 3);
        assert_eq!(
            e.event.links[2].text.as_deref(),
            Some("Sample Monitoring Service")
        );
    }

    #[test]
    fn acknowledge_and_resolve_need_only_a_key() {
        let e =
            parse(br#"{"routing_key": "k", "dedup_key": "d", "event_action": "resolve"}"#).unwrap();
        assert_eq!(e.event.action, AlertAction::Resolve);
        assert_eq!(e.event.dedup_key.as_str(), "d");
        assert!(
            errs(r#"{"routing_key": "k", "event_action": "acknowledge"}"#)[0].contains("dedup_key")
        );
    }

    #[test]
    fn a_trigger_without_dedup_key_gets_a_fresh_one() {
        let body = br#"{"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "error"}}"#;
        let (a, b) = (parse(body).unwrap(), parse(body).unwrap());
        assert_eq!(a.event.dedup_key.as_str().len(), 32);
        assert_ne!(a.event.dedup_key, b.event.dedup_key);
    }

    #[test]
    fn change_events_as_documented() {
        let body = br#"{"routing_key": "samplekeyhere",
          "payload": {"summary": "Build Success: Increase snapshot create timeout to 30 seconds",
            "timestamp": "2020-07-17T08:42:58.315+0000", "source": "acme-build-pipeline-tool-default-i-9999",
            "custom_details": {"build_state": "passed", "build_number": "2", "run_time": "1236s"}},
          "links": [{"href": "https://acme.pagerduty.dev/build/2", "text": "View more details in Acme!"}]}"#;
        let (key, c) = parse_change(body).unwrap();
        assert_eq!(key, "samplekeyhere");
        assert_eq!(
            c.occurred_at.unwrap().to_rfc3339(),
            "2020-07-17T08:42:58.315+00:00"
        );
        assert_eq!(c.details["build_number"], "2");
        assert_eq!(c.links[0].href, "https://acme.pagerduty.dev/build/2");
        let e = parse_change(br#"{"payload": {"timestamp": "later"}}"#)
            .unwrap_err()
            .0;
        assert_eq!(e.len(), 3, "{e:?}");
    }

    #[test]
    fn every_problem_is_listed() {
        let e = errs(r#"{"event_action": "explode", "dedup_key": 5}"#);
        assert_eq!(e.len(), 3, "{e:?}");
        let e = errs(
            r#"{"routing_key": "k", "event_action": "trigger", "payload": {"summary": "", "severity": "fatal", "timestamp": "noon"}}"#,
        );
        assert!(e.iter().any(|m| m.contains("summary")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("source")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("fatal")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("noon")), "{e:?}");
        assert!(errs("[1]")[0].contains("object"));
        assert!(errs("{")[0].starts_with("Invalid JSON"));
        let long = format!(
            r#"{{"routing_key": "k", "event_action": "trigger", "payload": {{"summary": "{}", "source": "h", "severity": "info"}}}}"#,
            "x".repeat(1025)
        );
        assert!(errs(&long)[0].contains("1024"));
        let long_key = format!(
            r#"{{"routing_key": "k", "event_action": "resolve", "dedup_key": "{}"}}"#,
            "k".repeat(256)
        );
        assert!(errs(&long_key)[0].contains("255"));
    }
}
