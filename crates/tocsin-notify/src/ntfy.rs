//! ntfy (<https://docs.ntfy.sh/publish/>): a JSON publish to the server's root,
//! with the one-click action links as `view` buttons.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};
use tocsin_core::escalation::Urgency;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_core::Invalid;

use crate::classify::{classify, transport, SendError, EXCERPT_BYTES};
use crate::http;
use crate::support::stable_token;
use crate::{BoxFuture, Outgoing, Provider, Sent};

/// The public server, used unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "https://ntfy.sh";

/// How long the server has to answer unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = http::DEFAULT_TIMEOUT;

/// ntfy shows at most three action buttons.
const MAX_ACTIONS: usize = 3;

/// Longer messages become attachments on ntfy; ours stay in the notification.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The most of an answer read: a success is small JSON, and of a failure only
/// an excerpt is kept.
const READ_BYTES: usize = EXCERPT_BYTES * 4 + 1;

/// `[notify.ntfy]`: the server topics are published to, and how.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NtfyConfig {
    /// The server a bare topic name is published to.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// An access token (`tk_…`), sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token: Option<String>,
    /// A user for Basic authentication, instead of a token.
    #[serde(default)]
    pub username: Option<String>,
    /// The password for `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// How long the server has to answer, in seconds.
    #[serde(
        rename = "timeout_seconds",
        default = "http::default_timeout",
        deserialize_with = "http::timeout_seconds"
    )]
    pub timeout: Duration,
    /// ntfy priority (1 to 5) for high-urgency pages; 5 ("urgent") by default.
    #[serde(default = "default_priority_high")]
    pub priority_high: u8,
    /// ntfy priority (1 to 5) for low-urgency pages and other notices; 3 ("default") by default.
    #[serde(default = "default_priority_low")]
    pub priority_low: u8,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}
fn default_priority_high() -> u8 {
    5
}
fn default_priority_low() -> u8 {
    3
}

impl Default for NtfyConfig {
    fn default() -> Self {
        NtfyConfig {
            base_url: default_base_url(),
            token: None,
            username: None,
            password: None,
            timeout: DEFAULT_TIMEOUT,
            priority_high: default_priority_high(),
            priority_low: default_priority_low(),
        }
    }
}

impl std::fmt::Debug for NtfyConfig {
    // Never print the token or the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtfyConfig")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .field("priority_high", &self.priority_high)
            .field("priority_low", &self.priority_low)
            .finish()
    }
}

#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

