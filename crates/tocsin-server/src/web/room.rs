//! The incident room, `/incidents/{number}`: everything about one incident on
//! one page — its facts, roles, lifecycle buttons, the live timeline with notes,
//! alerts, attachments and notifications — and the forms that change it. Every
//! form calls the same store function as the matching API route and comes back
//! to the room (303); a refusal shows the error page with the API's status.

mod runbooks;
pub(crate) mod similar;
mod status;
mod timeline;
mod view;

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
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

use super::common::{invalid, page, see_other, WebResult};
use super::session::{field, fields, AsResponder, AsViewer, CsrfForm, CsrfPairs};
use crate::api::incidents::incident_id;
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
        .route("/incidents/{number}/status-posts", post(status::publish))
        .route(
            "/incidents/{number}/status-posts/{post_id}/updates",
            post(status::update),
        )
        .route(
            "/incidents/{number}/attachments/{attachment_id}",
            get(download),
        )
        .merge(runbooks::routes())
}

fn back(number: &str) -> String {
    format!("/incidents/{number}")
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    notice: Option<String>,
    /// The status page the publish form is drawn for.
    status_page: Option<String>,
    /// The template that fills it.
    status_template: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    who: AsViewer,
    Path(number): Path<String>,
    Query(q): Query<ShowQuery>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let panel = status::PanelState {
        page: q.status_page,
        template: q.status_template,
        failed: None,
    };
    let body = view::room(&state, &who.0, id, view::notice(q.notice.as_deref()), panel).await?;
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
/// several holders); an empty select clears. Only what the person changed
/// (against what their form showed, its `orig`) is sent, so a stale form never
/// undoes someone else's assignment.
async fn assign(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let cur = state.store.incident(id).await?;
    let shown = as_shown(&cur, &pairs)?;
    let has_orig = field(&pairs, ORIG).is_some();
    let mut patch = IncidentPatch::default();
    let mut roles = BTreeMap::new();
    for r in state.settings.roles() {
        let key = format!("role.{}", r.name);
        // A multiple select with nothing chosen posts nothing: with the form's
        // `orig` that means "none"; a hand-made post without it leaves the role.
        if !has_orig && field(&pairs, &key).is_none() {
            continue;
        }
        let mut held = Vec::new();
        for v in fields(&pairs, &key).into_iter().filter(|v| !v.is_empty()) {
            held.push(user_id(&format!("roles.{}", r.name), v)?);
        }
        if shown.roles.get(&r.name).cloned().unwrap_or_default() != held {
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
        if new != shown.assignee_id {
            patch.assignee_id = new.map_or(Patch::Null, Patch::Set);
        }
    }
    update(&state, &who, &cur, &patch).await
}

/// The hidden field carrying what a form showed, as JSON of the incident's
/// fields (the API's names): each save compares the posted values with it,
/// not with the incident as it is now, and patches only what differs.
pub(crate) const ORIG: &str = "orig";

/// The fields the edit-details form shows.
pub(crate) const DETAIL_FIELDS: &[&str] = &[
    "title",
    "severity",
    "type",
    "impact",
    "urgency",
    "service_ids",
    "labels",
    "description",
    "root_cause",
    "resolution_summary",
    "custom_fields",
];

/// The fields the roles form shows.
pub(crate) const ROLE_FIELDS: &[&str] = &["assignee_id", "roles"];

/// `keys` of `inc` as the JSON the form's `orig` field carries.
pub(crate) fn orig_of(inc: &Incident, keys: &[&str]) -> String {
    let all = serde_json::to_value(inc).unwrap_or_default();
    let picked: Map<String, Value> = keys
        .iter()
        .map(|k| ((*k).to_string(), all[*k].clone()))
        .collect();
    Value::Object(picked).to_string()
}

/// The incident as the posting form showed it: `cur` with the values of the
/// form's `orig` in place of the current ones (only the fields forms show).
/// A form without `orig` (a hand-made post) is compared with `cur`.
fn as_shown(cur: &Incident, pairs: &[(String, String)]) -> WebResult<Incident> {
    let Some(orig) = field(pairs, ORIG) else {
        return Ok(cur.clone());
    };
    let damaged = || invalid(ORIG, "the form is damaged; reload the page and try again");
    let orig: Map<String, Value> = serde_json::from_str(orig).map_err(|_| damaged())?;
    let mut doc = match serde_json::to_value(cur) {
        Ok(Value::Object(m)) => m,
        _ => return Ok(cur.clone()),
    };
    for (k, v) in orig {
        if DETAIL_FIELDS.contains(&k.as_str()) || ROLE_FIELDS.contains(&k.as_str()) {
            doc.insert(k, v);
        }
    }
    serde_json::from_value(Value::Object(doc)).map_err(|_| damaged())
}

/// Labels as the form's textarea holds them: one per line (a label may hold
/// a comma).
pub(crate) fn parse_labels(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
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

/// Optional text from a textarea: blank clears. Compared as posted (browsers
/// send CRLF), so text with leading or trailing blank lines is not rewritten.
fn nullable(posted: Option<&str>, cur: &Option<String>) -> Patch<String> {
    let Some(v) = posted.map(|v| v.replace("\r\n", "\n")) else {
        return Patch::Absent;
    };
    match v {
        v if Some(v.as_str()) == cur.as_deref() => Patch::Absent,
        v if v.trim().is_empty() && cur.is_none() => Patch::Absent,
        v if v.trim().is_empty() => Patch::Null,
        v => Patch::Set(v),
    }
}

/// The edit form: every field it shows is posted; only what differs from what
/// the form showed (its `orig`) goes into the patch, so an untouched form
/// records nothing and a stale one never reverts another person's change.
async fn edit_fields(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfPairs(pairs): CsrfPairs,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let cur = state.store.incident(id).await?;
    let shown = as_shown(&cur, &pairs)?;
    let mut p = IncidentPatch::default();
    if let Some(t) = field(&pairs, "title") {
        if t.trim() != shown.title {
            p.title = Patch::Set(t.trim().into());
        }
    }
    if let Some(s) = field(&pairs, "severity").filter(|s| *s != shown.severity) {
        p.severity = Patch::Set(s.into());
    }
    if let Some(t) = field(&pairs, "type").filter(|t| *t != shown.incident_type) {
        p.incident_type = Patch::Set(t.into());
    }
    for (key, cur_level, slot) in [
        ("impact", shown.impact, &mut p.impact),
        ("urgency", shown.urgency, &mut p.urgency),
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
        if d != shown.description {
            p.description = Patch::Set(d);
        }
    }
    p.root_cause = nullable(field(&pairs, "root_cause"), &shown.root_cause);
    p.resolution_summary = nullable(
        field(&pairs, "resolution_summary"),
        &shown.resolution_summary,
    );
    if field(&pairs, "services_shown").is_some() {
        let mut ids = Vec::new();
        for v in fields(&pairs, "service_ids") {
            ids.push(
                v.parse::<i64>()
                    .map_err(|_| invalid("service_ids", "choose services from the list"))?,
            );
        }
        if ids != shown.service_ids {
            p.service_ids = Patch::Set(ids);
        }
    }
    if let Some(l) = field(&pairs, "labels") {
        let labels = parse_labels(l);
        if labels != shown.labels {
            p.labels = Patch::Set(labels);
        }
    }
    let mut custom = Map::new();
    for f in &state.settings.custom_fields {
        let key = format!("cf.{}", f.name);
        let posted = fields(&pairs, &key);
        let in_form = field(&pairs, &format!("cf_shown.{}", f.name)).is_some();
        if posted.is_empty() && !in_form {
            continue;
        }
        let v = custom_value(f.kind, &f.name, &posted)?;
        if shown.custom_fields.get(&f.name).unwrap_or(&Value::Null) != &v {
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

/// The one link a related-incidents form adds, or the `kind:incident_id` of the
/// one it removes.
enum LinkChange {
    Add(Relation),
    Remove(String),
}

/// Links another incident (or removes a link) through the patch's `related`.
/// The list is read right before the write and only the one link is added or
/// removed, so a form never drops links made since it was drawn. Two links
/// saved in the same instant can still race (the store has no "add one
/// relation" call; `related` is written whole), and then one is lost.
async fn link_related(
    State(state): State<AppState>,
    who: AsResponder,
    Path(number): Path<String>,
    CsrfForm(f): CsrfForm<RelatedForm>,
) -> WebResult<Response> {
    let id = incident_id(&number)?;
    let change = match f.unlink.as_deref() {
        Some(u) => LinkChange::Remove(u.to_string()),
        None => {
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
            LinkChange::Add(Relation {
                kind,
                incident_id: other,
            })
        }
    };
    let cur = state.store.incident(id).await?;
    let mut related = cur.related.clone();
    match &change {
        LinkChange::Remove(u) => {
            related.retain(|r| &format!("{}:{}", r.kind.as_str(), r.incident_id) != u)
        }
        LinkChange::Add(rel) if !related.contains(rel) => related.push(rel.clone()),
        LinkChange::Add(_) => {}
    }
    if related == cur.related {
        return Ok(see_other(back(&cur.number)));
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

/// An attachment for a browser (the API's download needs a token). It is
/// served from the UI's own origin, so whatever type the uploader claimed it is
/// sent as opaque bytes in a sandbox: a `text/javascript` upload must never
/// count as the site's own script, nor an HTML one run as a page.
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
    let mut resp = crate::api::records::download(meta, content);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(resp)
}
