//! A service's alert rules: how its alerts group into incidents, and what
//! severity and urgency an incident opened by an alert gets.
//!
//! One JSON document per service. With none stored, every alert opens its own
//! incident and the alert's severity maps to the incident as
//! [`AlertSeverity::incident_severity_index`] and [`AlertSeverity::urgency`] say.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::alert::{AlertEvent, AlertSeverity};
use crate::incident::Level;
use crate::matcher::{matches_all, parse_all, Matcher};
use crate::settings::IncidentSettings;
use crate::template;
use crate::Invalid;

/// Grouping window when none is given, in minutes.
pub const DEFAULT_WINDOW_MINUTES: u32 = 10;
/// Longest grouping window: one day.
pub const MAX_WINDOW_MINUTES: u32 = 1440;
/// Most urgency rules one service may have.
pub const MAX_URGENCY_RULES: usize = 100;
/// Most matchers one urgency rule may have.
pub const MAX_MATCHERS: usize = 20;

/// How a service's alerts become incidents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupingMode {
    /// Every new alert opens its own incident.
    #[default]
    PerAlert,
    /// New alerts with the same rendered key join the incident opened within the window.
    ByKey,
}

fn default_window() -> u32 {
    DEFAULT_WINDOW_MINUTES
}

/// Grouping of alerts into incidents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grouping {
    /// `per_alert` (default) or `by_key`.
    #[serde(default)]
    pub mode: GroupingMode,
    /// Template rendered over the alert (`labels`, `severity`, `summary`, `source`,
    /// `details`, `integration`, `dedup_key`); required for `by_key`.
    #[serde(default)]
    pub key: String,
    /// How long after an incident opened alerts may still join it, 1 to 1440 minutes.
    #[serde(default = "default_window")]
    pub window_minutes: u32,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            mode: GroupingMode::PerAlert,
            key: String::new(),
            window_minutes: DEFAULT_WINDOW_MINUTES,
        }
    }
}

/// One urgency rule: when every matcher matches the alert that opens an
/// incident, the incident gets this severity and urgency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrgencyRule {
    /// Label matchers (`name=value`, `!=`, `=~`, `!~`); `severity`, `summary`,
    /// `source` and `integration` match the alert's own when it has no such label.
    /// An empty list matches every alert.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// A configured incident severity; absent: the default mapping's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// `high`, `medium` or `low`; absent: the default mapping's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Level>,
}

/// A service's alert rules, as sent, stored and shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRules {
    /// How alerts group into incidents.
    #[serde(default)]
    pub grouping: Grouping,
    /// Evaluated in order against the alert that opens an incident; the first match wins.
    #[serde(default)]
    pub urgency_rules: Vec<UrgencyRule>,
}

/// What an incident opened by an alert gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentClass {
    /// Incident severity (a configured one), if any are configured.
    pub severity: Option<String>,
    /// Incident urgency.
    pub urgency: Level,
}

/// Alert rules checked and compiled, ready to apply to alerts.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    /// Group key template and window in minutes, when grouping by key.
    pub group: Option<(String, u32)>,
    rules: Vec<(Vec<Matcher>, Option<String>, Option<Level>)>,
}

impl AlertRules {
    /// Checks everything a PUT must: the key compiles, the window is in range,
    /// matchers parse, severities are configured. Errors name the field.
    pub fn validate(&self, settings: &IncidentSettings) -> Result<CompiledRules, Invalid> {
        let compiled = self.compile()?;
        for (i, r) in self.urgency_rules.iter().enumerate() {
            if let Some(s) = &r.severity {
                if !settings.has_severity(s) {
                    let names: Vec<&str> = settings
                        .severities
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect();
                    return Err(Invalid::new(
                        format!("urgency_rules[{i}].severity"),
                        format!("`{s}` is not a configured severity ({})", names.join(", ")),
                    ));
                }
            }
        }
        Ok(compiled)
    }

