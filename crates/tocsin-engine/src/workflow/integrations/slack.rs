//! `slack_create_channel`: a channel for the incident, with a bot token
//! (`Authorization: Bearer xoxb-…`):
//!
//! 1. `conversations.create` with the Slack-safe name; when the name is taken,
//!    the same name with `-2` … `-5`, then a clear failure.
//! 2. `users.lookupByEmail` for each responder of the incident (its assignee
//!    and everyone holding an incident role), then `conversations.invite` with
//!    the Slack user ids, comma-separated.
//! 3. `chat.postMessage` with the incident's summary.
//!
//! Slack answers HTTP 200 with `{"ok": false, "error": "…"}` when a method
//! fails; its error is the step's error. HTTP 429 (with `Retry-After`) and
//! Slack's transient errors may pass on a retry. Once the channel exists the
//! step succeeds: responders Slack does not know and a failed invitation or
//! summary are reported in the outputs and on the timeline, not retried
//! (a retry would create a second channel).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tocsin_core::workflow::action::{slack_channel_name, Method};
use tocsin_core::workflow::{Action, NetPolicy};
use tocsin_notify::BoxFuture;

use super::{excerpt, headers, link, note_on_incident, query_value, Api};
use crate::workflow::executor::{StepCall, StepError, StepExecutor};

/// Slack's Web API.
pub const SLACK_API: &str = "https://slack.com/api";

/// How many names are tried: the name, then `-2` up to `-5`.
const NAME_TRIES: usize = 5;

/// `[workflows.slack]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The Web API, `https://slack.com/api`.
    pub base_url: String,
    /// Name of the stored secret holding the bot token (`xoxb-…`, scopes
    /// `channels:manage`, `groups:write`, `users:read.email`, `chat:write`).
    pub bot_token_secret: String,
}

/// Creates Slack channels.
pub struct SlackChannel {
    config: SlackConfig,
    api: Api,
}

/// How a Slack method call went wrong.
enum SlackError {
    /// Slack's own error code (`name_taken`, `invalid_auth`, …).
    Api(String),
    /// Not an answer from the method (transport, HTTP status).
    Step(StepError),
}

