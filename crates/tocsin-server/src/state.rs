//! What every request handler shares.

use std::sync::Arc;

use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, Timestamp};
use tocsin_store::{AlertWriter, Store};

use crate::metrics::Metrics;

/// Limits on what a request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest JSON body, bytes.
    pub max_body_bytes: usize,
    /// Largest attachment, bytes.
    pub max_attachment_bytes: usize,
    /// Inbound events allowed per integration key.
    pub ingest_rate: crate::ingest::limit::RateLimit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
            ingest_rate: Default::default(),
        }
    }
}

/// What saving a workflow is checked against from the configuration.
#[derive(Debug, Clone, Default)]
pub struct WorkflowSetup {
    /// Names in the `[workflows.commands]` allowlist (empty: commands are off).
    pub commands: std::collections::BTreeSet<String>,
    /// Names in `[workflows.channels]`, which notify steps may name.
    pub channels: std::collections::BTreeSet<String>,
    /// Secrets the configuration names (an integration's credentials):
    /// secret name → the key naming it (`workflows.jira.api_token_secret`).
    /// They cannot be deleted while named.
    pub config_secrets: std::collections::BTreeMap<String, String>,
    /// Where postmortem action items may be created (`[workflows.jira]
    /// action_items_project`, `[workflows.github] action_items_repo`).
    pub trackers: tocsin_core::postmortem::tracker::TrackerTargets,
}

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Incident configuration.
    pub settings: Arc<IncidentSettings>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Request limits.
    pub limits: Limits,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Group-commit writer for inbound alerts.
    pub alerts: AlertWriter,
    /// Per-integration-key rate limits.
    pub limiter: Arc<crate::ingest::limit::Limiter>,
    /// Base URL senders reach this instance at, for configuration snippets;
    /// `None`: taken from the request's `Host`.
    pub public_url: Option<String>,
    /// Kicked when a heartbeat is pinged or changed, so its checker recomputes its sleep.
    pub heartbeat_wake: Arc<tokio::sync::Notify>,
    /// Replies to text messages through Twilio; `None`: `/hooks/twilio/sms` answers 404.
    pub twilio: Option<Arc<crate::twilio::TwilioInbound>>,
    /// Live updates for the web UI's open pages.
    pub live: Arc<crate::web::Live>,
    /// Recent wrong passwords at the sign-in form.
    pub login_failures: Arc<crate::web::LoginFailures>,
    /// Whether status pages may offer email subscriptions: an SMTP relay is
    /// configured to send their mail. Off unless the server sets it.
    pub status_email: bool,
    /// Rendered public status pages.
    pub status: Arc<crate::status::StatusCache>,
    /// Subscription requests per client address on public status pages.
    pub status_subscribe_limit: Arc<crate::status::SubscribeLimiter>,
    /// Workflow commands and channels the configuration offers.
    pub workflows: Arc<WorkflowSetup>,
    /// Past incidents ranked by likeness, kept in memory and caught up from the event log.
    pub similar: Arc<crate::similar::SimilarIndex>,
}

impl AppState {
    /// Builds the state around a migrated store; starts the alert writer, so it
    /// must be called inside the Tokio runtime.
    pub fn new(
        store: Store,
        settings: IncidentSettings,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        let settings = Arc::new(settings);
        let alerts = store.alert_writer(settings.clone(), clock.clone());
        AppState {
            settings,
            clock,
            limits,
            metrics: Arc::new(Metrics::default()),
            alerts,
            limiter: Arc::default(),
            public_url: None,
            heartbeat_wake: Arc::default(),
            twilio: None,
            live: Arc::default(),
            login_failures: Arc::default(),
            status_email: false,
            workflows: Arc::default(),
            similar: Arc::default(),
            status: Arc::new(crate::status::StatusCache::new(&store)),
            status_subscribe_limit: Arc::default(),
            store,
        }
    }

    /// The same state taking SMS replies through Twilio (`/hooks/twilio/sms`).
    pub fn with_twilio(mut self, twilio: crate::twilio::TwilioInbound) -> Self {
        self.twilio = Some(Arc::new(twilio));
        self
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
