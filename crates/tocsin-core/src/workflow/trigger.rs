//! What starts a workflow: an incident declared or changed, an alert fired or
//! resolved, an idle incident, a schedule, or a person (with typed inputs).

use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};

use super::cron::Cron;
use super::text::{is_name, Span};
use super::yaml::{kind_of, Fields};
use crate::incident::{Priority, Status};
use crate::maintenance::parse_time_zone;
use crate::matcher::{LabelSource, Matcher};
use crate::time::Timestamp;
use crate::Invalid;

/// Most inputs a manual trigger may declare.
pub const MAX_INPUTS: usize = 20;

/// The event a workflow waits for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A new incident was declared.
    IncidentDeclared,
    /// A field of an incident changed.
    IncidentChanged(ChangeTrigger),
    /// An alert fired (opened or re-triggered).
    AlertFired(AlertTrigger),
    /// An alert resolved.
    AlertResolved(AlertTrigger),
    /// An open incident has had no activity for a while.
    IncidentIdle {
        /// How long without activity.
        after: Span,
    },
    /// A cron schedule in a time zone.
    Schedule(ScheduleTrigger),
    /// A person pressed the button or called the API.
    Manual(ManualTrigger),
}

/// Which incident field a change trigger watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangedField {
    /// The lifecycle status.
    Status,
    /// The severity.
    Severity,
    /// The priority.
    Priority,
    /// A role's holders (`roles.commander`), or any role (`roles`).
    Role(Option<String>),
    /// A custom field (`custom_fields.region`), or any (`custom_fields`).
    CustomField(Option<String>),
}

impl ChangedField {
    fn parse(field: &str, s: &str) -> Result<ChangedField, Invalid> {
        let named = |rest: &str| -> Result<Option<String>, Invalid> {
            if is_name(rest) {
                Ok(Some(rest.to_string()))
            } else {
                Err(Invalid::new(field, format!("`{rest}` is not a name")))
            }
        };
        match s {
            "status" => Ok(ChangedField::Status),
            "severity" => Ok(ChangedField::Severity),
            "priority" => Ok(ChangedField::Priority),
            "roles" => Ok(ChangedField::Role(None)),
            "custom_fields" => Ok(ChangedField::CustomField(None)),
            _ => {
                if let Some(r) = s.strip_prefix("roles.") {
                    Ok(ChangedField::Role(named(r)?))
                } else if let Some(c) = s.strip_prefix("custom_fields.") {
                    Ok(ChangedField::CustomField(named(c)?))
                } else {
                    Err(Invalid::new(
                        field,
                        format!("`{s}` is not status, severity, priority, roles[.NAME] or custom_fields[.NAME]"),
                    ))
                }
            }
        }
    }

    fn matches(&self, changed: &str) -> bool {
        match self {
            ChangedField::Status => changed == "status",
            ChangedField::Severity => changed == "severity",
            ChangedField::Priority => changed == "priority",
            ChangedField::Role(None) => changed.starts_with("roles."),
            ChangedField::Role(Some(r)) => changed.strip_prefix("roles.") == Some(r),
            ChangedField::CustomField(None) => changed.starts_with("custom_fields."),
            ChangedField::CustomField(Some(c)) => changed.strip_prefix("custom_fields.") == Some(c),
        }
    }
}

/// A change trigger: the field, and optionally the values it moved from and to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeTrigger {
    /// The field watched.
    pub field: ChangedField,
    /// Old values that match (empty: any).
    pub from: Vec<String>,
    /// New values that match (empty: any).
    pub to: Vec<String>,
}

/// An alert trigger: optionally one service, and label matchers that must all match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertTrigger {
    /// Service name (or id); none means every service.
    pub service: Option<String>,
    /// Matchers in Alertmanager syntax, all of which must match.
    pub matchers: Vec<Matcher>,
}

