//! The subscriber outbox. Telling subscribers about an update is a durable
//! fan-out job: each run, in one transaction, writes one outbox row (unique by
//! its idempotency key) for each of the next [`FANOUT_BATCH`] confirmed
//! subscribers that follow the post's components and have none yet, and runs
//! again until none is left. A large list is thus written in batches, never
//! in one long transaction, and a crash mid-way repeats nothing. The status
//! mail worker sends the rows at its configured pace.
//!
//! A row's life ([`StatusDeliveryState`]):
//!
//! | from      | to        | when                                                            |
//! |-----------|-----------|-----------------------------------------------------------------|
//! | pending   | sending   | claimed when due (attempts + 1, leased until `next_attempt_at`) |
//! | sending   | sending   | its lease ran out (a sender cut off): claimed again, attempt + 1 |
//! | sending   | sent      | the relay or receiver accepted it                               |
//! | sending   | pending   | a retryable failure: due again after the backoff                |
//! | sending   | failed    | a permanent failure, or the last attempt allowed                |
//! | pending, sending | cancelled | claimed but moot: a confirmation for a subscriber confirmed since, anything else for one not confirmed |
//!
//! Claims take rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes
//! sharing one database claim disjoint rows. Recording names the attempt, so a
//! sender whose lease ran out cannot overwrite the one that took over. A
//! subscriber deleted (unsubscribed) takes its rows with it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::status_page::records::{Post, StatusPage, SubscriberKind, Update};
use tocsin_core::status_page::token::LinkPurpose;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use utoipa::ToSchema;

use super::{id_list, opt_ts, ts};
use crate::jobs::HandedNotification;
use crate::tx::WriteTx;
use crate::{AttemptOutcome, Backend, Store, StoreError};

/// Subscribers written to the outbox per fan-out transaction.
pub const FANOUT_BATCH: i64 = 500;

/// What a fan-out tells subscribers about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fanout {
    /// A published update.
    Update(i64),
    /// A maintenance starting soon, at this start (ms): a maintenance moved
    /// to another time is reminded of again.
    Reminder(i64),
}

/// Schedules the fan-out of an update (or a reminder) of post `post_id`, due now.
pub(crate) async fn schedule_fanout(
    w: &mut WriteTx,
    backend: Backend,
    page_id: i64,
    post_id: i64,
    what: Fanout,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (key, payload) = match what {
        Fanout::Update(update_id) => (
            format!("status_fanout:update:{update_id}"),
            json!({ "page_id": page_id, "post_id": post_id, "update_id": update_id, "kind": "update" }),
        ),
        Fanout::Reminder(at) => (
            format!("status_fanout:reminder:{post_id}:{at}"),
            json!({ "page_id": page_id, "post_id": post_id, "kind": "reminder", "scheduled_for": at }),
        ),
    };
    crate::jobs::schedule(w, backend, "status_fanout", &key, now, &payload, now).await
}

/// Writes a confirmation mail for a subscriber into the outbox, due now.
pub(crate) async fn queue_confirmation(
    w: &mut WriteTx,
    page_id: i64,
    subscriber_id: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO status_deliveries (page_id, subscriber_id, kind, idempotency_key, status, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, 'confirmation', $3, 'pending', 0, $4, $4)",
    )
    .bind(page_id)
    .bind(subscriber_id)
    .bind(format!("confirm:{subscriber_id}:{}", to_millis(now)))
    .bind(to_millis(now))
    .execute(&mut *w.tx)
    .await?;
    w.wake_status_mail = true;
    Ok(())
}

