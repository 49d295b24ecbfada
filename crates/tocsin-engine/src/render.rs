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
}

impl Renderer {
    /// Links to `public_url`, working for the default lifetime, in the built-in words.
    pub fn new(public_url: impl Into<String>) -> Self {
        Renderer {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            link_lifetime: DEFAULT_LIFETIME,
            templates: Arc::new(Templates::default()),
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
        const ACTIONS: [(LinkAction, &str); 2] = [
            (LinkAction::Acknowledge, "Acknowledge"),
            (LinkAction::Resolve, "Resolve"),
        ];
        let kinds = ACTIONS.map(|(a, _)| a);
        let tokens = match store
            .action_links(incident_id, &kinds, user_id, now, self.link_lifetime)
            .await
        {
            Ok(tokens) => tokens,
            Err(StoreError::Invalid(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(ACTIONS
            .iter()
            .zip(tokens)
            .map(|((action, text), token)| Action {
                action: *action,
                text: (*text).into(),
                href: format!("{}/actions/{token}", self.public_url),
            })
            .collect())
    }
}
