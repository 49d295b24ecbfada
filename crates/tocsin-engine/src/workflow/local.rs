//! Steps that change Tocsin itself, through the same store calls as the API,
//! recorded as `workflow NAME`: a timeline note, an incident update, an
//! attached runbook, a status-page update draft.
//!
//! Each store call is made under the attempt's idempotency key (see
//! [`StepCall::store`]); an attempt tried again after a crash skips the calls
//! that already committed.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tocsin_core::change::{IncidentPatch, Patch};
use tocsin_core::incident::{RecordKind, Status};
use tocsin_core::settings::IncidentSettings;
use tocsin_core::status_page::ComponentStatus;
use tocsin_core::workflow::Action;
use tocsin_notify::BoxFuture;
use tocsin_store::NewNote;

use super::executor::{StepCall, StepError, StepExecutor};

/// `add_note`: markdown on the incident's timeline.
pub struct AddNote;

impl StepExecutor for AddNote {
    fn kinds(&self) -> &'static [&'static str] {
        &["add_note"]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::AddNote(n) = call.action else {
                return Err(StepError::permanent("not an add_note step"));
            };
            let incident = call.incident()?;
            if call.already_done("note").await? {
                return Ok(json!({ "added": true }));
            }
            let note = call
                .store("note")
                .add_note(
                    incident,
                    &NewNote {
                        body: n.text.clone(),
                        kind: RecordKind::Note,
                        approved_by: None,
                    },
                    call.actor,
                    call.now,
                )
                .await?;
            Ok(json!({ "added": true, "note_id": note.id }))
        })
    }
}

/// `update_incident`: status, severity, custom fields and roles.
pub struct UpdateIncident {
    settings: Arc<IncidentSettings>,
}

impl UpdateIncident {
    /// Checking changes against `settings`, as the API does.
    pub fn new(settings: Arc<IncidentSettings>) -> UpdateIncident {
        UpdateIncident { settings }
    }
}

// A rendered value as the field's JSON: numbers, booleans and lists written
// as JSON are taken as such, anything else as text.
fn field_value(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Null)) => v,
        _ => Value::String(text.to_string()),
    }
}

impl StepExecutor for UpdateIncident {
    fn kinds(&self) -> &'static [&'static str] {
        &["update_incident"]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::UpdateIncident(u) = call.action else {
                return Err(StepError::permanent("not an update_incident step"));
            };
            let incident = call.incident()?;
            let mut patch = IncidentPatch::default();
            let mut changed = Vec::new();
            if let Some(s) = u.severity.as_deref().filter(|s| !s.is_empty()) {
                patch.severity = Patch::Set(s.to_string());
                changed.push("severity".to_string());
            }
            if !u.fields.is_empty() {
                let fields: Map<String, Value> = u
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), field_value(v)))
                    .collect();
                changed.extend(u.fields.keys().map(|k| format!("custom_fields.{k}")));
                patch.custom_fields = Patch::Set(fields);
            }
            if !u.roles.is_empty() {
                let mut roles = std::collections::BTreeMap::new();
                for (role, who) in &u.roles {
                    let id = match who.trim().parse::<i64>() {
                        Ok(id) => id,
                        Err(_) => call
                            .store
                            .user_by_email(who)
                            .await?
                            .map(|(u, _)| u.id)
                            .ok_or_else(|| {
                                StepError::permanent(format!(
                                    "update_incident.roles.{role}: no user `{who}`"
                                ))
                            })?,
                    };
                    roles.insert(role.clone(), vec![id]);
                    changed.push(format!("roles.{role}"));
                }
                patch.roles = Patch::Set(roles);
            }
            let has_patch = !changed.is_empty();
            if has_patch && !call.already_done("fields").await? {
                call.store("fields")
                    .update_incident(&self.settings, incident, &patch, call.actor, call.now)
                    .await?;
            }
            if let Some(s) = u.status.as_deref().filter(|s| !s.is_empty()) {
                let to = Status::parse(s).ok_or_else(|| {
                    StepError::permanent(format!("update_incident.status: `{s}` is not a status"))
                })?;
                if !call.already_done("status").await? {
                    let current = call.store.incident(incident).await?;
                    if current.status != to {
                        call.store("status")
                            .transition_incident(&self.settings, incident, to, call.actor, call.now)
                            .await?;
                    }
                }
                changed.push("status".into());
            }
            Ok(json!({ "changed": changed }))
        })
    }
}

/// `attach_runbook`: a stored runbook, by name, on the incident.
pub struct AttachRunbook;

impl StepExecutor for AttachRunbook {
    fn kinds(&self) -> &'static [&'static str] {
        &["attach_runbook"]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::AttachRunbook(r) = call.action else {
                return Err(StepError::permanent("not an attach_runbook step"));
            };
            let incident = call.incident()?;
            let a = call
                .store("runbook")
                .attach_runbook(incident, &r.runbook, call.actor, call.now)
                .await?;
            Ok(serde_json::to_value(a).unwrap_or_default())
        })
    }
}

/// `status_page_update`: a draft, not a post. The page and its components are
/// checked, and the draft is the step's outputs (`steps.ID.outputs.draft`),
/// noted on the incident's timeline; the communicator publishes it from the
/// incident room (or the status page API), so nothing reaches customers
/// without a person.
pub struct StatusPageDraft;

impl StepExecutor for StatusPageDraft {
    fn kinds(&self) -> &'static [&'static str] {
        &["status_page_update"]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::StatusPageUpdate(s) = call.action else {
                return Err(StepError::permanent("not a status_page_update step"));
            };
            let page = call
                .store
                .status_page_by_slug(&s.page)
                .await?
                .ok_or_else(|| {
                    StepError::permanent(format!(
                        "status_page_update.page: no status page `{}`",
                        s.page
                    ))
                })?;
            let known = call.store.components(page.id).await?;
            let mut components = Vec::new();
            for (name, status) in &s.components {
                let c = known.iter().find(|c| &c.name == name).ok_or_else(|| {
                    StepError::permanent(format!(
                        "status_page_update.components.{name}: `{}` has no such component",
                        s.page
                    ))
                })?;
                let status = ComponentStatus::parse(&format!("components.{name}"), status)
                    .map_err(|e| StepError::permanent(format!("{}: {}", e.field, e.message)))?;
                components.push(json!({ "component_id": c.id, "name": name, "status": status }));
            }
            let draft = json!({
                "page_id": page.id, "page": s.page, "status": s.status,
                "message": s.message, "components": components,
            });
            if let Some(incident) = call.incident_id {
                if !call.already_done("draft").await? {
                    call.store("draft")
                        .add_note(
                            incident,
                            &NewNote {
                                body: format!(
                                    "Status page update drafted for `{}` ({}), waiting to be published:\n\n{}",
                                    s.page, s.status, s.message
                                ),
                                kind: RecordKind::Note,
                                approved_by: None,
                            },
                            call.actor,
                            call.now,
                        )
                        .await?;
                }
            }
            Ok(json!({ "draft": draft, "published": false }))
        })
    }
}
