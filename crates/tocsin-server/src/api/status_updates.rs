//! Updates to a published post: a new status with words and component
//! changes (subscribers told unless `notify` is false), and corrections to an
//! update's text or shown time (never told again). Responders write both.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tocsin_core::model::required_text;
use tocsin_core::status_page::records::Post;
use tocsin_core::status_page::{Impact, PostKind};
use tocsin_store::status::NewUpdate;
use tocsin_store::Actor;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::status_pages::{present, yes, MAX_NAME};
use super::status_posts::{
    body_text, component_changes, invalid, shown_at, ComponentStatusRequest,
};
use super::{path_id, ErrorResponse};
use crate::error::ApiResult;
use crate::extract::{ApiJson, AsResponder};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_status_update))
        .routes(routes!(edit_status_update))
}

/// An update to a post.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateRequest {
    /// The status it gives the post: one of its kind's (incident: investigating,
    /// identified, monitoring, resolved; maintenance: scheduled, in_progress,
    /// verifying, completed).
    pub(crate) status: String,
    /// What it says (markdown).
    pub(crate) body: String,
    /// Component status changes; components the post did not name yet join it.
    #[serde(default)]
    pub(crate) components: Vec<ComponentStatusRequest>,
    /// Tell subscribers (default true).
    #[serde(default = "yes")]
    pub(crate) notify: bool,
    /// Time shown (RFC 3339, not in the future; default now).
    pub(crate) display_at: Option<DateTime<Utc>>,
    /// A new title with this update.
    #[serde(default, deserialize_with = "present")]
    pub(crate) name: Option<String>,
    /// Incident: a new impact with this update.
    #[serde(default, deserialize_with = "present")]
    pub(crate) impact: Option<String>,
}

/// A correction to an update (subscribers are not told again).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdatePatch {
    /// Corrected text.
    #[serde(default, deserialize_with = "present")]
    pub(crate) body: Option<String>,
    /// Corrected time shown (not in the future).
    #[serde(default, deserialize_with = "present")]
    pub(crate) display_at: Option<DateTime<Utc>>,
}

/// Publish an update: a status, words, component changes. Resolving an
/// incident (or completing a maintenance) sets its components back to
/// operational unless another open post holds them or the update says otherwise.
#[utoipa::path(post, path = "/api/v1/status-posts/{id}/updates", tag = "status pages",
    params(("id" = i64, Path)), request_body = UpdateRequest,
    responses((status = 201, body = Post), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn add_status_update(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UpdateRequest>,
) -> ApiResult<(StatusCode, Json<Post>)> {
    let id = path_id("id", &id)?;
    let post = add_update(&state, &c.actor(), id, r).await?;
    Ok((StatusCode::CREATED, Json(post)))
}

/// Checks and publishes an update (the API's and the web forms' one way in).
pub(crate) async fn add_update(
    state: &AppState,
    actor: &Actor,
    id: i64,
    r: UpdateRequest,
) -> ApiResult<Post> {
    let now = state.now();
    let impact = match r.impact {
        None => None,
        Some(i) => {
            if state.store.post(id).await?.kind == PostKind::Maintenance {
                return Err(invalid(
                    "impact",
                    "a maintenance's impact is always maintenance",
                ));
            }
            Some(Impact::parse("impact", &i)?)
        }
    };
    let update = NewUpdate {
        status: r.status,
        body: body_text("body", &r.body)?,
        components: component_changes(&r.components)?,
        notify: r.notify,
        display_at: shown_at("display_at", r.display_at, now)?,
        name: r
            .name
            .map(|n| required_text("name", &n, MAX_NAME))
            .transpose()?,
        impact,
    };
    Ok(state.store.add_post_update(id, &update, actor, now).await?)
}

/// Correct an update's text or shown time; subscribers are not told again.
#[utoipa::path(patch, path = "/api/v1/status-updates/{id}", tag = "status pages",
    params(("id" = i64, Path)), request_body = UpdatePatch,
    responses((status = 200, body = Post), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn edit_status_update(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<UpdatePatch>,
) -> ApiResult<Json<Post>> {
    let id = path_id("id", &id)?;
    Ok(Json(edit_update(&state, &c.actor(), id, p).await?))
}

/// Checks and stores a correction to an update (the API's and the web form's one way in).
pub(crate) async fn edit_update(
    state: &AppState,
    actor: &Actor,
    id: i64,
    p: UpdatePatch,
) -> ApiResult<Post> {
    let now = state.now();
    let body = p.body.map(|b| body_text("body", &b)).transpose()?;
    let display_at = shown_at("display_at", p.display_at, now)?;
    Ok(state
        .store
        .edit_post_update(id, body.as_deref(), display_at, actor, now)
        .await?)
}
