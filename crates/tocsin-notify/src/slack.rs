//! Slack, two ways, chosen by the address: `slack:https://hooks.slack.com/…` posts
//! to an incoming webhook; `slack:C0123ABCD` or `slack:#ops` calls the Web API's
//! `chat.postMessage` with the configured bot token.
//!
//! The message is Block Kit: a header with the incident, a section with its
//! urgency, level and links, and buttons for the one-click actions. Every text
//! that came from an alert or a person is escaped for mrkdwn, so a title such as
//! `<!channel>` is shown, not obeyed.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{json, Value};
use tocsin_core::action_link::LinkAction;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_core::Invalid;

use crate::classify::{excerpt, SendError, EXCERPT_BYTES};
use crate::http::{self, cut_escaped, web_url, ANSWER_BYTES};
use crate::message::cut;
use crate::{BoxFuture, Message, Outgoing, Provider, Sent};

/// The Web API root unless configured otherwise.
pub const DEFAULT_API_BASE_URL: &str = "https://slack.com/api";

// Block Kit limits (docs.slack.dev/reference/block-kit/blocks).
const HEADER_CHARS: usize = 150;
const SECTION_CHARS: usize = 3000;
const BUTTON_TEXT_CHARS: usize = 75;
const BUTTON_URL_CHARS: usize = 3000;
const ACTION_ELEMENTS: usize = 25;
const BLOCKS: usize = 50;
// Notification text; Slack truncates `text` past 40,000 characters, a preview needs far less.
const TEXT_CHARS: usize = 3000;