impl SlackError {
    fn into_step(self, method: &str) -> StepError {
        match self {
            SlackError::Step(e) => e,
            SlackError::Api(code) => {
                let why = format!("Slack {method} failed: {code}");
                if transient(&code) {
                    StepError::Retryable(why)
                } else {
                    StepError::Permanent(why)
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            SlackError::Api(code) => code.clone(),
            SlackError::Step(e) => e.to_string(),
        }
    }
}

// Slack errors that say "try later" rather than "this cannot work".
fn transient(code: &str) -> bool {
    matches!(
        code,
        "ratelimited"
            | "internal_error"
            | "fatal_error"
            | "request_timeout"
            | "service_unavailable"
    )
}

impl SlackChannel {
    /// Under `net`, with the Web API's base URL allowed.
    pub fn new(config: SlackConfig, net: &NetPolicy, max_response: usize) -> SlackChannel {
        let api = Api::new("Slack", net, max_response, &[&config.base_url]);
        SlackChannel { config, api }
    }

    // One Web API method: JSON POST, or GET with a query when `body` is None.
    async fn method(
        &self,
        call: &StepCall<'_>,
        token: &str,
        name: &str,
        query: &str,
        body: Option<Value>,
    ) -> Result<Value, SlackError> {
        let auth = format!("Bearer {token}");
        let url = format!(
            "{}/{name}{query}",
            self.config.base_url.trim_end_matches('/')
        );
        let (method, h, text) = match &body {
            Some(b) => (
                Method::Post,
                headers(&[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json; charset=utf-8"),
                ]),
                Some(b.to_string()),
            ),
            None => (Method::Get, headers(&[("Authorization", &auth)]), None),
        };
        let resp = self
            .api
            .send(call, method, &url, &h, text.as_deref())
            .await
            .map_err(SlackError::Step)?;
        if resp.status != 200 {
            let why = resp.body["error"]
                .as_str()
                .map_or_else(|| excerpt(&resp.body), str::to_string);
            return Err(SlackError::Step(
                self.api.failure(&resp, &format!("{name}: {why}")),
            ));
        }
        match resp.body["ok"].as_bool() {
            Some(true) => Ok(resp.body),
            Some(false) => Err(SlackError::Api(
                resp.body["error"]
                    .as_str()
                    .unwrap_or("unknown_error")
                    .to_string(),
            )),
            None => Err(SlackError::Step(StepError::permanent(format!(
                "Slack {name} answered without `ok`: {}",
                excerpt(&resp.body)
            )))),
        }
    }

    // Creates the channel under the first free name; its (id, name).
    async fn create(
        &self,
        call: &StepCall<'_>,
        token: &str,
        base: &str,
        private: bool,
    ) -> Result<(String, String), StepError> {
        let mut tried = Vec::new();
        for n in 1..=NAME_TRIES {
            let name = if n == 1 {
                base.to_string()
            } else {
                let suffix = format!("-{n}");
                let keep: String = base.chars().take(80 - suffix.len()).collect();
                format!("{}{suffix}", keep.trim_end_matches('-'))
            };
            let body = json!({ "name": name, "is_private": private });
            match self
                .method(call, token, "conversations.create", "", Some(body))
                .await
            {
                Ok(v) => {
                    let id = v["channel"]["id"].as_str().unwrap_or_default().to_string();
                    if id.is_empty() {
                        return Err(StepError::permanent(
                            "Slack conversations.create answered without a channel id",
                        ));
                    }
                    let name = v["channel"]["name"].as_str().unwrap_or(&name).to_string();
                    return Ok((id, name));
                }
                Err(SlackError::Api(code)) if code == "name_taken" => tried.push(name),
                Err(e) => return Err(e.into_step("conversations.create")),
            }
        }
        Err(StepError::permanent(format!(
            "Slack conversations.create failed: name_taken (tried #{})",
            tried.join(", #")
        )))
    }

    // The responders' email addresses: the assignee and every role holder.
    async fn responder_emails(&self, call: &StepCall<'_>) -> Result<Vec<String>, StepError> {
        let incident = call.store.incident(call.incident()?).await?;
        let ids: BTreeSet<i64> = incident
            .assignee_id
            .into_iter()
            .chain(incident.roles.values().flatten().copied())
            .collect();
        let mut emails = Vec::new();
        for id in ids {
            let user = call.store.user(id).await?;
            if user.active && !emails.contains(&user.email) {
                emails.push(user.email);
            }
        }
        Ok(emails)
    }
}

// What gets posted: the incident in a few lines.
fn summary(incident: &Value) -> String {
    let s = |k: &str| incident[k].as_str().unwrap_or_default();
    let mut text = format!(
        "*{}: {}*\nSeverity {} · priority {} · {}",
        s("number"),
        s("title"),
        s("severity"),
        s("priority"),
        s("status")
    );
    let services: Vec<&str> = incident["services"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !services.is_empty() {
        text.push_str(&format!("\nServices: {}", services.join(", ")));
    }
    if !s("description").trim().is_empty() {
        text.push_str(&format!("\n\n{}", s("description").trim()));
    }
    if !s("url").is_empty() {
        text.push_str(&format!("\n\nIncident room: {}", s("url")));
    }
    text
}

fn responders(n: usize) -> String {
    if n == 1 {
        "1 responder".into()
    } else {
        format!("{n} responders")
    }
}

impl StepExecutor for SlackChannel {
    fn kinds(&self) -> &'static [&'static str] {
        &["slack_create_channel"]
    }

    fn uses_secret_values(&self) -> bool {
        true
    }

    fn config_secrets(&self) -> Vec<String> {
        vec![self.config.bot_token_secret.clone()]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::SlackCreateChannel(s) = call.action else {
                return Err(StepError::permanent("not a slack_create_channel step"));
            };
            let token = call.secret(&self.config.bot_token_secret)?;
            // Read the responders first: a step that cannot read them fails
            // before a channel exists.
            let emails = if s.invite_responders {
                self.responder_emails(call).await?
            } else {
                Vec::new()
            };
            let wanted = slack_channel_name(&s.name);
            let (id, name) = self.create(call, token, &wanted, s.private).await?;
            let url = format!("https://slack.com/app_redirect?channel={id}");
            let mut problems = Vec::new();
            let mut user_ids = Vec::new();
            let mut unknown = Vec::new();
            for email in &emails {
                let q = format!("?email={}", query_value(email));
                match self
                    .method(call, token, "users.lookupByEmail", &q, None)
                    .await
                {
                    Ok(v) => match v["user"]["id"].as_str() {
                        Some(uid) => user_ids.push(uid.to_string()),
                        None => unknown.push(email.clone()),
                    },
                    Err(SlackError::Api(code)) if code == "users_not_found" => {
                        unknown.push(email.clone())
                    }
                    Err(e) => {
                        problems.push(format!("looking up {email} failed: {}", e.describe()));
                        unknown.push(email.clone());
                    }
                }
            }
            let mut invited = 0;
            if !user_ids.is_empty() {
                let body = json!({ "channel": id, "users": user_ids.join(",") });
                match self
                    .method(call, token, "conversations.invite", "", Some(body))
                    .await
                {
                    Ok(_) => invited = user_ids.len(),
                    Err(e) => {
                        problems.push(format!("inviting responders failed: {}", e.describe()))
                    }
                }
            }
            let mut posted = false;
            // A run without an incident has no summary to post.
            if s.post_summary && call.context["incident"].is_object() {
                let text = summary(&call.context["incident"]);
                let body = json!({ "channel": id, "text": text });
                match self
                    .method(call, token, "chat.postMessage", "", Some(body))
                    .await
                {
                    Ok(_) => posted = true,
                    Err(e) => {
                        problems.push(format!("posting the summary failed: {}", e.describe()))
                    }
                }
            }
            let mut line = format!("Slack channel #{name} created");
            if s.invite_responders {
                line.push_str(&format!(", {} invited", responders(invited)));
            }
            if !unknown.is_empty() {
                line.push_str(&format!(
                    " ({} not found in Slack: {})",
                    unknown.len(),
                    unknown.join(", ")
                ));
            }
            for p in &problems {
                line.push_str(&format!("; {p}"));
            }
            line.push_str(&format!(": {url}"));
            let noted = note_on_incident(call, &line).await;
            Ok(json!({
                "channel_id": id,
                "name": name,
                "url": url,
                "invited": invited,
                "not_found": unknown,
                "summary_posted": posted,
                "problems": problems,
                "noted": noted,
                "link": link("slack_channel", &format!("#{name}"), &url),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_incident() {
        let text = summary(&json!({
            "number": "INC-42", "title": "Checkout down", "severity": "SEV1",
            "priority": "P1", "status": "investigating", "services": ["payments"],
            "description": "", "url": "https://tocsin.example/incidents/42"
        }));
        assert_eq!(
            text,
            "*INC-42: Checkout down*\nSeverity SEV1 · priority P1 · investigating\nServices: payments\n\nIncident room: https://tocsin.example/incidents/42"
        );
        assert!(transient("ratelimited") && !transient("name_taken"));
    }
}
