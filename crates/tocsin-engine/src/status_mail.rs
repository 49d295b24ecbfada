//! The status-page mail worker: which subscriber messages are due, and how
//! many may go now? It claims due rows of the subscriber outbox
//! (`status_deliveries`, see tocsin-store's `status/deliveries.rs`) and sends
//! each once: email through the configured SMTP relay, webhooks as signed JSON
//! POSTs. Several nodes may run it on one PostgreSQL: each row is claimed by one.
//!
//! Sending is paced by a token bucket on the injected clock: at most
//! `per_second` messages start per second (one second's worth at once), so a
//! large list goes out in steady batches a relay accepts. The bucket is this
//! node's. Retryable failures come back after 30 s, 2 min, 10 min, then every
//! hour (or after the receiver's `Retry-After`), until `max_attempts`.
//!
//! It is woken when a transaction writes messages (`Store::status_mail_wake`)
//! and otherwise sleeps until the next one falls due or the bucket refills,
//! never longer than [`crate::jobs::MAX_SLEEP`]. Tests call
//! [`StatusMailer::tick`] after moving a fake clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use tocsin_core::status_page::records::SubscriberKind;
use tocsin_core::time::{Clock, Timestamp};
use tocsin_core::Invalid;
use tocsin_notify::{PageRef, SendError, SmtpProvider, StatusMessage, StatusNotice, StatusWebhook};
use tocsin_store::status::{page_url, ClaimedStatusMessage, StatusMessageKind};
use tocsin_store::{AttemptOutcome, Backend, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::jobs::sleep_for;
use crate::sender::Attempted;

/// Messages started per second unless configured otherwise.
pub const DEFAULT_PER_SECOND: f64 = 10.0;
/// Attempts before a message fails for good unless configured otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;
/// How long a webhook receiver has to answer unless configured otherwise.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The waits after the first, second, third and every later failed attempt.
pub const BACKOFF: [Duration; 4] = [
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(3600),
];
/// What a pending email row says while no SMTP relay is configured.
pub const NO_SMTP: &str = "not sent: no SMTP relay is configured ([notify.smtp]); sent once one is";

/// How much longer than the slowest send a claim holds its messages.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// Shortest pause when due messages were there but none could be claimed
/// (another node holds them for the moment).
const IDLE_RECHECK: Duration = Duration::from_millis(50);

/// The worker's settings (`[status]` in the configuration file).
#[derive(Debug, Clone)]
pub struct StatusMailConfig {
    /// The server's public URL: pages without a domain of their own are under it.
    pub public_url: String,
    /// Messages started per second, emails and webhooks together, on this node.
    pub per_second: f64,
    /// Attempts before a message fails for good.
    pub max_attempts: i64,
    /// How long a webhook receiver has to answer.
    pub webhook_timeout: Duration,
}

impl StatusMailConfig {
    /// The defaults, with links under `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        StatusMailConfig {
            public_url: public_url.into(),
            per_second: DEFAULT_PER_SECOND,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            webhook_timeout: DEFAULT_WEBHOOK_TIMEOUT,
        }
    }
}

/// The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
pub fn backoff(attempt: i64) -> Duration {
    BACKOFF[(attempt.max(1) - 1).min(BACKOFF.len() as i64 - 1) as usize]
}

/// A token bucket on the injected clock: `rate` tokens a second, at most `burst`.
#[derive(Debug)]
struct Pace {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Option<Timestamp>,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        let burst = rate.max(1.0);
        Pace {
            rate,
            burst,
            tokens: burst,
            at: None,
        }
    }

    /// Whole tokens at `now` (a clock set back gives nothing twice).
    fn available(&mut self, now: Timestamp) -> usize {
        if let Some(at) = self.at {
            let secs = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            self.tokens = (self.tokens + secs * self.rate).min(self.burst);
        }
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
        // The epsilon keeps 0.1 s × 10/s from counting as 0.999… of a token.
        (self.tokens + 1e-9).floor().max(0.0) as usize
    }

    fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }

    /// When the next whole token is there.
    fn next_token(&self, now: Timestamp) -> Timestamp {
        let missing = 1.0 - self.tokens;
        if missing <= 1e-9 {
            return now;
        }
        let at = self.at.unwrap_or(now);
        at + ChronoDuration::milliseconds((missing / self.rate * 1000.0).ceil() as i64)
    }
}