    /// Compiles stored rules. Severities are not checked here: one removed from
    /// the configuration since falls back to the default mapping when applied.
    pub fn compile(&self) -> Result<CompiledRules, Invalid> {
        let g = &self.grouping;
        if !(1..=MAX_WINDOW_MINUTES).contains(&g.window_minutes) {
            return Err(Invalid::new(
                "grouping.window_minutes",
                format!("must be between 1 and {MAX_WINDOW_MINUTES}"),
            ));
        }
        let group = match g.mode {
            GroupingMode::PerAlert => None,
            GroupingMode::ByKey => {
                if g.key.trim().is_empty() {
                    return Err(Invalid::new(
                        "grouping.key",
                        "is required when mode is by_key",
                    ));
                }
                template::check("grouping.key", &g.key)?;
                Some((g.key.clone(), g.window_minutes))
            }
        };
        if self.urgency_rules.len() > MAX_URGENCY_RULES {
            return Err(Invalid::new(
                "urgency_rules",
                format!("at most {MAX_URGENCY_RULES} rules"),
            ));
        }
        let mut rules = Vec::with_capacity(self.urgency_rules.len());
        for (i, r) in self.urgency_rules.iter().enumerate() {
            let field = format!("urgency_rules[{i}]");
            if r.matchers.len() > MAX_MATCHERS {
                return Err(Invalid::new(
                    format!("{field}.matchers"),
                    format!("at most {MAX_MATCHERS} matchers"),
                ));
            }
            if r.severity.is_none() && r.urgency.is_none() {
                return Err(Invalid::new(field, "must set severity, urgency or both"));
            }
            let matchers = parse_all(&format!("{field}.matchers"), &r.matchers)?;
            rules.push((matchers, r.severity.clone(), r.urgency));
        }
        Ok(CompiledRules { group, rules })
    }
}

/// What a group key template sees of an alert.
#[derive(Serialize)]
struct KeyContext<'a> {
    labels: &'a Map<String, Value>,
    severity: AlertSeverity,
    summary: &'a str,
    source: &'a str,
    details: &'a Value,
    integration: &'a str,
    dedup_key: &'a str,
}

/// Renders a group key template over an alert.
pub fn render_key(key: &str, ev: &AlertEvent) -> Result<String, Invalid> {
    let ctx = KeyContext {
        labels: &ev.labels,
        severity: ev.severity,
        summary: &ev.summary,
        source: &ev.source,
        details: &ev.details,
        integration: ev.integration,
        dedup_key: ev.dedup_key.as_str(),
    };
    template::render("grouping.key", key, &ctx)
}

/// Today's mapping from an alert's severity to an incident's.
pub fn default_class(settings: &IncidentSettings, severity: AlertSeverity) -> IncidentClass {
    let i = severity.incident_severity_index(settings.severities.len());
    IncidentClass {
        severity: settings.severities.get(i).map(|s| s.name.clone()),
        urgency: severity.urgency(),
    }
}

impl CompiledRules {
    /// The group key for an alert: None when every alert opens its own incident.
    pub fn group_key(&self, ev: &AlertEvent) -> Option<Result<String, Invalid>> {
        self.group.as_ref().map(|(key, _)| render_key(key, ev))
    }

    /// The grouping window in minutes, when grouping by key.
    pub fn window_minutes(&self) -> Option<u32> {
        self.group.as_ref().map(|(_, w)| *w)
    }

    /// Severity and urgency for an incident opened by `ev`: the first matching
    /// rule's, each part it leaves out (or names a severity no longer configured)
    /// from the default mapping.
    pub fn classify(&self, settings: &IncidentSettings, ev: &AlertEvent) -> IncidentClass {
        let mut class = default_class(settings, ev.severity);
        if let Some((_, sev, urg)) = self.rules.iter().find(|(m, _, _)| matches_all(m, ev)) {
            if let Some(s) = sev.as_ref().filter(|s| settings.has_severity(s)) {
                class.severity = Some(s.clone());
            }
            if let Some(u) = urg {
                class.urgency = *u;
            }
        }
        class
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertAction, DedupKey};
    use serde_json::json;

    fn ev(severity: AlertSeverity, labels: Value) -> AlertEvent {
        AlertEvent {
            action: AlertAction::Trigger,
            dedup_key: DedupKey::parse("dedup_key", "k1").unwrap(),
            summary: "Disk full".into(),
            source: "db-1".into(),
            severity,
            labels: labels.as_object().cloned().unwrap(),
            details: json!({"free": 0}),
            links: vec![],
            integration: "alertmanager",
        }
    }

