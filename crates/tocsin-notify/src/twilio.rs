//! Twilio: text messages (Programmable Messaging) and phone calls that read the
//! page aloud (Programmable Voice, TwiML sent inline).
//!
//! Both are one form-encoded POST to the 2010-04-01 REST API with HTTP basic
//! auth (account SID and auth token). Twilio documents no idempotency key for
//! creating messages or calls (`I-Twilio-Idempotency-Token` is a header Twilio
//! sends on its own webhooks, not one it reads), so none is sent: a retry after
//! a lost answer can text or call twice, which the delivery worker accepts as
//! better than paging nobody.
//!
//! SMS text is kept to one segment where it can be (160 GSM-7 characters);
//! text with characters outside GSM-7 travels as UCS-2, where one segment holds
//! 70 characters, and is allowed up to three segments rather than cut to nothing.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_core::Invalid;

use crate::classify::{classify, transport, SendError, EXCERPT_BYTES};
use crate::http;
use crate::sms::{sms_body, spoken_twiml};
use crate::{BoxFuture, Outgoing, Provider, Sent};

/// Twilio's REST API root.
pub const DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";

/// How long Twilio has to answer unless configured otherwise, seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// How many times a call reads the message unless configured otherwise.
pub const DEFAULT_VOICE_REPEAT: u8 = 2;

/// Twilio error codes answered with HTTP 400 that are worth retrying later: the
/// sender's queue is full (21611).
const RETRYABLE_CODES: &[u64] = &[21611];

/// The `[notify.twilio]` section of the configuration file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account SID (`AC` and 32 hex digits): the basic-auth user and part of every path.
    pub account_sid: String,
    /// The auth token: the basic-auth password, and the key Twilio signs its webhooks
    /// with. May be left out of the file and given as `TOCSIN_TWILIO_AUTH_TOKEN`.
    #[serde(default)]
    pub auth_token: String,
    /// The Twilio number messages and calls come from, E.164 (`+15017122661`).
    /// Calls need it; messages use it when no messaging service is set.
    #[serde(default)]
    pub from: Option<String>,
    /// A messaging service (`MG…`) to send text messages through instead of `from`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// The API root; tests point it at a local server.
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// How long Twilio has to answer, connection included, seconds.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// How many times a call reads the message, 1 to 3.
    #[serde(default = "default_voice_repeat")]
    pub voice_repeat: u8,
    /// Whether texts about an incident end with "Reply 12 ack / 12 resolve".
    /// Turn off when the number's incoming-message webhook does not point at Tocsin.
    #[serde(default = "default_true")]
    pub reply_hint: bool,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_string()
}
fn default_timeout_seconds() -> u64 {
    DEFAULT_TIMEOUT_SECS
}
fn default_voice_repeat() -> u8 {
    DEFAULT_VOICE_REPEAT
}
fn default_true() -> bool {
    true
}

impl TwilioConfig {
    /// A configuration with the defaults, sending from `from`.
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        from: impl Into<String>,
    ) -> Self {
        TwilioConfig {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            from: Some(from.into()),
            messaging_service_sid: None,
            api_base_url: default_api_base_url(),
            timeout_seconds: DEFAULT_TIMEOUT_SECS,
            voice_repeat: DEFAULT_VOICE_REPEAT,
            reply_hint: true,
        }
    }
}

impl std::fmt::Debug for TwilioConfig {
    // Never print the auth token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("api_base_url", &self.api_base_url)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("voice_repeat", &self.voice_repeat)
            .field("reply_hint", &self.reply_hint)
            .finish()
    }
}

/// Whether `s` is an E.164 number: `+`, a country code not starting with 0, 8 to 15 digits.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

// A Twilio SID: two letters and 32 hex digits.
fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// What both providers share: the client, the credentials, the account's URLs.
struct Twilio {
    client: reqwest::Client,
    account_sid: String,
    auth_token: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    base: String,
    timeout: Duration,
    voice_repeat: u8,
    reply_hint: bool,
    keypad: Option<String>,
    // `{public_url}/hooks/twilio/status`: where Twilio reports what became of
    // a text or call, the notification's key in the query.
    status_callback: Option<String>,
    clock: Arc<dyn Clock>,
}

