//! The delivery worker: sends handed notification requests through their
//! channel's provider and records every attempt in the outbox.
//!
//! Requests handed on this node arrive through [`Delivery::handed`] and are sent
//! at once, already held (leased) by this node since the hand-off commit.
//! Retries, and requests whose sender was cut off (its lease ran out), are
//! claimed from the outbox when due by whichever node gets there first.
//!
//! Per channel, a semaphore bounds the sends in flight and an optional token
//! bucket bounds their rate. Retryable failures back off exponentially with
//! jitter (2 s, 4 s, … up to 5 min) or wait as long as the provider asked
//! (`Retry-After`); permanent failures and the last allowed attempt fail the
//! request, which the store turns into the next escalation step when it was
//! the last way to reach a paged user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use rand::Rng;
use tocsin_core::escalation::{Channel, ContactKind};
use tocsin_core::time::{Clock, Timestamp};
use tocsin_notify::{Outgoing, Provider, Recipient, SendError};
use tocsin_store::{AttemptOutcome, HandedNotification, Store, StoreError};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::delivery::Delivery;
use crate::render::Renderer;

/// Longest sleep between looks at the outbox when nothing is due.
const IDLE: Duration = Duration::from_secs(30);
/// Requests claimed from the outbox at a time.
const CLAIM_BATCH: i64 = 100;
/// How long shutdown waits for sends in flight, beyond the slowest channel's timeout.
const DRAIN: Duration = Duration::from_secs(1);

/// How hard a channel may be pushed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelLimits {
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Sends started per second, on average; `None`: no limit.
    pub per_second: Option<f64>,
    /// Sends that may start at once after a quiet spell (the bucket's size).
    pub burst: f64,
    /// How long one send may take before it counts as timed out (and is retried).
    pub timeout: Duration,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            concurrency: 8,
            per_second: None,
            burst: 1.0,
            timeout: Duration::from_secs(15),
        }
    }
}

/// Retry policy and the rest of the worker's settings.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Attempts before a request fails for good.
    pub max_attempts: i64,
    /// The first retry's delay; each further one doubles it.
    pub backoff_base: Duration,
    /// The longest delay between attempts.
    pub backoff_max: Duration,
    /// The longest `Retry-After` honoured; a provider asking for more gets this.
    pub retry_after_max: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            max_attempts: 6,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            retry_after_max: Duration::from_secs(3600),
        }
    }
}

/// A provider with its limits.
struct Slot {
    provider: Arc<dyn Provider>,
    limits: ChannelLimits,
    in_flight: Arc<Semaphore>,
    bucket: Option<Mutex<Bucket>>,
}

// A token bucket over real time: sends wait for a token, never fail for lack of one.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    // How long to wait before a token is free (taking it now if one is).
    fn take(&mut self) -> Duration {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// The providers by channel.
#[derive(Default)]
pub struct Providers {
    slots: HashMap<Channel, Slot>,
}

impl Providers {
    /// No provider: every request fails as undeliverable (naming the channel).
    pub fn new() -> Self {
        Providers::default()
    }

    /// Sends `channel`'s requests through `provider` within `limits`.
    pub fn with(
        mut self,
        channel: Channel,
        provider: Arc<dyn Provider>,
        limits: ChannelLimits,
    ) -> Self {
        let bucket = limits.per_second.filter(|r| *r > 0.0).map(|rate| {
            let burst = limits.burst.max(1.0);
            Mutex::new(Bucket {
                tokens: burst,
                rate,
                burst,
                at: Instant::now(),
            })
        });
        self.slots.insert(
            channel,
            Slot {
                provider,
                in_flight: Arc::new(Semaphore::new(limits.concurrency.max(1))),
                limits,
                bucket,
            },
        );
        self
    }

    /// The provider of each channel, for other senders (workflow notify steps).
    pub fn by_channel(&self) -> HashMap<Channel, Arc<dyn Provider>> {
        self.slots
            .iter()
            .map(|(c, s)| (*c, s.provider.clone()))
            .collect()
    }

    /// The channels with a provider.
    pub fn channels(&self) -> Vec<Channel> {
        let mut c: Vec<_> = self.slots.keys().copied().collect();
        c.sort_by_key(|c| c.as_str());
        c
    }
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    providers: Providers,
    renderer: Renderer,
    config: SenderConfig,
    queue: mpsc::UnboundedSender<HandedNotification>,
    incoming: Mutex<Option<mpsc::UnboundedReceiver<HandedNotification>>>,
}

/// The delivery worker. Cheap to clone; give a clone to the job runner as its
/// [`Delivery`] and [`Sender::run`] another.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// Recorded with this outcome.
    Recorded(AttemptOutcome),
    /// Not this sender's any more (its lease ran out and another took it over).
    Lost,
}