/// What one [`StatusMailer::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusTick {
    /// Accepted by the relay or receiver.
    pub sent: usize,
    /// Failed, to be tried again.
    pub retrying: usize,
    /// Failed for good.
    pub failed: usize,
    /// No longer this worker's to record (its lease ran out meanwhile).
    pub lost: usize,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    smtp: Option<Arc<SmtpProvider>>,
    webhook: StatusWebhook,
    config: StatusMailConfig,
    lease: Duration,
    pace: Mutex<Pace>,
}

/// The status-page mail worker. Cheap to clone.
#[derive(Clone)]
pub struct StatusMailer {
    inner: Arc<Inner>,
}

impl StatusMailer {
    /// A worker sending email through `smtp` (none: email waits) and webhooks
    /// itself. Refuses a rate that is not positive, fewer than one attempt
    /// and a zero webhook timeout, naming the `[status]` key.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        smtp: Option<Arc<SmtpProvider>>,
        config: StatusMailConfig,
    ) -> Result<StatusMailer, Invalid> {
        if !(config.per_second.is_finite() && config.per_second > 0.0) {
            return Err(Invalid::new("mail_per_second", "must be more than 0"));
        }
        if config.max_attempts < 1 {
            return Err(Invalid::new("max_attempts", "must be at least 1"));
        }
        let webhook = StatusWebhook::new(config.webhook_timeout)
            .map_err(|e| Invalid::new("webhook_timeout_seconds", e.message))?;
        let slowest = smtp
            .as_ref()
            .map(|s| s.timeout())
            .unwrap_or_default()
            .max(config.webhook_timeout);
        Ok(StatusMailer {
            inner: Arc::new(Inner {
                store,
                clock,
                smtp,
                webhook,
                lease: slowest + LEASE_MARGIN,
                pace: Mutex::new(Pace::new(config.per_second)),
                config,
            }),
        })
    }

    /// Whether email can be sent (an SMTP relay is configured); when not, the
    /// public pages should not offer email subscriptions.
    pub fn email_available(&self) -> bool {
        self.inner.smtp.is_some()
    }

    /// How long a claim holds its messages.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Claims what is due and what the pace allows at the clock's time, sends
    /// it, and returns when every attempt is recorded.
    pub async fn tick(&self) -> Result<StatusTick, StoreError> {
        let claimed = self.claim(self.inner.clock.now()).await?;
        let mut sends = JoinSet::new();
        for m in claimed {
            let me = self.clone();
            sends.spawn(async move { me.send(m).await });
        }
        let mut tick = StatusTick::default();
        while let Some(done) = sends.join_next().await {
            match done.map_err(|e| StoreError::Config(format!("send task failed: {e}")))?? {
                Attempted::Recorded(AttemptOutcome::Sent { .. }) => tick.sent += 1,
                Attempted::Recorded(AttemptOutcome::Retry { .. }) => tick.retrying += 1,
                Attempted::Recorded(AttemptOutcome::Failed { .. }) => tick.failed += 1,
                Attempted::Lost => tick.lost += 1,
            }
        }
        Ok(tick)
    }

    /// Claims as many due messages as the pace allows at `now`.
    async fn claim(&self, now: Timestamp) -> Result<Vec<ClaimedStatusMessage>, StoreError> {
        let inner = &self.inner;
        if inner.smtp.is_none() {
            let held = inner.store.hold_status_email(NO_SMTP).await?;
            if held > 0 {
                tracing::warn!(
                    messages = held,
                    "status page email waits: no SMTP relay is configured ([notify.smtp])"
                );
            }
        }
        let room = inner.pace.lock().map(|mut p| p.available(now)).unwrap_or(0);
        if room == 0 {
            return Ok(Vec::new());
        }
        let claimed = inner
            .store
            .claim_status_deliveries(now, room as i64, inner.lease, inner.smtp.is_some())
            .await?;
        if let Ok(mut p) = inner.pace.lock() {
            p.take(claimed.len());
        }
        Ok(claimed)
    }

    /// The message a claimed row says, with its links.
    fn message(&self, m: &ClaimedStatusMessage) -> Option<StatusMessage> {
        let url = page_url(
            &self.inner.config.public_url,
            &m.page.slug,
            m.page.domain.as_deref(),
        );
        // Tokens are base64url and a dot: nothing in them needs escaping in a query.
        let link = |path: &str, token: &Option<String>| {
            token.as_ref().map(|t| format!("{url}/{path}?token={t}"))
        };
        let notice = match m.kind {
            StatusMessageKind::Confirmation => StatusNotice::Confirmation {
                confirm_url: link("confirm", &m.confirm_token)?,
            },
            StatusMessageKind::Update => StatusNotice::Update {
                post: m.post.clone()?,
                update: m.update.clone()?,
            },
            StatusMessageKind::Reminder => StatusNotice::Reminder {
                post: m.post.clone()?,
            },
        };
        Some(StatusMessage {
            idempotency_key: m.idempotency_key.clone(),
            page: PageRef {
                id: m.page.id,
                name: m.page.name.clone(),
                url: url.clone(),
                time_zone: m.page.time_zone.clone(),
            },
            notice,
            unsubscribe_url: link("unsubscribe", &m.unsubscribe_token),
        })
    }

    /// Makes the one attempt a claimed message allows and records it.
    pub async fn send(&self, m: ClaimedStatusMessage) -> Result<Attempted, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let result = match (self.message(&m), m.subscriber_kind) {
            (None, _) => Err(SendError::Permanent {
                status: None,
                reason: format!("the outbox row lacks what a {} says", m.kind.as_str()),
            }),
            (Some(message), SubscriberKind::Email) => match &inner.smtp {
                Some(smtp) => smtp.send_mail(&m.address, &message.email()).await,
                None => Err(SendError::Retryable {
                    reason: NO_SMTP.into(),
                    retry_after: None,
                }),
            },
            (Some(message), SubscriberKind::Webhook) => {
                match (message.webhook_body(now), &m.webhook_secret) {
                    (Some(body), Some(secret)) => {
                        inner
                            .webhook
                            .send(
                                &m.address,
                                &m.idempotency_key,
                                secret.as_bytes(),
                                &body,
                                now,
                            )
                            .await
                    }
                    _ => Err(SendError::Permanent {
                        status: None,
                        reason: "webhook subscribers are not sent confirmations".into(),
                    }),
                }
            }
        };
        let done = inner.clock.now();
        let outcome = self.outcome(&m, result, done);
        match &outcome {
            AttemptOutcome::Sent { .. } => tracing::info!(
                key = %m.idempotency_key, attempt = m.attempt, "status page message sent"),
            AttemptOutcome::Retry {
                reason, retry_at, ..
            } => tracing::warn!(
                key = %m.idempotency_key, attempt = m.attempt, %reason, %retry_at,
                "status page message not sent; trying again"),
            AttemptOutcome::Failed { reason, .. } => tracing::error!(
                key = %m.idempotency_key, attempt = m.attempt, %reason,
                "status page message failed"),
        }
        if inner
            .store
            .record_status_delivery(m.id, m.attempt, &outcome, done)
            .await?
        {
            Ok(Attempted::Recorded(outcome))
        } else {
            tracing::warn!(key = %m.idempotency_key, attempt = m.attempt,
                "another worker took this status page message over; its outcome is theirs to record");
            Ok(Attempted::Lost)
        }
    }

    fn outcome(
        &self,
        m: &ClaimedStatusMessage,
        result: Result<tocsin_notify::Sent, SendError>,
        now: Timestamp,
    ) -> AttemptOutcome {
        match result {
            Ok(s) => AttemptOutcome::Sent {
                provider_id: s.provider_id,
                status: Some(s.status),
            },
            Err(SendError::Permanent { reason, status }) => {
                AttemptOutcome::Failed { reason, status }
            }
            Err(SendError::Retryable { reason, .. })
                if m.attempt >= self.inner.config.max_attempts =>
            {
                AttemptOutcome::Failed {
                    reason: format!("gave up after {} attempts: {reason}", m.attempt),
                    status: None,
                }
            }
            Err(SendError::Retryable {
                reason,
                retry_after,
            }) => {
                let wait = retry_after
                    .unwrap_or_else(|| backoff(m.attempt))
                    .min(BACKOFF[BACKOFF.len() - 1]);
                AttemptOutcome::Retry {
                    reason,
                    status: None,
                    retry_at: now + ChronoDuration::from_std(wait).unwrap_or_default(),
                }
            }
        }
    }

    /// How long to sleep: until the next message is due and a token is there,
    /// at most [`crate::jobs::MAX_SLEEP`].
    async fn pause(&self, now: Timestamp) -> Duration {
        let inner = &self.inner;
        match inner
            .store
            .next_status_delivery_due(inner.smtp.is_some())
            .await
        {
            Ok(next) => {
                let token = inner.pace.lock().map(|p| p.next_token(now)).unwrap_or(now);
                match sleep_for(now, next.map(|due| due.max(token))) {
                    p if p.is_zero() => IDLE_RECHECK,
                    p => p,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read when the next status page message is due");
                Duration::from_secs(1)
            }
        }
    }

    /// Runs until `shutdown` turns true: sends what falls due at the pace
    /// allowed, each send on its own task.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let inner = &self.inner;
        let store = &inner.store;
        // Nobody else can be sending from an embedded database: what a stopped
        // process left mid-send is due again now (under the same keys).
        if store.backend() == Backend::Sqlite {
            match store
                .release_interrupted_status_deliveries(inner.clock.now())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    messages = n,
                    "sending again status page messages a stopped process left mid-send"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "cannot release status page messages left mid-send")
                }
            }
        }
        if inner.smtp.is_none() {
            tracing::warn!(
                "no SMTP relay ([notify.smtp]): status page email subscribers are not sent mail"
            );
        }
        let wake = store.status_mail_wake();
        let mut sends = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = inner.clock.now();
            let pause = match self.claim(now).await {
                Ok(claimed) => {
                    for m in claimed {
                        let me = self.clone();
                        sends.spawn(async move { me.send(m).await });
                    }
                    self.pause(now).await
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim status page messages");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
                Some(done) = sends.join_next(), if !sends.is_empty() => log_done(done),
                changed = shutdown.changed() => if changed.is_err() { break },
            }
            while let Some(done) = sends.try_join_next() {
                log_done(done);
            }
        }
        // Sends under way may finish and be recorded; the rest are claimed
        // again when their lease ends.
        let _ = tokio::time::timeout(inner.lease.saturating_sub(LEASE_MARGIN), async {
            while let Some(done) = sends.join_next().await {
                log_done(done);
            }
        })
        .await;
    }
}

