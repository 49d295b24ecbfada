//! Heartbeat monitors (dead man's switch): admin CRUD under
//! /api/v1/services/{id}/heartbeats and /api/v1/heartbeat-monitors/{id}, and the
//! ping at /api/v1/heartbeats/{key}, which needs no token: the key is the credential.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tocsin_core::heartbeat::{self, Heartbeat, HeartbeatState};
use tocsin_core::model::required_text;
use tocsin_store::{HeartbeatChanges, NewSecret};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{path_id, ErrorResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AsAdmin, AsViewer};
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_heartbeats, create_heartbeat))
        .routes(routes!(get_heartbeat, update_heartbeat, delete_heartbeat))
        .routes(routes!(ping_post, ping_get))
}

const MAX_NAME: usize = 200;

/// A new heartbeat.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatRequest {
    /// What pings, e.g. `nightly-backup`.
    name: String,
    /// Expected seconds between pings (1 to 30 days).
    interval_seconds: i64,
    /// Extra seconds allowed before a late ping counts as missed (default 0).
    #[serde(default)]
    grace_seconds: i64,
}

/// Changes to a heartbeat.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeartbeatPatch {
    /// New name.
    name: Option<String>,
    /// New interval, seconds.
    interval_seconds: Option<i64>,
    /// New grace period, seconds.
    grace_seconds: Option<i64>,
    /// Move it to another service (not while it is down).
    service_id: Option<i64>,
}

/// The answer to a ping.
#[derive(Serialize, ToSchema)]
pub(crate) struct Pong {
    /// `ok`.
    status: &'static str,
    /// The heartbeat pinged.
    heartbeat_id: i64,
    /// Its state now (`up`).
    state: HeartbeatState,
    /// When it goes down unless pinged again.
    due_at: chrono::DateTime<chrono::Utc>,
}

/// A service's heartbeats (without ping keys).
#[utoipa::path(get, path = "/api/v1/services/{id}/heartbeats", tag = "heartbeats", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Heartbeat>), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn list_heartbeats(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Heartbeat>>> {
    Ok(Json(state.store.heartbeats(path_id("id", &id)?).await?))
}

/// Create a heartbeat on a service; its ping key (`secret`) is in this response only.
#[utoipa::path(post, path = "/api/v1/services/{id}/heartbeats", tag = "heartbeats", params(("id" = i64, Path)),
    request_body = HeartbeatRequest,
    responses((status = 201, body = NewSecret<Heartbeat>), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn create_heartbeat(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<HeartbeatRequest>,
) -> ApiResult<(StatusCode, Json<NewSecret<Heartbeat>>)> {
    let service_id = path_id("id", &id)?;
    let name = required_text("name", &r.name, MAX_NAME)?;
    let interval = heartbeat::interval("interval_seconds", r.interval_seconds)?;
    let grace = heartbeat::grace("grace_seconds", r.grace_seconds)?;
    let created = state
        .store
        .create_heartbeat(service_id, &name, interval, grace, &c.actor(), state.now())
        .await?;
    state.heartbeat_wake.notify_one();
    Ok((StatusCode::CREATED, Json(created)))
}

/// Read one heartbeat.
#[utoipa::path(get, path = "/api/v1/heartbeat-monitors/{id}", tag = "heartbeats", params(("id" = i64, Path)),
    responses((status = 200, body = Heartbeat), (status = 404, body = ErrorResponse)), security(("token" = ["viewer"])))]
async fn get_heartbeat(
    State(state): State<AppState>,
    _c: AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<Heartbeat>> {
    Ok(Json(state.store.heartbeat(path_id("id", &id)?).await?))
}

/// Rename a heartbeat, change its timing (the deadline moves with it) or move it
/// to another service.
#[utoipa::path(patch, path = "/api/v1/heartbeat-monitors/{id}", tag = "heartbeats", params(("id" = i64, Path)),
    request_body = HeartbeatPatch,
    responses((status = 200, body = Heartbeat), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("token" = ["admin"])))]
async fn update_heartbeat(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<HeartbeatPatch>,
) -> ApiResult<Json<Heartbeat>> {
    let id = path_id("id", &id)?;
    let changes = HeartbeatChanges {
        name: p
            .name
            .map(|n| required_text("name", &n, MAX_NAME))
            .transpose()?,
        interval_seconds: p
            .interval_seconds
            .map(|s| heartbeat::interval("interval_seconds", s))
            .transpose()?,
        grace_seconds: p
            .grace_seconds
            .map(|s| heartbeat::grace("grace_seconds", s))
            .transpose()?,
        service_id: p.service_id,
    };
    let hb = state
        .store
        .update_heartbeat(id, &changes, &c.actor(), state.now())
        .await?;
    state.heartbeat_wake.notify_one();
    Ok(Json(hb))
}

/// Delete a heartbeat; if it is down, its alert resolves.
#[utoipa::path(delete, path = "/api/v1/heartbeat-monitors/{id}", tag = "heartbeats", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)), security(("token" = ["admin"])))]
async fn delete_heartbeat(
    State(state): State<AppState>,
    c: AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_heartbeat(
            path_id("id", &id)?,
            &state.settings,
            &c.actor(),
            state.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ping(state: AppState, key: String) -> ApiResult<Json<Pong>> {
    let p = state
        .store
        .ping_heartbeat(&key, &state.settings, state.now())
        .await?
        .ok_or_else(|| ApiError::NotFound("heartbeat".into()))?;
    state.heartbeat_wake.notify_one();
    Ok(Json(Pong {
        status: "ok",
        heartbeat_id: p.heartbeat.id,
        state: p.heartbeat.state,
        due_at: p.heartbeat.due_at,
    }))
}

/// Ping a heartbeat. No token: the heartbeat's key in the path is the credential.
#[utoipa::path(post, path = "/api/v1/heartbeats/{key}", tag = "heartbeats",
    params(("key" = String, Path, description = "The heartbeat's ping key")),
    responses((status = 200, body = Pong), (status = 404, body = ErrorResponse)), security(()))]
async fn ping_post(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> ApiResult<Json<Pong>> {
    ping(state, key).await
}

/// Ping a heartbeat with GET (for `curl URL` or a browser). No token: the key is the credential.
#[utoipa::path(get, path = "/api/v1/heartbeats/{key}", tag = "heartbeats",
    params(("key" = String, Path, description = "The heartbeat's ping key")),
    responses((status = 200, body = Pong), (status = 404, body = ErrorResponse)), security(()))]
async fn ping_get(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<Pong>> {
    ping(state, key).await
}
