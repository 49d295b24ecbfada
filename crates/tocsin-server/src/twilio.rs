//! Replies to a page's text message: `POST /hooks/twilio/sms`, the Twilio
//! number's "A message comes in" webhook. "12 ack" acknowledges incident 12,
//! "12 resolve" resolves it, as the user whose verified SMS number sent it.
//!
//! There is no bearer token: the request is Twilio's, proved by
//! `X-Twilio-Signature`, base64(HMAC-SHA1(auth token, the URL Twilio called
//! followed by every POST parameter's name and value, sorted by name)). The URL
//! is the configured public URL plus the path and query, since behind a proxy
//! the request's own Host and scheme are not what Twilio called. A missing or
//! wrong signature is refused (403) before anything is read or written.
//!
//! The answer is TwiML (`<Response><Message>…</Message></Response>`): Twilio
//! texts it back to the sender.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tocsin_core::action_link::LinkAction;
use tocsin_core::auth::Role;
use tocsin_store::{ActionLinkError, SmsSender, StoreError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ErrorResponse;
use crate::error::ApiError;
use crate::state::AppState;

/// The header Twilio signs its webhooks with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The path of the incoming-message webhook.
pub const SMS_PATH: &str = "/hooks/twilio/sms";

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

/// What the server needs to take SMS replies: the auth token Twilio signs with,
/// and the public URL Twilio calls this instance at.
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
    OpenApiRouter::new().routes(routes!(sms_reply))
}

/// The signature Twilio sends for a POST to `url` with `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Whether `header` is Twilio's signature of the request. Twilio's own libraries
/// also accept the URL with its port taken out, or the scheme's default port put
/// in, since Twilio has signed either form; so does this.
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    let Some(given) = header.and_then(|h| STANDARD.decode(h.trim()).ok()) else {
        return false;
    };
    url_forms(url)
        .iter()
        .any(|u| mac(auth_token, u, params).verify_slice(&given).is_ok())
}

/// `url`, without its port, and with the scheme's default port.
fn url_forms(url: &str) -> Vec<String> {
    let mut forms = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return forms;
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    // An IPv6 literal keeps its colons inside brackets.
    let host = match authority.rfind(']') {
        Some(end) => &authority[..=end],
        None => authority.split(':').next().unwrap_or(authority),
    };
    let default = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return forms,
    };
    forms.push(format!("{scheme}://{host}{tail}"));
    forms.push(format!("{scheme}://{host}:{default}{tail}"));
    forms.dedup();
    forms
}

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

/// Escapes text for XML: incident titles come from alerts.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// A title cut to keep the answer near one text message.
fn short_title(title: &str) -> String {
    const MAX: usize = 80;
    if title.chars().count() <= MAX {
        return title.to_string();
    }
    let cut: String = title.chars().take(MAX - 3).collect();
    format!("{}...", cut.trim_end())
}

/// TwiML that texts `text` back; no text: answer nothing.
fn twiml(text: Option<&str>) -> Response {
    let body = match text {
        Some(t) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(t)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_string(),
    };
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The one user a number acts for: verified, active, at least a responder.
fn sender(candidates: &[SmsSender]) -> Result<&SmsSender, &'static str> {
    if candidates.is_empty() {
        return Err("This number is not a verified SMS contact of any Tocsin user.");
    }
    let able: Vec<&SmsSender> = candidates
        .iter()
        .filter(|s| s.active && s.role.allows(Role::Responder))
        .collect();
    match able.as_slice() {
        [one] => Ok(one),
        [] if candidates.iter().all(|s| !s.active) => {
            Err("Your Tocsin user has been deactivated; nothing was changed.")
        }
        [] => Err("Your Tocsin role cannot acknowledge or resolve incidents; nothing was changed."),
        _ => {
            Err("This number belongs to several Tocsin users; use the link in the message instead.")
        }
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
        (status = 404, body = ErrorResponse, description = "Twilio replies are not configured")))]
async fn sms_reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Some(twilio) = state.twilio.clone() else {
        return ApiError::NotFound("Twilio SMS replies (not configured)".into()).into_response();
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let url = match uri.query() {
        Some(q) => format!("{}{}?{q}", twilio.public_url, uri.path()),
        None => format!("{}{}", twilio.public_url, uri.path()),
    };
    let given = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !verify(&twilio.auth_token, &url, &params, given) {
        tracing::warn!(%url, signed = given.is_some(), "Twilio SMS webhook refused: bad signature");
        return (StatusCode::FORBIDDEN, "invalid X-Twilio-Signature").into_response();
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let (from, text) = (param("From").to_string(), param("Body").to_string());
    match reply(&state, &from, &text).await {
        Ok(answer) => twiml(answer.as_deref()),
        Err(e) => e.into_response(),
    }
}

async fn reply(state: &AppState, from: &str, text: &str) -> Result<Option<String>, ApiError> {
    let command = parse_reply(text);
    if let ReplyCommand::Reserved(word) = command {
        // Twilio answers these itself and keeps the opt-out list.
        tracing::info!(%from, word, "Twilio SMS reply: reserved word, left to Twilio");
        return Ok(None);
    }
    let candidates = state
        .store
        .users_by_verified_sms(from)
        .await
        .map_err(ApiError::from)?;
    let user = match sender(&candidates) {
        Ok(u) => u,
        Err(why) => {
            tracing::info!(%from, why, "Twilio SMS reply refused");
            return Ok(Some(why.to_string()));
        }
    };
    let ReplyCommand::Act { number, action } = command else {
        return Ok(Some(USAGE.to_string()));
    };
    let outcome = state
        .store
        .act_by_sms(
            &state.settings,
            number,
            action,
            user.user_id,
            from,
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
            format!("There is no incident {number}. {USAGE}")
        }
        Err(ActionLinkError::Store(StoreError::Transition(e))) => {
            format!("INC-{number} cannot be {} now: {e}", action.done_word())
        }
        Err(ActionLinkError::UserInactive) => {
            "Your Tocsin user has been deactivated; nothing was changed.".to_string()
        }
        Err(ActionLinkError::NotResponder) => {
            "Your Tocsin role cannot acknowledge or resolve incidents; nothing was changed."
                .to_string()
        }
        Err(ActionLinkError::Store(e)) => return Err(ApiError::from(e)),
        // No link is involved in a reply; these cannot happen.
        Err(e @ (ActionLinkError::Refused(_) | ActionLinkError::Used { .. })) => {
            return Err(ApiError::Internal(e.to_string()))
        }
    };
    tracing::info!(%from, user_id = user.user_id, incident = number, action = action.as_str(), "Twilio SMS reply");
    Ok(Some(said))
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

    #[test]
    fn twilios_documented_signature_example() {
        // From Twilio's request-validation examples (twilio-python's tests).
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let good = Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify("12345", url, &params, good));
        // The same request as Twilio may have signed it with a port.
        assert!(verify(
            "12345",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &params,
            good
        ));
        assert!(verify(
            "12345",
            url,
            &params,
            Some("kvajT1Ptam85bY51eRf/AJRuM3w=") // signed with :443
        ));
        assert!(!verify("12346", url, &params, good));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            good
        ));
        let mut changed = params.clone();
        changed[2].1 = "1235".into();
        assert!(!verify("12345", url, &changed, good));
        assert!(!verify("12345", url, &params, None));
        assert!(!verify("12345", url, &params, Some("not base64!")));
    }

    #[test]
    fn repeated_parameters_sort_by_value_too() {
        // twilio-python's vector for a parameter sent twice.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature("12345", url, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

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
