//! From an outbox row to the message a provider sends: the words, the links
//! and the signed one-click actions for its recipient.

use chrono::Duration;
use serde_json::Value;
use tocsin_core::action_link::{LinkAction, DEFAULT_LIFETIME};
use tocsin_core::escalation::{Channel, Urgency};
use tocsin_core::time::Timestamp;
use tocsin_notify::{Action, IncidentSummary, Message};
use tocsin_store::{HandedNotification, Store, StoreError};

/// Writes messages for outbox rows.
#[derive(Debug, Clone)]
pub struct Renderer {
    /// Where people reach this instance (action links point here).
    pub public_url: String,
    /// How long an action link works.
    pub link_lifetime: Duration,
}

impl Renderer {
    /// Links to `public_url`, working for the default lifetime.
    pub fn new(public_url: impl Into<String>) -> Self {
        Renderer {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            link_lifetime: DEFAULT_LIFETIME,
        }
    }

    /// The message for `req` over `channel`, written at `now`.
    pub async fn message(
        &self,
        store: &Store,
        req: &HandedNotification,
        _channel: Channel,
        now: Timestamp,
    ) -> Result<Message, String> {
        let m = &req.message;
        let text = |key: &str| m.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        match req.reason.as_str() {
            "escalation" => {
                let id = req.incident_id.ok_or("a page without an incident")?;
                let actions = self
                    .actions(store, id, req.user_id, now)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Message::for_incident(IncidentSummary {
                    id,
                    number: m.get("number").and_then(Value::as_i64).unwrap_or(id),
                    title: text("title"),
                    urgency: Urgency::from_stored(&text("urgency")),
                    level: m.get("level").and_then(Value::as_u64).map(|l| l as u32),
                    links: Vec::new(),
                    actions,
                }))
            }
            "handoff_reminder" | "shift_started" => {
                let schedule = text("schedule_name");
                let (starts, ends) = (text("starts_at"), text("ends_at"));
                let subject = if req.reason == "shift_started" {
                    format!("You are now on call for {schedule}")
                } else {
                    format!("Your on-call shift for {schedule} starts at {starts}")
                };
                Ok(plain(
                    subject.clone(),
                    format!("{subject}, until {ends}."),
                    format!("{subject}.\nShift: {starts} to {ends}.\n"),
                ))
            }
            "verification" => {
                let code = text("code");
                Ok(plain(
                    "Your Tocsin verification code".into(),
                    format!("Your Tocsin verification code is {code}"),
                    format!(
                        "Your Tocsin verification code is {code}.\n\
                         Enter it where you added this contact method. It works for 15 minutes.\n"
                    ),
                ))
            }
            "test" => Ok(plain(
                "Tocsin test notification".into(),
                "This is a test notification from Tocsin.".into(),
                "This is a test notification from Tocsin: this contact method works.\n".into(),
            )),
            other => Err(format!("no message for notifications of reason `{other}`")),
        }
    }

    // Acknowledge and resolve links for the recipient; none when they cannot
    // act on incidents (a viewer on a schedule), which is not worth failing a page for.
    async fn actions(
        &self,
        store: &Store,
        incident_id: i64,
        user_id: i64,
        now: Timestamp,
    ) -> Result<Vec<Action>, StoreError> {
        let mut out = Vec::new();
        for (action, text) in [
            (LinkAction::Acknowledge, "Acknowledge"),
            (LinkAction::Resolve, "Resolve"),
        ] {
            match store
                .action_link(incident_id, action, user_id, now, self.link_lifetime)
                .await
            {
                Ok(token) => out.push(Action {
                    action,
                    text: text.into(),
                    href: format!("{}/actions/{token}", self.public_url),
                }),
                Err(StoreError::Invalid(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn plain(subject: String, short: String, long: String) -> Message {
    Message {
        subject,
        short,
        long,
        html: None,
        incident: None,
    }
}
