//! A status page's templates: wording kept for common messages, which fill a
//! new post's title, body and status. Viewers read them; admins keep them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tocsin_core::change::Patch;
use tocsin_core::model::{long_text, required_text};
use tocsin_core::status_page::records::Template;
use tocsin_core::status_page::{PostKind, PostStatus};
use tocsin_store::status::{NewTemplate, TemplateChanges};
use tocsin_store::Actor;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::status_pages::{present, MAX_BODY, MAX_NAME};
use super::{path_id, ErrorResponse};
use crate::error::ApiResult;
use crate::extract::{ApiJson, AsAdmin, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_status_templates, create_status_template))
        .routes(routes!(
            get_status_template,
            update_status_template,
            delete_status_template
        ))
}

/// A new template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateRequest {
    /// `incident` (default) or `maintenance`.
    pub(crate) kind: Option<PostKind>,
    /// Name to pick it by, unique on the page.
    pub(crate) name: String,
    /// The post title it suggests.
    pub(crate) title: String,
    /// The text it suggests (markdown).
    #[serde(default)]
    pub(crate) body: String,
    /// The status it suggests: one of its kind's.
    pub(crate) status: Option<String>,
}

/// Changes to a template; `null` status removes the suggestion.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplatePatch {
    /// New name.
    #[serde(default, deserialize_with = "present")]
    pub(crate) name: Option<String>,
    /// New title.
    #[serde(default, deserialize_with = "present")]
    pub(crate) title: Option<String>,
    /// New text.
    #[serde(default, deserialize_with = "present")]
    pub(crate) body: Option<String>,
    /// New suggested status, or null for none.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) status: Patch<String>,
}

/// A status page's templates, by name.
#[utoipa::path(get, path = "/api/v1/status-pages/{id}/templates", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Template>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_status_templates(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Template>>> {
    Ok(Json(
        state.store.status_templates(path_id("id", &id)?).await?,
    ))
}

/// Create a template. A name already used on the page is 409 naming `name`.
#[utoipa::path(post, path = "/api/v1/status-pages/{id}/templates", tag = "status pages",
    params(("id" = i64, Path)), request_body = TemplateRequest,
    responses((status = 201, body = Template), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_status_template(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<TemplateRequest>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let page_id = path_id("id", &id)?;
    let t = create_template(&state, &c.actor(), page_id, r).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Checks and stores a new template (the API's and the web form's one way in).
pub(crate) async fn create_template(
    state: &AppState,
    actor: &Actor,
    page_id: i64,
    r: TemplateRequest,
) -> ApiResult<Template> {
    let kind = r.kind.unwrap_or(PostKind::Incident);
    let new = NewTemplate {
        kind,
        name: required_text("name", &r.name, MAX_NAME)?,
        title: required_text("title", &r.title, MAX_NAME)?,
        body: long_text("body", &r.body, MAX_BODY)?,
        status: r
            .status
            .map(|s| PostStatus::parse("status", kind, &s))
            .transpose()?,
    };
    Ok(state
        .store
        .create_status_template(page_id, &new, actor, state.now())
        .await?)
}

/// Read a template.
#[utoipa::path(get, path = "/api/v1/status-templates/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 200, body = Template), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_status_template(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        state.store.status_template(path_id("id", &id)?).await?,
    ))
}

/// Change a template's name, title, text or suggested status (its kind stays).
#[utoipa::path(patch, path = "/api/v1/status-templates/{id}", tag = "status pages",
    params(("id" = i64, Path)), request_body = TemplatePatch,
    responses((status = 200, body = Template), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_status_template(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<TemplatePatch>,
) -> ApiResult<Json<Template>> {
    let id = path_id("id", &id)?;
    Ok(Json(update_template(&state, &c.actor(), id, p).await?))
}

/// Checks and stores changes to a template (the API's and the web form's one way in).
pub(crate) async fn update_template(
    state: &AppState,
    actor: &Actor,
    id: i64,
    p: TemplatePatch,
) -> ApiResult<Template> {
    // The status is one of the template's kind; its kind never changes.
    let kind = state.store.status_template(id).await?.kind;
    let changes = TemplateChanges {
        name: p
            .name
            .map(|n| required_text("name", &n, MAX_NAME))
            .transpose()?,
        title: p
            .title
            .map(|t| required_text("title", &t, MAX_NAME))
            .transpose()?,
        body: p
            .body
            .map(|b| long_text("body", &b, MAX_BODY))
            .transpose()?,
        status: match p.status {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Set(s) => Some(Some(PostStatus::parse("status", kind, &s)?)),
        },
    };
    Ok(state
        .store
        .update_status_template(id, &changes, actor, state.now())
        .await?)
}

/// Delete a template; posts it filled keep their words.
#[utoipa::path(delete, path = "/api/v1/status-templates/{id}", tag = "status pages",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_status_template(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_status_template(path_id("id", &id)?, &c.actor(), state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
