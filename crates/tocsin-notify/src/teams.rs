//! Microsoft Teams: an Adaptive Card POSTed to a Workflows (Power Automate)
//! webhook, `teams:https://…`. The legacy Office 365 connector webhooks take the
//! same body, so one provider serves both.
//!
//! Texts from alerts and people go into `TextRun`s, which Teams never reads as
//! Markdown: a title like `[x](http://evil)` is shown as typed.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tocsin_core::action_link::LinkAction;
use tocsin_core::time::{Clock, SystemClock};
use tocsin_core::Invalid;

use crate::classify::{excerpt, SendError, EXCERPT_BYTES};
use crate::http::{self, web_url};
use crate::message::cut;
use crate::{BoxFuture, Message, Outgoing, Provider, Sent};

/// The card schema version: what Teams renders on desktop, web and mobile alike.
pub const CARD_VERSION: &str = "1.4";

// A Teams message is at most about 28 KB; these keep a card well inside it.
const TITLE_CHARS: usize = 500;
const TEXT_CHARS: usize = 4000;
const ACTIONS: usize = 6;

/// `[notify.teams]`. The webhook URL is each contact method's address.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamsConfig {
    /// How long Teams has to answer (`timeout_seconds` in the file).
    #[serde(rename = "timeout_seconds", deserialize_with = "http::timeout_seconds")]
    pub timeout: Duration,
}

impl Default for TeamsConfig {
    fn default() -> Self {
        TeamsConfig {
            timeout: http::DEFAULT_TIMEOUT,
        }
    }
}

/// Sends [`Outgoing`] messages to Teams channels as Adaptive Cards.
pub struct TeamsProvider {
    client: reqwest::Client,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TeamsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamsProvider")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TeamsProvider {
    /// A provider for `config`, refusing a zero timeout.
    pub fn new(config: TeamsConfig) -> Result<Self, Invalid> {
        Ok(TeamsProvider {
            client: http::client(config.timeout, "teams")?,
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
        // The URL carries its credential (`sig=`), so it never goes into a reason.
        let url = web_url(&out.recipient.target, "Teams")?;
        let request = self.client.post(url).json(&body(&out.message));
        let answer = http::send(request, self.timeout, EXCERPT_BYTES + 1).await?;
        answer.classify(self.clock.now())?;
        legacy_error(answer.status, &answer.body)?;
        Ok(Sent {
            provider_id: None,
            status: answer.status,
        })
    }
}

impl Provider for TeamsProvider {
    fn name(&self) -> &'static str {
        "teams"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

/// Workflows answers 202 with an empty body. Legacy connectors answer 200 "1",
/// but pass some failures on as a 200 whose text says what went wrong ("Webhook
/// message delivery failed with error: Microsoft Teams endpoint returned HTTP
/// error 429 …"); that inner status decides.
fn legacy_error(status: u16, body: &[u8]) -> Result<(), SendError> {
    let text = String::from_utf8_lossy(body);
    let failed = text.contains("delivery failed") || text.contains("returned HTTP error");
    if !failed {
        return Ok(());
    }
    let reason = format!("Teams answered {status} but: {}", excerpt(body));
    let inner = text
        .split("HTTP error ")
        .nth(1)
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok());
    match inner {
        Some(code) if code != 429 && code != 408 && (400..500).contains(&code) => {
            Err(SendError::Permanent {
                status: Some(code),
                reason,
            })
        }
        // Throttling, Teams' own trouble, or no code at all: try again later.
        _ => Err(SendError::Retryable {
            reason,
            retry_after: None,
        }),
    }
}

/// The message body: one Adaptive Card attachment.
pub fn body(message: &Message) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card(message),
        }],
    })
}

/// The Adaptive Card for `message`.
pub fn card(message: &Message) -> Value {
    let mut body = Vec::new();
    let mut actions = Vec::new();
    match &message.incident {
        Some(incident) => {
            let title = format!("Incident #{}: {}", incident.number, incident.title);
            body.push(text_run(&cut(&title, TITLE_CHARS), true));
            let mut facts = vec![json!({ "title": "Urgency", "value": incident.urgency.as_str() })];
            if let Some(level) = incident.level {
                facts.push(json!({ "title": "Escalation level", "value": level.to_string() }));
            }
            body.push(json!({ "type": "FactSet", "facts": facts }));
            for a in &incident.actions {
                let mut action = open_url(&a.text, &a.href);
                if a.action == LinkAction::Acknowledge {
                    action["style"] = json!("positive");
                }
                actions.push(action);
            }
            actions.extend(incident.links.iter().map(|l| open_url(&l.text, &l.href)));
            actions.truncate(ACTIONS);
        }
        None => {
            let text = if message.long.trim().is_empty() {
                &message.short
            } else {
                &message.long
            };
            body.push(text_run(&cut(text, TEXT_CHARS), false));
        }
    }
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": message.short,
        "msteams": { "width": "Full" },
        "body": body,
        "actions": actions,
    })
}

// A RichTextBlock's TextRun is never Markdown, unlike a TextBlock.
fn text_run(text: &str, heading: bool) -> Value {
    let mut run = json!({ "type": "TextRun", "text": text });
    if heading {
        run["weight"] = json!("Bolder");
        run["size"] = json!("Large");
    }
    json!({ "type": "RichTextBlock", "inlines": [run] })
}

fn open_url(title: &str, url: &str) -> Value {
    json!({ "type": "Action.OpenUrl", "title": cut(title, 100), "url": url })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: Result<(), SendError>) -> Option<(bool, Option<u16>)> {
        match r {
            Ok(()) => None,
            Err(SendError::Retryable { .. }) => Some((true, None)),
            Err(SendError::Permanent { status, .. }) => Some((false, status)),
        }
    }

    #[test]
    fn legacy_answers_with_an_error_in_a_200_are_failures() {
        assert_eq!(kind(legacy_error(200, b"1")), None);
        assert_eq!(kind(legacy_error(202, b"")), None);
        let throttled = b"Webhook message delivery failed with error: Microsoft Teams endpoint \
                          returned HTTP error 429 with ContextId tcid=0,server=msgapi";
        assert_eq!(kind(legacy_error(200, throttled)), Some((true, None)));
        let gone = b"Webhook message delivery failed with error: Microsoft Teams endpoint \
                     returned HTTP error 404 with ContextId x";
        assert_eq!(kind(legacy_error(200, gone)), Some((false, Some(404))));
        let vague = b"Webhook message delivery failed with error: timeout";
        assert_eq!(kind(legacy_error(200, vague)), Some((true, None)));
    }

    #[test]
    fn the_file_section_reads_with_defaults() {
        let c: TeamsConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.timeout, http::DEFAULT_TIMEOUT);
        assert!(serde_json::from_str::<TeamsConfig>(r#"{"url":"x"}"#).is_err());
        assert_eq!(
            TeamsProvider::new(TeamsConfig {
                timeout: Duration::ZERO
            })
            .unwrap_err()
            .field,
            "timeout_seconds"
        );
    }
}
