//! `POST /integrations/webhook/{key}`: the generic JSON webhook. Any JSON object
//! (or an array of objects) is mapped to alerts by the integration's templates;
//! the integration key is the last path segment, so the sender needs no headers.
//! A 2xx means every event is committed; a 400 names the template at fault and
//! stores nothing.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tocsin_ingest::generic::{self, MAX_BODY};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ErrorResponse;
use crate::error::{ApiError, ApiResult};
use crate::extract::read_body;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(generic_webhook))
}

/// What a webhook request did.
#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookProcessed {
    /// `success`.
    status: &'static str,
    /// Events in the request, all committed.
    alerts: usize,
    /// Each event's dedup key, in order.
    dedup_keys: Vec<String>,
}

/// Generic JSON webhook: a JSON object (one event) or an array of objects (one
/// event each), mapped to alerts by the integration's templates.
#[utoipa::path(post, path = "/integrations/webhook/{key}", tag = "ingest",
    params(("key" = String, Path, description = "The service's integration key")),
    request_body(content = Object, description = "Any JSON object, or an array of objects", content_type = "application/json"),
    responses((status = 200, body = WebhookProcessed), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 413, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
async fn generic_webhook(
    State(state): State<AppState>,
    Path(key): Path<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<WebhookProcessed>)> {
    let key = state
        .store
        .integration_key_by_secret(&key)
        .await?
        .ok_or(ApiError::BadIntegrationKey)?;
    let body = read_body(req, MAX_BODY).await?;
    let parsed = generic::parse(&key.config.templates, &body)?;
    let count = parsed.len();
    state
        .limiter
        .charge(state.limits.ingest_rate, key.id, count, state.now())
        .map_err(ApiError::RateLimited)?;
    let dedup_keys = parsed
        .iter()
        .map(|(e, _)| e.dedup_key.as_str().to_string())
        .collect();
    let events = super::routed(&state, &key, parsed).await?;
    state.alerts.submit(key, events).await?;
    Ok((
        StatusCode::OK,
        Json(WebhookProcessed {
            status: "success",
            alerts: count,
            dedup_keys,
        }),
    ))
}
