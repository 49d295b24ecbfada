//! Pure operations on incidents: declare, patch, move through the lifecycle,
//! confirm closure. Each returns the new incident and the changes to record;
//! the store only loads, calls these, and writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::fields;
use crate::incident::{check_transition, format_number, Level, Status, TransitionRefused};
use crate::model::{long_text, required_text, Change, Incident, Relation};
use crate::settings::IncidentSettings;
use crate::time::Timestamp;
use crate::Invalid;
use chrono::{DateTime, Utc};

const MAX_TITLE: usize = 300;
const MAX_TEXT: usize = 100_000;
const MAX_LABELS: usize = 50;
const MAX_LABEL: usize = 100;

/// A field in a partial update: absent (unchanged), `null` (cleared) or a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    /// Not in the request: leave as is.
    #[default]
    Absent,
    /// Explicit `null`: clear.
    Null,
    /// A new value.
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Patch::Set(v),
            None => Patch::Null,
        })
    }
}

/// What a person or a tool gives to declare an incident.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// One-line summary (required).
    pub title: String,
    /// Markdown description.
    #[serde(default)]
    pub description: String,
    /// Error code.
    pub error_code: Option<String>,
    /// Type; defaults to the first configured.
    #[serde(rename = "type")]
    pub incident_type: Option<String>,
    /// Impact; defaults to medium.
    pub impact: Option<Level>,
    /// Urgency; defaults to medium.
    pub urgency: Option<Level>,
    /// Severity; defaults to the least severe configured.
    pub severity: Option<String>,
    /// Starting status; defaults to triggered. Must be an open status.
    pub status: Option<Status>,
    /// Affected services.
    #[serde(default)]
    pub service_ids: Vec<i64>,
    /// Assignee.
    pub assignee_id: Option<i64>,
    /// Incident roles.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<i64>>,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Custom field values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// When the problem began.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When it was noticed; defaults to now.
    pub detected_at: Option<DateTime<Utc>>,
    /// Links to other incidents.
    #[serde(default)]
    pub related: Vec<Relation>,
    /// Page the on-call of the incident's first service that has an escalation
    /// policy, starting at its first level (incidents opened by alerts always do).
    #[serde(default)]
    pub page: bool,
}

/// A partial update: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    /// New title.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub title: Patch<String>,
    /// New description.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub description: Patch<String>,
    /// New error code, or null.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub error_code: Patch<String>,
    /// New type.
    #[serde(rename = "type", default)]
    #[schema(value_type = Option<String>)]
    pub incident_type: Patch<String>,
    /// New impact.
    #[serde(default)]
    #[schema(value_type = Option<Level>)]
    pub impact: Patch<Level>,
    /// New urgency.
    #[serde(default)]
    #[schema(value_type = Option<Level>)]
    pub urgency: Patch<Level>,
    /// New severity.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub severity: Patch<String>,
    /// Replaces the affected services.
    #[serde(default)]
    #[schema(value_type = Option<Vec<i64>>)]
    pub service_ids: Patch<Vec<i64>>,
    /// New assignee, or null.
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub assignee_id: Patch<i64>,
    /// Replaces the holders of each role given.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, Vec<i64>>>)]
    pub roles: Patch<BTreeMap<String, Vec<i64>>>,
    /// Replaces the labels.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub labels: Patch<Vec<String>>,
    /// Sets (or, with null values, clears) the custom fields given.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Patch<Map<String, Value>>,
    /// When the problem began, or null.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub occurred_at: Patch<Timestamp>,
    /// When it was noticed, or null.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub detected_at: Patch<Timestamp>,
    /// Root cause, or null.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub root_cause: Patch<String>,
    /// Resolution summary, or null.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub resolution_summary: Patch<String>,
    /// Replaces the links to other incidents.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Relation>>)]
    pub related: Patch<Vec<Relation>>,
}

