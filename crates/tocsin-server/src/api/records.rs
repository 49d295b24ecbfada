//! Notes and attachments on an incident.

use axum::extract::{Path, Request, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, ETAG, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tocsin_core::incident::RecordKind;
use tocsin_core::model::{Attachment, Note};
use tocsin_store::{NewAttachment, NewNote};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::ErrorResponse;
use crate::error::ApiResult;
use crate::extract::{read_body, ApiJson, ApiQuery, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notes, add_note))
        .routes(routes!(mark_note))
        .routes(routes!(list_attachments, add_attachment))
        .routes(routes!(download_attachment))
        .routes(routes!(mark_attachment))
}

/// A note to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteRequest {
    /// Markdown text.
    body: String,
    /// `note` (default), `decision` or `approval`.
    #[serde(default)]
    kind: RecordKind,
    /// For approvals: who approved (defaults to the caller).
    approved_by: Option<i64>,
}

/// Marks a note or attachment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarkRequest {
    /// `note`, `decision` or `approval`.
    kind: RecordKind,
    /// For approvals: who approved (defaults to the caller).
    approved_by: Option<i64>,
}

/// The incident's notes, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/notes", tag = "notes",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<Note>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_notes(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Note>>> {
    Ok(Json(state.store.notes(incident_id(&id)?).await?))
}

/// Add a note (markdown); mark it as a decision or an approval if it is one.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes", tag = "notes", request_body = NoteRequest,
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 201, body = Note), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn add_note(
    State(state): State<AppState>,
    caller: AsResponder,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> ApiResult<(StatusCode, Json<Note>)> {
    let note = NewNote {
        body: req.body,
        kind: req.kind,
        approved_by: req.approved_by,
    };
    let created = state
        .store
        .add_note(incident_id(&id)?, &note, &caller.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Mark a note as a decision, an approval, or a plain note again.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes/{note_id}/mark", tag = "notes", request_body = MarkRequest,
    params(("id" = String, Path, description = "INC-42 or 42"), ("note_id" = i64, Path)),
    responses((status = 200, body = Note), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn mark_note(
    State(state): State<AppState>,
    caller: AsResponder,
    Path((id, note_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<MarkRequest>,
) -> ApiResult<Json<Note>> {
    let note_id = super::path_id("note_id", &note_id)?;
    let n = state
        .store
        .mark_note(
            incident_id(&id)?,
            note_id,
            req.kind,
            req.approved_by,
            &caller.actor(),
            state.now(),
        )
        .await?;
    Ok(Json(n))
}

/// The incident's attachments (metadata), oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/attachments", tag = "attachments",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<Attachment>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_attachments(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Attachment>>> {
    Ok(Json(state.store.attachments(incident_id(&id)?).await?))
}

/// How an upload is described; the body is the raw file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadQuery {
    /// File name.
    filename: String,
    /// `note` (default), `decision` or `approval`.
    kind: Option<RecordKind>,
    /// For approvals: who approved (defaults to the caller).
    approved_by: Option<i64>,
}

/// Upload an attachment: the request body is the file, `Content-Type` its type.
/// Its SHA-256 is computed and returned; the size limit is `max_attachment_bytes`.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/attachments", tag = "attachments",
    params(("id" = String, Path, description = "INC-42 or 42"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Attachment), (status = 413, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn add_attachment(
    State(state): State<AppState>,
    caller: AsResponder,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<(StatusCode, Json<Attachment>)> {
    let id = incident_id(&id)?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let content = read_body(req, state.limits.max_attachment_bytes).await?;
    let new = NewAttachment {
        filename: q.filename,
        content_type,
        kind: q.kind.unwrap_or_default(),
        approved_by: q.approved_by,
        content: content.to_vec(),
    };
    let created = state
        .store
        .add_attachment(id, &new, &caller.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Download an attachment. Always served as a download, never rendered inline.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/attachments/{attachment_id}", tag = "attachments",
    params(("id" = String, Path, description = "INC-42 or 42"), ("attachment_id" = i64, Path)),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn download_attachment(
    State(state): State<AppState>,
    _c: AsViewer,
    Path((id, attachment_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let attachment_id = super::path_id("attachment_id", &attachment_id)?;
    let (meta, content) = state
        .store
        .attachment_content(incident_id(&id)?, attachment_id)
        .await?;
    Ok(download(meta, content))
}

/// An attachment as a download: its type, never sniffed, never rendered inline,
/// under a file name reduced to safe characters, with its SHA-256 as the ETag.
/// The UI's download route answers the same way.
pub(crate) fn download(meta: Attachment, content: Vec<u8>) -> Response {
    let mut resp = content.into_response();
    let h = resp.headers_mut();
    let ct = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(CONTENT_TYPE, ct);
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let safe: String = meta
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"sha256-{}\"", meta.sha256)) {
        h.insert(ETAG, v);
    }
    resp
}

/// Mark an attachment as a decision, an approval, or plain evidence again.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/attachments/{attachment_id}/mark", tag = "attachments",
    request_body = MarkRequest,
    params(("id" = String, Path, description = "INC-42 or 42"), ("attachment_id" = i64, Path)),
    responses((status = 200, body = Attachment), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn mark_attachment(
    State(state): State<AppState>,
    caller: AsResponder,
    Path((id, attachment_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<MarkRequest>,
) -> ApiResult<Json<Attachment>> {
    let attachment_id = super::path_id("attachment_id", &attachment_id)?;
    let a = state
        .store
        .mark_attachment(
            incident_id(&id)?,
            attachment_id,
            req.kind,
            req.approved_by,
            &caller.actor(),
            state.now(),
        )
        .await?;
    Ok(Json(a))
}