/// A schedule trigger: a cron expression read in a time zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleTrigger {
    /// Five-field cron expression.
    pub cron: Cron,
    /// IANA zone the expression is read in (UTC when not given).
    #[serde(serialize_with = "tz_name")]
    pub time_zone: Tz,
}

fn tz_name<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// A manual trigger and the inputs a person fills in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManualTrigger {
    /// Declared inputs, in the order written.
    pub inputs: Vec<InputDef>,
}

/// One input of a manual run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputDef {
    /// Name, read in templates as `inputs.NAME`.
    pub name: String,
    /// Type of value.
    pub kind: InputKind,
    /// Whether the person must give it.
    pub required: bool,
    /// Value when not given.
    pub default: Option<Value>,
    /// Help text shown next to the field.
    pub description: Option<String>,
}

/// The type of a manual input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Free text.
    String,
    /// A number.
    Number,
    /// True or false.
    Bool,
    /// One of a list of options.
    Choice(Vec<String>),
}

/// Something that happened, as the engine describes it to [`Trigger::matches`].
#[derive(Clone, Copy)]
pub enum Event<'a> {
    /// An incident was declared.
    IncidentDeclared,
    /// An incident field changed: `field` is `status`, `severity`, `priority`,
    /// `roles.NAME` or `custom_fields.NAME`.
    IncidentChanged {
        /// Which field.
        field: &'a str,
        /// Old value as text, if it had one.
        from: Option<&'a str>,
        /// New value as text, if it has one.
        to: Option<&'a str>,
    },
    /// An alert fired on a service.
    AlertFired(AlertEvent<'a>),
    /// An alert resolved on a service.
    AlertResolved(AlertEvent<'a>),
    /// An incident has been idle this long.
    IncidentIdle(Span),
    /// The schedule's time came.
    Schedule,
    /// Someone started the workflow by hand.
    Manual,
}

/// The alert side of an [`Event`].
#[derive(Clone, Copy)]
pub struct AlertEvent<'a> {
    /// Service name.
    pub service: &'a str,
    /// Service id.
    pub service_id: i64,
    /// Labels (and severity, summary, source) the matchers read.
    pub alert: &'a dyn LabelSource,
}

