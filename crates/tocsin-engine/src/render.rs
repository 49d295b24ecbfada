//! From an outbox row to the message a provider sends: the notice it is
//! (a page, a shift notice, a verification code, a test), the signed one-click
//! actions for its recipient, and the words from the channel's templates.

use std::sync::Arc;

use chrono::Duration;
use tocsin_core::action_link::{LinkAction, DEFAULT_LIFETIME};
use tocsin_core::escalation::Channel;
use tocsin_core::time::Timestamp;
use tocsin_notify::{Action, Message, Notice, Templates};
use tocsin_store::{HandedNotification, Store, StoreError};

/// Writes messages for outbox rows.
#[derive(Clone)]
pub struct Renderer {
    /// Where people reach this instance (action links point here).
    pub public_url: String,
    /// How long an action link works.
    pub link_lifetime: Duration,
    /// The words, per channel.
    pub templates: Arc<Templates>,
    /// Whether text messages may invite a reply (`12 ack`): the SMS provider's
    /// number sends replies to Tocsin.
    pub sms_replies: bool,
}

impl Renderer {
    /// Links to `public_url`, working for the default lifetime, in the built-in words.
    pub fn new(public_url: impl Into<String>) -> Self {
        Renderer {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            link_lifetime: DEFAULT_LIFETIME,
            templates: Arc::new(Templates::default()),
            sms_replies: false,
        }
    }

    /// The same with `templates`.
    pub fn with_templates(mut self, templates: Arc<Templates>) -> Self {
        self.templates = templates;
        self
    }

    /// The message for `req` over `channel`, written at `now`.
    pub async fn message(
        &self,
        store: &Store,
        req: &HandedNotification,
        channel: Channel,
        now: Timestamp,
    ) -> Result<Message, String> {
        let mut notice =
            Notice::from_outbox(&req.reason, &req.message).map_err(|e| e.to_string())?;
        if let Some(page) = notice.page_mut() {
            page.actions = self
                .actions(store, page.id, req.user_id, now)
                .await
                .map_err(|e| e.to_string())?;
            page.sms_replies = self.sms_replies && channel == Channel::Sms;
        }
        self.templates
            .render(channel, &notice)
            .map_err(|e| e.to_string())
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