/// `[notify.slack]`: where the Web API is and the bot token to call it with.
/// Incoming webhook addresses need neither.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// The Web API root (`https://slack.com/api`); tests point it elsewhere.
    pub api_base_url: String,
    /// The bot token (`xoxb-…`) for channel and user addresses; without it only
    /// incoming webhook addresses work.
    pub bot_token: Option<String>,
    /// How long Slack has to answer (`timeout_seconds` in the file).
    #[serde(rename = "timeout_seconds", deserialize_with = "http::timeout_seconds")]
    pub timeout: Duration,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            api_base_url: DEFAULT_API_BASE_URL.into(),
            bot_token: None,
            timeout: http::DEFAULT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for SlackConfig {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("api_base_url", &self.api_base_url)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends [`Outgoing`] messages to Slack.
pub struct SlackProvider {
    client: reqwest::Client,
    post_message_url: String,
    bot_token: Option<String>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SlackProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackProvider")
            .field("post_message_url", &self.post_message_url)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SlackProvider {
    /// A provider for `config`, refusing a base URL that is not http(s), an
    /// empty token and a zero timeout.
    pub fn new(config: SlackConfig) -> Result<Self, Invalid> {
        let base = http::base_url(&config.api_base_url, "api_base_url")?;
        let bot_token = match config.bot_token {
            Some(t) if t.trim().is_empty() => {
                return Err(Invalid::new("bot_token", "is empty; leave it out instead"))
            }
            Some(t) if t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(Invalid::new(
                    "bot_token",
                    "contains spaces or control characters",
                ))
            }
            other => other,
        };
        Ok(SlackProvider {
            client: http::client(config.timeout, "slack")?,
            post_message_url: format!("{base}/chat.postMessage"),
            bot_token,
            timeout: config.timeout,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same provider reading the time (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn post(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let target = out.recipient.target.trim();
        if target.is_empty() {
            return Err(SendError::bad_address(
                "Slack address names no channel, user or webhook URL",
            ));
        }
        if target.contains("://") {
            self.post_to_webhook(target, &out.message).await
        } else {
            self.post_message(target, &out.message).await
        }
    }

    // Incoming webhooks answer 200 "ok", or a 4xx/5xx with a plain-text code
    // (invalid_payload, channel_not_found, channel_is_archived, …): the shared
    // classification reads those right, 4xx permanent and 5xx/429 retryable.
    async fn post_to_webhook(&self, target: &str, message: &Message) -> Result<Sent, SendError> {
        let url = web_url(target, "Slack webhook")?;
        let mut body = payload(message);
        body["unfurl_links"] = json!(false);
        body["unfurl_media"] = json!(false);
        let request = self.client.post(url).json(&body);
        let answer = http::send(request, self.timeout, EXCERPT_BYTES + 1).await?;
        answer.classify(self.clock.now())?;
        Ok(Sent {
            provider_id: None,
            status: answer.status,
        })
    }

    async fn post_message(&self, channel: &str, message: &Message) -> Result<Sent, SendError> {
        let token = self.bot_token.as_deref().ok_or_else(|| {
            SendError::bad_address(format!(
                "Slack address `{channel}` needs the Web API, but no bot token is configured \
                 (set bot_token in [notify.slack], or use an incoming webhook URL as the address)"
            ))
        })?;
        let mut body = payload(message);
        body["channel"] = json!(channel);
        body["unfurl_links"] = json!(false);
        body["unfurl_media"] = json!(false);
        let raw = serde_json::to_vec(&body).expect("a JSON value serializes");
        let request = self
            .client
            .post(&self.post_message_url)
            // Without the charset Slack answers with a `missing_charset` warning.
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(raw);
        let answer = http::send(request, self.timeout, ANSWER_BYTES).await?;
        answer.classify(self.clock.now())?;
        api_answer(answer.status, &answer.body)
    }
}

impl Provider for SlackProvider {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

/// The Web API answers HTTP 200 whether it worked or not; `ok` says which.
#[derive(Deserialize)]
struct ApiAnswer {
    ok: bool,
    error: Option<String>,
    channel: Option<String>,
    ts: Option<String>,
}

/// Errors worth trying again: Slack's own trouble and throttling
/// (docs.slack.dev/reference/methods/chat.postMessage#errors).
const RETRYABLE: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
    "org_login_required",
];

/// Errors that mean the configured token is wrong or lacks a scope.
const TOKEN_ERRORS: &[&str] = &[
    "not_authed",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "not_allowed_token_type",
    "no_permission",
];

fn api_answer(status: u16, body: &[u8]) -> Result<Sent, SendError> {
    let answer: ApiAnswer = serde_json::from_slice(body).map_err(|_| SendError::Permanent {
        status: Some(status),
        reason: format!(
            "Slack chat.postMessage answered something other than its JSON: {}",
            excerpt(body)
        ),
    })?;
    if answer.ok {
        let provider_id = match (answer.channel, answer.ts) {
            (Some(c), Some(ts)) => Some(format!("{c}/{ts}")),
            (None, Some(ts)) => Some(ts),
            _ => None,
        };
        return Ok(Sent {
            provider_id,
            status,
        });
    }
    let error = answer.error.unwrap_or_else(|| "unknown_error".into());
    let mut reason = format!("Slack chat.postMessage: {}", excerpt(error.as_bytes()));
    if RETRYABLE.contains(&error.as_str()) {
        return Err(SendError::Retryable {
            reason,
            retry_after: None,
        });
    }
    if TOKEN_ERRORS.contains(&error.as_str()) {
        reason.push_str(" (check bot_token in [notify.slack] and the app's scopes: chat:write)");
    } else if error == "not_in_channel" {
        reason.push_str(" (invite the app to the channel, or grant it chat:write.public)");
    }
    Err(SendError::Permanent {
        status: Some(status),
        reason,
    })
}

/// `text` and `blocks`, the part of the body both ways share.
pub fn payload(message: &Message) -> Value {
    json!({
        "text": cut_escaped(&mrkdwn(&message.short), TEXT_CHARS),
        "blocks": blocks(message),
    })
}

/// The Block Kit blocks for `message`.
pub fn blocks(message: &Message) -> Vec<Value> {
    let Some(incident) = &message.incident else {
        let text = if message.long.trim().is_empty() {
            &message.short
        } else {
            &message.long
        };
        return vec![section(&mrkdwn(text))];
    };
    let heading = format!(
        "Incident #{}: {}",
        incident.number,
        one_line(&incident.title)
    );
    let mut blocks = vec![json!({
        "type": "header",
        // plain_text: nothing in it is formatting, so nothing needs escaping.
        "text": { "type": "plain_text", "text": cut(&heading, HEADER_CHARS), "emoji": false },
    })];
    let mut lines = Vec::new();
    if heading.chars().count() > HEADER_CHARS {
        lines.push(mrkdwn(&incident.title));
    }
    let mut facts = format!("*Urgency:* {}", incident.urgency.as_str());
    if let Some(level) = incident.level {
        facts.push_str(&format!("   *Escalation level:* {level}"));
    }
    lines.push(facts);
    let links: Vec<String> = incident
        .links
        .iter()
        .map(|l| link(&l.href, &l.text))
        .collect();
    if !links.is_empty() {
        lines.push(links.join("  ·  "));
    }
    blocks.push(section(&fit_lines(&lines, SECTION_CHARS)));
    let buttons = buttons(incident.id, &incident.actions);
    if !buttons.is_empty() {
        blocks
            .push(json!({ "type": "actions", "block_id": "tocsin_actions", "elements": buttons }));
    }
    blocks.truncate(BLOCKS);
    blocks
}

fn buttons(incident_id: i64, actions: &[crate::Action]) -> Vec<Value> {
    let mut used = Vec::new();
    actions
        .iter()
        .filter(|a| a.href.chars().count() <= BUTTON_URL_CHARS)
        .take(ACTION_ELEMENTS)
        .map(|a| {
            // action_id must be unique within the block.
            let base = format!("tocsin_{}", a.action.as_str());
            let mut id = base.clone();
            let mut n = 1;
            while used.contains(&id) {
                n += 1;
                id = format!("{base}_{n}");
            }
            used.push(id.clone());
            let mut button = json!({
                "type": "button",
                "action_id": id,
                "text": { "type": "plain_text", "text": cut(&a.text, BUTTON_TEXT_CHARS), "emoji": false },
                "value": incident_id.to_string(),
                "url": a.href,
            });
            if a.action == LinkAction::Acknowledge {
                button["style"] = json!("primary");
            }
            button
        })
        .collect()
}

fn section(text: &str) -> Value {
    json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": cut_escaped(text, SECTION_CHARS) },
    })
}

// Whole lines while they fit, so a cut never falls inside a link.
fn fit_lines(lines: &[String], max: usize) -> String {
    let mut out = String::new();
    for line in lines {
        let needed = line.chars().count() + usize::from(!out.is_empty());
        if out.chars().count() + needed > max {
            if out.is_empty() {
                return cut_escaped(line, max);
            }
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

/// `text` made safe for mrkdwn: Slack's three control characters escaped, so
/// `<!channel>`, `<@U123>` and `<http://x|y>` are shown literally.
pub fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A mrkdwn link: `<url|text>`, with the URL unable to end the link early.
fn link(href: &str, text: &str) -> String {
    let url = href
        .replace('&', "&amp;")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C");
    format!("<{url}|{}>", mrkdwn(&one_line(text)))
}

fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            mrkdwn("<!channel> a & b > c <http://evil|x>"),
            "&lt;!channel&gt; a &amp; b &gt; c &lt;http://evil|x&gt;"
        );
        assert_eq!(
            link("https://x.example/?a=1&b=2|3>", "Run<book>"),
            "<https://x.example/?a=1&amp;b=2%7C3%3E|Run&lt;book&gt;>"
        );
    }

    #[test]
    fn lines_are_kept_whole() {
        let lines = vec!["a".repeat(10), "b".repeat(10), "c".repeat(10)];
        assert_eq!(
            fit_lines(&lines, 25),
            format!("{}\n{}", "a".repeat(10), "b".repeat(10))
        );
        assert_eq!(fit_lines(&lines[..1], 5), "aaaa…");
    }

    #[test]
    fn configuration_is_checked_and_the_token_never_printed() {
        let config = SlackConfig {
            bot_token: Some("xoxb-secret".into()),
            ..SlackConfig::default()
        };
        assert!(!format!("{config:?}").contains("xoxb-secret"));
        let p = SlackProvider::new(config).unwrap();
        assert!(!format!("{p:?}").contains("xoxb-secret"));
        assert_eq!(p.post_message_url, "https://slack.com/api/chat.postMessage");
        for (config, field) in [
            (
                SlackConfig {
                    api_base_url: "slack.com/api".into(),
                    ..SlackConfig::default()
                },
                "api_base_url",
            ),
            (
                SlackConfig {
                    bot_token: Some(" ".into()),
                    ..SlackConfig::default()
                },
                "bot_token",
            ),
            (
                SlackConfig {
                    timeout: Duration::ZERO,
                    ..SlackConfig::default()
                },
                "timeout_seconds",
            ),
        ] {
            assert_eq!(SlackProvider::new(config).unwrap_err().field, field);
        }
    }

    #[test]
    fn the_file_section_reads_with_defaults() {
        let c: SlackConfig =
            serde_json::from_str(r#"{"bot_token":"xoxb-1","timeout_seconds":3}"#).unwrap();
        assert_eq!(c.api_base_url, DEFAULT_API_BASE_URL);
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert!(serde_json::from_str::<SlackConfig>(r#"{"token":"x"}"#).is_err());
    }
}