/// Publishes [`Outgoing`] messages to ntfy topics.
pub struct NtfyProvider {
    client: reqwest::Client,
    base: Url,
    auth: Auth,
    timeout: Duration,
    priority_high: u8,
    priority_low: u8,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NtfyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtfyProvider")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NtfyProvider {
    /// A provider for `config`; a bad value is an error naming its key.
    pub fn new(config: NtfyConfig) -> Result<Self, Invalid> {
        let base = root_url(&config.base_url)
            .ok_or_else(|| Invalid::new("base_url", "an http or https URL"))?;
        let auth = match (config.token, config.username, config.password) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Invalid::new(
                    "token",
                    "set either `token` or `username` and `password`, not both",
                ))
            }
            (Some(t), None, None) if !t.trim().is_empty() => Auth::Bearer(t.trim().to_string()),
            (Some(_), None, None) => return Err(Invalid::new("token", "must not be empty")),
            (None, Some(u), Some(p)) => Auth::Basic(u, p),
            (None, Some(_), None) => {
                return Err(Invalid::new(
                    "password",
                    "`username` is set but no password",
                ))
            }
            (None, None, Some(_)) => {
                return Err(Invalid::new(
                    "username",
                    "`password` is set but no username",
                ))
            }
            (None, None, None) => Auth::None,
        };
        let client = http::client(config.timeout, "ntfy")?;
        for (key, p) in [
            ("priority_high", config.priority_high),
            ("priority_low", config.priority_low),
        ] {
            if !(1..=5).contains(&p) {
                return Err(Invalid::new(
                    key,
                    "an ntfy priority is 1 (min) to 5 (urgent)",
                ));
            }
        }
        Ok(NtfyProvider {
            client,
            base,
            auth,
            timeout: config.timeout,
            priority_high: config.priority_high,
            priority_low: config.priority_low,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same provider reading the time (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn publish(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let (root, topic) = self.destination(out.recipient.target.trim())?;
        let body = self.body(out, &topic);
        let mut request = self
            .client
            .post(root.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).expect("a JSON value serializes"));
        // The credentials belong to the configured server: a topic URL naming
        // another server gets none of them.
        if root.origin() == self.base.origin() {
            request = match &self.auth {
                Auth::None => request,
                Auth::Bearer(token) => request.bearer_auth(token),
                Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
            };
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport(&e.without_url(), self.timeout))?;
        let http::Answer {
            status,
            headers,
            body: answer,
        } = http::read(response, READ_BYTES).await;
        if let Err(e) = classify(status, &headers, &answer, self.clock.now()) {
            return Err(with_ntfy_reason(e, status, &answer));
        }
        let id = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
        Ok(Sent {
            provider_id: id,
            status,
        })
    }

    /// Where to publish and to which topic: a bare topic goes to the configured
    /// server; a topic URL to the root of the server it names.
    fn destination(&self, target: &str) -> Result<(Url, String), SendError> {
        if !target.contains("://") {
            if target.is_empty() {
                return Err(SendError::bad_address("the ntfy topic is empty"));
            }
            return Ok((self.base.clone(), target.to_string()));
        }
        let url = Url::parse(target)
            .map_err(|e| SendError::bad_address(format!("ntfy topic URL `{target}`: {e}")))?;
        let topic = url
            .path_segments()
            .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(str::to_string))
            .ok_or_else(|| {
                SendError::bad_address(format!("ntfy topic URL `{target}` names no topic"))
            })?;
        let path = url.path().trim_end_matches('/');
        let parent = &path[..path.len() - topic.len()];
        let root = root_url(&format!("{}{}", url.origin().ascii_serialization(), parent))
            .ok_or_else(|| {
                SendError::bad_address(format!("ntfy topic URL `{target}` is not http or https"))
            })?;
        Ok((root, topic))
    }

    /// The JSON publish body (<https://docs.ntfy.sh/publish/#publish-as-json>).
    fn body(&self, out: &Outgoing, topic: &str) -> Value {
        let m = &out.message;
        let incident = m.incident.as_ref();
        let high = incident.is_some_and(|i| i.urgency == Urgency::High);
        let text = match incident {
            Some(i) => {
                let mut t = format!(
                    "Incident #{}: {}\nUrgency: {}",
                    i.number,
                    i.title,
                    i.urgency.as_str()
                );
                if let Some(level) = i.level {
                    t.push_str(&format!("\nEscalation level: {level}"));
                }
                t
            }
            None => m.long.trim_end().to_string(),
        };
        // Tapping the notification opens the incident; the buttons act on it.
        let links = incident.map(|i| i.links.as_slice()).unwrap_or_default();
        let click = links.iter().map(|l| &l.href).find(|h| is_web(h));
        let mut actions: Vec<Value> = incident
            .map(|i| i.actions.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|a| is_web(&a.href))
            .map(|a| json!({ "action": "view", "label": a.text, "url": a.href }))
            .collect();
        for l in links.iter().filter(|l| is_web(&l.href)) {
            actions.push(json!({ "action": "view", "label": l.text, "url": l.href }));
        }
        actions.truncate(MAX_ACTIONS);
        let mut body = json!({
            "topic": topic,
            "title": m.subject,
            "message": cut_bytes(&text, MAX_MESSAGE_BYTES),
            "priority": if high { self.priority_high } else { self.priority_low },
            "tags": [if high { "rotating_light" } else { "warning" }],
            "actions": actions,
            // ntfy 2.16+ replaces a notification with the same sequence id, so a
            // resend after a crash updates the first one instead of ringing twice;
            // older servers ignore the field.
            "sequence_id": stable_token(&out.idempotency_key, 64),
        });
        if let Some(click) = click {
            body["click"] = json!(click);
        }
        body
    }
}