fn log_done(done: Result<Result<Attempted, StoreError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e,
            "cannot record a status page message's attempt; it is tried again when its lease ends"),
        Err(e) => tracing::error!(error = %e, "a status page send task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::time::from_millis;

    #[test]
    fn the_pace_allows_a_second_s_worth_then_refills_at_the_rate() {
        let t = from_millis(1_000_000);
        let mut p = Pace::new(5.0);
        assert_eq!(p.available(t), 5);
        p.take(5);
        assert_eq!(p.available(t), 0);
        assert_eq!(p.next_token(t), t + ChronoDuration::milliseconds(200));
        assert_eq!(p.available(t + ChronoDuration::milliseconds(399)), 1);
        assert_eq!(
            p.available(t + ChronoDuration::seconds(10)),
            5,
            "never more than one second's worth"
        );
        // A clock set back gives nothing twice.
        p.take(5);
        assert_eq!(p.available(t), 0);
        assert_eq!(p.available(t + ChronoDuration::seconds(10)), 0);
        assert_eq!(p.available(t + ChronoDuration::seconds(11)), 5);
        let mut slow = Pace::new(0.5);
        assert_eq!(slow.available(t), 1);
        slow.take(1);
        assert_eq!(slow.available(t + ChronoDuration::seconds(1)), 0);
        assert_eq!(slow.available(t + ChronoDuration::seconds(2)), 1);
    }

    #[test]
    fn backoff_grows_then_stays_hourly() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [30, 120, 600, 3600, 3600, 3600]);
        assert_eq!(backoff(0).as_secs(), 30);
    }
}
