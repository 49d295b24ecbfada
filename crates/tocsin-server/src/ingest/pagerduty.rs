//! `POST /v2/enqueue`: the PagerDuty Events API v2, so PagerDuty's client
//! libraries, Alertmanager's `pagerduty_configs` and Grafana's PagerDuty contact
//! point work when pointed at Tocsin. A 202 means the event is committed.

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tocsin_core::model::IntegrationKey;
use tocsin_ingest::pagerduty::{self, MAX_BODY};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::read_body;
use crate::state::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enqueue))
        .routes(routes!(change_enqueue))
}

/// PagerDuty's answer to an accepted event.
#[derive(Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// `success`.
    status: &'static str,
    /// `Event processed`.
    message: &'static str,
    /// The alert's dedup key (generated when the trigger had none); absent for changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_key: Option<String>,
}

/// PagerDuty's answer to a refused event.
#[derive(Serialize, ToSchema)]
pub(crate) struct Refused {
    /// `invalid event`, or `error` for a server fault.
    status: &'static str,
    /// `Event object is invalid`.
    message: &'static str,
    /// Every problem found.
    errors: Vec<String>,
}

fn refused(status: StatusCode, errors: Vec<String>) -> Response {
    let body = Refused {
        status: "invalid event",
        message: "Event object is invalid",
        errors,
    };
    (status, Json(body)).into_response()
}

// The steps both endpoints share: JSON content type, the 512 KB limit.
async fn json_body(headers: &HeaderMap, req: Request) -> Result<axum::body::Bytes, Response> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            vec!["Content-Type must be application/json".into()],
        ));
    }
    match read_body(req, MAX_BODY).await {
        Ok(b) => Ok(b),
        Err(ApiError::TooLarge(_)) => Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["The event is larger than the 512 KB limit".into()],
        )),
        Err(e) => Err(refused(StatusCode::BAD_REQUEST, vec![e.to_string()])),
    }
}

// The routing key's integration, charged one event against its rate limit.
async fn integration(state: &AppState, routing_key: &str) -> Result<IntegrationKey, Response> {
    let key = match state.store.integration_key_by_secret(routing_key).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                vec!["Invalid routing key".into()],
            ))
        }
        Err(e) => return Err(internal(e.to_string())),
    };
    if let Err(wait) = state
        .limiter
        .charge(state.limits.ingest_rate, key.id, 1, state.now())
    {
        let body = serde_json::json!({ "status": "throttle event",
            "message": "Requests for this integration are arriving too quickly. Please retry later." });
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, wait.to_string())],
            Json(body),
        )
            .into_response());
    }
    Ok(key)
}

/// Send an alert event (trigger, acknowledge or resolve), PagerDuty Events API v2.
/// Authenticated by `routing_key`: a service's integration key.
#[utoipa::path(post, path = "/v2/enqueue", tag = "ingest",
    request_body(content = Object, description = "A PagerDuty Events API v2 event", content_type = "application/json"),
    responses((status = 202, body = Accepted), (status = 400, body = Refused), (status = 413, body = Refused),
        (status = 429, description = "Over the integration's rate limit; see Retry-After")))]
async fn enqueue(State(state): State<AppState>, headers: HeaderMap, req: Request) -> Response {
    let body = match json_body(&headers, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed = match pagerduty::parse(&body) {
        Ok(p) => p,
        Err(r) => return refused(StatusCode::BAD_REQUEST, r.0),
    };
    let key = match integration(&state, &parsed.routing_key).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    let raw = String::from_utf8_lossy(&body).into_owned();
    let dedup_key = parsed.event.dedup_key.as_str().to_string();
    let inbound = match super::routed(&state, &key, vec![(parsed.event, raw)]).await {
        Ok(i) => i,
        Err(e) => return internal(e.to_string()),
    };
    match state.alerts.submit(key, inbound).await {
        Ok(_) => (
            StatusCode::ACCEPTED,
            Json(Accepted {
                status: "success",
                message: "Event processed",
                dedup_key: Some(dedup_key),
            }),
        )
            .into_response(),
        Err(tocsin_store::StoreError::Invalid(i)) => refused(
            StatusCode::BAD_REQUEST,
            vec![format!("{}: {}", i.field, i.message)],
        ),
        Err(e) => internal(e.to_string()),
    }
}

/// Send a change event (a deploy, a configuration change), PagerDuty Events API v2.
/// Shown on the service and on its incidents around that time.
#[utoipa::path(post, path = "/v2/change/enqueue", tag = "ingest",
    request_body(content = Object, description = "A PagerDuty Events API v2 change event", content_type = "application/json"),
    responses((status = 202, body = Accepted), (status = 400, body = Refused), (status = 413, body = Refused),
        (status = 429, description = "Over the integration's rate limit; see Retry-After")))]
async fn change_enqueue(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let body = match json_body(&headers, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (routing_key, change) = match pagerduty::parse_change(&body) {
        Ok(p) => p,
        Err(r) => return refused(StatusCode::BAD_REQUEST, r.0),
    };
    let key = match integration(&state, &routing_key).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    match state.store.record_change(&key, &change, state.now()).await {
        Ok(_) => (
            StatusCode::ACCEPTED,
            Json(Accepted {
                status: "success",
                message: "Change event processed",
                dedup_key: None,
            }),
        )
            .into_response(),
        Err(e) => internal(e.to_string()),
    }
}

fn internal(detail: String) -> Response {
    tracing::error!(%detail, "event not stored");
    // A 5xx tells PagerDuty-compatible senders to retry.
    let body = Refused {
        status: "error",
        message: "The event could not be stored; retry",
        errors: vec![],
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}
