//! The alert: every source's events normalized into one shape, deduplicated by
//! (service, dedup key).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::incident::Level;
use crate::Invalid;

/// Longest dedup key, as PagerDuty allows.
pub const MAX_DEDUP_KEY: usize = 255;
/// Longest summary, as PagerDuty allows.
pub const MAX_SUMMARY: usize = 1024;

/// How bad a source says the problem is (PagerDuty's four levels).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// Service is down or data is at risk.
    Critical,
    /// Something is failing.
    Error,
    /// Something will fail if nothing is done.
    Warning,
    /// For information.
    Info,
}

impl AlertSeverity {
    /// Every severity, worst first.
    pub const ALL: [AlertSeverity; 4] = [
        AlertSeverity::Critical,
        AlertSeverity::Error,
        AlertSeverity::Warning,
        AlertSeverity::Info,
    ];

    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Critical => "critical",
            AlertSeverity::Error => "error",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Info => "info",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<AlertSeverity> {
        AlertSeverity::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The urgency an incident opened by this alert gets: critical and error page now.
    pub fn urgency(self) -> Level {
        match self {
            AlertSeverity::Critical | AlertSeverity::Error => Level::High,
            AlertSeverity::Warning => Level::Medium,
            AlertSeverity::Info => Level::Low,
        }
    }

    /// Index into the configured severities (most severe first) an incident opened
    /// by this alert gets, clamped to the number configured.
    pub fn incident_severity_index(self, configured: usize) -> usize {
        let i = match self {
            AlertSeverity::Critical => 0,
            AlertSeverity::Error => 1,
            AlertSeverity::Warning => 2,
            AlertSeverity::Info => 3,
        };
        i.min(configured.saturating_sub(1))
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Firing, nobody has taken it.
    Triggered,
    /// Someone is on it.
    Acknowledged,
    /// The problem is gone.
    Resolved,
}

impl AlertStatus {
    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Triggered => "triggered",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<AlertStatus> {
        [
            AlertStatus::Triggered,
            AlertStatus::Acknowledged,
            AlertStatus::Resolved,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What an event asks of the alert with its dedup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertAction {
    /// Open the alert, or count a repeat of the open one.
    Trigger,
    /// Mark the open alert acknowledged.
    Acknowledge,
    /// Resolve the open alert.
    Resolve,
}

/// A dedup key: non-empty, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DedupKey(String);

impl DedupKey {
    /// Parses a dedup key from `field`.
    pub fn parse(field: &str, s: &str) -> Result<DedupKey, Invalid> {
        if s.is_empty() {
            return Err(Invalid::new(field, "must not be empty"));
        }
        if s.chars().count() > MAX_DEDUP_KEY {
            return Err(Invalid::new(
                field,
                format!("must be at most {MAX_DEDUP_KEY} characters"),
            ));
        }
        Ok(DedupKey(s.to_string()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A link carried by an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertLink {
    /// URL.
    pub href: String,
    /// Text, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One inbound event, normalized: what every source parses into.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// What to do.
    pub action: AlertAction,
    /// The alert's identity within its service.
    pub dedup_key: DedupKey,
    /// Summary (trigger only).
    pub summary: String,
    /// Where the problem is (host, FQDN, …).
    pub source: String,
    /// Severity (trigger only; acknowledge and resolve keep the alert's).
    pub severity: AlertSeverity,
    /// Labels: key/value strings for routing, grouping and silences.
    pub labels: Map<String, Value>,
    /// Free-form details.
    pub details: Value,
    /// Links.
    pub links: Vec<AlertLink>,
    /// The source's own name ("pagerduty", "alertmanager", …).
    pub integration: &'static str,
}

impl AlertEvent {
    /// Replaces NUL characters in every text the event carries (summary, source,
    /// dedup key, labels, details, links) with U+FFFD: PostgreSQL stores no NUL in
    /// text or JSON, and no sender means one.
    pub fn without_nul(mut self) -> AlertEvent {
        if self.summary.contains('\0') {
            self.summary = no_nul(&self.summary);
        }
        if self.source.contains('\0') {
            self.source = no_nul(&self.source);
        }
        if self.dedup_key.0.contains('\0') {
            self.dedup_key = DedupKey(no_nul(&self.dedup_key.0));
        }
        let mut labels = Value::Object(std::mem::take(&mut self.labels));
        value_without_nul(&mut labels);
        if let Value::Object(m) = labels {
            self.labels = m;
        }
        value_without_nul(&mut self.details);
        for l in &mut self.links {
            l.href = no_nul(&l.href);
            l.text = l.text.as_deref().map(no_nul);
        }
        self
    }
}

/// `s` with each NUL character replaced by U+FFFD.
pub fn no_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Replaces NUL characters in every string and key of a JSON value.
pub fn value_without_nul(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = no_nul(s),
        Value::Array(a) => a.iter_mut().for_each(value_without_nul),
        Value::Object(m) => {
            if m.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(m);
                m.extend(old.into_iter().map(|(k, v)| (no_nul(&k), v)));
            }
            m.values_mut().for_each(value_without_nul);
        }
        _ => {}
    }
}

/// An alert as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// Alert id.
    pub id: i64,
    /// Service it belongs to.
    pub service_id: i64,
    /// Incident it opened or joined, if any.
    pub incident_id: Option<i64>,
    /// Identity within the service.
    pub dedup_key: String,
    /// Current status.
    pub status: AlertStatus,
    /// Severity from the latest trigger.
    pub severity: AlertSeverity,
    /// Summary from the latest trigger.
    pub summary: String,
    /// Where the problem is.
    pub source: String,
    /// Which kind of source sent it.
    pub integration: String,
    /// Labels.
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
    /// Details from the latest trigger.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Links.
    pub links: Vec<AlertLink>,
    /// How many triggers it has received.
    pub count: i64,
    /// First trigger.
    pub first_seen: chrono::DateTime<chrono::Utc>,
    /// Latest event.
    pub last_seen: chrono::DateTime<chrono::Utc>,
    /// When it was resolved.
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it opened no incident, while held: `silence:<id>`, `maintenance:<id>` or `flapping`.
    pub suppressed_by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keys_are_bounded() {
        assert!(DedupKey::parse("dedup_key", "").is_err());
        assert!(DedupKey::parse("dedup_key", &"k".repeat(255)).is_ok());
        assert_eq!(
            DedupKey::parse("dedup_key", &"k".repeat(256))
                .unwrap_err()
                .field,
            "dedup_key"
        );
    }

    #[test]
    fn nul_characters_are_replaced_everywhere() {
        let ev = AlertEvent {
            action: AlertAction::Trigger,
            dedup_key: DedupKey::parse("dedup_key", "k\0").unwrap(),
            summary: "a\0b".into(),
            source: "\0".into(),
            severity: AlertSeverity::Error,
            labels: serde_json::json!({"l\0": "v\0"})
                .as_object()
                .cloned()
                .unwrap(),
            details: serde_json::json!({"d": ["x\0", {"k\0": 1}]}),
            links: vec![AlertLink {
                href: "h\0".into(),
                text: Some("t\0".into()),
            }],
            integration: "webhook",
        }
        .without_nul();
        let text = format!("{ev:?}");
        assert!(!text.contains("\\0") && !text.contains('\0'), "{text}");
        assert_eq!(ev.summary, "a\u{FFFD}b");
        assert_eq!(ev.labels["l\u{FFFD}"], "v\u{FFFD}");
        assert_eq!(ev.details["d"][1]["k\u{FFFD}"], 1);
    }

    #[test]
    fn severities_map_to_incidents() {
        assert_eq!(AlertSeverity::Critical.urgency(), Level::High);
        assert_eq!(AlertSeverity::Info.urgency(), Level::Low);
        assert_eq!(AlertSeverity::Info.incident_severity_index(4), 3);
        assert_eq!(AlertSeverity::Info.incident_severity_index(2), 1);
        assert_eq!(AlertSeverity::parse("fatal"), None);
    }
}

/// A change (deploy, config update, …) reported on a service: context for responders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeEvent {
    /// Change id.
    pub id: i64,
    /// Service it happened on.
    pub service_id: i64,
    /// What changed.
    pub summary: String,
    /// Where it happened.
    pub source: String,
    /// When it happened (the sender's timestamp, else when it arrived).
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// When it arrived.
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// Free-form details.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Links.
    pub links: Vec<AlertLink>,
}

/// A change as a source reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    /// What changed.
    pub summary: String,
    /// Where it happened.
    pub source: String,
    /// The sender's timestamp, if any.
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Free-form details.
    pub details: Value,
    /// Links.
    pub links: Vec<AlertLink>,
}
