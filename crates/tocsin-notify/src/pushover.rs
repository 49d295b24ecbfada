//! Pushover (<https://pushover.net/api>): a form POST to `/1/messages.json`,
//! the action links as HTML links in the message, emergency priority on request.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use tocsin_core::escalation::Urgency;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_core::Invalid;

use crate::classify::{classify, transport, SendError, EXCERPT_BYTES};
use crate::escape::html;
use crate::http;
use crate::{BoxFuture, IncidentSummary, Outgoing, Provider, Sent};

/// Pushover's API, used unless configured otherwise.
pub const DEFAULT_API_BASE_URL: &str = "https://api.pushover.net";

/// How long the API has to answer unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = http::DEFAULT_TIMEOUT;

// The API's documented limits, in characters.
const MAX_TITLE: usize = 250;
const MAX_MESSAGE: usize = 1024;
const MAX_URL: usize = 512;
const MAX_URL_TITLE: usize = 100;
const MIN_RETRY_SECS: u64 = 30;
const MAX_EXPIRE_SECS: u64 = 10_800;

/// The most of an answer read: a success is small JSON, and of a failure only
/// an excerpt is kept.
const READ_BYTES: usize = EXCERPT_BYTES * 4 + 1;

/// `[notify.pushover]`: the application messages are sent as.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushoverConfig {
    /// The API root.
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// The application's API token.
    pub app_token: String,
    /// How long the API has to answer, in seconds.
    #[serde(
        rename = "timeout_seconds",
        default = "http::default_timeout",
        deserialize_with = "http::timeout_seconds"
    )]
    pub timeout: Duration,
    /// Send high-urgency pages as emergency priority (2): repeated until
    /// acknowledged in the Pushover app. Otherwise high is priority 1.
    #[serde(default)]
    pub emergency: bool,
    /// For emergency priority: seconds between repeats (at least 30).
    #[serde(default = "default_retry")]
    pub retry: u64,
    /// For emergency priority: seconds until Pushover stops repeating (at most 10800).
    #[serde(default = "default_expire")]
    pub expire: u64,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.into()
}
fn default_retry() -> u64 {
    60
}
fn default_expire() -> u64 {
    3600
}

impl PushoverConfig {
    /// Sending as the application with `app_token`, everything else default.
    pub fn new(app_token: impl Into<String>) -> Self {
        PushoverConfig {
            api_base_url: default_api_base_url(),
            app_token: app_token.into(),
            timeout: DEFAULT_TIMEOUT,
            emergency: false,
            retry: default_retry(),
            expire: default_expire(),
        }
    }
}

impl std::fmt::Debug for PushoverConfig {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushoverConfig")
            .field("api_base_url", &self.api_base_url)
            .field("app_token", &"<hidden>")
            .field("timeout", &self.timeout)
            .field("emergency", &self.emergency)
            .field("retry", &self.retry)
            .field("expire", &self.expire)
            .finish()
    }
}

/// Sends [`Outgoing`] messages through the Pushover message API.
pub struct PushoverProvider {
    client: reqwest::Client,
    endpoint: Url,
    app_token: String,
    timeout: Duration,
    emergency: bool,
    retry: u64,
    expire: u64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PushoverProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushoverProvider")
            .field("endpoint", &self.endpoint.as_str())
            .field("emergency", &self.emergency)
            .finish_non_exhaustive()
    }
}