impl Trigger {
    /// The trigger's kind as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::IncidentDeclared => "incident_declared",
            Trigger::IncidentChanged(_) => "incident_changed",
            Trigger::AlertFired(_) => "alert_fired",
            Trigger::AlertResolved(_) => "alert_resolved",
            Trigger::IncidentIdle { .. } => "incident_idle",
            Trigger::Schedule(_) => "schedule",
            Trigger::Manual(_) => "manual",
        }
    }

    /// Whether `event` is one this trigger waits for (conditions are separate).
    pub fn matches(&self, event: &Event<'_>) -> bool {
        let one_of = |allowed: &[String], v: Option<&str>| {
            allowed.is_empty() || v.is_some_and(|v| allowed.iter().any(|a| a == v))
        };
        match (self, event) {
            (Trigger::IncidentDeclared, Event::IncidentDeclared)
            | (Trigger::Schedule(_), Event::Schedule)
            | (Trigger::Manual(_), Event::Manual) => true,
            (Trigger::IncidentChanged(t), Event::IncidentChanged { field, from, to }) => {
                t.field.matches(field) && one_of(&t.from, *from) && one_of(&t.to, *to)
            }
            (Trigger::AlertFired(t), Event::AlertFired(a))
            | (Trigger::AlertResolved(t), Event::AlertResolved(a)) => {
                let service_ok = t
                    .service
                    .as_deref()
                    .is_none_or(|s| s == a.service || s == a.service_id.to_string());
                service_ok
                    && t.matchers
                        .iter()
                        .all(|m| m.matches_value(a.alert.label(&m.name).as_deref()))
            }
            (Trigger::IncidentIdle { after }, Event::IncidentIdle(idle)) => idle >= after,
            _ => false,
        }
    }

    /// For a schedule trigger, the first run strictly after `after`.
    pub fn next_fire(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Trigger::Schedule(s) => s.cron.next_after(after, s.time_zone),
            _ => None,
        }
    }

    /// For an idle trigger, when an incident last active at `last_activity` is due.
    pub fn idle_due(&self, last_activity: Timestamp) -> Option<Timestamp> {
        match self {
            Trigger::IncidentIdle { after } => Some(last_activity + after.to_duration()),
            _ => None,
        }
    }

    /// Parses `{KIND: {…}}` at `path` (`trigger`).
    pub fn parse(path: &str, v: &Value) -> Result<Trigger, Invalid> {
        let (kind, body) = match v {
            // `trigger: incident_declared` reads as well as `{incident_declared: {}}`.
            Value::String(s) => (s.as_str(), &Value::Null),
            Value::Object(m) if m.len() == 1 => {
                let (k, b) = m.iter().next().expect("one entry");
                (k.as_str(), b)
            }
            _ => {
                return Err(Invalid::new(
                    path,
                    "must name exactly one trigger: incident_declared, incident_changed, alert_fired, alert_resolved, incident_idle, schedule or manual",
                ))
            }
        };
        let at = format!("{path}.{kind}");
        let empty = Value::Object(Map::new());
        let body = if body.is_null() { &empty } else { body };
        match kind {
            "incident_declared" => {
                Fields::new(&at, body, "an incident_declared trigger")?.finish()?;
                Ok(Trigger::IncidentDeclared)
            }
            "incident_changed" => parse_change(&at, body).map(Trigger::IncidentChanged),
            "alert_fired" => parse_alert(&at, body).map(Trigger::AlertFired),
            "alert_resolved" => parse_alert(&at, body).map(Trigger::AlertResolved),
            "incident_idle" => {
                let mut f = Fields::new(&at, body, "an incident_idle trigger")?;
                let after = f
                    .span("after", Span::hours(24 * 30))?
                    .ok_or_else(|| f.missing("after"))?;
                f.finish()?;
                if after < Span::mins(1) {
                    return Err(Invalid::new(format!("{at}.after"), "must be at least 1m"));
                }
                Ok(Trigger::IncidentIdle { after })
            }
            "schedule" => {
                let mut f = Fields::new(&at, body, "a schedule trigger")?;
                let cron = Cron::parse(&f.path("cron"), &f.req_text("cron")?)?;
                let time_zone = match f.text("time_zone")? {
                    Some(z) => parse_time_zone(&f.path("time_zone"), &z)?,
                    None => Tz::UTC,
                };
                f.finish()?;
                Ok(Trigger::Schedule(ScheduleTrigger { cron, time_zone }))
            }
            "manual" => parse_manual(&at, body).map(Trigger::Manual),
            other => Err(Invalid::new(
                format!("{path}.{other}"),
                "is not a trigger; expected incident_declared, incident_changed, alert_fired, alert_resolved, incident_idle, schedule or manual",
            )),
        }
    }
}

fn parse_change(at: &str, body: &Value) -> Result<ChangeTrigger, Invalid> {
    let mut f = Fields::new(at, body, "an incident_changed trigger")?;
    let field = ChangedField::parse(&f.path("field"), &f.req_text("field")?)?;
    let from = f.texts("from")?;
    let to = f.texts("to")?;
    f.finish()?;
    // Values with a fixed vocabulary are checked now; a typo would never match.
    for (key, values) in [("from", &from), ("to", &to)] {
        for (i, v) in values.iter().enumerate() {
            let ok = match field {
                ChangedField::Status => Status::parse(v).is_some(),
                ChangedField::Priority => Priority::parse(v).is_some(),
                _ => true,
            };
            if !ok {
                return Err(Invalid::new(
                    format!("{at}.{key}[{i}]"),
                    format!(
                        "`{v}` is not a {}",
                        if field == ChangedField::Status {
                            "status"
                        } else {
                            "priority"
                        }
                    ),
                ));
            }
        }
    }
    Ok(ChangeTrigger { field, from, to })
}