impl Store {
    /// One batch of a fan-out job: returns `Some(now)` while subscribers are
    /// left (the runner runs it again at once), `None` when done.
    pub(crate) async fn run_status_fanout_job(
        &self,
        w: &mut WriteTx,
        payload: &str,
        now: Timestamp,
    ) -> Result<(Option<Timestamp>, Vec<HandedNotification>), StoreError> {
        let v: serde_json::Value = serde_json::from_str(payload)
            .map_err(|e| StoreError::Config(format!("bad fan-out payload {payload}: {e}")))?;
        let (Some(page_id), Some(post_id)) = (v["page_id"].as_i64(), v["post_id"].as_i64()) else {
            return Err(StoreError::Config(format!("bad fan-out payload {payload}")));
        };
        let update_id = v["update_id"].as_i64();
        let kind = if v["kind"] == "reminder" {
            "reminder"
        } else {
            "update"
        };
        // The post (or the update, or the page) was deleted since: nothing to send.
        let exists: i64 = match update_id {
            Some(u) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM status_updates WHERE id = $1")
                    .bind(u)
                    .fetch_one(&mut *w.tx)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM status_posts WHERE id = $1")
                    .bind(post_id)
                    .fetch_one(&mut *w.tx)
                    .await?
            }
        };
        if exists == 0 {
            return Ok((None, Vec::new()));
        }
        let components: Vec<i64> = sqlx::query_scalar(
            "SELECT component_id FROM status_post_components WHERE post_id = $1",
        )
        .bind(post_id)
        .fetch_all(&mut *w.tx)
        .await?;
        // A post about no component in particular concerns everyone; otherwise
        // subscribers of every component, and those of any of its components.
        let follows = if components.is_empty() {
            String::new()
        } else {
            format!(
                " AND (s.all_components = 1 OR EXISTS (SELECT 1 FROM status_subscriber_components sc \
                 WHERE sc.subscriber_id = s.id AND sc.component_id IN ({})))",
                id_list(&components)
            )
        };
        let (already, key_prefix) = match update_id {
            Some(u) => (
                format!("d.kind = 'update' AND d.update_id = {u}"),
                format!("update:{u}"),
            ),
            // One reminder per subscriber per planned start (integers only in the SQL).
            None => {
                let at = v["scheduled_for"].as_i64().unwrap_or(0);
                (
                    format!("d.idempotency_key = 'reminder:{post_id}:{at}:' || CAST(s.id AS TEXT)"),
                    format!("reminder:{post_id}:{at}"),
                )
            }
        };
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT s.id FROM status_subscribers s WHERE s.page_id = $1 AND s.confirmed_at IS NOT NULL{follows} \
             AND NOT EXISTS (SELECT 1 FROM status_deliveries d WHERE d.subscriber_id = s.id AND {already}) \
             ORDER BY s.id LIMIT $2"
        ))
        .bind(page_id)
        .bind(FANOUT_BATCH)
        .fetch_all(&mut *w.tx)
        .await?;
        for sid in &ids {
            sqlx::query(
                "INSERT INTO status_deliveries (page_id, subscriber_id, kind, post_id, update_id, \
                 idempotency_key, status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(page_id)
            .bind(sid)
            .bind(kind)
            .bind(post_id)
            .bind(update_id)
            .bind(format!("{key_prefix}:{sid}"))
            .bind(to_millis(now))
            .execute(&mut *w.tx)
            .await?;
        }
        if !ids.is_empty() {
            w.wake_status_mail = true;
        }
        let more = ids.len() as i64 == FANOUT_BATCH;
        Ok((more.then_some(now), Vec::new()))
    }
}

impl Store {
    /// Kicked when a committed transaction wrote subscriber mail into the outbox.
    pub fn status_mail_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.status_mail_wake.clone()
    }
}

/// Longest `last_error` kept, in characters.
pub const MAX_STATUS_ERROR: usize = 2_000;

/// What an outbox row sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusMessageKind {
    /// "Confirm your subscription" (email only).
    Confirmation,
    /// A post's update.
    Update,
    /// A maintenance starts soon.
    Reminder,
}

