//! Answers to a page by phone, through Twilio's webhooks:
//!
//! - `POST /hooks/twilio/sms`, the number's "A message comes in" webhook: a
//!   reply such as "12 ack" or "12 resolve" (sms.rs);
//! - `POST /hooks/twilio/voice`, where a paging call's keypad prompt posts the
//!   key pressed: 4 acknowledges, 6 resolves (call.rs);
//! - `POST /hooks/twilio/status`, what became of a text or call (status.rs).
//!
//! There is no bearer token: a request is Twilio's, proved by
//! `X-Twilio-Signature` (signature.rs) over the URL Twilio called: the
//! configured public URL plus the path and query, since behind a proxy the
//! request's own Host and scheme are not what Twilio called. A missing or wrong
//! signature is refused (403) before anything is read or written. The action is
//! an action link's (the store's `act_by_phone`), as the user whose verified
//! contact method is the phone, and the answer is TwiML.

mod call;
mod signature;
mod sms;
mod status;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tocsin_core::action_link::LinkAction;
use tocsin_core::auth::Role;
use tocsin_core::escalation::ContactKind;
use tocsin_notify::escape::xml as xml_escape;
use tocsin_store::{ActionLinkError, PhoneReply, PhoneUser, StoreError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

pub use signature::{signature, verify, SIGNATURE_HEADER};
pub use sms::{parse_reply, ReplyCommand};

/// What the server needs to take answers by phone: the auth token Twilio signs
/// with, and the public URL Twilio calls this instance at.
#[derive(Clone)]
pub struct TwilioInbound {
    auth_token: String,
    public_url: String,
}

impl std::fmt::Debug for TwilioInbound {
    // Never print the auth token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioInbound")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl TwilioInbound {
    /// Checks signatures with `auth_token` against `public_url` (e.g.
    /// `https://tocsin.example.com`, no trailing slash needed).
    pub fn new(auth_token: impl Into<String>, public_url: impl Into<String>) -> Self {
        TwilioInbound {
            auth_token: auth_token.into(),
            public_url: public_url.into().trim_end_matches('/').to_string(),
        }
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sms::sms_reply))
        .routes(routes!(call::call_keypress))
        .routes(routes!(status::delivery_status))
}

/// Why a webhook request is not looked at.
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// No Twilio configuration (auth token and public URL): the route is not there.
    #[error("Twilio webhooks (Twilio is not configured)")]
    NotConfigured,
    /// Missing or wrong `X-Twilio-Signature`.
    #[error("invalid X-Twilio-Signature")]
    BadSignature,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NotConfigured => ApiError::NotFound(self.to_string()).into_response(),
            Refused::BadSignature => (StatusCode::FORBIDDEN, self.to_string()).into_response(),
        }
    }
}

/// A webhook's form parameters, once its signature is checked: 404 while Twilio
/// is not configured, 403 (and nothing read) when the signature is missing or wrong.
fn signed(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &Bytes,
) -> Result<Params, Refused> {
    let twilio = state.twilio.as_ref().ok_or(Refused::NotConfigured)?;
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let url = match uri.query() {
        Some(q) => format!("{}{}?{q}", twilio.public_url, uri.path()),
        None => format!("{}{}", twilio.public_url, uri.path()),
    };
    let given = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !verify(&twilio.auth_token, &url, &params, given) {
        tracing::warn!(%url, signed = given.is_some(), "Twilio webhook refused: bad signature");
        return Err(Refused::BadSignature);
    }
    Ok(Params(params))
}

/// Twilio's POST parameters.
struct Params(Vec<(String, String)>);