fn parse_alert(at: &str, body: &Value) -> Result<AlertTrigger, Invalid> {
    let mut f = Fields::new(at, body, "an alert trigger")?;
    let service = f.text("service")?;
    let matchers = f
        .list("matchers")
        .into_iter()
        .map(|(p, v)| match v {
            Value::String(s) => Matcher::parse(&p, s),
            other => Err(Invalid::new(
                p,
                format!(
                    "must be a matcher such as env=\"prod\", not {}",
                    kind_of(other)
                ),
            )),
        })
        .collect::<Result<_, _>>()?;
    f.finish()?;
    Ok(AlertTrigger { service, matchers })
}

fn parse_manual(at: &str, body: &Value) -> Result<ManualTrigger, Invalid> {
    let mut f = Fields::new(at, body, "a manual trigger")?;
    let entries = f.entries("inputs")?;
    f.finish()?;
    if entries.len() > MAX_INPUTS {
        return Err(Invalid::new(
            format!("{at}.inputs"),
            format!("at most {MAX_INPUTS} inputs"),
        ));
    }
    let inputs = entries
        .into_iter()
        .map(|(name, p, v)| parse_input(&name, &p, v))
        .collect::<Result<_, _>>()?;
    Ok(ManualTrigger { inputs })
}

fn parse_input(name: &str, p: &str, v: &Value) -> Result<InputDef, Invalid> {
    if !is_name(name) {
        return Err(Invalid::new(p, "input names are letters, digits and `_`"));
    }
    let mut f = Fields::new(p, v, "an input")?;
    let kind = match f.text("type")?.as_deref() {
        None | Some("string") => InputKind::String,
        Some("number") => InputKind::Number,
        Some("bool") => InputKind::Bool,
        Some("choice") => InputKind::Choice(Vec::new()),
        Some(other) => {
            return Err(Invalid::new(
                f.path("type"),
                format!("`{other}` is not string, number, bool or choice"),
            ))
        }
    };
    let options = f.texts("options")?;
    let kind = match kind {
        InputKind::Choice(_) if options.is_empty() => {
            return Err(Invalid::new(f.path("options"), "a choice needs options"))
        }
        InputKind::Choice(_) => InputKind::Choice(options),
        _ if !options.is_empty() => {
            return Err(Invalid::new(f.path("options"), "only a choice has options"))
        }
        k => k,
    };
    let required = f.flag("required", false)?;
    let description = f.text("description")?;
    let default = f.get("default").cloned();
    let default_path = f.path("default");
    f.finish()?;
    let default = match default {
        Some(_) if required => {
            return Err(Invalid::new(
                default_path,
                "a required input takes no default",
            ))
        }
        Some(d) => Some(coerce(&default_path, &kind, &d)?),
        None => None,
    };
    Ok(InputDef {
        name: name.to_string(),
        kind,
        required,
        default,
        description,
    })
}

