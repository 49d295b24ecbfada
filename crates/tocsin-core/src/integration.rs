//! An integration's configuration: its routing rules and, for the generic JSON
//! webhook, the templates that map any payload to an alert.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routing::RoutingRule;
use crate::template;
use crate::Invalid;

/// What an integration does with the events it receives, besides its service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct IntegrationConfig {
    /// Ordered rules choosing another service per event; first match wins.
    pub routing_rules: Vec<RoutingRule>,
    /// Templates of the generic JSON webhook.
    pub templates: Templates,
}

/// Templates mapping a generic webhook payload (`payload` in the template) to an
/// alert. Unset ones use the defaults in docs/integrations.md.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Templates {
    /// Alert title (summary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Must render to critical, error, warning or info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The alert's identity: events rendering the same key update one alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// Longer text, kept in the alert's details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the problem is (host, component).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Links: a JSON list (of URLs or `{href, text}`) or one URL per line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// Labels: must render to a JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Expression; true resolves the alert of the event's dedup key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve_condition: Option<String>,
    /// Expression; true acknowledges the alert of the event's dedup key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge_condition: Option<String>,
}

impl Templates {
    /// Each template with its field name (`templates.title`, …) and whether it is an expression.
    pub fn fields(&self) -> [(&'static str, Option<&str>, bool); 9] {
        [
            ("templates.title", self.title.as_deref(), false),
            ("templates.severity", self.severity.as_deref(), false),
            ("templates.dedup_key", self.dedup_key.as_deref(), false),
            ("templates.description", self.description.as_deref(), false),
            ("templates.source", self.source.as_deref(), false),
            ("templates.links", self.links.as_deref(), false),
            ("templates.labels", self.labels.as_deref(), false),
            (
                "templates.resolve_condition",
                self.resolve_condition.as_deref(),
                true,
            ),
            (
                "templates.acknowledge_condition",
                self.acknowledge_condition.as_deref(),
                true,
            ),
        ]
    }

    /// Every template that does not compile, each naming its field.
    pub fn problems(&self) -> Vec<Invalid> {
        self.fields()
            .into_iter()
            .filter_map(|(field, src, expr)| {
                let src = src?;
                if expr {
                    template::check_expr(field, condition_expr(src)).err()
                } else {
                    template::check(field, src).err()
                }
            })
            .collect()
    }

    /// Checks that every template compiles; the first problem names its field.
    pub fn check(&self) -> Result<(), Invalid> {
        match self.problems().into_iter().next() {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// Drops templates that are blank, so they use the default.
    pub fn normalized(mut self) -> Templates {
        for t in [
            &mut self.title,
            &mut self.severity,
            &mut self.dedup_key,
            &mut self.description,
            &mut self.source,
            &mut self.links,
            &mut self.labels,
            &mut self.resolve_condition,
            &mut self.acknowledge_condition,
        ] {
            if t.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *t = None;
            }
        }
        self
    }
}

/// The expression of a condition: one written as `{{ … }}` by habit (Grafana
/// OnCall's style) is read as what is inside.
pub fn condition_expr(src: &str) -> &str {
    let e = src.trim();
    match e.strip_prefix("{{").and_then(|s| s.strip_suffix("}}")) {
        Some(inner) if !inner.contains("}}") && !inner.contains("{{") => inner,
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_each_template() {
        let t = Templates {
            title: Some("{{ payload.x ".into()),
            resolve_condition: Some("payload.state ==".into()),
            severity: Some("{{ payload.sev }}".into()),
            ..Default::default()
        };
        let fields: Vec<String> = t.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["templates.title", "templates.resolve_condition"]);
        assert!(Templates::default().check().is_ok());
        let braced = Templates {
            resolve_condition: Some("{{ payload.state == 'OK' }}".into()),
            ..Default::default()
        };
        assert!(braced.check().is_ok());
        assert_eq!(condition_expr(" {{ a }} "), " a ");
        assert_eq!(condition_expr("{{ a }} and {{ b }}"), "{{ a }} and {{ b }}");
    }

    #[test]
    fn blank_templates_fall_back_to_defaults() {
        let t = Templates {
            title: Some("  ".into()),
            source: Some("{{ payload.host }}".into()),
            ..Default::default()
        }
        .normalized();
        assert_eq!(t.title, None);
        assert!(t.source.is_some());
    }

    #[test]
    fn config_reads_what_it_writes() {
        let c: IntegrationConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, IntegrationConfig::default());
        let c: IntegrationConfig = serde_json::from_str(
            r#"{"routing_rules": [{"matchers": ["env=prod"], "service_id": 3}], "templates": {"title": "{{ payload.t }}"}}"#,
        )
        .unwrap();
        let back: IntegrationConfig =
            serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
