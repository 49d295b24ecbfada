//! Notification sinks behind one trait.
//!
//! Paging (tocsin-engine) decides who is told what and when, and hands each
//! request over as a durable outbox row. Delivery turns a row into an
//! [`Outgoing`] and gives it to the [`Provider`] for its contact kind. A provider
//! sends once and says how it went: [`Sent`], or a [`SendError`] classified for
//! the retry logic as retryable (try again, perhaps after a delay the provider
//! asked for) or permanent (trying again cannot help).
//!
//! Providers never retry on their own: retries, backoff and the idempotency
//! bookkeeping belong to the delivery worker, which owns the outbox.

use std::future::Future;
use std::pin::Pin;

mod classify;
pub mod discord;
pub mod email;
pub mod escape;
mod http;
mod markdown;
pub mod mattermost;
mod message;
mod notice;
pub mod ntfy;
pub mod pushover;
mod signature;
pub mod slack;
pub mod sms;
pub mod smtp;
pub mod status_mail;
mod support;
pub mod teams;
mod templates;
pub mod twilio;
pub mod webhook;

pub use classify::{classify, excerpt, parse_retry_after, SendError, EXCERPT_BYTES};
pub use discord::{DiscordConfig, DiscordProvider};
pub use email::Mail;
pub use http::DEFAULT_TIMEOUT;
pub use mattermost::{MattermostConfig, MattermostProvider};
pub use message::{Action, IncidentSummary, Link, Message, Outgoing, Recipient};
pub use notice::{Notice, NoticeError, PageNotice, ShiftNotice, TestNotice, VerificationNotice};
pub use ntfy::{NtfyConfig, NtfyProvider};
pub use pushover::{PushoverConfig, PushoverProvider};
pub use signature::{sign, verify_signature, SignatureError, SIGNATURE_HEADER};
pub use slack::{SlackConfig, SlackProvider};
pub use smtp::{Security, SmtpConfig, SmtpProvider};
pub use status_mail::{PageRef, StatusMessage, StatusNotice, StatusWebhook};
pub use teams::{TeamsConfig, TeamsProvider};
pub use templates::{samples, Part, TemplateError, Templates, MAX_TEMPLATE_BYTES, SMS_CHARS};
pub use twilio::{TwilioConfig, TwilioSmsProvider, TwilioVoiceProvider};
pub use webhook::{WebhookConfig, WebhookProvider};

/// A boxed future that can cross threads, borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a provider reports after the far side accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The provider's own id for the message, when it gives one (an SMS sid, a message ts).
    pub provider_id: Option<String>,
    /// The HTTP status the provider answered with.
    pub status: u16,
}

/// One way of sending: email, a webhook, a chat service, an SMS gateway.
///
/// Implementations send exactly once per call and never retry: the caller
/// decides from the [`SendError`] whether and when to try again.
pub trait Provider: Send + Sync {
    /// Short stable name, for logs, metrics and the outbox (`webhook`, `smtp`, …).
    fn name(&self) -> &'static str;

    /// Sends `out` once.
    fn send<'a>(&'a self, out: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>>;
}

/// The `User-Agent` every HTTP provider sends.
pub const USER_AGENT: &str = concat!("Tocsin/", env!("CARGO_PKG_VERSION"));