/// Builds a new incident numbered `id`, reported by `reporter` at `now`.
pub fn declare(
    settings: &IncidentSettings,
    req: &NewIncident,
    id: i64,
    reporter: Option<i64>,
    now: Timestamp,
) -> Result<Incident, Invalid> {
    let status = req.status.unwrap_or(Status::Triggered);
    if !status.is_open() {
        return Err(Invalid::new(
            "status",
            "an incident is declared in an open status",
        ));
    }
    let impact = req.impact.unwrap_or(Level::Medium);
    let urgency = req.urgency.unwrap_or(Level::Medium);
    let custom_fields = fields::apply(&settings.custom_fields, &Map::new(), &req.custom_fields)?;
    fields::check_required(&settings.custom_fields, &custom_fields)?;
    let mut roles = BTreeMap::new();
    for (role, users) in &req.roles {
        set_role_holders(settings, &mut roles, role, users)?;
    }
    let inc = Incident {
        id,
        number: format_number(id),
        title: required_text("title", &req.title, MAX_TITLE)?,
        description: long_text("description", &req.description, MAX_TEXT)?,
        error_code: optional_line("error_code", req.error_code.as_deref())?,
        incident_type: incident_type(settings, req.incident_type.as_deref())?,
        impact,
        urgency,
        priority: settings.priority_matrix.priority(impact, urgency),
        severity: severity(settings, req.severity.as_deref())?,
        status,
        service_ids: ids("service_ids", &req.service_ids)?,
        reporter_id: reporter,
        assignee_id: req.assignee_id,
        roles,
        labels: labels(&req.labels)?,
        custom_fields,
        occurred_at: req.occurred_at,
        detected_at: Some(req.detected_at.unwrap_or(now)),
        acknowledged_at: (status != Status::Triggered).then_some(now),
        mitigated_at: (status == Status::Monitoring).then_some(now),
        resolved_at: None,
        closed_at: None,
        closure_requested_at: None,
        root_cause: None,
        resolution_summary: None,
        related: relations(id, &req.related)?,
        created_at: now,
        updated_at: now,
    };
    check_times(&inc)?;
    Ok(inc)
}

/// Applies a patch; returns the new incident and what changed (empty: nothing did).
pub fn apply_patch(
    settings: &IncidentSettings,
    cur: &Incident,
    p: &IncidentPatch,
    now: Timestamp,
) -> Result<(Incident, Vec<Change>), Invalid> {
    let mut n = cur.clone();
    if let Patch::Set(t) = &p.title {
        n.title = required_text("title", t, MAX_TITLE)?;
    } else if p.title == Patch::Null {
        return Err(Invalid::new("title", "must not be null"));
    }
    match &p.description {
        Patch::Set(d) => n.description = long_text("description", d, MAX_TEXT)?,
        Patch::Null => n.description.clear(),
        Patch::Absent => {}
    }
    nullable_line(&p.error_code, "error_code", &mut n.error_code)?;
    match &p.incident_type {
        Patch::Set(t) => n.incident_type = incident_type(settings, Some(t))?,
        Patch::Null => return Err(Invalid::new("type", "must not be null")),
        Patch::Absent => {}
    }
    required(&p.impact, "impact", &mut n.impact)?;
    required(&p.urgency, "urgency", &mut n.urgency)?;
    n.priority = settings.priority_matrix.priority(n.impact, n.urgency);
    match &p.severity {
        Patch::Set(s) => n.severity = severity(settings, Some(s))?,
        Patch::Null => return Err(Invalid::new("severity", "must not be null")),
        Patch::Absent => {}
    }
    match &p.service_ids {
        Patch::Set(v) => n.service_ids = ids("service_ids", v)?,
        Patch::Null => n.service_ids.clear(),
        Patch::Absent => {}
    }
    match p.assignee_id {
        Patch::Set(a) => n.assignee_id = Some(a),
        Patch::Null => n.assignee_id = None,
        Patch::Absent => {}
    }
    match &p.roles {
        Patch::Set(roles) => {
            for (role, users) in roles {
                set_role_holders(settings, &mut n.roles, role, users)?;
            }
        }
        Patch::Null => n.roles.clear(),
        Patch::Absent => {}
    }
    match &p.labels {
        Patch::Set(l) => n.labels = labels(l)?,
        Patch::Null => n.labels.clear(),
        Patch::Absent => {}
    }
    match &p.custom_fields {
        Patch::Set(c) => {
            n.custom_fields = fields::apply(&settings.custom_fields, &n.custom_fields, c)?
        }
        Patch::Null => n.custom_fields.clear(),
        Patch::Absent => {}
    }
    fields::check_required(&settings.custom_fields, &n.custom_fields)?;
    nullable(&p.occurred_at, &mut n.occurred_at);
    nullable(&p.detected_at, &mut n.detected_at);
    nullable_text(&p.root_cause, "root_cause", &mut n.root_cause)?;
    nullable_text(
        &p.resolution_summary,
        "resolution_summary",
        &mut n.resolution_summary,
    )?;
    match &p.related {
        Patch::Set(r) => n.related = relations(n.id, r)?,
        Patch::Null => n.related.clear(),
        Patch::Absent => {}
    }
    check_times(&n)?;
    let changes = diff(cur, &n);
    if !changes.is_empty() {
        n.updated_at = now;
    }
    Ok((n, changes))
}

