//! Shift swaps: a responder on call asks to be covered for a time range, another
//! accepts (an override for them is created in the same transaction), the user it
//! was offered to declines, or the requester or an admin cancels.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tocsin_core::auth::Role;
use tocsin_store::{NewSwapRequest, SwapAction, SwapRequest, SwapStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AsResponder, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_swap_requests, create_swap_request))
        .routes(routes!(get_swap_request))
        .routes(routes!(accept_swap_request))
        .routes(routes!(decline_swap_request))
        .routes(routes!(cancel_swap_request))
}

/// A request to be covered.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwapRequestBody {
    /// Start of the range to cover (inclusive, RFC 3339), in the future.
    starts_at: DateTime<Utc>,
    /// End of it (exclusive, RFC 3339): after the start, at most 31 days later.
    ends_at: DateTime<Utc>,
    /// Why, for the people asked (at most 2000 bytes).
    #[serde(default)]
    note: String,
    /// Ask this one user only (active, not a viewer); without it anyone may accept.
    offered_to: Option<i64>,
}

/// Which requests.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SwapQuery {
    /// Only those with this status: `open`, `accepted`, `declined`, `cancelled`
    /// or `expired` (default all).
    status: Option<String>,
}

fn status_filter(s: Option<&str>) -> ApiResult<Option<SwapStatus>> {
    s.filter(|s| !s.is_empty())
        .map(|s| {
            SwapStatus::parse(s).ok_or_else(|| ApiError::Invalid {
                field: "status".into(),
                message: format!(
                    "`{s}` is not a swap request status: open, accepted, declined, cancelled or expired"
                ),
            })
        })
        .transpose()
}

/// A schedule's shift-swap requests (all, or those with `status`), soonest first.
/// An open request whose start has passed is `expired`.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/swap-requests", tag = "schedules",
    params(("id" = i64, Path), SwapQuery),
    responses((status = 200, body = Vec<SwapRequest>), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn list_swap_requests(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SwapQuery>,
) -> ApiResult<Json<Vec<SwapRequest>>> {
    let id = path_id("id", &id)?;
    let status = status_filter(q.status.as_deref())?;
    Ok(Json(
        state.store.swap_requests(id, status, state.now()).await?,
    ))
}

/// Ask to be covered: you must be on call in the schedule at some time in the
/// range (a future range of at most 31 days); `offered_to` asks one user only.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/swap-requests", tag = "schedules",
    params(("id" = i64, Path)), request_body = SwapRequestBody,
    responses((status = 201, body = SwapRequest), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn create_swap_request(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SwapRequestBody>,
) -> ApiResult<(StatusCode, Json<SwapRequest>)> {
    let r = NewSwapRequest {
        schedule_id: path_id("id", &id)?,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        note: b.note,
        offered_to: b.offered_to,
    };
    let created = state
        .store
        .create_swap_request(&r, &c.actor(), state.now())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read a shift-swap request.
#[utoipa::path(get, path = "/api/v1/swap-requests/{id}", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = SwapRequest), (status = 404, body = ErrorResponse)),
    security(("token" = ["viewer"])))]
async fn get_swap_request(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<SwapRequest>> {
    Ok(Json(
        state
            .store
            .swap_request(path_id("id", &id)?, state.now())
            .await?,
    ))
}

/// Reads the request and refuses a caller who may not do `action` to it.
async fn allowed(
    state: &AppState,
    c: &AsResponder,
    id: &str,
    action: SwapAction,
) -> ApiResult<i64> {
    let id = path_id("id", id)?;
    let r = state.store.swap_request(id, state.now()).await?;
    match r.refusal(action, c.user_id(), c.role() == Role::Admin) {
        Some(why) => Err(ApiError::NotAllowed(why)),
        None => Ok(id),
    }
}

/// Accept a request (not your own; only the offered user when it is offered to
/// one): it becomes `accepted` and an override puts you on call over its range,
/// in one transaction. 409 when it is no longer open (e.g. accepted or expired).
#[utoipa::path(post, path = "/api/v1/swap-requests/{id}/accept", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = SwapRequest), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn accept_swap_request(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
) -> ApiResult<Json<SwapRequest>> {
    let id = allowed(&state, &c, &id, SwapAction::Accept).await?;
    let (accepted, _) = state
        .store
        .accept_swap_request(id, &c.actor(), state.now())
        .await?;
    Ok(Json(accepted))
}

/// Decline a request offered to you; it is closed as `declined`.
#[utoipa::path(post, path = "/api/v1/swap-requests/{id}/decline", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = SwapRequest), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn decline_swap_request(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
) -> ApiResult<Json<SwapRequest>> {
    let id = allowed(&state, &c, &id, SwapAction::Decline).await?;
    Ok(Json(
        state
            .store
            .close_swap_request(id, SwapAction::Decline, &c.actor(), state.now())
            .await?,
    ))
}

/// Cancel an open request: your own, or anyone's for admins.
#[utoipa::path(post, path = "/api/v1/swap-requests/{id}/cancel", tag = "schedules", params(("id" = i64, Path)),
    responses((status = 200, body = SwapRequest), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["responder"])))]
async fn cancel_swap_request(
    State(state): State<AppState>,
    c: AsResponder,
    Path(id): Path<String>,
) -> ApiResult<Json<SwapRequest>> {
    let id = allowed(&state, &c, &id, SwapAction::Cancel).await?;
    Ok(Json(
        state
            .store
            .close_swap_request(id, SwapAction::Cancel, &c.actor(), state.now())
            .await?,
    ))
}