    fn rules(v: Value) -> AlertRules {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn no_rules_is_per_alert_with_the_default_mapping() {
        let s = IncidentSettings::default();
        let c = AlertRules::default().validate(&s).unwrap();
        let e = ev(AlertSeverity::Warning, json!({}));
        assert!(c.group_key(&e).is_none());
        assert_eq!(
            c.classify(&s, &e),
            default_class(&s, AlertSeverity::Warning)
        );
        assert_eq!(c.classify(&s, &e).urgency, Level::Medium);
    }

    #[test]
    fn keys_render_over_the_alert() {
        let c = rules(json!({"grouping": {"mode": "by_key",
            "key": "{{ labels.alertname }}/{{ labels.cluster }}/{{ severity }}/{{ details.free }}"}}))
        .compile()
        .unwrap();
        let e = ev(
            AlertSeverity::Critical,
            json!({"alertname": "DiskFull", "cluster": "eu"}),
        );
        assert_eq!(c.group_key(&e).unwrap().unwrap(), "DiskFull/eu/critical/0");
        assert_eq!(c.window_minutes(), Some(DEFAULT_WINDOW_MINUTES));
        let missing = ev(AlertSeverity::Critical, json!({}));
        assert_eq!(c.group_key(&missing).unwrap().unwrap(), "//critical/0");
    }

    #[test]
    fn first_matching_rule_wins_and_gaps_fall_back() {
        let s = IncidentSettings::default();
        let names: Vec<String> = s.severities.iter().map(|d| d.name.clone()).collect();
        let c = rules(json!({"urgency_rules": [
            {"matchers": ["severity=~critical|error", "team=db"], "severity": names[0], "urgency": "high"},
            {"matchers": ["team=db"], "urgency": "low"},
            {"matchers": [], "severity": names[1]},
        ]}))
        .validate(&s)
        .unwrap();
        let db_crit = ev(AlertSeverity::Critical, json!({"team": "db"}));
        assert_eq!(
            c.classify(&s, &db_crit),
            IncidentClass {
                severity: Some(names[0].clone()),
                urgency: Level::High
            }
        );
        let db_info = ev(AlertSeverity::Info, json!({"team": "db"}));
        let got = c.classify(&s, &db_info);
        assert_eq!(got.urgency, Level::Low);
        assert_eq!(
            got.severity,
            default_class(&s, AlertSeverity::Info).severity
        );
        let other = ev(AlertSeverity::Warning, json!({"team": "web"}));
        let got = c.classify(&s, &other);
        assert_eq!(got.severity, Some(names[1].clone()));
        assert_eq!(got.urgency, Level::Medium);
    }

    #[test]
    fn bad_rules_name_the_field() {
        let s = IncidentSettings::default();
        let field = |v: Value| rules(v).validate(&s).unwrap_err().field;
        assert_eq!(
            field(json!({"grouping": {"mode": "by_key", "key": "{{ labels.x "}})),
            "grouping.key"
        );
        assert_eq!(
            field(json!({"grouping": {"mode": "by_key"}})),
            "grouping.key"
        );
        assert_eq!(
            field(json!({"grouping": {"mode": "by_key", "key": "k", "window_minutes": 0}})),
            "grouping.window_minutes"
        );
        assert_eq!(
            field(json!({"grouping": {"window_minutes": 1441}})),
            "grouping.window_minutes"
        );
        assert_eq!(
            field(json!({"urgency_rules": [{"urgency": "low"}, {"severity": "SEV9"}]})),
            "urgency_rules[1].severity"
        );
        assert_eq!(
            field(json!({"urgency_rules": [{"matchers": ["a=~("], "urgency": "low"}]})),
            "urgency_rules[0].matchers[0]"
        );
        assert_eq!(
            field(json!({"urgency_rules": [{"matchers": ["a=b"]}]})),
            "urgency_rules[0]"
        );
        let ok = rules(json!({"grouping": {"mode": "by_key", "key": "k", "window_minutes": 1440}}));
        assert!(ok.validate(&s).is_ok());
    }

    #[test]
    fn removed_severities_fall_back_when_applied() {
        let s = IncidentSettings::default();
        let c = rules(json!({"urgency_rules": [{"severity": "GONE", "urgency": "low"}]}))
            .compile()
            .unwrap();
        let e = ev(AlertSeverity::Critical, json!({}));
        let got = c.classify(&s, &e);
        assert_eq!(
            got.severity,
            default_class(&s, AlertSeverity::Critical).severity
        );
        assert_eq!(got.urgency, Level::Low);
    }
}