impl Provider for NtfyProvider {
    fn name(&self) -> &'static str {
        "ntfy"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.publish(out))
    }
}

/// `url` as a publishing root: http(s), ending in `/`, no query or fragment.
fn root_url(url: &str) -> Option<Url> {
    let mut url = Url::parse(url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Some(url)
}

fn is_web(href: &str) -> bool {
    href.starts_with("https://") || href.starts_with("http://")
}

fn cut_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// ntfy's errors are `{"code":40301,"http":403,"error":"…","link":"…"}`: the
/// reason says its words rather than the raw JSON.
fn with_ntfy_reason(err: SendError, status: u16, answer: &[u8]) -> SendError {
    let Ok(v) = serde_json::from_slice::<Value>(answer) else {
        return err;
    };
    let Some(said) = v.get("error").and_then(Value::as_str) else {
        return err;
    };
    let mut reason = format!("ntfy answered {status}: {said}");
    if let Some(code) = v.get("code").and_then(Value::as_i64) {
        reason.push_str(&format!(" (code {code})"));
    }
    if let Some(link) = v.get("link").and_then(Value::as_str) {
        reason.push_str(&format!(", see {link}"));
    }
    match err {
        SendError::Retryable { retry_after, .. } => SendError::Retryable {
            reason,
            retry_after,
        },
        SendError::Permanent { status, .. } => SendError::Permanent { status, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(c: NtfyConfig) -> String {
        NtfyProvider::new(c).map(|_| ()).unwrap_err().field
    }

    #[test]
    fn configuration_is_checked() {
        assert!(NtfyProvider::new(NtfyConfig::default()).is_ok());
        let base = NtfyConfig::default();
        assert_eq!(
            field(NtfyConfig {
                base_url: "ntfy.sh".into(),
                ..base.clone()
            }),
            "base_url"
        );
        assert_eq!(
            field(NtfyConfig {
                token: Some("tk_x".into()),
                username: Some("u".into()),
                ..base.clone()
            }),
            "token"
        );
        assert_eq!(
            field(NtfyConfig {
                username: Some("u".into()),
                ..base.clone()
            }),
            "password"
        );
        assert_eq!(
            field(NtfyConfig {
                priority_high: 6,
                ..base.clone()
            }),
            "priority_high"
        );
        assert_eq!(
            field(NtfyConfig {
                priority_low: 0,
                ..base
            }),
            "priority_low"
        );
        let c: NtfyConfig = serde_json::from_str(r#"{"token":"tk_abc"}"#).unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert!(!format!("{c:?}").contains("tk_abc"));
        assert!(serde_json::from_str::<NtfyConfig>(r#"{"topic":"x"}"#).is_err());
    }

    #[test]
    fn topics_and_topic_urls() {
        let p = NtfyProvider::new(NtfyConfig {
            base_url: "https://ntfy.example/base".into(),
            ..NtfyConfig::default()
        })
        .unwrap();
        let (root, topic) = p.destination("alerts-ann").unwrap();
        assert_eq!(
            (root.as_str(), topic.as_str()),
            ("https://ntfy.example/base/", "alerts-ann")
        );
        let (root, topic) = p.destination("https://other.example/x/alerts?y=1").unwrap();
        assert_eq!(
            (root.as_str(), topic.as_str()),
            ("https://other.example/x/", "alerts")
        );
        let (root, topic) = p.destination("http://127.0.0.1:8080/alerts/").unwrap();
        assert_eq!(
            (root.as_str(), topic.as_str()),
            ("http://127.0.0.1:8080/", "alerts")
        );
        assert!(p.destination("https://other.example/").is_err());
        assert!(p.destination("ftp://other.example/t").is_err());
        assert!(p.destination("").is_err());
    }

    #[test]
    fn long_messages_are_cut_on_a_character() {
        let t = cut_bytes(&"é".repeat(3000), MAX_MESSAGE_BYTES);
        assert!(t.len() <= MAX_MESSAGE_BYTES && t.ends_with('…'));
    }
}
