//! A user's handoff notification settings: a reminder before each of their
//! on-call shifts starts and a notice when it starts. Each user manages their
//! own (any role), admins anyone's.

use axum::extract::{Path, State};
use axum::Json;
use tocsin_core::auth::Role;
use tocsin_store::HandoffSettings;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, set_settings))
}

/// The user in the path, which must exist and be the caller unless the caller is an admin.
async fn whose(state: &AppState, c: &AsViewer, id: &str) -> ApiResult<i64> {
    let user_id = path_id("id", id)?;
    // Every viewer may list users, so a 404 before the 403 tells nothing new.
    state.store.user(user_id).await?;
    if user_id != c.user_id() && c.role() != Role::Admin {
        return Err(ApiError::NotAllowed(
            "only admins may see or change another user's handoff notifications".into(),
        ));
    }
    Ok(user_id)
}

/// A user's handoff notification settings: your own, or anyone's for admins.
#[utoipa::path(get, path = "/api/v1/users/{id}/handoff-notifications", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = HandoffSettings), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_settings(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<HandoffSettings>> {
    let user_id = whose(&state, &c, &id).await?;
    Ok(Json(state.store.handoff_settings(user_id).await?))
}

/// Replace a user's handoff notification settings (a reminder 1 to 10080 minutes
/// before each shift starts, or null for none; a notice when it starts or not):
/// your own, or anyone's for admins.
#[utoipa::path(put, path = "/api/v1/users/{id}/handoff-notifications", tag = "users", params(("id" = i64, Path)),
    request_body = HandoffSettings,
    responses((status = 200, body = HandoffSettings), (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn set_settings(
    State(state): State<AppState>,
    c: AsViewer,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<HandoffSettings>,
) -> ApiResult<Json<HandoffSettings>> {
    let user_id = whose(&state, &c, &id).await?;
    Ok(Json(
        state
            .store
            .set_handoff_settings(user_id, &r, &c.actor(), state.now())
            .await?,
    ))
}