impl Twilio {
    fn status_callback(&mut self, public_url: &str) {
        self.status_callback = Some(format!(
            "{}/hooks/twilio/status",
            public_url.trim_end_matches('/')
        ));
    }

    // The status callback URL for one notification.
    fn callback_for(&self, out: &Outgoing) -> Option<String> {
        self.status_callback.as_ref().map(|base| {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("key", &out.idempotency_key)
                .finish();
            format!("{base}?{query}")
        })
    }
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twilio")
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Twilio {
    fn new(config: TwilioConfig) -> Result<Self, Invalid> {
        if !is_sid(&config.account_sid, "AC") {
            return Err(Invalid::new(
                "account_sid",
                "expected AC followed by 32 hexadecimal digits",
            ));
        }
        if config.auth_token.is_empty() {
            return Err(Invalid::new(
                "auth_token",
                "required (or set TOCSIN_TWILIO_AUTH_TOKEN)",
            ));
        }
        if let Some(from) = &config.from {
            if !is_e164(from) {
                return Err(Invalid::new(
                    "from",
                    format!("`{from}` is not a number in E.164 form, e.g. +15017122661"),
                ));
            }
        }
        if let Some(mg) = &config.messaging_service_sid {
            if !is_sid(mg, "MG") {
                return Err(Invalid::new(
                    "messaging_service_sid",
                    "expected MG followed by 32 hexadecimal digits",
                ));
            }
        }
        if config.timeout_seconds == 0 {
            return Err(Invalid::new("timeout_seconds", "must be more than zero"));
        }
        if !(1..=3).contains(&config.voice_repeat) {
            return Err(Invalid::new("voice_repeat", "must be 1, 2 or 3"));
        }
        let base = http::base_url(&config.api_base_url, "api_base_url")?;
        let timeout = Duration::from_secs(config.timeout_seconds);
        // Twilio never redirects API calls; following one would send the credentials elsewhere.
        let client = http::client(timeout, "twilio")?;
        Ok(Twilio {
            client,
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            from: config.from,
            messaging_service_sid: config.messaging_service_sid,
            base,
            timeout,
            voice_repeat: config.voice_repeat,
            reply_hint: config.reply_hint,
            keypad: None,
            status_callback: None,
            clock: Arc::new(SystemClock),
        })
    }

    fn url(&self, resource: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{resource}.json",
            self.base, self.account_sid
        )
    }

    /// POSTs `form` to the account's `resource` list and reads the new resource's sid.
    async fn create(&self, resource: &str, form: &[(&str, &str)]) -> Result<Sent, SendError> {
        let response = self
            .client
            .post(self.url(resource))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|e| transport(&e.without_url(), self.timeout))?;
        // Only a bounded part of the answer is read: a created resource is a few
        // kilobytes, an error less.
        let http::Answer {
            status,
            headers,
            body: answer,
        } = http::read(response, 16 * EXCERPT_BYTES + 1).await;
        if let Err(e) = classify(status, &headers, &answer, self.clock.now()) {
            return Err(explain(e, status, &answer));
        }
        let provider_id = serde_json::from_slice::<Created>(&answer)
            .ok()
            .and_then(|c| c.sid);
        Ok(Sent {
            provider_id,
            status,
        })
    }
}

#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
}

/// Twilio's error body: `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
    message: Option<String>,
    more_info: Option<String>,
}

