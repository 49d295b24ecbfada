//! Discord: a channel webhook, `discord:https://discord.com/api/webhooks/{id}/{token}`,
//! executed with `?wait=true` so the answer is the message itself and its id
//! identifies what was sent. Mentions are switched off (`allowed_mentions`), so
//! an alert saying `@everyone` pings nobody.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};
use tocsin_core::escalation::Urgency;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_core::Invalid;

use crate::classify::SendError;
use crate::http::{self, cut_escaped, web_url, ANSWER_BYTES};
use crate::markdown::{escape, escape_lines, join_fitting, link};
use crate::{BoxFuture, Message, Outgoing, Provider, Sent};

// Limits (discord.com/developers/docs/resources/message#embed-object-embed-limits).
const CONTENT_CHARS: usize = 2000;
const TITLE_CHARS: usize = 256;
const FIELD_VALUE_CHARS: usize = 1024;
const FIELDS: usize = 25;
const URL_CHARS: usize = 2048;

// `<` starts mentions, channels and custom emoji in Discord's Markdown.
const EXTRA: &str = "<";

/// `[notify.discord]`. The webhook URL is each contact method's address.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// How long Discord has to answer (`timeout_seconds` in the file).
    #[serde(rename = "timeout_seconds", deserialize_with = "http::timeout_seconds")]
    pub timeout: Duration,
    /// The name messages appear under, instead of the webhook's.
    pub username: Option<String>,
    /// The avatar messages appear with, instead of the webhook's.
    pub avatar_url: Option<String>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            timeout: http::DEFAULT_TIMEOUT,
            username: None,
            avatar_url: None,
        }
    }
}

