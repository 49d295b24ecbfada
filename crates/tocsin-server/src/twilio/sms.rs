//! `POST /hooks/twilio/sms`: replies to a page's text message. "12 ack"
//! acknowledges incident 12, "12 resolve" resolves it, as the user whose verified
//! SMS number sent it; Twilio texts the answer back.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use tocsin_core::action_link::LinkAction;
use tocsin_core::escalation::ContactKind;
use tocsin_store::PhoneReply;

use super::{act, signed, twiml, xml_escape};
use crate::api::ErrorResponse;
use crate::error::ApiError;
use crate::state::AppState;

/// Words Twilio itself acts on (opt-out, opt-in, help); a reply that is one of
/// them is left to Twilio and only logged.
const RESERVED_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "START",
    "YES",
    "UNSTOP",
    "HELP",
    "INFO",
];

const USAGE: &str =
    "Reply with the incident number and ack or resolve, e.g. \"12 ack\" or \"12 resolve\".";

/// What a reply asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyCommand {
    /// Act on incident `number`.
    Act {
        /// The incident's number.
        number: i64,
        /// What to do.
        action: LinkAction,
    },
    /// One of the words Twilio acts on itself (STOP, HELP, …).
    Reserved(&'static str),
    /// Anything else.
    Unknown,
}

fn verb(word: &str) -> Option<LinkAction> {
    match word {
        "ack" | "acknowledge" | "a" => Some(LinkAction::Acknowledge),
        "resolve" | "res" | "r" => Some(LinkAction::Resolve),
        _ => None,
    }
}

/// Parses a reply: an incident number (`12`, `#12`, `INC-12`) and a verb (`ack`,
/// `acknowledge`, `a`, `resolve`, `res`, `r`) in either order, any case, spaces
/// optional; or one of Twilio's reserved words alone.
pub fn parse_reply(text: &str) -> ReplyCommand {
    let t = text.trim().trim_end_matches(['.', '!']).trim();
    if let Some(word) = RESERVED_WORDS.iter().find(|w| w.eq_ignore_ascii_case(t)) {
        return ReplyCommand::Reserved(word);
    }
    let t = t.to_lowercase();
    let Some(start) = t.find(|c: char| c.is_ascii_digit()) else {
        return ReplyCommand::Unknown;
    };
    let end = t[start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(t.len(), |e| start + e);
    let Ok(number) = t[start..end].parse::<i64>() else {
        return ReplyCommand::Unknown;
    };
    let before = t[..start].trim_end();
    let before = before
        .strip_suffix('#')
        .or_else(|| before.strip_suffix("inc-"))
        .unwrap_or(before)
        .trim();
    let after = t[end..].trim();
    let action = match (before.is_empty(), after.is_empty()) {
        (true, false) => verb(after),
        (false, true) => verb(before),
        _ => None,
    };
    match action {
        Some(action) if number > 0 => ReplyCommand::Act { number, action },
        _ => ReplyCommand::Unknown,
    }
}

/// Twilio's incoming-message webhook: a reply such as `12 ack` or `12 resolve`
/// acknowledges or resolves incident 12 as the user whose verified SMS contact
/// method sent it (an active responder or admin), the same as an action link.
/// Authenticated by `X-Twilio-Signature`, not a token. Answers TwiML that texts
/// back what happened. 404 until Twilio is configured with a public URL.
#[utoipa::path(post, path = "/hooks/twilio/sms", tag = "incidents",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's incoming-message parameters (From, To, Body, MessageSid, …)"),
    responses((status = 200, content_type = "text/xml", body = String,
            description = "TwiML: <Response><Message>what happened</Message></Response>"),
        (status = 403, description = "Missing or wrong X-Twilio-Signature"),
        (status = 404, body = ErrorResponse, description = "Twilio is not configured")))]
pub(super) async fn sms_reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let params = match signed(&state, &headers, &uri, &body) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let from = params.get("From");
    let answer = match parse_reply(params.get("Body")) {
        ReplyCommand::Reserved(word) => {
            // Twilio answers these itself and keeps the opt-out list.
            tracing::info!(%from, word, "Twilio SMS reply: reserved word, left to Twilio");
            return twiml("");
        }
        ReplyCommand::Act { number, action } => {
            act(
                &state,
                PhoneReply::Sms,
                ContactKind::Sms,
                from,
                number,
                action,
            )
            .await
        }
        ReplyCommand::Unknown => {
            // Only a known sender learns the syntax.
            act_unknown(&state, from).await
        }
    };
    match answer {
        Ok(said) => twiml(&format!("<Message>{}</Message>", xml_escape(&said))),
        Err(e) => e.into_response(),
    }
}

/// The usage for a verified sender, or why the number cannot act at all.
async fn act_unknown(state: &AppState, from: &str) -> Result<String, ApiError> {
    let candidates = state
        .store
        .users_by_verified_number(ContactKind::Sms, from)
        .await
        .map_err(ApiError::from)?;
    Ok(match super::phone_user(&candidates, ContactKind::Sms) {
        Ok(_) => USAGE.to_string(),
        Err(why) => why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_flexibly() {
        let act = |number, action| ReplyCommand::Act { number, action };
        let (ack, res) = (LinkAction::Acknowledge, LinkAction::Resolve);
        for (text, want) in [
            ("12 ack", act(12, ack)),
            ("  12   ACK ", act(12, ack)),
            ("12ack", act(12, ack)),
            ("12 acknowledge.", act(12, ack)),
            ("12 a", act(12, ack)),
            ("#12 Resolve", act(12, res)),
            ("INC-7 res", act(7, res)),
            ("7 r!", act(7, res)),
            ("ack 12", act(12, ack)),
            ("resolve #3", act(3, res)),
            ("Resolve INC-3", act(3, res)),
        ] {
            assert_eq!(parse_reply(text), want, "{text:?}");
        }
        for text in [
            "",
            "12",
            "ack",
            "12 ok",
            "12 ack please",
            "12 13 ack",
            "ack 12 now",
            "0 ack",
            "99999999999999999999 ack",
            "a 12 r",
        ] {
            assert_eq!(parse_reply(text), ReplyCommand::Unknown, "{text:?}");
        }
        assert_eq!(parse_reply(" stop "), ReplyCommand::Reserved("STOP"));
        assert_eq!(parse_reply("Help"), ReplyCommand::Reserved("HELP"));
        assert_eq!(parse_reply("UNSTOP"), ReplyCommand::Reserved("UNSTOP"));
    }
}
