//! Mattermost: a Markdown post through an incoming webhook,
//! `mattermost:https://chat.example.com/hooks/xxx`. Incoming webhooks cannot
//! carry interactive buttons without an integration on our side, so the
//! one-click actions are Markdown links to the signed action pages.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tocsin_core::time::{Clock, SystemClock};
use tocsin_core::Invalid;

use crate::classify::{SendError, EXCERPT_BYTES};
use crate::http::{self, cut_escaped, web_url};
use crate::markdown::{escape, escape_lines, join_fitting, link};
use crate::{BoxFuture, Message, Outgoing, Provider, Sent};

/// Longest post Mattermost takes as one message; longer ones it splits.
const TEXT_CHARS: usize = 16383;
const LINE_CHARS: usize = 4000;

/// `[notify.mattermost]`. The webhook URL is each contact method's address.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MattermostConfig {
    /// How long Mattermost has to answer (`timeout_seconds` in the file).
    #[serde(rename = "timeout_seconds", deserialize_with = "http::timeout_seconds")]
    pub timeout: Duration,
    /// The name posts appear under, instead of the webhook's; the server must
    /// allow integrations to override it.
    pub username: Option<String>,
    /// The picture posts appear with, instead of the webhook's (same server setting).
    pub icon_url: Option<String>,
}

impl Default for MattermostConfig {
    fn default() -> Self {
        MattermostConfig {
            timeout: http::DEFAULT_TIMEOUT,
            username: None,
            icon_url: None,
        }
    }
}

/// Sends [`Outgoing`] messages to Mattermost channels.
pub struct MattermostProvider {
    client: reqwest::Client,
    timeout: Duration,
    username: Option<String>,
    icon_url: Option<String>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MattermostProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MattermostProvider")
            .field("timeout", &self.timeout)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl MattermostProvider {
    /// A provider for `config`, refusing a zero timeout and an icon that is not an http(s) URL.
    pub fn new(config: MattermostConfig) -> Result<Self, Invalid> {
        if let Some(icon) = &config.icon_url {
            http::base_url(icon, "icon_url")?;
        }
        Ok(MattermostProvider {
            client: http::client(config.timeout, "mattermost")?,
            timeout: config.timeout,
            username: config.username.filter(|u| !u.trim().is_empty()),
            icon_url: config.icon_url,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same provider reading the time (for `Retry-After` dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn post(&self, out: &Outgoing) -> Result<Sent, SendError> {
        let url = web_url(&out.recipient.target, "Mattermost")?;
        let mut body = body(&out.message);
        if let Some(u) = &self.username {
            body["username"] = json!(u);
        }
        if let Some(i) = &self.icon_url {
            body["icon_url"] = json!(i);
        }
        let request = self.client.post(url).json(&body);
        // 200 "ok"; errors are 4xx/5xx with a JSON AppError ({"id", "message", …}).
        let answer = http::send(request, self.timeout, EXCERPT_BYTES + 1).await?;
        answer.classify(self.clock.now())?;
        Ok(Sent {
            provider_id: None,
            status: answer.status,
        })
    }
}

impl Provider for MattermostProvider {
    fn name(&self) -> &'static str {
        "mattermost"
    }

    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(out))
    }
}

/// The webhook body: `text` in Markdown, and for incidents `props` naming it
/// for anything that reads posts back through the API.
pub fn body(message: &Message) -> Value {
    let Some(incident) = &message.incident else {
        let text = if message.long.trim().is_empty() {
            &message.short
        } else {
            &message.long
        };
        return json!({ "text": cut_escaped(&escape_lines(text, ""), TEXT_CHARS) });
    };
    let mut lines = vec![
        format!(
            "#### Incident {}: {}",
            incident.number,
            cut_escaped(&escape(&incident.title, ""), LINE_CHARS)
        ),
        match incident.level {
            Some(level) => format!(
                "**Urgency:** {} · **Escalation level:** {level}",
                incident.urgency.as_str()
            ),
            None => format!("**Urgency:** {}", incident.urgency.as_str()),
        },
    ];
    let actions: Vec<String> = incident
        .actions
        .iter()
        .map(|a| format!("**{}**", link(&a.text, &a.href, "")))
        .collect();
    let links: Vec<String> = incident
        .links
        .iter()
        .map(|l| link(&l.text, &l.href, ""))
        .collect();
    for items in [actions, links] {
        let line = join_fitting(&items, " · ", LINE_CHARS);
        if !line.is_empty() {
            lines.push(line);
        }
    }
    json!({
        "text": lines.join("\n"),
        "props": { "tocsin": { "incident_id": incident.id, "incident_number": incident.number } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_section_reads_with_defaults() {
        let c: MattermostConfig =
            serde_json::from_str(r#"{"username":"Tocsin","timeout_seconds":5}"#).unwrap();
        assert_eq!(c.username.as_deref(), Some("Tocsin"));
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(serde_json::from_str::<MattermostConfig>(r#"{"channel":"x"}"#).is_err());
        let bad = MattermostConfig {
            icon_url: Some("not a url".into()),
            ..MattermostConfig::default()
        };
        assert_eq!(MattermostProvider::new(bad).unwrap_err().field, "icon_url");
    }
}
