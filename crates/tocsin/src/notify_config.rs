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
    DiscordConfig, DiscordProvider, MattermostConfig, MattermostProvider, NtfyConfig, NtfyProvider,
    PushoverConfig, PushoverProvider, SlackConfig, SlackProvider, SmtpConfig, SmtpProvider,
    TeamsConfig, TeamsProvider, Templates, TwilioConfig, TwilioSmsProvider, TwilioVoiceProvider,
    WebhookConfig, WebhookProvider,
};

/// `[notify]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Attempts before a notification fails for good [default: 6].
    pub max_attempts: Option<i64>,
    /// Seconds a node holds a notification it is sending before another may
    /// take it over as cut off [default: 60]; must exceed every channel's timeout by 5 s.
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
    /// `[notify.smtp]`: the relay email goes through.
    pub smtp: Option<SmtpConfig>,
    /// `[notify.twilio]`: texts and calls.
    pub twilio: Option<TwilioConfig>,
    /// `[notify.ntfy]`: the server `ntfy:<topic>` addresses publish to (default ntfy.sh).
    pub ntfy: Option<NtfyConfig>,
    /// `[notify.pushover]`: the application token.
    pub pushover: Option<PushoverConfig>,
    /// `[notify.limits.<channel>]`: concurrency, rate and timeout per channel.
    #[serde(default)]
    pub limits: BTreeMap<String, LimitsSection>,
}

/// `[notify.webhook]`.
#[derive(Clone, Default, Deserialize)]
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

impl std::fmt::Debug for WebhookSection {
    // The configuration is printed when it is wrong: never the secret or header values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSection")
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
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
    /// The Twilio auth token, when texts and calls are configured (for signed replies).
    pub twilio_auth_token: Option<String>,
    /// The SMTP relay, when configured (status-page subscriber mail goes through it too).
    pub smtp: Option<Arc<SmtpProvider>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl NotifyConfig {
    /// Builds the providers this configuration enables; a bad setting is an
    /// error naming its key. `public_url`, when configured, is where Twilio
    /// sends replies: texts then invite `12 ack` and calls offer the keypad.
    pub fn build(&self, public_url: Option<&str>) -> anyhow::Result<Notify> {
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
        // The sender renews a lease that would not outlast a send by this much.
        let margin = Duration::from_secs(5);
        if lease <= longest + margin {
            bail!(
                "notify.lease_seconds ({}) must be more than the longest channel timeout ({} s) plus 5 s",
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
        let mut smtp_provider = None;
        if let Some(mut smtp) = self.smtp.clone() {
            if let Some(p) = env(tocsin_notify::smtp::PASSWORD_ENV) {
                smtp.password = Some(p);
            }
            let p = Arc::new(SmtpProvider::new(smtp).map_err(|e| named("smtp", e))?);
            // The same relay sends status-page subscriber mail.
            smtp_provider = Some(p.clone());
            providers = providers.with(Channel::Email, p, limit(Channel::Email));
        }
        let mut twilio_auth_token = None;
        if let Some(mut twilio) = self.twilio.clone() {
            if let Some(t) = env("TOCSIN_TWILIO_AUTH_TOKEN") {
                twilio.auth_token = t;
            }
            // Texts invite "12 ack" only where Twilio can deliver the reply:
            // a configured public URL. The provider adds the invitation itself,
            // fitting it into one segment by cutting the title, never the hint.
            twilio.reply_hint = twilio.reply_hint && public_url.is_some();
            twilio_auth_token = Some(twilio.auth_token.clone());
            let mut sms = TwilioSmsProvider::new(twilio.clone()).map_err(|e| named("twilio", e))?;
            if let Some(url) = public_url {
                sms = sms.with_status_callback(url);
            }
            providers = providers.with(Channel::Sms, Arc::new(sms), limit(Channel::Sms));
            if twilio.from.is_some() {
                let mut voice = TwilioVoiceProvider::new(twilio).map_err(|e| named("twilio", e))?;
                if let Some(url) = public_url {
                    voice = voice.with_keypad(url).with_status_callback(url);
                }
                providers = providers.with(Channel::Voice, Arc::new(voice), limit(Channel::Voice));
            }
        }
        let mut ntfy = self.ntfy.clone().unwrap_or_default();
        if let Some(t) = env("TOCSIN_NTFY_TOKEN") {
            ntfy.token = Some(t);
        }
        let p = NtfyProvider::new(ntfy).map_err(|e| named("ntfy", e))?;
        providers = providers.with(Channel::Ntfy, Arc::new(p), limit(Channel::Ntfy));
        if let Some(mut pushover) = self.pushover.clone() {
            if let Some(t) = env("TOCSIN_PUSHOVER_APP_TOKEN") {
                pushover.app_token = t;
            }
            let p = PushoverProvider::new(pushover).map_err(|e| named("pushover", e))?;
            providers = providers.with(Channel::Pushover, Arc::new(p), limit(Channel::Pushover));
        }
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
            twilio_auth_token,
            smtp: smtp_provider,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> NotifyConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn channels(n: &Notify) -> Vec<&'static str> {
        n.providers.channels().iter().map(|c| c.as_str()).collect()
    }

    #[test]
    fn sections_enable_their_channels() {
        // With nothing configured: the channels that need no credentials.
        let n = NotifyConfig::default().build(None).unwrap();
        assert_eq!(
            channels(&n),
            ["discord", "mattermost", "ntfy", "slack", "teams"]
        );
        assert!(n.twilio_auth_token.is_none());
        assert!(n.smtp.is_none());
        let n = parse(
            r#"
            max_attempts = 4
            lease_seconds = 90
            [webhook]
            secret = "s"
            [smtp]
            host = "smtp.example.com"
            from = "Tocsin <tocsin@example.com>"
            [twilio]
            account_sid = "AC00000000000000000000000000000000"
            auth_token = "t"
            from = "+15550001111"
            [pushover]
            app_token = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
            [limits.sms]
            concurrency = 2
            per_second = 1
            "#,
        )
        .build(Some("https://tocsin.example.com"))
        .unwrap();
        assert_eq!(
            channels(&n),
            [
                "discord",
                "email",
                "mattermost",
                "ntfy",
                "pushover",
                "slack",
                "sms",
                "teams",
                "voice",
                "webhook"
            ]
        );
        assert_eq!(n.sender.max_attempts, 4);
        assert_eq!(n.lease, Duration::from_secs(90));
        assert_eq!(n.twilio_auth_token.as_deref(), Some("t"));
        assert!(n.smtp.is_some(), "kept for status-page subscriber mail");
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = parse("[webhook]\nsecret = \"s3cret\"\nheaders = { \"X-Api-Key\" = \"k3y\" }");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(shown.contains("X-Api-Key"), "{shown}");
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (text, key) in [
            ("[limits.fax]\nconcurrency = 1", "notify.limits.fax"),
            ("[limits.sms]\nconcurrency = 0", "notify.limits.sms"),
            ("lease_seconds = 10", "notify.lease_seconds"),
            ("max_attempts = 0", "notify.max_attempts"),
            (
                "[smtp]\nhost = \"h\"\nfrom = \"not an address\"",
                "notify.smtp.from",
            ),
            (
                "templates_dir = \"/nonexistent/tocsin\"",
                "notify.templates_dir",
            ),
        ] {
            let e = parse(text).build(None).err().expect(text);
            assert!(format!("{e:#}").contains(key), "{text}: {e:#}");
        }
        assert!(toml::from_str::<NotifyConfig>("[smtp]\nhots = \"h\"").is_err());
    }
}
