//! `POST /hooks/twilio/voice?incident=12`: the key pressed during a paging
//! call. The call's TwiML (tocsin-notify's voice provider, with a keypad)
//! gathers one digit and posts it here; the incident is in the query, which the
//! signature covers, and the person is the one called (`To` of an outbound
//! call), who must have it as a verified voice contact method.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::ContactKind;
use tocsin_store::PhoneReply;

use super::{act, signed, twiml, xml_escape};
use crate::api::ErrorResponse;
use crate::state::AppState;

/// What a key does.
fn key(digits: &str) -> Option<LinkAction> {
    match digits.trim() {
        "4" => Some(LinkAction::Acknowledge),
        "6" => Some(LinkAction::Resolve),
        _ => None,
    }
}

fn say(text: &str) -> Response {
    twiml(&format!(
        "<Say>{}</Say><Say>Goodbye.</Say>",
        xml_escape(text)
    ))
}

/// Where a paging call's keypad prompt posts the key pressed: 4 acknowledges and
/// 6 resolves the incident named in the query, as the user called (their
/// verified voice contact method), the same as an action link. Authenticated by
/// `X-Twilio-Signature`, not a token. Answers TwiML that says what happened.
/// 404 until Twilio is configured with a public URL.
#[utoipa::path(post, path = "/hooks/twilio/voice", tag = "incidents",
    params(("incident" = i64, Query, description = "The incident the call is about")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's gather parameters (Digits, To, From, CallSid, …)"),
    responses((status = 200, content_type = "text/xml", body = String,
            description = "TwiML: <Response><Say>what happened</Say>…</Response>"),
        (status = 403, description = "Missing or wrong X-Twilio-Signature"),
        (status = 404, body = ErrorResponse, description = "Twilio is not configured")))]
pub(super) async fn call_keypress(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let params = match signed(&state, &headers, &uri, &body) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let incident = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "incident")
        .and_then(|(_, v)| v.parse::<i64>().ok());
    let Some(incident) = incident else {
        return say("This call is not about an incident; nothing was changed.");
    };
    let Some(action) = key(params.get("Digits")) else {
        return say("That key does nothing. Press 4 to acknowledge or 6 to resolve on the next call, or use the link.");
    };
    // An outbound call's `To` is the person called.
    let called = params.get("To");
    match act(
        &state,
        PhoneReply::Call,
        ContactKind::Voice,
        called,
        incident,
        action,
    )
    .await
    {
        Ok(said) => say(&said),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_acknowledges_six_resolves() {
        assert_eq!(key("4"), Some(LinkAction::Acknowledge));
        assert_eq!(key("6"), Some(LinkAction::Resolve));
        for other in ["", "1", "44", "#", "*"] {
            assert_eq!(key(other), None, "{other:?}");
        }
    }
}
