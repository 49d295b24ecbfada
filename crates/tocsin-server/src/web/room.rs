//! The incident room, `/incidents/{number}`: everything about one incident on
//! one page — its facts, roles, lifecycle buttons, the live timeline with notes,
//! alerts, attachments and notifications — and the forms that change it. Every
//! form calls the same store function as the matching API route and comes back
//! to the room (303); a refusal shows the error page with the API's status.

mod timeline;
mod view;

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{Map, Value};
use tocsin_core::change::{IncidentPatch, Moved, Patch};
use tocsin_core::fields::FieldKind;
use tocsin_core::incident::{Level, RecordKind, RelationKind, Status};
use tocsin_core::model::{Incident, Relation};
use tocsin_store::NewNote;

use super::common::{page, see_other, WebError, WebResult};
use super::session::{field, fields, AsResponder, AsViewer, CsrfForm, CsrfPairs};
use crate::api::incidents::incident_id;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents/{number}", get(show))
        .route("/incidents/{number}/status", post(change_status))
        .route("/incidents/{number}/closure", post(answer_closure))
        .route("/incidents/{number}/escalate", post(escalate))
        .route("/incidents/{number}/roles", post(assign))
        .route("/incidents/{number}/fields", post(edit_fields))
        .route("/incidents/{number}/related", post(link_related))
        .route("/incidents/{number}/notes", post(add_note))
        .route("/incidents/{number}/notes/{note_id}/mark", post(mark_note))
        .route(
            "/incidents/{number}/attachments/{attachment_id}",
            get(download),
        )
}

fn invalid(field: &str, message: impl Into<String>) -> WebError {
    WebError::Api(ApiError::Invalid {
        field: field.into(),
        message: message.into(),
    })
}

fn back(number: &str) -> String {
    format!("/incidents/{number}")
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    notice: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(number): Path<String>,
    Query(q): Query<ShowQuery>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let body = view::room(&state, &who, id, view::notice(q.notice.as_deref())).await?;
    Ok(page(&body))
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    status: Option<String>,
}

/// A lifecycle move; closing may only request closure, which the room then says.
async fn change_status(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfForm(f): CsrfForm<StatusForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let to = f
        .status
        .as_deref()
        .and_then(Status::parse)
        .ok_or_else(|| invalid("status", "choose one of the offered moves"))?;
    let (inc, moved) = state
        .store
        .transition_incident(&state.settings, id, to, &who.actor(), state.now())
        .await?;
    Ok(see_other(match moved {
        Moved::ClosureRequested => format!("{}?notice=closure_requested", back(&inc.number)),
        Moved::Status => back(&inc.number),
    }))
}

#[derive(Debug, Deserialize)]
struct ClosureForm {
    /// `confirm` or `reject`.
    answer: Option<String>,
}

/// The reporter's answer to a closure request.
async fn answer_closure(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfForm(f): CsrfForm<ClosureForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let accept = match f.answer.as_deref() {
        Some("confirm") => true,
        Some("reject") => false,
        _ => return Err(invalid("answer", "must be confirm or reject")),
    };
    let inc = state
        .store
        .confirm_closure(&state.settings, id, accept, &who.actor(), state.now())
        .await?;
    Ok(see_other(back(&inc.number)))
}

#[derive(Debug, Deserialize)]
struct EscalateForm {
    /// 0 is the first level.
    level: Option<String>,
}

/// Escalate now: the API's `POST …/escalate`.
async fn escalate(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfForm(f): CsrfForm<EscalateForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let level = f
        .level
        .as_deref()
        .unwrap_or("0")
        .parse::<usize>()
        .map_err(|_| invalid("level", "choose a level from the list"))?;
    state
        .store
        .escalate_incident(id, level, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("{}?notice=escalated", back(&number))))
}

fn user_id(field: &str, v: &str) -> WebResult<i64> {
    v.parse::<i64>()
        .map_err(|_| invalid(field, "choose a person from the list"))
}