/// What a requested lifecycle move did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moved {
    /// The status changed.
    Status,
    /// Closing waits for the reporter's confirmation; the status is unchanged.
    ClosureRequested,
}

/// Moves an incident to `to`, setting the lifecycle timestamps. Closing an
/// incident whose type needs confirmation, by someone other than its reporter,
/// only requests closure.
pub fn transition(
    settings: &IncidentSettings,
    cur: &Incident,
    to: Status,
    actor: Option<i64>,
    now: Timestamp,
) -> Result<(Incident, Moved, Vec<Change>), TransitionRefused> {
    check_transition(cur.status, to)?;
    let mut n = cur.clone();
    let needs_confirmation = settings
        .incident_type(&cur.incident_type)
        .is_some_and(|t| t.requires_confirmation);
    let moved = if to == Status::Closed
        && needs_confirmation
        && cur.reporter_id.is_some()
        && actor != cur.reporter_id
    {
        n.closure_requested_at.get_or_insert(now);
        Moved::ClosureRequested
    } else {
        move_to(&mut n, to, now);
        Moved::Status
    };
    let changes = diff(cur, &n);
    if !changes.is_empty() {
        n.updated_at = now;
    }
    Ok((n, moved, changes))
}

/// Why a closure confirmation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmRefused {
    /// No closure is waiting.
    #[error("no closure is waiting for confirmation on this incident")]
    NotRequested,
    /// Only the reporter may confirm or reject.
    #[error("only the reporter may confirm or reject closure")]
    NotReporter,
}

/// The reporter confirms (closed) or rejects (reopened to investigating) closure.
pub fn confirm_closure(
    cur: &Incident,
    accept: bool,
    actor: Option<i64>,
    now: Timestamp,
) -> Result<(Incident, Vec<Change>), ConfirmRefused> {
    if cur.closure_requested_at.is_none() || cur.status != Status::Resolved {
        return Err(ConfirmRefused::NotRequested);
    }
    if actor.is_none() || actor != cur.reporter_id {
        return Err(ConfirmRefused::NotReporter);
    }
    let mut n = cur.clone();
    move_to(
        &mut n,
        if accept {
            Status::Closed
        } else {
            Status::Investigating
        },
        now,
    );
    let changes = diff(cur, &n);
    n.updated_at = now;
    Ok((n, changes))
}

fn move_to(n: &mut Incident, to: Status, now: Timestamp) {
    let reopen = n.status.is_reopen(to);
    n.status = to;
    n.closure_requested_at = None;
    if to != Status::Triggered {
        n.acknowledged_at.get_or_insert(now);
    }
    if matches!(to, Status::Monitoring | Status::Resolved) {
        n.mitigated_at.get_or_insert(now);
    }
    match to {
        Status::Resolved => n.resolved_at = Some(now),
        Status::Closed => n.closed_at = Some(now),
        _ if reopen => {
            n.resolved_at = None;
            n.closed_at = None;
        }
        _ => {}
    }
}

