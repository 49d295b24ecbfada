//! /api/v1/incidents/{id}/escalation and /notifications: where an incident's
//! escalation stands, "escalate now", and the notification requests it made.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_store::{DeliveryView, EscalationView};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::incident_id;
use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_escalation))
        .routes(routes!(escalate))
        .routes(routes!(notifications))
        .routes(routes!(user_notifications))
}

/// Escalate now (or reassign) to a level of the escalation policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateRequest {
    /// The level to notify now (0 is the first).
    level: usize,
}

/// Where the incident's escalation stands; 404 when it was never paged.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/escalation", tag = "incidents",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = EscalationView), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_escalation(
    State(state): State<AppState>,
    _caller: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<EscalationView>> {
    let id = incident_id(&id)?;
    state
        .store
        .escalation(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("INC-{id} was never paged")))
}

/// Notify a level of the escalation policy now, and restart its timing there
/// (also after an acknowledgement or exhaustion). An incident that was never
/// paged starts paging from its service's policy.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/escalate", tag = "incidents", request_body = EscalateRequest,
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = EscalationView), (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn escalate(
    State(state): State<AppState>,
    caller: AsResponder,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EscalateRequest>,
) -> ApiResult<Json<EscalationView>> {
    let id = incident_id(&id)?;
    Ok(Json(
        state
            .store
            .escalate_incident(id, req.level, &caller.actor(), state.now())
            .await?,
    ))
}

/// The notification requests the incident's escalation made: scheduled,
/// handed to delivery, or cancelled by an acknowledgement or resolution; for
/// handed ones, the delivery state and every attempt with the provider's answer.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/notifications", tag = "incidents",
    params(("id" = String, Path, description = "INC-42 or 42")),
    responses((status = 200, body = Vec<DeliveryView>), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn notifications(
    State(state): State<AppState>,
    _caller: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    Ok(Json(
        state.store.incident_deliveries(incident_id(&id)?).await?,
    ))
}

/// Most notifications one listing returns.
const USER_NOTIFICATIONS: i64 = 200;

/// A user's latest notifications (pages, on-call notices, verification codes,
/// tests), newest first, with every delivery attempt: your own, or anyone's
/// for admins.
#[utoipa::path(get, path = "/api/v1/users/{id}/notifications", tag = "users",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = Vec<DeliveryView>), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn user_notifications(
    State(state): State<AppState>,
    caller: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    let user_id = path_id("id", &id)?;
    // Every viewer may list users, so a 404 before the 403 tells nothing new.
    state.store.user(user_id).await?;
    if user_id != caller.user_id() && caller.role() != Role::Admin {
        return Err(ApiError::NotAllowed(
            "only admins may see another user's notifications".into(),
        ));
    }
    Ok(Json(
        state
            .store
            .user_deliveries(user_id, USER_NOTIFICATIONS)
            .await?,
    ))
}