/// Roles and assignee: one select per role (several values for roles with
/// several holders); an empty select clears. Only what changed is sent.
async fn assign(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let cur = state.store.incident(id).await?;
    let mut patch = IncidentPatch::default();
    let mut roles = BTreeMap::new();
    for r in state.settings.roles() {
        let key = format!("role.{}", r.name);
        let mut held = Vec::new();
        for v in fields(&pairs, &key).into_iter().filter(|v| !v.is_empty()) {
            held.push(user_id(&format!("roles.{}", r.name), v)?);
        }
        if cur.roles.get(&r.name).cloned().unwrap_or_default() != held {
            roles.insert(r.name, held);
        }
    }
    if !roles.is_empty() {
        patch.roles = Patch::Set(roles);
    }
    if let Some(a) = field(&pairs, "assignee_id") {
        let new = match a {
            "" => None,
            v => Some(user_id("assignee_id", v)?),
        };
        if new != cur.assignee_id {
            patch.assignee_id = new.map_or(Patch::Null, Patch::Set);
        }
    }
    update(&state, &who, &cur, &patch).await
}

async fn update(
    state: &AppState,
    who: &AsResponder,
    cur: &Incident,
    patch: &IncidentPatch,
) -> WebResult<Response> {
    state
        .store
        .update_incident(&state.settings, cur.id, patch, &who.actor(), state.now())
        .await?;
    Ok(see_other(back(&cur.number)))
}

/// The value a custom field's input posted, as the API takes it; empty clears.
fn custom_value(kind: FieldKind, name: &str, posted: &[&str]) -> WebResult<Value> {
    let field = format!("custom_fields.{name}");
    let one = posted.first().map(|s| s.trim()).unwrap_or("");
    if kind != FieldKind::MultiSelect && one.is_empty() {
        return Ok(Value::Null);
    }
    Ok(match kind {
        FieldKind::Text | FieldKind::Select | FieldKind::Date => Value::String(one.into()),
        FieldKind::Number => one
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(|n| {
                // Whole numbers stay integers, as the API would store them.
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Value::from(f as i64),
                    _ => Value::Number(n),
                }
            })
            .ok_or_else(|| invalid(&field, "must be a number"))?,
        FieldKind::User => Value::from(user_id(&field, one)?),
        FieldKind::MultiSelect => {
            let items: Vec<Value> = posted
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| Value::String((*s).into()))
                .collect();
            if items.is_empty() {
                Value::Null
            } else {
                Value::Array(items)
            }
        }
    })
}

/// Optional text: empty clears.
fn nullable(posted: Option<&str>, cur: &Option<String>) -> Patch<String> {
    match posted.map(str::trim) {
        None => Patch::Absent,
        Some("") if cur.is_none() => Patch::Absent,
        Some("") => Patch::Null,
        Some(v) if Some(v) == cur.as_deref() => Patch::Absent,
        Some(v) => Patch::Set(v.into()),
    }
}

/// The edit form: every field it shows is posted; only what differs from the
/// incident goes into the patch, so an untouched form records nothing.
async fn edit_fields(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let cur = state.store.incident(id).await?;
    let mut p = IncidentPatch::default();
    if let Some(t) = field(&pairs, "title") {
        if t.trim() != cur.title {
            p.title = Patch::Set(t.trim().into());
        }
    }
    if let Some(s) = field(&pairs, "severity").filter(|s| *s != cur.severity) {
        p.severity = Patch::Set(s.into());
    }
    if let Some(t) = field(&pairs, "type").filter(|t| *t != cur.incident_type) {
        p.incident_type = Patch::Set(t.into());
    }
    for (key, cur_level, slot) in [
        ("impact", cur.impact, &mut p.impact),
        ("urgency", cur.urgency, &mut p.urgency),
    ] {
        if let Some(v) = field(&pairs, key) {
            let l = Level::parse(v).ok_or_else(|| invalid(key, "must be high, medium or low"))?;
            if l != cur_level {
                *slot = Patch::Set(l);
            }
        }
    }
    if let Some(d) = field(&pairs, "description") {
        // Browsers post CRLF; compare as the page showed it.
        let d = d.replace("\r\n", "\n");
        if d != cur.description {
            p.description = Patch::Set(d);
        }
    }
    p.root_cause = nullable(field(&pairs, "root_cause"), &cur.root_cause);
    p.resolution_summary = nullable(field(&pairs, "resolution_summary"), &cur.resolution_summary);
    if field(&pairs, "services_shown").is_some() {
        let mut ids = Vec::new();
        for v in fields(&pairs, "service_ids") {
            ids.push(
                v.parse::<i64>()
                    .map_err(|_| invalid("service_ids", "choose services from the list"))?,
            );
        }
        if ids != cur.service_ids {
            p.service_ids = Patch::Set(ids);
        }
    }
    if let Some(l) = field(&pairs, "labels") {
        let labels: Vec<String> = l
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if labels != cur.labels {
            p.labels = Patch::Set(labels);
        }
    }
    let mut custom = Map::new();
    for f in &state.settings.custom_fields {
        let key = format!("cf.{}", f.name);
        let posted = fields(&pairs, &key);
        let shown = field(&pairs, &format!("cf_shown.{}", f.name)).is_some();
        if posted.is_empty() && !shown {
            continue;
        }
        let v = custom_value(f.kind, &f.name, &posted)?;
        if cur.custom_fields.get(&f.name).unwrap_or(&Value::Null) != &v {
            custom.insert(f.name.clone(), v);
        }
    }
    if !custom.is_empty() {
        p.custom_fields = Patch::Set(custom);
    }
    update(&state, &who, &cur, &p).await
}

