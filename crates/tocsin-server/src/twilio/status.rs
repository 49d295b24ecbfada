//! `POST /hooks/twilio/status?key=…`: what became of a text or call Twilio
//! accepted. The providers ask for it (`StatusCallback`) when Tocsin has a
//! public URL; the notification's idempotency key is in the query, which the
//! signature covers, so a status cannot be pinned on another notification.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::signed;
use crate::api::ErrorResponse;
use crate::state::AppState;

/// Twilio's status callback for a paging text (`MessageStatus`: delivered,
/// undelivered, failed, …) or call (`CallStatus`: completed, busy, no-answer,
/// failed, canceled). A final failure fails the notification — on the
/// incident's timeline, and escalating to the next level when it was the last
/// way to reach the person; `delivered`/`completed` go on the timeline.
/// Authenticated by `X-Twilio-Signature`, not a token. 404 until Twilio is
/// configured with a public URL, or for an unknown key.
#[utoipa::path(post, path = "/hooks/twilio/status", tag = "incidents",
    params(("key" = String, Query, description = "The notification's idempotency key")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's status parameters (MessageStatus or CallStatus, MessageSid or CallSid, …)"),
    responses((status = 204, description = "Recorded (or a state that changes nothing)"),
        (status = 403, description = "Missing or wrong X-Twilio-Signature"),
        (status = 404, body = ErrorResponse, description = "Twilio is not configured, or no such notification")))]
pub(super) async fn delivery_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let params = match signed(&state, &headers, &uri, &body) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let key = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let status = match params.get("CallStatus") {
        "" => params.get("MessageStatus"),
        s => s,
    }
    .to_ascii_lowercase();
    let sid = match params.get("CallSid") {
        "" => params.get("MessageSid"),
        s => s,
    };
    match state
        .store
        .record_provider_status(&key, sid, &status, state.now())
        .await
    {
        Ok(recorded) => {
            tracing::info!(%key, %status, recorded, "Twilio delivery status");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}
