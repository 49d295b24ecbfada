//! `notify`: a message to a channel named in `[workflows.channels]`, sent by
//! the notification provider for its address (Slack, Teams, Mattermost,
//! Discord, ntfy, Pushover, email). Names, not addresses, go in workflows, so
//! an author cannot post to (or make Tocsin call) anywhere the operator did
//! not list.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Value};
use tocsin_core::escalation::{Channel, ContactKind};
use tocsin_core::workflow::Action;
use tocsin_notify::{BoxFuture, Message, Outgoing, Provider, Recipient, SendError};

use super::executor::{StepCall, StepError, StepExecutor};

/// The contact kind an operator's channel address is read as.
pub fn channel_kind(address: &str) -> ContactKind {
    let prefix = address.split(':').next().unwrap_or_default();
    match Channel::parse(prefix) {
        Some(Channel::Ntfy | Channel::Pushover) => ContactKind::Push,
        Some(_) => ContactKind::Chat,
        None if address.contains('@') => ContactKind::Email,
        None => ContactKind::Chat,
    }
}

/// The `notify` step.
pub struct NotifyStep {
    channels: BTreeMap<String, String>,
    providers: HashMap<Channel, Arc<dyn Provider>>,
}

impl NotifyStep {
    /// Channel names to addresses, and the providers that send to them.
    pub fn new(
        channels: BTreeMap<String, String>,
        providers: HashMap<Channel, Arc<dyn Provider>>,
    ) -> NotifyStep {
        NotifyStep {
            channels,
            providers,
        }
    }
}

impl StepExecutor for NotifyStep {
    fn kinds(&self) -> &'static [&'static str] {
        &["notify"]
    }

    fn execute<'a>(&'a self, call: &'a StepCall<'a>) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(async move {
            let Action::Notify(n) = call.action else {
                return Err(StepError::permanent("not a notify step"));
            };
            let address = self.channels.get(&n.channel).ok_or_else(|| {
                StepError::permanent(format!(
                    "notify.channel: `{}` is not in [workflows.channels]",
                    n.channel
                ))
            })?;
            let kind = channel_kind(address);
            let (channel, target) = Channel::of(kind, address).ok_or_else(|| {
                StepError::permanent(format!(
                    "channel `{}` has an address no provider serves",
                    n.channel
                ))
            })?;
            let provider = self.providers.get(&channel).ok_or_else(|| {
                StepError::permanent(format!("no {} provider is configured", channel.as_str()))
            })?;
            let subject = format!("{}: {}", call.workflow_name, first_line(&n.message));
            let out = Outgoing {
                idempotency_key: call.idempotency_key.to_string(),
                recipient: Recipient {
                    user_id: 0,
                    contact_method_id: 0,
                    kind,
                    channel,
                    address: address.clone(),
                    target: target.to_string(),
                },
                message: Message {
                    subject,
                    short: n.message.chars().take(160).collect(),
                    long: n.message.clone(),
                    html: None,
                    incident: None,
                },
            };
            match provider.send(&out).await {
                Ok(sent) => Ok(json!({ "channel": n.channel, "status": sent.status,
                                      "provider_id": sent.provider_id })),
                Err(SendError::Retryable { reason, .. }) => Err(StepError::Retryable(reason)),
                Err(SendError::Permanent { reason, .. }) => Err(StepError::Permanent(reason)),
            }
        })
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(120)
        .collect()
}
