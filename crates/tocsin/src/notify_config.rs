//! The `[notify]` section of the configuration file: which providers send
//! notifications, their credentials, limits and the retry policy.
//!
//! Secrets may come from variables instead of the file (`TOCSIN_WEBHOOK_SECRET`, …),
//! so the file can be kept in version control.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tocsin_core::escalation::Channel;
use tocsin_engine::sender::{ChannelLimits, Providers, SenderConfig};
use tocsin_notify::{
    DiscordConfig, DiscordProvider, MattermostConfig, MattermostProvider, SlackConfig,
    SlackProvider, TeamsConfig, TeamsProvider, Templates, WebhookConfig, WebhookProvider,
};

/// `[notify]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Attempts before a notification fails for good [default: 6].
    pub max_attempts: Option<i64>,
    /// Seconds a node holds a notification it is sending before another may
    /// take it over as cut off [default: 60]; must exceed every channel's timeout.
    pub lease_seconds: Option<u64>,
    /// A directory of message templates overriding the built-in ones (or
    /// `TOCSIN_NOTIFY_TEMPLATES`); checked at start.
    pub templates_dir: Option<std::path::PathBuf>,
    /// `[notify.webhook]`: the signed outgoing webhook.
    pub webhook: Option<WebhookSection>,
    /// `[notify.slack]`: the Web API's bot token and base URL (incoming webhooks need neither).
    pub slack: Option<SlackConfig>,
    /// `[notify.teams]`.
    pub teams: Option<TeamsConfig>,
    /// `[notify.mattermost]`.
    pub mattermost: Option<MattermostConfig>,
    /// `[notify.discord]`.
    pub discord: Option<DiscordConfig>,
    /// `[notify.limits.<channel>]`: concurrency, rate and timeout per channel.
    #[serde(default)]
    pub limits: BTreeMap<String, LimitsSection>,
}

/// `[notify.webhook]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// The signing secret receivers verify `Tocsin-Signature` with (or `TOCSIN_WEBHOOK_SECRET`).
    pub secret: Option<String>,
    /// Extra headers on every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds a receiver has to answer [default: 10].
    pub timeout_seconds: Option<u64>,
}

/// `[notify.limits.<channel>]`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Sends in flight at once [default: 8].
    pub concurrency: Option<usize>,
    /// Sends started per second [default: unlimited].
    pub per_second: Option<f64>,
    /// Sends that may start at once after a quiet spell [default: 1].
    pub burst: Option<f64>,
    /// Seconds one send may take before it is retried [default: 15].
    pub timeout_seconds: Option<u64>,
}

/// What the delivery worker runs with.
pub struct Notify {
    /// Providers by channel.
    pub providers: Providers,
    /// Retry policy.
    pub sender: SenderConfig,
    /// How long a sender holds a notification.
    pub lease: Duration,
    /// The message templates.
    pub templates: Arc<Templates>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl NotifyConfig {
    /// Builds the providers this configuration enables; a bad setting is an
    /// error naming its key.
    pub fn build(&self) -> anyhow::Result<Notify> {
        let mut limits = std::collections::HashMap::new();
        for (name, l) in &self.limits {
            let Some(channel) = Channel::parse(name) else {
                let names: Vec<_> = Channel::ALL.iter().map(|c| c.as_str()).collect();
                bail!(
                    "notify.limits.{name}: no such channel (one of {})",
                    names.join(", ")
                );
            };
            let d = ChannelLimits::default();
            let built = ChannelLimits {
                concurrency: l.concurrency.unwrap_or(d.concurrency),
                per_second: l.per_second.or(d.per_second),
                burst: l.burst.unwrap_or(d.burst),
                timeout: l
                    .timeout_seconds
                    .map(Duration::from_secs)
                    .unwrap_or(d.timeout),
            };
            if built.concurrency == 0
                || built.per_second.is_some_and(|r| r <= 0.0 || !r.is_finite())
                || built.burst < 1.0
                || built.timeout.is_zero()
            {
                bail!(
                    "notify.limits.{name}: concurrency, per_second and timeout_seconds must be positive and burst at least 1"
                );
            }
            limits.insert(channel, built);
        }
        let limit = |c: Channel| limits.get(&c).copied().unwrap_or_default();
        let lease = Duration::from_secs(self.lease_seconds.unwrap_or(60));
        let longest = Channel::ALL
            .iter()
            .map(|c| limit(*c).timeout)
            .max()
            .unwrap_or_default();
        if lease <= longest {
            bail!(
                "notify.lease_seconds ({}) must be longer than the longest channel timeout ({} s)",
                lease.as_secs(),
                longest.as_secs()
            );
        }
        let mut providers = Providers::new();
        let webhook = self.webhook.clone().unwrap_or_default();
        if let Some(secret) = env("TOCSIN_WEBHOOK_SECRET").or(webhook.secret.clone()) {
            let mut config = WebhookConfig::new(secret);
            config.headers = webhook.headers.clone().into_iter().collect();
            if let Some(t) = webhook.timeout_seconds {
                config.timeout = Duration::from_secs(t);
            }
            let provider = WebhookProvider::new(config)
                .map_err(|e| anyhow::anyhow!("notify.webhook.{}: {}", e.field, e.message))
                .context("cannot set up the webhook sender")?;
            providers = providers.with(
                Channel::Webhook,
                Arc::new(provider),
                limit(Channel::Webhook),
            );
        }
        // Chat services reached by webhook URLs need no instance settings: on by default.
        let named = |key: &str, e: tocsin_core::Invalid| {
            anyhow::anyhow!("notify.{key}.{}: {}", e.field, e.message)
        };
        let mut slack = self.slack.clone().unwrap_or_default();
        if let Some(token) = env("TOCSIN_SLACK_BOT_TOKEN") {
            slack.bot_token = Some(token);
        }
        let p = SlackProvider::new(slack).map_err(|e| named("slack", e))?;
        providers = providers.with(Channel::Slack, Arc::new(p), limit(Channel::Slack));
        let p = TeamsProvider::new(self.teams.clone().unwrap_or_default())
            .map_err(|e| named("teams", e))?;
        providers = providers.with(Channel::Teams, Arc::new(p), limit(Channel::Teams));
        let p = MattermostProvider::new(self.mattermost.clone().unwrap_or_default())
            .map_err(|e| named("mattermost", e))?;
        providers = providers.with(Channel::Mattermost, Arc::new(p), limit(Channel::Mattermost));
        let p = DiscordProvider::new(self.discord.clone().unwrap_or_default())
            .map_err(|e| named("discord", e))?;
        providers = providers.with(Channel::Discord, Arc::new(p), limit(Channel::Discord));
        let sender = SenderConfig {
            max_attempts: self.max_attempts.unwrap_or(6),
            ..SenderConfig::default()
        };
        if sender.max_attempts < 1 {
            bail!("notify.max_attempts must be at least 1");
        }
        let dir = env("TOCSIN_NOTIFY_TEMPLATES")
            .map(std::path::PathBuf::from)
            .or(self.templates_dir.clone());
        let templates = Templates::load(dir.as_deref())
            .map_err(|e| anyhow::anyhow!("notify.templates_dir: {e}"))?;
        Ok(Notify {
            providers,
            sender,
            lease,
            templates: Arc::new(templates),
        })
    }
}