/// The fields that differ between two versions, in API names, with old and new values.
pub fn diff(a: &Incident, b: &Incident) -> Vec<Change> {
    let (Value::Object(a), Value::Object(b)) = (to_value(a), to_value(b)) else {
        return Vec::new();
    };
    a.iter()
        .filter(|(k, _)| k.as_str() != "updated_at")
        .filter(|(k, v)| b.get(k.as_str()) != Some(v))
        .map(|(k, v)| Change {
            field: k.clone(),
            old: v.clone(),
            new: b.get(k.as_str()).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

fn to_value(i: &Incident) -> Value {
    serde_json::to_value(i).unwrap_or(Value::Null)
}

/// Users an incident refers to (assignee, role holders, user custom fields), with
/// the field each comes from, so the store can check they exist.
pub fn referenced_users(settings: &IncidentSettings, inc: &Incident) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    if let Some(a) = inc.assignee_id {
        out.push(("assignee_id".to_string(), a));
    }
    for (role, users) in &inc.roles {
        out.extend(users.iter().map(|u| (format!("roles.{role}"), *u)));
    }
    out.extend(fields::referenced_users(
        &settings.custom_fields,
        &inc.custom_fields,
    ));
    out
}

fn set_role_holders(
    settings: &IncidentSettings,
    roles: &mut BTreeMap<String, Vec<i64>>,
    role: &str,
    users: &[i64],
) -> Result<(), Invalid> {
    let field = format!("roles.{role}");
    let def = settings.role(role).ok_or_else(|| {
        let names: Vec<String> = settings.roles().into_iter().map(|r| r.name).collect();
        Invalid::new(
            &field,
            format!("no such role; roles are: {}", names.join(", ")),
        )
    })?;
    if users.len() > 1 && !def.multiple {
        return Err(Invalid::new(
            &field,
            "this role is held by one person at a time",
        ));
    }
    let users = ids(&field, users)?;
    if users.is_empty() {
        roles.remove(role);
    } else {
        roles.insert(role.to_string(), users);
    }
    Ok(())
}

fn ids(field: &str, v: &[i64]) -> Result<Vec<i64>, Invalid> {
    let mut out: Vec<i64> = Vec::with_capacity(v.len());
    for id in v {
        if *id <= 0 {
            return Err(Invalid::new(field, format!("{id} is not an id")));
        }
        if out.contains(id) {
            return Err(Invalid::new(field, format!("{id} is listed twice")));
        }
        out.push(*id);
    }
    Ok(out)
}

fn labels(v: &[String]) -> Result<Vec<String>, Invalid> {
    if v.len() > MAX_LABELS {
        return Err(Invalid::new(
            "labels",
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for l in v {
        let l = required_text("labels", l, MAX_LABEL)?;
        if !out.contains(&l) {
            out.push(l);
        }
    }
    Ok(out)
}

fn relations(own_id: i64, v: &[Relation]) -> Result<Vec<Relation>, Invalid> {
    let mut out: Vec<Relation> = Vec::new();
    for r in v {
        if r.incident_id == own_id {
            return Err(Invalid::new(
                "related",
                "an incident cannot relate to itself",
            ));
        }
        if r.incident_id <= 0 {
            return Err(Invalid::new(
                "related",
                format!("{} is not an incident id", r.incident_id),
            ));
        }
        if out.iter().any(|o| o.incident_id == r.incident_id) {
            return Err(Invalid::new(
                "related",
                format!("INC-{} is listed twice", r.incident_id),
            ));
        }
        out.push(r.clone());
    }
    Ok(out)
}

fn incident_type(settings: &IncidentSettings, t: Option<&str>) -> Result<String, Invalid> {
    let t = t.unwrap_or(settings.default_type());
    match settings.incident_type(t) {
        Some(_) => Ok(t.to_string()),
        None => Err(Invalid::new(
            "type",
            format!(
                "`{t}` is not a configured type; types are: {}",
                settings
                    .types
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn severity(settings: &IncidentSettings, s: Option<&str>) -> Result<String, Invalid> {
    let s = s.unwrap_or(settings.default_severity());
    if settings.has_severity(s) {
        Ok(s.to_string())
    } else {
        Err(Invalid::new(
            "severity",
            format!(
                "`{s}` is not a configured severity; severities are: {}",
                settings
                    .severities
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

fn optional_line(field: &str, s: Option<&str>) -> Result<Option<String>, Invalid> {
    s.map(|s| required_text(field, s, MAX_TITLE)).transpose()
}

fn nullable_line(p: &Patch<String>, field: &str, into: &mut Option<String>) -> Result<(), Invalid> {
    match p {
        Patch::Set(s) => *into = Some(required_text(field, s, MAX_TITLE)?),
        Patch::Null => *into = None,
        Patch::Absent => {}
    }
    Ok(())
}

fn nullable_text(p: &Patch<String>, field: &str, into: &mut Option<String>) -> Result<(), Invalid> {
    match p {
        Patch::Set(s) => *into = Some(long_text(field, s, MAX_TEXT)?),
        Patch::Null => *into = None,
        Patch::Absent => {}
    }
    Ok(())
}

fn nullable<T: Clone>(p: &Patch<T>, into: &mut Option<T>) {
    match p {
        Patch::Set(v) => *into = Some(v.clone()),
        Patch::Null => *into = None,
        Patch::Absent => {}
    }
}

fn required<T: Copy>(p: &Patch<T>, field: &str, into: &mut T) -> Result<(), Invalid> {
    match p {
        Patch::Set(v) => *into = *v,
        Patch::Null => return Err(Invalid::new(field, "must not be null")),
        Patch::Absent => {}
    }
    Ok(())
}

fn check_times(i: &Incident) -> Result<(), Invalid> {
    if let (Some(o), Some(d)) = (i.occurred_at, i.detected_at) {
        if d < o {
            return Err(Invalid::new("detected_at", "cannot be before occurred_at"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;

    fn now() -> Timestamp {
        from_millis(1_700_000_000_000)
    }

    fn base() -> Incident {
        let req = NewIncident {
            title: "DB down".into(),
            ..Default::default()
        };
        declare(&IncidentSettings::default(), &req, 1, Some(7), now()).unwrap()
    }

    #[test]
    fn declare_defaults() {
        let i = base();
        assert_eq!(i.number, "INC-1");
        assert_eq!(i.severity, "SEV4");
        assert_eq!(i.priority, crate::incident::Priority::P3);
        assert_eq!(i.status, Status::Triggered);
        assert_eq!(i.detected_at, Some(now()));
    }

    #[test]
    fn patch_records_old_and_new_and_recomputes_priority() {
        let p: IncidentPatch =
            serde_json::from_str(r#"{"impact":"high","urgency":"high","error_code":null}"#)
                .unwrap();
        let (n, changes) = apply_patch(&IncidentSettings::default(), &base(), &p, now()).unwrap();
        assert_eq!(n.priority, crate::incident::Priority::P1);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["impact", "urgency", "priority"]);
        assert_eq!(changes[2].old, "P3");
        assert_eq!(changes[2].new, "P1");
    }

    #[test]
    fn confirmation_flow() {
        let s = IncidentSettings::default();
        let req = NewIncident {
            title: "Laptop".into(),
            incident_type: Some("service_request".into()),
            ..Default::default()
        };
        let i = declare(&s, &req, 2, Some(7), now()).unwrap();
        let (i, _, _) = transition(&s, &i, Status::Resolved, Some(8), now()).unwrap();
        let (i, moved, _) = transition(&s, &i, Status::Closed, Some(8), now()).unwrap();
        assert_eq!(moved, Moved::ClosureRequested);
        assert_eq!(i.status, Status::Resolved);
        assert_eq!(
            confirm_closure(&i, true, Some(8), now()).unwrap_err(),
            ConfirmRefused::NotReporter
        );
        let (rejected, _) = confirm_closure(&i, false, Some(7), now()).unwrap();
        assert_eq!(rejected.status, Status::Investigating);
        assert_eq!(rejected.resolved_at, None);
        let (closed, _) = confirm_closure(&i, true, Some(7), now()).unwrap();
        assert_eq!(closed.status, Status::Closed);
    }

    #[test]
    fn single_holder_roles() {
        let p: IncidentPatch = serde_json::from_str(r#"{"roles":{"commander":[1,2]}}"#).unwrap();
        let err = apply_patch(&IncidentSettings::default(), &base(), &p, now()).unwrap_err();
        assert_eq!(err.field, "roles.commander");
    }
}