impl Sender {
    /// A worker sending through `providers`, rendering with `renderer`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        providers: Providers,
        renderer: Renderer,
        config: SenderConfig,
    ) -> Sender {
        let (queue, incoming) = mpsc::unbounded_channel();
        Sender {
            inner: Arc::new(Inner {
                store,
                clock,
                providers,
                renderer,
                config,
                queue,
                incoming: Mutex::new(Some(incoming)),
            }),
        }
    }

    /// Claims every request due now from the outbox and sends them, returning
    /// when all are recorded (the poll step of [`Sender::run`]; tests call it
    /// directly with a fake clock).
    pub async fn deliver_due(&self) -> Result<Vec<Attempted>, StoreError> {
        let mut out = Vec::new();
        loop {
            let claimed = self
                .inner
                .store
                .claim_due_deliveries(self.inner.clock.now(), CLAIM_BATCH)
                .await?;
            if claimed.is_empty() {
                return Ok(out);
            }
            let mut set = JoinSet::new();
            for req in claimed {
                let me = self.clone();
                set.spawn(async move { me.deliver(req).await });
            }
            while let Some(done) = set.join_next().await {
                match done {
                    Ok(Ok(a)) => out.push(a),
                    Ok(Err(e)) => return Err(e),
                    Err(e) => return Err(StoreError::Config(format!("send task failed: {e}"))),
                }
            }
        }
    }

    /// Makes one attempt at a request this sender holds and records it.
    pub async fn deliver(&self, mut req: HandedNotification) -> Result<Attempted, StoreError> {
        let inner = &self.inner;
        let kind = ContactKind::parse(&req.contact_kind);
        let route = kind.and_then(|k| Channel::of(k, &req.address));
        let Some((channel, target)) = route else {
            let outcome = AttemptOutcome::Failed {
                reason: format!(
                    "`{}` is not an address any channel delivers to",
                    req.address
                ),
                status: None,
            };
            return self.record(&req, &req.contact_kind.clone(), outcome).await;
        };
        let target = target.to_string();
        let Some(slot) = inner.providers.slots.get(&channel) else {
            let outcome = AttemptOutcome::Failed {
                reason: format!("no {} provider is configured", channel.as_str()),
                status: None,
            };
            return self.record(&req, channel.as_str(), outcome).await;
        };
        // Waiting in line (the channel's limit) keeps the lease fresh, so no
        // other claim takes the request over meanwhile and burns an attempt.
        let permit = slot.in_flight.clone().acquire_owned();
        tokio::pin!(permit);
        let _permit = loop {
            let left = (req.lease_until - inner.clock.now())
                .to_std()
                .unwrap_or_default();
            tokio::select! {
                p = &mut permit => break p.map_err(|_| StoreError::Config("send limiter closed".into()))?,
                _ = tokio::time::sleep((left / 2).max(Duration::from_secs(1))) => {
                    if !inner.store.renew_delivery_lease(&mut req, inner.clock.now()).await? {
                        return Ok(Attempted::Lost);
                    }
                }
            }
        };
        let margin = ChronoDuration::from_std(slot.limits.timeout).unwrap_or_default()
            + ChronoDuration::seconds(5);
        if let Some(bucket) = &slot.bucket {
            let wait = bucket.lock().map(|mut b| b.take()).unwrap_or_default();
            if !wait.is_zero() {
                let after = inner.clock.now() + ChronoDuration::from_std(wait).unwrap_or_default();
                if after + margin > req.lease_until
                    && !inner
                        .store
                        .renew_delivery_lease(
                            &mut req,
                            inner.clock.now() + ChronoDuration::from_std(wait).unwrap_or_default(),
                        )
                        .await?
                {
                    return Ok(Attempted::Lost);
                }
                tokio::time::sleep(wait).await;
            }
        }
        let started = inner.clock.now();
        let message = match inner
            .renderer
            .message(&inner.store, &req, channel, started)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                let outcome = AttemptOutcome::Failed {
                    reason: format!("cannot write the message: {e}"),
                    status: None,
                };
                return self.record(&req, channel.as_str(), outcome).await;
            }
        };
        // Right before the call: the lease must outlast it, or the request is
        // left to whoever took it over.
        if inner.clock.now() + margin > req.lease_until
            && !inner
                .store
                .renew_delivery_lease(&mut req, inner.clock.now())
                .await?
        {
            return Ok(Attempted::Lost);
        }
        let out = Outgoing {
            idempotency_key: req.idempotency_key.clone(),
            recipient: Recipient {
                user_id: req.user_id,
                contact_method_id: req.contact_method_id,
                kind: kind.unwrap_or(ContactKind::Webhook),
                channel,
                address: req.address.clone(),
                target,
            },
            message,
        };
        let sent = match tokio::time::timeout(slot.limits.timeout, slot.provider.send(&out)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Retryable {
                reason: format!("no answer within {:?}", slot.limits.timeout),
                retry_after: None,
            }),
        };
        let now = inner.clock.now();
        let outcome = match sent {
            Ok(s) => AttemptOutcome::Sent {
                provider_id: s.provider_id,
                status: Some(s.status),
            },
            Err(SendError::Permanent { reason, status }) => {
                AttemptOutcome::Failed { reason, status }
            }
            Err(SendError::Retryable {
                reason,
                retry_after,
            }) => {
                let status = status_in(&reason);
                if req.attempt >= inner.config.max_attempts {
                    AttemptOutcome::Failed {
                        reason: format!("gave up after {} attempts: {reason}", req.attempt),
                        status,
                    }
                } else {
                    let wait = match retry_after {
                        Some(asked) => asked.min(inner.config.retry_after_max),
                        None => self.backoff(req.attempt),
                    };
                    AttemptOutcome::Retry {
                        reason,
                        status,
                        retry_at: now + ChronoDuration::from_std(wait).unwrap_or_default(),
                    }
                }
            }
        };
        match &outcome {
            AttemptOutcome::Sent { .. } => tracing::info!(
                key = %req.idempotency_key, channel = channel.as_str(), attempt = req.attempt,
                "notification sent"),
            AttemptOutcome::Retry {
                reason, retry_at, ..
            } => tracing::warn!(
                key = %req.idempotency_key, channel = channel.as_str(), attempt = req.attempt,
                %reason, %retry_at, "notification not sent; trying again"),
            AttemptOutcome::Failed { reason, .. } => tracing::error!(
                key = %req.idempotency_key, channel = channel.as_str(), attempt = req.attempt,
                %reason, "notification failed"),
        }
        self.record_at(&req, channel.as_str(), started, outcome, now)
            .await
    }

    async fn record(
        &self,
        req: &HandedNotification,
        channel: &str,
        outcome: AttemptOutcome,
    ) -> Result<Attempted, StoreError> {
        let now = self.inner.clock.now();
        self.record_at(req, channel, now, outcome, now).await
    }

    async fn record_at(
        &self,
        req: &HandedNotification,
        channel: &str,
        started: Timestamp,
        outcome: AttemptOutcome,
        now: Timestamp,
    ) -> Result<Attempted, StoreError> {
        if self
            .inner
            .store
            .record_delivery_attempt(req, channel, started, &outcome, now)
            .await?
        {
            Ok(Attempted::Recorded(outcome))
        } else {
            tracing::warn!(key = %req.idempotency_key, attempt = req.attempt,
                "another sender took this notification over; its outcome is theirs to record");
            Ok(Attempted::Lost)
        }
    }

    // 2 s, 4 s, 8 s … up to the cap, each between 80% and 100% of that, so
    // requests failing together do not all come back together.
    fn backoff(&self, attempt: i64) -> Duration {
        let c = &self.inner.config;
        let exp = attempt.clamp(1, 30) as u32 - 1;
        let full = c
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(c.backoff_max);
        full.mul_f64(rand::thread_rng().gen_range(0.8..=1.0))
    }

    /// On the embedded store, at start and before the job runner hands anything:
    /// nobody else can be sending from an embedded database, so what a stopped
    /// process left mid-send is due again now, not at its lease's end.
    pub async fn release_interrupted(&self) -> Result<u64, StoreError> {
        let store = &self.inner.store;
        if store.backend() != tocsin_store::Backend::Sqlite {
            return Ok(0);
        }
        let n = store
            .release_interrupted_deliveries(self.inner.clock.now())
            .await?;
        if n > 0 {
            tracing::warn!(
                notifications = n,
                "sending again what a stopped process left mid-send (same idempotency keys)"
            );
        }
        Ok(n)
    }

    /// Runs until `shutdown` turns true: sends what is handed on this node at
    /// once, and claims retries and cut-off sends from the outbox when due.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let Some(mut incoming) = self.inner.incoming.lock().ok().and_then(|mut i| i.take()) else {
            tracing::error!("the delivery worker is already running");
            return;
        };
        let store = &self.inner.store;
        let wake = store.delivery_wake();
        let mut sends = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Due work first (retries, cut-off sends), each send on its own task.
            let pause = match store
                .claim_due_deliveries(self.inner.clock.now(), CLAIM_BATCH)
                .await
            {
                Ok(claimed) if !claimed.is_empty() => {
                    for req in claimed {
                        let me = self.clone();
                        sends.spawn(async move { me.deliver(req).await });
                    }
                    Duration::ZERO
                }
                Ok(_) => match store.next_delivery_due().await {
                    Ok(Some(at)) => (at - self.inner.clock.now())
                        .to_std()
                        .unwrap_or(Duration::from_millis(50))
                        .min(IDLE),
                    Ok(None) => IDLE,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read when the next delivery is due");
                        Duration::from_secs(1)
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim due notifications");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
                Some(req) = incoming.recv() => {
                    let me = self.clone();
                    sends.spawn(async move { me.deliver(req).await });
                    while let Ok(req) = incoming.try_recv() {
                        let me = self.clone();
                        sends.spawn(async move { me.deliver(req).await });
                    }
                }
                Some(done) = sends.join_next(), if !sends.is_empty() => log_done(done),
                changed = shutdown.changed() => if changed.is_err() { break },
            }
            while let Some(done) = sends.try_join_next() {
                log_done(done);
            }
        }
        // Sends under way get as long as the slowest channel allows to finish
        // and be recorded (cutting one off inside the call would send it again);
        // the rest are picked up again at their lease's end.
        let drain = self
            .inner
            .providers
            .slots
            .values()
            .map(|s| s.limits.timeout)
            .max()
            .unwrap_or_default()
            + DRAIN;
        let _ = tokio::time::timeout(drain, async {
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
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot record a delivery attempt; it is tried again when its lease ends")
        }
        Err(e) => tracing::error!(error = %e, "a send task failed"),
    }
}