/// The classified error with Twilio's code and message in words, and the few
/// 400 codes that mean "later" made retryable.
fn explain(e: SendError, status: u16, body: &[u8]) -> SendError {
    let err = match serde_json::from_slice::<TwilioError>(body) {
        Ok(err) if err.code.is_some() || err.message.is_some() => err,
        // Not Twilio's error shape (a proxy's page, an empty body): the answer as it was.
        _ => return e,
    };
    let mut reason = format!("HTTP {status}: Twilio error");
    if let Some(code) = err.code {
        reason.push_str(&format!(" {code}"));
    }
    if let Some(m) = &err.message {
        reason.push_str(&format!(": {}", crate::excerpt(m.as_bytes())));
    }
    if let Some(more) = &err.more_info {
        reason.push_str(&format!(" ({})", crate::excerpt(more.as_bytes())));
    }
    if status == 401 {
        reason.push_str(" — check account_sid and auth_token");
    }
    match e {
        SendError::Retryable { retry_after, .. } => SendError::Retryable {
            reason,
            retry_after,
        },
        SendError::Permanent { .. } if err.code.is_some_and(|c| RETRYABLE_CODES.contains(&c)) => {
            SendError::Retryable {
                reason,
                retry_after: None,
            }
        }
        SendError::Permanent { status, .. } => SendError::Permanent { status, reason },
    }
}

/// The recipient's number, checked before anything is sent.
fn to_number(out: &Outgoing) -> Result<&str, SendError> {
    let to = out.recipient.target.trim();
    if is_e164(to) {
        Ok(to)
    } else {
        Err(SendError::bad_address(format!(
            "`{to}` is not a phone number in E.164 form"
        )))
    }
}

/// Sends text messages through Twilio's Messages resource.
#[derive(Debug)]
pub struct TwilioSmsProvider(Twilio);

impl TwilioSmsProvider {
    /// A provider for `config`; it needs `from` or `messaging_service_sid`.
    pub fn new(config: TwilioConfig) -> Result<Self, Invalid> {
        if config.from.is_none() && config.messaging_service_sid.is_none() {
            return Err(Invalid::new(
                "from",
                "set `from` (a Twilio number) or `messaging_service_sid`",
            ));
        }
        Ok(TwilioSmsProvider(Twilio::new(config)?))
    }

    /// The same provider reading the time (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.0.clock = clock;
        self
    }

    async fn post(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let t = &self.0;
        let to = to_number(out)?;
        let body = sms_body(&out.message, t.reply_hint);
        let sender = match (&t.messaging_service_sid, &t.from) {
            (Some(mg), _) => ("MessagingServiceSid", mg.as_str()),
            (None, Some(from)) => ("From", from.as_str()),
            (None, None) => unreachable!("checked in new()"),
        };
        let callback = t.callback_for(out);
        let mut form = vec![("To", to), sender, ("Body", body.as_str())];
        if let Some(url) = &callback {
            form.push(("StatusCallback", url));
        }
        t.create("Messages", &form).await
    }

    /// The same provider asking Twilio to report what became of each text
    /// (delivered, undelivered, failed) to `{public_url}/hooks/twilio/status`.
    pub fn with_status_callback(mut self, public_url: &str) -> Self {
        self.0.status_callback(public_url);
        self
    }
}

impl Provider for TwilioSmsProvider {
    fn name(&self) -> &'static str {
        "twilio_sms"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

/// Places phone calls through Twilio's Calls resource that read the message aloud.
#[derive(Debug)]
pub struct TwilioVoiceProvider(Twilio);

impl TwilioVoiceProvider {
    /// A provider for `config`; it needs `from` (a messaging service cannot call).
    pub fn new(config: TwilioConfig) -> Result<Self, Invalid> {
        if config.from.is_none() {
            return Err(Invalid::new(
                "from",
                "calls need `from`, a Twilio number that can make calls",
            ));
        }
        Ok(TwilioVoiceProvider(Twilio::new(config)?))
    }

    /// The same provider reading the time (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.0.clock = clock;
        self
    }

    /// The same provider offering "press 4 to acknowledge, 6 to resolve" on
    /// calls about an incident; Twilio posts the key to
    /// `{public_url}/hooks/twilio/voice`, which Tocsin serves when Twilio is
    /// configured there too (same account, same `public_url`).
    pub fn with_keypad(mut self, public_url: &str) -> Self {
        self.0.keypad = Some(format!(
            "{}/hooks/twilio/voice",
            public_url.trim_end_matches('/')
        ));
        self
    }