impl StatusMessageKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusMessageKind::Confirmation => "confirmation",
            StatusMessageKind::Update => "update",
            StatusMessageKind::Reminder => "reminder",
        }
    }

    fn parse(s: &str) -> Option<StatusMessageKind> {
        [Self::Confirmation, Self::Update, Self::Reminder]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Where an outbox row is in its life (the table in the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusDeliveryState {
    /// Due at `next_attempt_at`.
    Pending,
    /// Held by a sender until `next_attempt_at`.
    Sending,
    /// Accepted by the relay or receiver.
    Sent,
    /// Given up: a permanent failure or out of attempts.
    Failed,
    /// Not sent because it became moot.
    Cancelled,
}

impl StatusDeliveryState {
    /// Every state.
    pub const ALL: [StatusDeliveryState; 5] = [
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> StatusDeliveryState {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(Self::Pending)
    }
}

/// A message claimed for one attempt: its holder sends it before `lease_until`
/// and records attempt `attempt`. Everything needed to write it is here.
#[derive(Clone)]
pub struct ClaimedStatusMessage {
    /// Outbox row id.
    pub id: i64,
    /// The row's key (`update:<update>:<subscriber>`, …): Message-ID, `Idempotency-Key`.
    pub idempotency_key: String,
    /// What it sends.
    pub kind: StatusMessageKind,
    /// The attempt this holder may make (1 for the first).
    pub attempt: i64,
    /// Until when the holder may send it.
    pub lease_until: Timestamp,
    /// The subscriber.
    pub subscriber_id: i64,
    /// Email or webhook.
    pub subscriber_kind: SubscriberKind,
    /// The email address or URL.
    pub address: String,
    /// The page.
    pub page: StatusPage,
    /// The post, with its updates (updates and reminders).
    pub post: Option<Post>,
    /// The update told (updates).
    pub update: Option<Update>,
    /// A freshly signed confirmation token (confirmations).
    pub confirm_token: Option<String>,
    /// A freshly signed unsubscribe token (email updates and reminders).
    pub unsubscribe_token: Option<String>,
    /// The subscriber's signing secret (webhooks).
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for ClaimedStatusMessage {
    // Tokens and the secret are credentials: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedStatusMessage")
            .field("id", &self.id)
            .field("idempotency_key", &self.idempotency_key)
            .field("kind", &self.kind)
            .field("attempt", &self.attempt)
            .field("lease_until", &self.lease_until)
            .field("subscriber_id", &self.subscriber_id)
            .field("subscriber_kind", &self.subscriber_kind)
            .field("page_id", &self.page.id)
            .field("post_id", &self.post.as_ref().map(|p| p.id))
            .field("update_id", &self.update.as_ref().map(|u| u.id))
            .finish_non_exhaustive()
    }
}

/// Outbox rows by state, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusDeliveryStats {
    /// Waiting to be sent (or retried).
    pub pending: i64,
    /// Being sent.
    pub sending: i64,
    /// Sent.
    pub sent: i64,
    /// Given up.
    pub failed: i64,
    /// Moot.
    pub cancelled: i64,
}

/// One outbox row as admins see it: the subscriber's address, never its links or secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusDeliveryView {
    /// Outbox row id.
    pub id: i64,
    /// The subscriber.
    pub subscriber_id: i64,
    /// Email or webhook.
    pub subscriber_kind: SubscriberKind,
    /// The email address or URL.
    pub address: String,
    /// What it sends.
    pub kind: StatusMessageKind,
    /// The post, for updates and reminders.
    pub post_id: Option<i64>,
    /// The update, for updates.
    pub update_id: Option<i64>,
    /// Where it is.
    pub status: StatusDeliveryState,
    /// Attempts made or under way.
    pub attempts: i64,
    /// When it is due (pending) or its sender's hold ends (sending).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// What the last failed attempt said.
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

// Rows of webhook subscribers only (no SMTP relay to send email through).
const WEBHOOKS_ONLY: &str = " AND EXISTS (SELECT 1 FROM status_subscribers s \
     WHERE s.id = d.subscriber_id AND s.kind = 'webhook')";

fn cut(text: &str) -> String {
    text.chars().take(MAX_STATUS_ERROR).collect()
}

impl Store {
    /// Claims at most `limit` messages due at `now` — pending ones due, and
    /// sending ones whose holder's lease ran out — each leased for `lease` with
    /// the next attempt number; with `email` false, only webhook subscribers'.
    /// Moot rows are cancelled instead (see the module's table).
    pub async fn claim_status_deliveries(
        &self,
        now: Timestamp,
        limit: i64,
        lease: Duration,
        email: bool,
    ) -> Result<Vec<ClaimedStatusMessage>, StoreError> {
        let only = if email { "" } else { WEBHOOKS_ONLY };
        let due = format!(
            "SELECT 1 FROM status_deliveries d WHERE d.status IN ('pending', 'sending') \
             AND d.next_attempt_at <= $1{only} LIMIT 1"
        );
        if limit <= 0 || !self.any_due(&due, now).await? {
            return Ok(Vec::new());
        }
        let mut w = self.write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT d.id FROM status_deliveries d WHERE d.status IN ('pending', 'sending') \
             AND d.next_attempt_at <= $1{only} ORDER BY d.next_attempt_at, d.id LIMIT $2{}",
            self.skip_locked()
        ))
        .bind(to_millis(now))
        .bind(limit)
        .fetch_all(&mut *w.tx)
        .await?;
        if ids.is_empty() {
            w.rollback().await?;
            return Ok(Vec::new());
        }
        let list = id_list(&ids);
        // The only mail an unconfirmed subscriber gets is its confirmation, and
        // a confirmed one needs none.
        sqlx::query(&format!(
            "UPDATE status_deliveries SET status = 'cancelled' WHERE id IN ({list}) AND EXISTS (\
             SELECT 1 FROM status_subscribers s WHERE s.id = status_deliveries.subscriber_id AND (\
             (status_deliveries.kind = 'confirmation' AND s.confirmed_at IS NOT NULL) OR \
             (status_deliveries.kind <> 'confirmation' AND s.confirmed_at IS NULL)))"
        ))
        .execute(&mut *w.tx)
        .await?;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut rows = sqlx::query(&format!(
            "UPDATE status_deliveries SET status = 'sending', attempts = attempts + 1, \
             next_attempt_at = $1 WHERE id IN ({list}) AND status IN ('pending', 'sending') \
             AND next_attempt_at <= $2 RETURNING id, page_id, subscriber_id, kind, post_id, update_id, idempotency_key, \
             attempts, next_attempt_at"
        ))
        .bind(to_millis(now) + lease_ms)
        .bind(to_millis(now))
        .fetch_all(&mut *w.tx)
        .await?;
        w.commit().await?;
        rows.sort_by_key(|r| {
            let id: i64 = r.try_get("id").unwrap_or_default();
            ids.iter().position(|i| *i == id)
        });
        let mut pages = HashMap::new();
        let mut posts = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            match self.claimed(&r, now, &mut pages, &mut posts).await {
                Ok(m) => out.push(m),
                // The subscriber, post or page went away since (and the row
                // with it), or the update is no longer the post's: nothing to
                // send, and nothing to claim again at every lease's end.
                Err(StoreError::NotFound { .. }) => {
                    let mut w = self.write().await?;
                    sqlx::query(
                        "UPDATE status_deliveries SET status = 'cancelled' \
                         WHERE id = $1 AND status = 'sending' AND attempts = $2",
                    )
                    .bind(r.try_get::<i64, _>("id")?)
                    .bind(r.try_get::<i64, _>("attempts")?)
                    .execute(&mut *w.tx)
                    .await?;
                    w.commit().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn claimed(
        &self,
        r: &sqlx::any::AnyRow,
        now: Timestamp,
        pages: &mut HashMap<i64, StatusPage>,
        posts: &mut HashMap<i64, Post>,
    ) -> Result<ClaimedStatusMessage, StoreError> {
        let kind_name: String = r.try_get("kind")?;
        let kind = StatusMessageKind::parse(&kind_name)
            .ok_or_else(|| StoreError::Config(format!("unknown status message `{kind_name}`")))?;
        let subscriber_id: i64 = r.try_get("subscriber_id")?;
        let sub = self
            .row_by_id(
                "kind, address",
                "status_subscribers",
                subscriber_id,
                "subscriber",
            )
            .await?;
        let subscriber_kind = SubscriberKind::parse(&sub.try_get::<String, _>("kind")?)
            .unwrap_or(SubscriberKind::Email);
        let page_id: i64 = r.try_get("page_id")?;
        if let Entry::Vacant(e) = pages.entry(page_id) {
            e.insert(self.status_page(page_id).await?);
        }
        let post = match r.try_get::<Option<i64>, _>("post_id")? {
            Some(id) => {
                if let Entry::Vacant(e) = posts.entry(id) {
                    e.insert(self.post(id).await?);
                }
                posts.get(&id).cloned()
            }
            None => None,
        };
        let update = match r.try_get::<Option<i64>, _>("update_id")? {
            Some(id) => Some(
                post.as_ref()
                    .and_then(|p| p.updates.iter().find(|u| u.id == id).cloned())
                    .ok_or_else(|| StoreError::not_found(format!("status update {id}")))?,
            ),
            None => None,
        };
        let email = subscriber_kind == SubscriberKind::Email;
        let confirmation = kind == StatusMessageKind::Confirmation;
        let link = |purpose| self.subscriber_link(subscriber_id, purpose, now);
        Ok(ClaimedStatusMessage {
            id: r.try_get("id")?,
            idempotency_key: r.try_get("idempotency_key")?,
            kind,
            attempt: r.try_get("attempts")?,
            lease_until: ts(r, "next_attempt_at")?,
            subscriber_id,
            subscriber_kind,
            address: sub.try_get("address")?,
            page: pages[&page_id].clone(),
            post,
            update,
            confirm_token: if confirmation {
                Some(link(LinkPurpose::Confirm).await?)
            } else {
                None
            },
            unsubscribe_token: if email && !confirmation {
                Some(link(LinkPurpose::Unsubscribe).await?)
            } else {
                None
            },
            webhook_secret: if email {
                None
            } else {
                Some(self.status_webhook_secret(subscriber_id, now).await?)
            },
        })
    }

    /// Records how attempt `attempt` of row `id` went: `Sent`, `Retry` (pending
    /// again at its time) or `Failed`. Returns false, recording nothing, when
    /// the attempt is no longer its sender's (the lease ran out and another
    /// sender took it over, or the row is gone).
    pub async fn record_status_delivery(
        &self,
        id: i64,
        attempt: i64,
        outcome: &AttemptOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (state, next, error, sent_at) = match outcome {
            AttemptOutcome::Sent { .. } => (StatusDeliveryState::Sent, now, None, Some(now)),
            AttemptOutcome::Retry {
                reason, retry_at, ..
            } => (
                StatusDeliveryState::Pending,
                *retry_at,
                Some(cut(reason)),
                None,
            ),
            AttemptOutcome::Failed { reason, .. } => {
                (StatusDeliveryState::Failed, now, Some(cut(reason)), None)
            }
        };
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE status_deliveries SET status = $1, next_attempt_at = $2, last_error = $3, \
             sent_at = $4 WHERE id = $5 AND status = 'sending' AND attempts = $6",
        )
        .bind(state.as_str())
        .bind(to_millis(next))
        .bind(error)
        .bind(sent_at.map(to_millis))
        .bind(id)
        .bind(attempt)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n > 0)
    }

    /// Without an SMTP relay: says so on every pending email row (once each),
    /// where admins look. Returns how many rows it marked.
    pub async fn hold_status_email(&self, reason: &str) -> Result<u64, StoreError> {
        let waiting = "FROM status_deliveries WHERE status = 'pending' \
            AND (last_error IS NULL OR last_error <> $1) AND subscriber_id IN \
            (SELECT id FROM status_subscribers WHERE kind = 'email')";
        let any: Option<i64> = sqlx::query_scalar(&format!("SELECT id {waiting} LIMIT 1"))
            .bind(reason)
            .fetch_optional(&self.pool)
            .await?;
        if any.is_none() {
            return Ok(0);
        }
        let mut w = self.write().await?;
        let n = sqlx::query(&format!(
            "UPDATE status_deliveries SET last_error = $1 WHERE id IN (SELECT id {waiting})"
        ))
        .bind(reason)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n)
    }

    /// When the next message falls due (a new one, a retry, or a lease running
    /// out); with `email` false, webhook subscribers' only.
    pub async fn next_status_delivery_due(
        &self,
        email: bool,
    ) -> Result<Option<Timestamp>, StoreError> {
        let only = if email { "" } else { WEBHOOKS_ONLY };
        let at: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MIN(d.next_attempt_at) FROM status_deliveries d \
             WHERE d.status IN ('pending', 'sending'){only}"
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(at.map(from_millis))
    }

    /// On the embedded store at start, where no other process can be sending:
    /// messages a stopped process left `sending` are due again now rather than
    /// at their lease's end. Returns how many.
    pub async fn release_interrupted_status_deliveries(
        &self,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE status_deliveries SET next_attempt_at = $1 \
             WHERE status = 'sending' AND next_attempt_at > $1",
        )
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n)
    }

    /// Outbox rows by state, every page together.
    pub async fn status_delivery_stats(&self) -> Result<StatusDeliveryStats, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM status_deliveries GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut stats = StatusDeliveryStats::default();
        for (state, n) in rows {
            let slot = match StatusDeliveryState::parse(&state) {
                StatusDeliveryState::Pending => &mut stats.pending,
                StatusDeliveryState::Sending => &mut stats.sending,
                StatusDeliveryState::Sent => &mut stats.sent,
                StatusDeliveryState::Failed => &mut stats.failed,
                StatusDeliveryState::Cancelled => &mut stats.cancelled,
            };
            *slot += n;
        }
        Ok(stats)
    }

    /// A page's outbox, newest first, at most `limit` rows.
    pub async fn status_deliveries(
        &self,
        page_id: i64,
        limit: i64,
    ) -> Result<Vec<StatusDeliveryView>, StoreError> {
        self.status_page(page_id).await?;
        let rows = sqlx::query(
            "SELECT d.id, d.subscriber_id, s.kind AS subscriber_kind, s.address, d.kind, d.post_id, \
             d.update_id, d.status, d.attempts, d.next_attempt_at, d.last_error, d.sent_at, d.created_at \
             FROM status_deliveries d JOIN status_subscribers s ON s.id = d.subscriber_id \
             WHERE d.page_id = $1 ORDER BY d.id DESC LIMIT $2",
        )
        .bind(page_id)
        .bind(limit.clamp(0, 1_000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let status = StatusDeliveryState::parse(&r.try_get::<String, _>("status")?);
                let waiting = matches!(
                    status,
                    StatusDeliveryState::Pending | StatusDeliveryState::Sending
                );
                Ok(StatusDeliveryView {
                    id: r.try_get("id")?,
                    subscriber_id: r.try_get("subscriber_id")?,
                    subscriber_kind: SubscriberKind::parse(
                        &r.try_get::<String, _>("subscriber_kind")?,
                    )
                    .unwrap_or(SubscriberKind::Email),
                    address: r.try_get("address")?,
                    kind: StatusMessageKind::parse(&r.try_get::<String, _>("kind")?)
                        .unwrap_or(StatusMessageKind::Update),
                    post_id: r.try_get("post_id")?,
                    update_id: r.try_get("update_id")?,
                    status,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: if waiting {
                        Some(ts(r, "next_attempt_at")?)
                    } else {
                        None
                    },
                    last_error: r.try_get("last_error")?,
                    sent_at: opt_ts(r, "sent_at")?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect()
    }
}