#[derive(Debug, Deserialize)]
struct RelatedForm {
    kind: Option<String>,
    number: Option<String>,
    /// `kind:incident_id` of a link to remove.
    unlink: Option<String>,
}

/// Links another incident (or removes a link) through the patch's `related`.
async fn link_related(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfForm(f): CsrfForm<RelatedForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let cur = state.store.incident(id).await?;
    let mut related = cur.related.clone();
    if let Some(u) = f.unlink.as_deref() {
        related.retain(|r| format!("{}:{}", r.kind.as_str(), r.incident_id) != u);
    } else {
        let kind = f
            .kind
            .as_deref()
            .and_then(RelationKind::parse)
            .ok_or_else(|| invalid("kind", "choose how the incidents relate"))?;
        let other = f
            .number
            .as_deref()
            .map(str::trim)
            .ok_or_else(|| invalid("number", "give the other incident's number"))?;
        let other = incident_id(other)?;
        // A link to an incident that does not exist is refused by name.
        state.store.incident(other).await.map_err(|e| match e {
            tocsin_store::StoreError::NotFound { .. } => {
                invalid("number", format!("INC-{other} does not exist"))
            }
            e => e.into(),
        })?;
        let rel = Relation {
            kind,
            incident_id: other,
        };
        if !related.contains(&rel) {
            related.push(rel);
        }
    }
    let patch = IncidentPatch {
        related: Patch::Set(related),
        ..Default::default()
    };
    update(&state, &who, &cur, &patch).await
}

#[derive(Debug, Deserialize)]
struct NoteForm {
    body: Option<String>,
}

async fn add_note(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfForm(f): CsrfForm<NoteForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let note = NewNote {
        body: f.body.unwrap_or_default().replace("\r\n", "\n"),
        kind: RecordKind::Note,
        approved_by: None,
    };
    state
        .store
        .add_note(id, &note, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("{}#timeline", back(&number))))
}

#[derive(Debug, Deserialize)]
struct MarkForm {
    /// `note`, `decision` or `approval`.
    kind: Option<String>,
}

async fn mark_note(
    State(state): State<AppState>,
    who: AsResponder,
    Path((number, note_id)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<MarkForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let note_id = crate::api::path_id("note_id", &note_id)?;
    let kind = f
        .kind
        .as_deref()
        .and_then(RecordKind::parse)
        .ok_or_else(|| invalid("kind", "must be note, decision or approval"))?;
    state
        .store
        .mark_note(id, note_id, kind, None, &who.actor(), state.now())
        .await?;
    Ok(see_other(format!("{}#timeline", back(&number))))
}

/// An attachment for a browser (the API's download needs a token).
async fn download(
    State(state): State<AppState>,
    _who: AsViewer,
    Path((number, attachment_id)): Path<(String, String)>,
) -> WebResult<Response> {
    let attachment_id = crate::api::path_id("attachment_id", &attachment_id)?;
    let (meta, content) = state
        .store
        .attachment_content(incident_id(&number)?, attachment_id)
        .await?;
    Ok(crate::api::records::download(meta, content))
}