impl PushoverProvider {
    /// A provider for `config`; a bad value is an error naming its key.
    pub fn new(config: PushoverConfig) -> Result<Self, Invalid> {
        let base = http::base_url(&config.api_base_url, "api_base_url")?;
        let endpoint = Url::parse(&format!("{base}/1/messages.json"))
            .map_err(|e| Invalid::new("api_base_url", e.to_string()))?;
        let app_token = config.app_token.trim().to_string();
        if app_token.is_empty() {
            return Err(Invalid::new(
                "app_token",
                "the application's API token is required",
            ));
        }
        let client = http::client(config.timeout, "pushover")?;
        if config.retry < MIN_RETRY_SECS {
            return Err(Invalid::new("retry", "at least 30 seconds"));
        }
        if config.expire == 0 || config.expire > MAX_EXPIRE_SECS {
            return Err(Invalid::new("expire", "1 to 10800 seconds (3 hours)"));
        }
        Ok(PushoverProvider {
            client,
            endpoint,
            app_token,
            timeout: config.timeout,
            emergency: config.emergency,
            retry: config.retry,
            expire: config.expire,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same provider reading the time (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn post(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let form = self.form(out)?;
        let response = self
            .client
            .post(self.endpoint.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(&e.without_url(), self.timeout))?;
        let http::Answer {
            status,
            headers,
            body: answer,
        } = http::read(response, READ_BYTES).await;
        let json = serde_json::from_slice::<Value>(&answer).ok();
        if status == 429 {
            // Pushover answers 429 when the application's monthly quota is used
            // up: nothing gets through until the quota resets (the 1st of the
            // month) or is raised, and the API asks not to repeat 4xx requests.
            let reset = headers
                .get("x-limit-app-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| format!(" (resets {})", t.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            return Err(SendError::Permanent {
                status: Some(429),
                reason: format!(
                    "Pushover answered 429: the application's monthly message limit is reached{reset}{}",
                    errors_of(json.as_ref()).map(|e| format!(": {e}")).unwrap_or_default()
                ),
            });
        }
        if let Err(e) = classify(status, &headers, &answer, self.clock.now()) {
            let Some(errors) = errors_of(json.as_ref()) else {
                return Err(e);
            };
            let reason = format!("Pushover answered {status}: {errors}");
            return Err(match e {
                SendError::Retryable { retry_after, .. } => SendError::Retryable {
                    reason,
                    retry_after,
                },
                SendError::Permanent { status, .. } => SendError::Permanent { status, reason },
            });
        }
        let field = |k: &str| {
            json.as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        // An emergency message is followed up by its receipt; others by the request id.
        Ok(Sent {
            provider_id: field("receipt").or_else(|| field("request")),
            status,
        })
    }

    /// The form fields (<https://pushover.net/api#messages>).
    fn form(&self, out: &Outgoing) -> Result<Vec<(&'static str, String)>, SendError> {
        let target = out.recipient.target.trim();
        let (user, device) = match target.split_once('/') {
            Some((u, d)) => (u, Some(d)),
            None => (target, None),
        };
        if user.is_empty() || device.is_some_and(str::is_empty) {
            return Err(SendError::bad_address(format!(
                "`{target}` is not a Pushover user key (KEY or KEY/device)"
            )));
        }
        let m = &out.message;
        let mut form = vec![
            ("token", self.app_token.clone()),
            ("user", user.to_string()),
        ];
        if let Some(d) = device {
            form.push(("device", d.to_string()));
        }
        form.push(("title", cut(&m.subject, MAX_TITLE)));
        match &m.incident {
            Some(i) => {
                form.push(("message", incident_html(i)));
                form.push(("html", "1".into()));
                if let Some(link) = i
                    .links
                    .iter()
                    .find(|l| is_web(&l.href) && l.href.chars().count() <= MAX_URL)
                {
                    form.push(("url", link.href.clone()));
                    form.push(("url_title", cut(&link.text, MAX_URL_TITLE)));
                }
                match (i.urgency, self.emergency) {
                    (Urgency::High, true) => {
                        form.push(("priority", "2".into()));
                        form.push(("retry", self.retry.to_string()));
                        form.push(("expire", self.expire.to_string()));
                    }
                    (Urgency::High, false) => form.push(("priority", "1".into())),
                    (Urgency::Low, _) => form.push(("priority", "0".into())),
                }
            }
            None => {
                form.push(("message", cut(m.long.trim_end(), MAX_MESSAGE)));
                form.push(("priority", "0".into()));
            }
        }
        Ok(form)
    }
}

impl Provider for PushoverProvider {
    fn name(&self) -> &'static str {
        "pushover"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

/// The message in Pushover's HTML subset, within its 1024 characters: the
/// action links are kept whole (they are the point), the title is cut to fit.
fn incident_html(i: &IncidentSummary) -> String {
    let mut tail = format!("\nUrgency: <b>{}</b>", i.urgency.as_str());
    if let Some(level) = i.level {
        tail.push_str(&format!("\nEscalation level: {level}"));
    }
    let mut actions: Vec<String> = i
        .actions
        .iter()
        .filter(|a| is_web(&a.href))
        .map(|a| format!("<a href=\"{}\">{}</a>", html(&a.href), html(&a.text)))
        .collect();
    // Links that cannot fit at all are dropped rather than cut into broken URLs.
    while !actions.is_empty()
        && tail.chars().count() + actions.join(" · ").chars().count() + 40 > MAX_MESSAGE
    {
        actions.pop();
    }
    if !actions.is_empty() {
        tail.push_str("\n\n");
        tail.push_str(&actions.join(" · "));
    }
    let head = format!("Incident #{}: ", i.number);
    let room = MAX_MESSAGE.saturating_sub(head.chars().count() + tail.chars().count());
    // Cut before escaping so an entity is never split.
    let mut title = String::new();
    for c in i.title.chars() {
        let e = html(&c.to_string());
        if title.chars().count() + e.chars().count() + 1 > room {
            title.push('…');
            break;
        }
        title.push_str(&e);
    }
    format!("{head}{title}{tail}")
}

/// `{"errors":["user identifier is invalid"], "user":"invalid", "status":0}` → its errors.
fn errors_of(json: Option<&Value>) -> Option<String> {
    let errors: Vec<&str> = json?
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

fn is_web(href: &str) -> bool {
    href.starts_with("https://") || href.starts_with("http://")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Link};
    use tocsin_core::action_link::LinkAction;

    fn field(c: PushoverConfig) -> String {
        PushoverProvider::new(c).map(|_| ()).unwrap_err().field
    }

    #[test]
    fn configuration_is_checked() {
        let ok = PushoverConfig::new("azGDORePK8gMaC0QOYAMyEEuzJnyUi");
        assert!(PushoverProvider::new(ok.clone()).is_ok());
        assert_eq!(
            field(PushoverConfig {
                app_token: " ".into(),
                ..ok.clone()
            }),
            "app_token"
        );
        assert_eq!(
            field(PushoverConfig {
                api_base_url: "x".into(),
                ..ok.clone()
            }),
            "api_base_url"
        );
        assert_eq!(
            field(PushoverConfig {
                retry: 29,
                ..ok.clone()
            }),
            "retry"
        );
        assert_eq!(
            field(PushoverConfig {
                expire: 10_801,
                ..ok.clone()
            }),
            "expire"
        );
        assert!(!format!("{ok:?}").contains("azGDORe"));
        let c: PushoverConfig =
            serde_json::from_str(r#"{"app_token":"t","emergency":true}"#).unwrap();
        assert_eq!(
            (c.retry, c.expire, c.api_base_url.as_str()),
            (60, 3600, DEFAULT_API_BASE_URL)
        );
        assert!(serde_json::from_str::<PushoverConfig>(r#"{"app_token":"t","user":"u"}"#).is_err());
    }

    #[test]
    fn incident_message_fits_and_keeps_its_links() {
        let i = IncidentSummary {
            id: 1,
            number: 3,
            title: "<&>".repeat(600),
            urgency: Urgency::High,
            level: Some(2),
            links: vec![Link {
                text: "Incident".into(),
                href: "https://t.example/i/1".into(),
            }],
            actions: vec![Action {
                action: LinkAction::Acknowledge,
                text: "Acknowledge".into(),
                href: format!("https://t.example/a/{}", "k".repeat(200)),
            }],
        };
        let html = incident_html(&i);
        assert!(
            html.chars().count() <= MAX_MESSAGE,
            "{}",
            html.chars().count()
        );
        assert!(html.contains(&format!(
            "<a href=\"https://t.example/a/{}\">Acknowledge</a>",
            "k".repeat(200)
        )));
        assert!(html.starts_with("Incident #3: &lt;&amp;&gt;"));
        assert!(!html.contains("&l…") && html.contains('…'));
    }
}