// Forms send text; the API sends JSON. Both are accepted when unambiguous.
fn coerce(path: &str, kind: &InputKind, v: &Value) -> Result<Value, Invalid> {
    let bad = |what: &str| Invalid::new(path, format!("must be {what}, not {}", kind_of(v)));
    match (kind, v) {
        (InputKind::String, Value::String(_)) => Ok(v.clone()),
        (InputKind::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (InputKind::String, _) => Err(bad("text")),
        (InputKind::Number, Value::Number(_)) => Ok(v.clone()),
        (InputKind::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| Invalid::new(path, format!("`{s}` is not a number"))),
        (InputKind::Number, _) => Err(bad("a number")),
        (InputKind::Bool, Value::Bool(_)) => Ok(v.clone()),
        (InputKind::Bool, Value::String(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (InputKind::Bool, _) => Err(bad("true or false")),
        (InputKind::Choice(options), Value::String(s)) if options.contains(s) => Ok(v.clone()),
        (InputKind::Choice(options), _) => Err(Invalid::new(
            path,
            format!("must be one of: {}", options.join(", ")),
        )),
    }
}

impl ManualTrigger {
    /// Checks the inputs of a manual run: unknown names refused, required ones
    /// present, types coerced, defaults filled in. Errors name `inputs.NAME`.
    pub fn check_inputs(&self, given: &Map<String, Value>) -> Result<Map<String, Value>, Invalid> {
        if let Some(k) = given
            .keys()
            .find(|k| !self.inputs.iter().any(|i| &i.name == *k))
        {
            return Err(Invalid::new(
                format!("inputs.{k}"),
                "is not an input of this workflow",
            ));
        }
        let mut out = Map::new();
        for def in &self.inputs {
            let path = format!("inputs.{}", def.name);
            match given.get(&def.name).filter(|v| !v.is_null()) {
                Some(v) => {
                    out.insert(def.name.clone(), coerce(&path, &def.kind, v)?);
                }
                None if def.required => return Err(Invalid::new(path, "is required")),
                None => {
                    out.insert(def.name.clone(), def.default.clone().unwrap_or(Value::Null));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Trigger, Invalid> {
        Trigger::parse("trigger", &v)
    }

    #[test]
    fn change_triggers_match_field_and_values() {
        let t = parse(json!({"incident_changed": {"field": "severity", "to": ["SEV1", "SEV2"]}}))
            .unwrap();
        let ev = |field, from, to| Event::IncidentChanged { field, from, to };
        assert!(t.matches(&ev("severity", Some("SEV3"), Some("SEV1"))));
        assert!(!t.matches(&ev("severity", Some("SEV1"), Some("SEV3"))));
        assert!(!t.matches(&ev("status", None, Some("SEV1"))));
        let t = parse(json!({"incident_changed": {"field": "roles.commander"}})).unwrap();
        assert!(t.matches(&ev("roles.commander", None, Some("7"))));
        assert!(!t.matches(&ev("roles.scribe", None, Some("7"))));
        let t =
            parse(json!({"incident_changed": {"field": "custom_fields", "from": "eu"}})).unwrap();
        assert!(t.matches(&ev("custom_fields.region", Some("eu"), Some("us"))));
        assert!(!t.matches(&Event::IncidentDeclared));
        assert!(parse(json!("incident_declared"))
            .unwrap()
            .matches(&Event::IncidentDeclared));
    }

    #[test]
    fn alert_triggers_match_service_and_labels() {
        let t = parse(json!({"alert_fired": {"service": "db", "matchers": ["team=\"database\"", "env=~prod|staging"]}}))
            .unwrap();
        let labels = json!({"team": "database", "env": "prod"})
            .as_object()
            .cloned()
            .unwrap();
        let a = AlertEvent {
            service: "db",
            service_id: 3,
            alert: &labels,
        };
        assert!(t.matches(&Event::AlertFired(a)));
        assert!(!t.matches(&Event::AlertResolved(a)));
        assert!(!t.matches(&Event::AlertFired(AlertEvent {
            service: "web",
            service_id: 4,
            ..a
        })));
        let other = json!({"team": "web", "env": "prod"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(!t.matches(&Event::AlertFired(AlertEvent { alert: &other, ..a })));
        let any = parse(json!({"alert_resolved": {}})).unwrap();
        assert!(any.matches(&Event::AlertResolved(a)));
    }

    #[test]
    fn idle_and_schedule() {
        let t = parse(json!({"incident_idle": {"after": "30m"}})).unwrap();
        assert!(t.matches(&Event::IncidentIdle(Span::mins(31))));
        assert!(!t.matches(&Event::IncidentIdle(Span::mins(29))));
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(t.idle_due(at), Some(at + chrono::Duration::minutes(30)));
        let t = parse(json!({"schedule": {"cron": "0 9 * * *", "time_zone": "Europe/Berlin"}}))
            .unwrap();
        assert_eq!(
            t.next_fire(at).unwrap().to_rfc3339(),
            "2026-01-01T08:00:00+00:00"
        );
    }

    #[test]
    fn manual_inputs_are_typed() {
        let t = parse(json!({"manual": {"inputs": {
            "reason": {"type": "string", "required": true},
            "count": {"type": "number", "default": 2},
            "dry_run": {"type": "bool", "default": false},
            "region": {"type": "choice", "options": ["eu", "us"], "default": "eu"},
        }}}))
        .unwrap();
        let Trigger::Manual(m) = t else { panic!() };
        let given = json!({"reason": "deploy", "count": "3", "dry_run": "true"});
        let out = m.check_inputs(given.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"reason": "deploy", "count": 3.0, "dry_run": true, "region": "eu"})
        );
        let err = |v: Value| m.check_inputs(v.as_object().unwrap()).unwrap_err().field;
        assert_eq!(err(json!({})), "inputs.reason");
        assert_eq!(err(json!({"reason": "x", "region": "ap"})), "inputs.region");
        assert_eq!(err(json!({"reason": "x", "count": "many"})), "inputs.count");
        assert_eq!(err(json!({"reason": "x", "colour": 1})), "inputs.colour");
    }

    #[test]
    fn bad_triggers_name_the_field() {
        for (v, field) in [
            (json!({"incident_declard": {}}), "trigger.incident_declard"),
            (json!({"a": {}, "b": {}}), "trigger"),
            (
                json!({"incident_declared": {"x": 1}}),
                "trigger.incident_declared.x",
            ),
            (
                json!({"incident_changed": {}}),
                "trigger.incident_changed.field",
            ),
            (
                json!({"incident_changed": {"field": "colour"}}),
                "trigger.incident_changed.field",
            ),
            (
                json!({"incident_changed": {"field": "status", "to": ["done"]}}),
                "trigger.incident_changed.to[0]",
            ),
            (
                json!({"incident_changed": {"field": "priority", "from": "P9"}}),
                "trigger.incident_changed.from[0]",
            ),
            (
                json!({"alert_fired": {"matchers": ["env"]}}),
                "trigger.alert_fired.matchers[0]",
            ),
            (
                json!({"alert_fired": {"matchers": [1]}}),
                "trigger.alert_fired.matchers[0]",
            ),
            (
                json!({"incident_idle": {"after": "30"}}),
                "trigger.incident_idle.after",
            ),
            (json!({"incident_idle": {}}), "trigger.incident_idle.after"),
            (
                json!({"incident_idle": {"after": "10s"}}),
                "trigger.incident_idle.after",
            ),
            (
                json!({"schedule": {"cron": "* * *"}}),
                "trigger.schedule.cron",
            ),
            (
                json!({"schedule": {"cron": "* * * * *", "time_zone": "Mars/Base"}}),
                "trigger.schedule.time_zone",
            ),
            (
                json!({"manual": {"inputs": {"x": {"type": "date"}}}}),
                "trigger.manual.inputs.x.type",
            ),
            (
                json!({"manual": {"inputs": {"x": {"type": "choice"}}}}),
                "trigger.manual.inputs.x.options",
            ),
            (
                json!({"manual": {"inputs": {"x": {"required": true, "default": "a"}}}}),
                "trigger.manual.inputs.x.default",
            ),
            (
                json!({"manual": {"inputs": {"x": {"type": "number", "default": "a"}}}}),
                "trigger.manual.inputs.x.default",
            ),
            (
                json!({"manual": {"inputs": {"bad name": {}}}}),
                "trigger.manual.inputs.bad name",
            ),
        ] {
            let e = parse(v.clone()).unwrap_err();
            assert_eq!(e.field, field, "{v}: {}", e.message);
        }
    }
}