impl Params {
    /// A parameter's value; empty when absent.
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A TwiML document answered as `text/xml`; `inner` is already escaped.
fn twiml(inner: &str) -> Response {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{inner}</Response>");
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A title cut to keep an answer near one text message.
fn short_title(title: &str) -> String {
    const MAX: usize = 80;
    if title.chars().count() <= MAX {
        return title.to_string();
    }
    let cut: String = title.chars().take(MAX - 3).collect();
    format!("{}...", cut.trim_end())
}

const DEACTIVATED: &str = "Your Tocsin user has been deactivated; nothing was changed.";
const NOT_RESPONDER: &str =
    "Your Tocsin role cannot acknowledge or resolve incidents; nothing was changed.";

/// The one user a number acts for: verified, active, at least a responder.
fn phone_user(candidates: &[PhoneUser], kind: ContactKind) -> Result<&PhoneUser, String> {
    if candidates.is_empty() {
        let what = if kind == ContactKind::Sms {
            "SMS"
        } else {
            "voice"
        };
        return Err(format!(
            "This number is not a verified {what} contact of any Tocsin user."
        ));
    }
    let able: Vec<&PhoneUser> = candidates
        .iter()
        .filter(|s| s.active && s.role.allows(Role::Responder))
        .collect();
    match able.as_slice() {
        [one] => Ok(one),
        [] if candidates.iter().all(|s| !s.active) => Err(DEACTIVATED.into()),
        [] => Err(NOT_RESPONDER.into()),
        _ => Err(
            "This number belongs to several Tocsin users; use the link in the message instead."
                .into(),
        ),
    }
}

/// Acts on `incident` for whoever `phone` (a contact method of `kind`) belongs
/// to, and says what happened, or why nothing did, in words for the phone.
async fn act(
    state: &AppState,
    via: PhoneReply,
    kind: ContactKind,
    phone: &str,
    incident: i64,
    action: LinkAction,
) -> Result<String, ApiError> {
    let candidates = state
        .store
        .users_by_verified_number(kind, phone)
        .await
        .map_err(ApiError::from)?;
    let user = match phone_user(&candidates, kind) {
        Ok(u) => u,
        Err(why) => {
            tracing::info!(%phone, why, "Twilio answer refused");
            return Ok(why);
        }
    };
    let outcome = state
        .store
        .act_by_phone(
            &state.settings,
            incident,
            action,
            user.user_id,
            via,
            phone,
            state.now(),
        )
        .await;
    let said = match outcome {
        Ok(o) if o.changed => format!(
            "{} {} by {}: {}",
            o.incident.number,
            action.done_word(),
            o.user_name,
            short_title(&o.incident.title)
        ),
        Ok(o) => format!(
            "{} is already {}; nothing changed.",
            o.incident.number,
            o.incident.status.as_str()
        ),
        Err(ActionLinkError::Store(StoreError::NotFound { .. })) => {
            format!("There is no incident {incident}.")
        }
        Err(ActionLinkError::Store(StoreError::Transition(e))) => {
            format!("INC-{incident} cannot be {} now: {e}", action.done_word())
        }
        Err(ActionLinkError::UserInactive) => DEACTIVATED.into(),
        Err(ActionLinkError::NotResponder) => NOT_RESPONDER.into(),
        Err(ActionLinkError::Store(e)) => return Err(ApiError::from(e)),
        // No link is involved in a phone answer; these cannot happen.
        Err(e @ (ActionLinkError::Refused(_) | ActionLinkError::Used { .. })) => {
            return Err(ApiError::Internal(e.to_string()))
        }
    };
    tracing::info!(%phone, user_id = user.user_id, incident, action = action.as_str(), ?via, "Twilio answer");
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_titles_are_cut_in_answers() {
        assert_eq!(short_title("Database down"), "Database down");
        let cut = short_title(&"é".repeat(200));
        assert_eq!(cut.chars().count(), 80);
        assert!(cut.ends_with("é..."));
    }

    #[test]
    fn twiml_answers_are_escaped() {
        assert_eq!(
            xml_escape("a <b> & \"c\"\u{1}"),
            "a &lt;b&gt; &amp; &quot;c&quot;"
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let t = TwilioInbound::new("s3cret", "https://x.example/");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(t.public_url, "https://x.example");
    }
}