    async fn post(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let t = &self.0;
        let to = to_number(out)?;
        let from = t.from.as_deref().expect("checked in new()");
        let twiml = spoken_twiml(
            &out.message,
            t.voice_repeat,
            t.reply_hint,
            t.keypad.as_deref(),
        );
        let callback = t.callback_for(out);
        let mut form = vec![("To", to), ("From", from), ("Twiml", twiml.as_str())];
        if let Some(url) = &callback {
            // Only the end of the call: completed, busy, no-answer, failed, canceled.
            form.push(("StatusCallback", url));
        }
        t.create("Calls", &form).await
    }

    /// The same provider asking Twilio to report how each call ended
    /// (completed, busy, no-answer, failed) to `{public_url}/hooks/twilio/status`.
    pub fn with_status_callback(mut self, public_url: &str) -> Self {
        self.0.status_callback(public_url);
        self
    }
}

impl Provider for TwilioVoiceProvider {
    fn name(&self) -> &'static str {
        "twilio_voice"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn field(r: Result<TwilioSmsProvider, Invalid>) -> String {
        r.map(|_| ()).unwrap_err().field
    }

    #[test]
    fn configuration_is_checked() {
        let ok = TwilioConfig::new(SID, "tok", "+15017122661");
        assert!(TwilioSmsProvider::new(ok.clone()).is_ok());
        assert!(TwilioVoiceProvider::new(ok.clone()).is_ok());
        for (change, want) in [
            (
                Box::new(|c: &mut TwilioConfig| c.account_sid = "AC123".into())
                    as Box<dyn Fn(&mut TwilioConfig)>,
                "account_sid",
            ),
            (Box::new(|c| c.auth_token.clear()), "auth_token"),
            (Box::new(|c| c.from = Some("5017122661".into())), "from"),
            (Box::new(|c| c.from = None), "from"),
            (
                Box::new(|c| c.messaging_service_sid = Some("MGxyz".into())),
                "messaging_service_sid",
            ),
            (Box::new(|c| c.timeout_seconds = 0), "timeout_seconds"),
            (Box::new(|c| c.voice_repeat = 0), "voice_repeat"),
            (Box::new(|c| c.voice_repeat = 4), "voice_repeat"),
            (
                Box::new(|c| c.api_base_url = "ftp://x".into()),
                "api_base_url",
            ),
        ] {
            let mut c = ok.clone();
            change(&mut c);
            assert_eq!(field(TwilioSmsProvider::new(c)), want);
        }
        // A messaging service is enough for texts, not for calls.
        let mg = TwilioConfig {
            from: None,
            messaging_service_sid: Some("MG0123456789abcdef0123456789abcdef".into()),
            ..ok
        };
        assert!(TwilioSmsProvider::new(mg.clone()).is_ok());
        assert_eq!(
            TwilioVoiceProvider::new(mg).map(|_| ()).unwrap_err().field,
            "from"
        );
    }

    #[test]
    fn the_config_deserializes_with_defaults_and_refuses_unknown_keys() {
        let c: TwilioConfig = from_json(&format!(
            r#"{{"account_sid": "{SID}", "auth_token": "s3cret", "from": "+15017122661"}}"#
        ));
        assert_eq!(c.api_base_url, DEFAULT_API_BASE_URL);
        assert_eq!(c.timeout_seconds, 10);
        assert_eq!(c.voice_repeat, 2);
        assert!(c.reply_hint);
        assert!(serde_json::from_str::<TwilioConfig>(&format!(
            r#"{{"account_sid": "{SID}", "sender": "x"}}"#
        ))
        .is_err());
    }

    fn from_json(json: &str) -> TwilioConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn debug_output_hides_the_token() {
        let c = TwilioConfig::new(SID, "s3cret-token", "+15017122661");
        assert!(!format!("{c:?}").contains("s3cret"));
        let p = TwilioSmsProvider::new(c.clone()).unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
        let p = TwilioVoiceProvider::new(c).unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
    }

    #[test]
    fn e164_numbers() {
        for good in ["+15017122661", "+4915112345678", "+12345678"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "15017122661",
            "+0123456789",
            "+1 501 712 2661",
            "+1234567",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }
}