// The HTTP status a classified reason starts with ("HTTP 503 Service Unavailable: …").
fn status_in(reason: &str) -> Option<u16> {
    reason
        .strip_prefix("HTTP ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
}

impl Delivery for Sender {
    fn handed(&self, requests: &[HandedNotification]) {
        for r in requests {
            // The receiver lives as long as the worker; once it is gone the
            // rows wait in the outbox for their lease to end.
            let _ = self.inner.queue.send(r.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_spaces_sends_by_the_rate() {
        let mut b = Bucket {
            tokens: 2.0,
            rate: 10.0,
            burst: 2.0,
            at: Instant::now(),
        };
        assert_eq!(b.take(), Duration::ZERO);
        assert_eq!(b.take(), Duration::ZERO);
        // Out of tokens: the third waits about a tenth of a second, the fourth two.
        let third = b.take();
        assert!(
            third > Duration::from_millis(90) && third <= Duration::from_millis(100),
            "{third:?}"
        );
        let fourth = b.take();
        assert!(
            fourth > Duration::from_millis(190) && fourth <= Duration::from_millis(200),
            "{fourth:?}"
        );
    }

    #[test]
    fn http_statuses_are_read_from_classified_reasons() {
        assert_eq!(status_in("HTTP 503 Service Unavailable: down"), Some(503));
        assert_eq!(status_in("HTTP 429"), Some(429));
        assert_eq!(status_in("could not connect: refused"), None);
    }
}