/// Sends [`Outgoing`] messages to Discord channels.
pub struct DiscordProvider {
    client: reqwest::Client,
    timeout: Duration,
    username: Option<String>,
    avatar_url: Option<String>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DiscordProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordProvider")
            .field("timeout", &self.timeout)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl DiscordProvider {
    /// A provider for `config`, refusing a zero timeout, a username Discord
    /// would refuse (1 to 80 characters, neither "discord" nor "clyde") and an
    /// avatar that is not an http(s) URL.
    pub fn new(config: DiscordConfig) -> Result<Self, Invalid> {
        if let Some(u) = &config.username {
            let n = u.trim().chars().count();
            if n == 0 || n > 80 {
                return Err(Invalid::new("username", "must be 1 to 80 characters"));
            }
            // Discord refuses every message from a webhook named like this.
            let lower = u.to_lowercase();
            if lower.contains("discord") || lower.contains("clyde") {
                return Err(Invalid::new(
                    "username",
                    "Discord does not allow \"discord\" or \"clyde\" in a webhook's name",
                ));
            }
        }
        if let Some(a) = &config.avatar_url {
            http::base_url(a, "avatar_url")?;
        }
        Ok(DiscordProvider {
            client: http::client(config.timeout, "discord")?,
            timeout: config.timeout,
            username: config.username,
            avatar_url: config.avatar_url,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same provider reading the time (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn post(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let url = execute_url(&out.recipient.target)?;
        let mut body = body(&out.message);
        if let Some(u) = &self.username {
            body["username"] = json!(u.trim());
        }
        if let Some(a) = &self.avatar_url {
            body["avatar_url"] = json!(a);
        }
        let request = self.client.post(url).json(&body);
        let answer = http::send(request, self.timeout, ANSWER_BYTES).await?;
        if let Err(e) = answer.classify(self.clock.now()) {
            return Err(rate_limited(answer.status, &answer.body, e));
        }
        // With wait=true the answer is the message object; a 204 means wait was ignored.
        let provider_id = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
        Ok(Sent {
            provider_id,
            status: answer.status,
        })
    }
}

impl Provider for DiscordProvider {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

/// The webhook URL with `wait=true`, keeping any query it has (`thread_id`).
fn execute_url(target: &str) -> Result<Url, SendError> {
    let mut url = web_url(target, "Discord")?;
    if !url.query_pairs().any(|(k, _)| k == "wait") {
        url.query_pairs_mut().append_pair("wait", "true");
    }
    Ok(url)
}

/// A 429's JSON body says how long to wait to the millisecond (`retry_after`,
/// seconds as a float); the `Retry-After` header rounds it up to whole seconds.
fn rate_limited(status: u16, body: &[u8], err: SendError) -> SendError {
    #[derive(Deserialize)]
    struct Limited {
        retry_after: f64,
        #[serde(default)]
        global: bool,
    }
    let SendError::Retryable {
        mut reason,
        retry_after,
    } = err
    else {
        return err;
    };
    let Some(limited) = (status == 429)
        .then(|| serde_json::from_slice::<Limited>(body).ok())
        .flatten()
        .filter(|l| l.retry_after.is_finite() && l.retry_after >= 0.0 && l.retry_after < 86_400.0)
    else {
        return SendError::Retryable {
            reason,
            retry_after,
        };
    };
    if limited.global {
        reason.push_str(" (global rate limit)");
    }
    SendError::Retryable {
        reason,
        retry_after: Some(Duration::from_secs_f64(limited.retry_after)),
    }
}

/// The webhook body: `content` for the notification, one embed with the details.
pub fn body(message: &Message) -> Value {
    let Some(incident) = &message.incident else {
        let text = if message.long.trim().is_empty() {
            &message.short
        } else {
            &message.long
        };
        return json!({
            "content": cut_escaped(&escape_lines(text, EXTRA), CONTENT_CHARS),
            "allowed_mentions": { "parse": [] },
        });
    };
    let title = format!("Incident #{}: {}", incident.number, incident.title);
    let mut fields =
        vec![json!({ "name": "Urgency", "value": incident.urgency.as_str(), "inline": true })];
    if let Some(level) = incident.level {
        fields.push(
            json!({ "name": "Escalation level", "value": level.to_string(), "inline": true }),
        );
    }
    let actions: Vec<String> = incident
        .actions
        .iter()
        .map(|a| link(&a.text, &a.href, EXTRA))
        .collect();
    let links: Vec<String> = incident
        .links
        .iter()
        .map(|l| link(&l.text, &l.href, EXTRA))
        .collect();
    for (name, items) in [("Actions", actions), ("Links", links)] {
        let value = join_fitting(&items, " · ", FIELD_VALUE_CHARS);
        if !value.is_empty() {
            fields.push(json!({ "name": name, "value": value, "inline": false }));
        }
    }
    fields.truncate(FIELDS);
    let mut embed = json!({
        // Embed titles are plain text: escapes would show as backslashes. An @
        // still gets a zero-width space, so nothing there reads as a mention.
        "title": crate::message::cut(&title.replace('@', "@\u{200B}"), TITLE_CHARS),
        "color": match incident.urgency {
            Urgency::High => 0xE0_1E_5A,
            Urgency::Low => 0xEC_B2_2E,
        },
        "fields": fields,
    });
    if let Some(first) = incident.links.first() {
        if first.href.len() <= URL_CHARS {
            embed["url"] = json!(first.href);
        }
    }
    json!({
        "content": cut_escaped(&escape(&message.short, EXTRA), CONTENT_CHARS),
        "embeds": [embed],
        "allowed_mentions": { "parse": [] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_is_asked_for_once_and_the_query_kept() {
        let u = execute_url("https://discord.com/api/webhooks/1/tok?thread_id=9").unwrap();
        assert_eq!(u.query(), Some("thread_id=9&wait=true"));
        let u = execute_url("https://discord.com/api/webhooks/1/tok?wait=true").unwrap();
        assert_eq!(u.query(), Some("wait=true"));
    }

    #[test]
    fn configuration_is_checked() {
        let c: DiscordConfig = serde_json::from_str(r#"{"username":"Tocsin"}"#).unwrap();
        assert!(DiscordProvider::new(c).is_ok());
        let long = DiscordConfig {
            username: Some("x".repeat(81)),
            ..DiscordConfig::default()
        };
        assert_eq!(DiscordProvider::new(long).unwrap_err().field, "username");
        let reserved = DiscordConfig {
            username: Some("Discord Alerts".into()),
            ..DiscordConfig::default()
        };
        assert_eq!(
            DiscordProvider::new(reserved).unwrap_err().field,
            "username"
        );
        let avatar = DiscordConfig {
            avatar_url: Some("x".into()),
            ..DiscordConfig::default()
        };
        assert_eq!(
            DiscordProvider::new(avatar).unwrap_err().field,
            "avatar_url"
        );
    }
}
