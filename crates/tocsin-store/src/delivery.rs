//! Delivery state of the notification outbox.
//!
//! A handed request is held by the sender of the node that handed it:
//! `delivery = 'sending'`, `attempts = 1`, `next_attempt_at` = the end of its
//! lease. The sender records each attempt's outcome here: `sent`, `failed`
//! (permanent, or out of attempts), or back to `pending` with the time of the
//! next attempt. Pending rows that fall due, and sending rows whose lease ran
//! out (a sender cut off mid-send), are claimed again by any node (`FOR UPDATE
//! SKIP LOCKED`), each claim taking the next attempt number. Recording names the
//! attempt, so a sender that lost its lease cannot overwrite its successor.
//!
//! Only a sender cut off inside the provider call can cause a second send of
//! the same request, and then under the same idempotency key.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tocsin_core::escalation::Phase;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use utoipa::ToSchema;

use crate::escalations::{engine, job_key, parse_state};
use crate::events::incident_event;
use crate::jobs::{self, HandedNotification, OUTBOX_COLUMNS};
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// How long a sender holds a request unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// Longest provider answer kept per attempt, in characters.
const MAX_DETAIL: usize = 1000;

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The provider accepted the message.
    Sent {
        /// The provider's id for it (an SMS sid, a Message-ID).
        provider_id: Option<String>,
        /// The HTTP status it answered with, for HTTP providers.
        status: Option<u16>,
    },
    /// It failed in a way worth trying again, at `retry_at`.
    Retry {
        /// What went wrong.
        reason: String,
        /// The provider's HTTP status, if it answered.
        status: Option<u16>,
        /// When to try again.
        retry_at: Timestamp,
    },
    /// It failed for good (a permanent error, or out of attempts).
    Failed {
        /// What went wrong.
        reason: String,
        /// The provider's HTTP status, if it answered.
        status: Option<u16>,
    },
}

impl AttemptOutcome {
    fn name(&self) -> &'static str {
        match self {
            AttemptOutcome::Sent { .. } => "sent",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Failed { .. } => "failed",
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            AttemptOutcome::Sent { status, .. }
            | AttemptOutcome::Retry { status, .. }
            | AttemptOutcome::Failed { status, .. } => *status,
        }
    }
}

/// One attempt to send a notification, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub attempt: i64,
    /// The channel that carried it (`email`, `sms`, `slack`, …).
    pub channel: String,
    /// When the attempt started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When the provider answered (or the attempt gave up).
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// `sent`, `retry` or `failed`.
    pub outcome: String,
    /// The provider's HTTP status, when it answered over HTTP.
    pub http_status: Option<i64>,
    /// The provider's id for the message.
    pub provider_id: Option<String>,
    /// What the provider said, for failures.
    pub detail: Option<String>,
    /// When the next attempt is due, for `retry`.
    pub retry_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A notification request and its delivery, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Outbox id.
    pub id: i64,
    /// The same on every recomputation of the same step; sent to providers that take one.
    pub idempotency_key: String,
    /// Why: `escalation`, `handoff_reminder`, `shift_started`, `verification` or `test`.
    pub reason: String,
    /// The incident, for escalation notifications.
    pub incident_id: Option<i64>,
    /// Who.
    pub user_id: i64,
    /// Which contact method.
    pub contact_method_id: i64,
    /// How: `email`, `sms`, `voice`, `push`, `chat`, `webhook`.
    pub contact_kind: String,
    /// `scheduled` (waiting for `send_at`), `handed` (given to delivery) or
    /// `cancelled` (the incident was acknowledged or resolved first).
    pub status: String,
    /// For handed requests: `sending`, `pending` (a retry is due at
    /// `next_attempt_at`), `sent`, `failed` or `cancelled` (acknowledged or
    /// resolved before a retry).
    pub delivery: Option<String>,
    /// The channel that carries it, once tried.
    pub channel: Option<String>,
    /// Attempts made or under way.
    pub attempts: i64,
    /// When the next attempt is due (pending), or when a sender's hold on it ends (sending).
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the provider accepted it.
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it failed for good.
    pub failed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The provider's id for the message.
    pub provider_id: Option<String>,
    /// What the provider last said, when it was not a success.
    pub last_response: Option<String>,
    /// When it is or was due.
    pub send_at: chrono::DateTime<chrono::Utc>,
    /// When it was handed to delivery.
    pub handed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What it says: level, round and incident, or the schedule (verification codes are left out).
    pub message: serde_json::Value,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<DeliveryAttempt>,
}

fn ts(r: &sqlx::any::AnyRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(r.try_get::<Option<i64>, _>(col)?.map(from_millis))
}

fn view(r: &sqlx::any::AnyRow) -> Result<DeliveryView, StoreError> {
    let message: String = r.try_get("message")?;
    let mut message: serde_json::Value = serde_json::from_str(&message).unwrap_or_default();
    if let Some(m) = message.as_object_mut() {
        m.remove("code");
    }
    Ok(DeliveryView {
        id: r.try_get("id")?,
        idempotency_key: r.try_get("idempotency_key")?,
        reason: r.try_get("reason")?,
        incident_id: r.try_get("incident_id")?,
        user_id: r.try_get("user_id")?,
        contact_method_id: r.try_get("contact_method_id")?,
        contact_kind: r.try_get("contact_kind")?,
        status: r.try_get("status")?,
        delivery: r.try_get("delivery")?,
        channel: r.try_get("channel")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: ts(r, "next_attempt_at")?,
        delivered_at: ts(r, "delivered_at")?,
        failed_at: ts(r, "failed_at")?,
        provider_id: r.try_get("provider_id")?,
        last_response: r.try_get("last_response")?,
        send_at: from_millis(r.try_get("send_at")?),
        handed_at: ts(r, "handed_at")?,
        cancelled_at: ts(r, "cancelled_at")?,
        message,
        attempt_log: Vec::new(),
    })
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_DETAIL).collect()
}

impl Store {
    /// Claims requests due for an attempt at `now` — pending retries that fell
    /// due, and sends whose sender's lease ran out — at most `limit`, each with
    /// a new lease and the next attempt number.
    pub async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<HandedNotification>, StoreError> {
        let due = "SELECT 1 FROM notification_requests \
                   WHERE delivery IN ('pending', 'sending') AND next_attempt_at <= $1 LIMIT 1";
        if !self.any_due(due, now).await? {
            return Ok(Vec::new());
        }
        let mut w = self.write().await?;
        let due: Vec<(i64, String, Option<i64>)> = sqlx::query_as(&format!(
            "SELECT id, reason, incident_id FROM notification_requests \
             WHERE delivery IN ('pending', 'sending') AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2{}",
            self.skip_locked()
        ))
        .bind(to_millis(now))
        .bind(limit)
        .fetch_all(&mut *w.tx)
        .await?;
        let mut out = Vec::with_capacity(due.len());
        for (id, reason, incident_id) in due {
            // A page's retry or taken-over send is moot once somebody has the
            // incident (or it was resolved): its escalation no longer runs.
            if let (Some(incident_id), "escalation") = (incident_id, reason.as_str()) {
                if !self.escalation_running(&mut w, incident_id).await? {
                    sqlx::query(
                        "UPDATE notification_requests SET delivery = 'cancelled', \
                         next_attempt_at = NULL WHERE id = $1",
                    )
                    .bind(id)
                    .execute(&mut *w.tx)
                    .await?;
                    continue;
                }
            }
            // Nor is one to a contact method deleted, unverified or moved since,
            // or to a user deactivated since (as at the hand-off, jobs.rs); a
            // verification code goes to its unverified method, of course.
            let gone = sqlx::query(
                "UPDATE notification_requests SET delivery = 'cancelled', next_attempt_at = NULL \
                 WHERE id = $1 AND (\
                   NOT EXISTS (SELECT 1 FROM contact_methods c \
                     WHERE c.id = notification_requests.contact_method_id \
                     AND (c.verified = 1 OR notification_requests.reason = 'verification') \
                     AND c.address = notification_requests.address) \
                   OR EXISTS (SELECT 1 FROM users u \
                     WHERE u.id = notification_requests.user_id AND u.active = 0))",
            )
            .bind(id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            if gone > 0 {
                continue;
            }
            let row = sqlx::query(&format!(
                "UPDATE notification_requests SET delivery = 'sending', attempts = attempts + 1, \
                 next_attempt_at = $1 WHERE id = $2 RETURNING {OUTBOX_COLUMNS}"
            ))
            .bind(to_millis(now) + self.delivery_lease_ms)
            .bind(id)
            .fetch_one(&mut *w.tx)
            .await?;
            out.push(HandedNotification::from_row(&row)?);
        }
        w.commit().await?;
        Ok(out)
    }

    /// Extends the lease on a request this sender holds (attempt `attempt`)
    /// before an attempt that starts late; false when it is no longer this sender's.
    pub async fn renew_delivery_lease(
        &self,
        req: &mut HandedNotification,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let until = to_millis(now) + self.delivery_lease_ms;
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE notification_requests SET next_attempt_at = $1 \
             WHERE id = $2 AND delivery = 'sending' AND attempts = $3",
        )
        .bind(until)
        .bind(req.id)
        .bind(req.attempt)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        if n > 0 {
            req.lease_until = from_millis(until);
        }
        Ok(n > 0)
    }

    /// At start on the embedded store, where no other process can be sending:
    /// requests left `sending` by a stopped process are due again at once
    /// rather than at the end of their lease. Returns how many.
    pub async fn release_interrupted_deliveries(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE notification_requests SET next_attempt_at = $1 \
             WHERE delivery = 'sending' AND next_attempt_at > $1",
        )
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n)
    }

    /// Woken when a request due now is committed outside the job runner (a
    /// verification code, a test notification) for the delivery worker to claim.
    pub fn delivery_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.delivery_wake.clone()
    }

    /// When the next delivery attempt falls due (a retry, or a lease running out).
    pub async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM notification_requests WHERE delivery IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(at.map(from_millis))
    }

    /// Records how attempt `req.attempt` over `channel` went, with its timeline
    /// entry for incident notifications. Returns false (and records nothing)
    /// when the attempt is no longer this sender's to record. A final failure
    /// of the last way left to reach a paged user brings the next escalation
    /// step forward to now.
    pub async fn record_delivery_attempt(
        &self,
        req: &HandedNotification,
        channel: &str,
        started_at: Timestamp,
        outcome: &AttemptOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        // Lock order as everywhere: the incident first.
        let mut moot = false;
        if let Some(incident_id) = req.incident_id {
            self.lock_incident(&mut w, incident_id).await?;
            if req.reason == "escalation" {
                // Acknowledged or resolved while this attempt was under way: no retry.
                moot = !self.escalation_running(&mut w, incident_id).await?;
            }
        }
        let (delivery, next, provider_id, response, delivered, failed) = match outcome {
            AttemptOutcome::Retry { reason, .. } if moot => {
                ("cancelled", None, None, Some(cut(reason)), None, None)
            }
            AttemptOutcome::Sent { provider_id, .. } => {
                ("sent", None, provider_id.clone(), None, Some(now), None)
            }
            AttemptOutcome::Retry {
                reason, retry_at, ..
            } => (
                "pending",
                Some(*retry_at),
                None,
                Some(cut(reason)),
                None,
                None,
            ),
            AttemptOutcome::Failed { reason, .. } => {
                ("failed", None, None, Some(cut(reason)), None, Some(now))
            }
        };
        let n = sqlx::query(
            "UPDATE notification_requests SET delivery = $1, next_attempt_at = $2, channel = $3, \
             provider_id = COALESCE($4, provider_id), last_response = $5, delivered_at = $6, failed_at = $7 \
             WHERE id = $8 AND delivery = 'sending' AND attempts = $9",
        )
        .bind(delivery)
        .bind(next.map(to_millis))
        .bind(channel)
        .bind(&provider_id)
        .bind(&response)
        .bind(delivered.map(to_millis))
        .bind(failed.map(to_millis))
        .bind(req.id)
        .bind(req.attempt)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if n == 0 {
            w.rollback().await?;
            return Ok(false);
        }
        if req.reason == "verification" && !matches!(outcome, AttemptOutcome::Retry { .. }) {
            // The code is a secret: kept only until it is sent (or cannot be).
            let mut message = req.message.clone();
            if let Some(m) = message.as_object_mut() {
                m.remove("code");
            }
            sqlx::query("UPDATE notification_requests SET message = $1 WHERE id = $2")
                .bind(message.to_string())
                .bind(req.id)
                .execute(&mut *w.tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO notification_attempts (request_id, attempt, channel, started_at, finished_at, \
             outcome, http_status, provider_id, detail, retry_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(req.id)
        .bind(req.attempt)
        .bind(channel)
        .bind(to_millis(started_at))
        .bind(to_millis(now))
        .bind(outcome.name())
        .bind(outcome.status().map(i64::from))
        .bind(&provider_id)
        .bind(&response)
        .bind(next.map(to_millis))
        .execute(&mut *w.tx)
        .await?;
        if let Some(incident_id) = req.incident_id {
            let kind = match outcome {
                AttemptOutcome::Sent { .. } => "notification.sent",
                AttemptOutcome::Retry { .. } if moot => "notification.cancelled",
                AttemptOutcome::Retry { .. } => "notification.retrying",
                AttemptOutcome::Failed { .. } => "notification.failed",
            };
            incident_event(
                &mut w,
                now,
                &engine(),
                incident_id,
                kind,
                json!({
                    "request_id": req.id, "user_id": req.user_id,
                    "contact_method_id": req.contact_method_id, "channel": channel,
                    "attempt": req.attempt, "http_status": outcome.status(),
                    "provider_id": provider_id, "reason": response,
                    "retry_at": next, "level": req.message.get("level"),
                }),
            )
            .await?;
            if matches!(outcome, AttemptOutcome::Failed { .. }) && req.reason == "escalation" {
                self.after_final_failure(&mut w, req, incident_id, now)
                    .await?;
            }
        }
        w.commit().await?;
        Ok(true)
    }

    // Whether an incident's escalation is still running (not acknowledged,
    // resolved or exhausted), read in the caller's transaction.
    async fn escalation_running(
        &self,
        w: &mut WriteTx,
        incident_id: i64,
    ) -> Result<bool, StoreError> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM escalations WHERE incident_id = $1")
                .bind(incident_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        Ok(match state {
            Some(s) => parse_state(incident_id, &s)?.phase == Phase::Running,
            None => false,
        })
    }

    // Whether the user of a failed page is now out of reach at its step (every
    // request of theirs for that step failed or was cancelled); if so, says so
    // on the timeline and, while the escalation still waits to notify the step
    // after, makes that step due now. Decided on the job and escalation rows
    // locked (incident → job → escalation, the order everything takes them in),
    // so a runner notifying the next step meanwhile is not overtaken.
    async fn after_final_failure(
        &self,
        w: &mut WriteTx,
        req: &HandedNotification,
        incident_id: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (Some(level), Some(round)) = (
            req.message.get("level").and_then(|v| v.as_u64()),
            req.message.get("round").and_then(|v| v.as_u64()),
        ) else {
            return Ok(());
        };
        // The step is in the key: `esc:{incident}:s{step}:r…`.
        let Some(step) = req
            .idempotency_key
            .find(":r")
            .map(|i| &req.idempotency_key[..=i])
        else {
            return Ok(());
        };
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notification_requests \
             WHERE user_id = $1 AND reason = 'escalation' AND idempotency_key LIKE $2 \
             AND status <> 'cancelled' AND (delivery IS NULL OR delivery NOT IN ('failed', 'cancelled'))",
        )
        .bind(req.user_id)
        // Keys are letters, digits and colons: nothing LIKE would read as a wildcard.
        .bind(format!("{step}%"))
        .fetch_one(&mut *w.tx)
        .await?;
        if open > 0 {
            return Ok(());
        }
        sqlx::query(&format!(
            "SELECT id FROM jobs WHERE job_key = $1{}",
            self.for_update()
        ))
        .bind(job_key(incident_id))
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(mut state) = self.lock_escalation(w, incident_id).await? else {
            return Ok(());
        };
        let levels = state.policy.levels.len() as u64;
        let (next_level, next_round) = if level + 1 < levels {
            (level + 1, round)
        } else {
            (0, round + 1)
        };
        let waiting = state.phase == Phase::Running
            && state.level as u64 == next_level
            && u64::from(state.round) == next_round
            && next_round <= u64::from(state.policy.effective_repeat())
            && state.next_at.is_some_and(|at| at > now);
        incident_event(
            w,
            now,
            &engine(),
            incident_id,
            "notification.user_unreachable",
            json!({
                "user_id": req.user_id, "level": level, "round": round,
                "escalating_to": waiting.then_some(next_level),
            }),
        )
        .await?;
        if !waiting {
            return Ok(());
        }
        state.next_at = Some(now);
        self.save_escalation(w, incident_id, &state, now).await?;
        let payload = json!({ "incident_id": incident_id,
                              "unreachable": { "level": next_level, "at": to_millis(now),
                                               "user_id": req.user_id } });
        jobs::schedule(
            w,
            self.backend,
            "escalation",
            &job_key(incident_id),
            now,
            &payload,
            now,
        )
        .await
    }

    /// What the provider later said became of a message it accepted (a status
    /// callback: an SMS `delivered` or `undelivered`, a call `completed`, `busy`
    /// or `no-answer`), for the request with idempotency key `key`. A final
    /// failure fails the request (with its timeline entry and, being perhaps the
    /// last way to reach a paged user, failure escalation); `delivered` and
    /// `completed` are put on the timeline; other states are ignored. Returns
    /// whether anything was recorded; an unknown key is not found.
    /// `provider_id` names the message the report is about (Twilio's sid): a
    /// report about an earlier attempt's message, or about a request that is
    /// not `sent` (still being retried, or already failed), changes nothing.
    pub async fn record_provider_status(
        &self,
        key: &str,
        provider_id: &str,
        status: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        const DELIVERED: [&str; 2] = ["delivered", "completed"];
        const FAILED: [&str; 5] = ["undelivered", "failed", "busy", "no-answer", "canceled"];
        let known = DELIVERED.contains(&status) || FAILED.contains(&status);
        let row = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM notification_requests WHERE idempotency_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("notification {key}")))?;
        let delivery: Option<String> = row.try_get("delivery")?;
        let sent_as: Option<String> = row.try_get("provider_id")?;
        if !known
            || delivery.as_deref() != Some("sent")
            || sent_as.as_deref().is_some_and(|id| id != provider_id)
        {
            return Ok(false);
        }
        let req = HandedNotification::from_row(&row)?;
        let channel: Option<String> = row.try_get("channel")?;
        let channel = channel.unwrap_or_else(|| req.contact_kind.clone());
        let mut w = self.write().await?;
        if let Some(incident_id) = req.incident_id {
            self.lock_incident(&mut w, incident_id).await?;
        }
        let failed = FAILED.contains(&status);
        if failed {
            let reason = format!("{channel}: {status}");
            let n = sqlx::query(
                "UPDATE notification_requests SET delivery = 'failed', failed_at = $1, \
                 last_response = $2, next_attempt_at = NULL \
                 WHERE id = $3 AND delivery = 'sent'",
            )
            .bind(to_millis(now))
            .bind(&reason)
            .bind(req.id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            if n == 0 {
                w.rollback().await?;
                return Ok(false);
            }
        }
        if let Some(incident_id) = req.incident_id {
            incident_event(
                &mut w,
                now,
                &engine(),
                incident_id,
                if failed {
                    "notification.failed"
                } else {
                    "notification.delivered"
                },
                json!({
                    "request_id": req.id, "user_id": req.user_id,
                    "contact_method_id": req.contact_method_id, "channel": channel,
                    "attempt": req.attempt, "provider_status": status,
                    "reason": failed.then(|| format!("{channel}: {status}")),
                    "level": req.message.get("level"),
                }),
            )
            .await?;
            if failed && req.reason == "escalation" {
                self.after_final_failure(&mut w, &req, incident_id, now)
                    .await?;
            }
        }
        w.commit().await?;
        Ok(true)
    }

    /// An incident's notification requests with their delivery, oldest first.
    pub async fn incident_deliveries(
        &self,
        incident_id: i64,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        self.incident_exists(incident_id).await?;
        self.deliveries(
            "incident_id = $1 ORDER BY send_at, id",
            incident_id,
            i64::MAX,
        )
        .await
    }

    /// A user's most recent notification requests (at most `limit`), newest first.
    pub async fn user_deliveries(
        &self,
        user_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        self.row_by_id("id", "users", user_id, "user").await?;
        self.deliveries(
            "user_id = $1 ORDER BY send_at DESC, id DESC LIMIT $2",
            user_id,
            limit,
        )
        .await
    }

    async fn deliveries(
        &self,
        condition: &str,
        id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        let query = format!("SELECT {OUTBOX_COLUMNS} FROM notification_requests WHERE {condition}");
        let mut q = sqlx::query(&query).bind(id);
        if condition.contains("$2") {
            q = q.bind(limit);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut views = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
        if views.is_empty() {
            return Ok(views);
        }
        let ids: Vec<String> = views.iter().map(|v| v.id.to_string()).collect();
        let attempts = sqlx::query(&format!(
            "SELECT request_id, attempt, channel, started_at, finished_at, outcome, http_status, \
             provider_id, detail, retry_at FROM notification_attempts \
             WHERE request_id IN ({}) ORDER BY request_id, attempt",
            ids.join(", ")
        ))
        .fetch_all(&self.pool)
        .await?;
        for a in &attempts {
            let request_id: i64 = a.try_get("request_id")?;
            let Some(v) = views.iter_mut().find(|v| v.id == request_id) else {
                continue;
            };
            v.attempt_log.push(DeliveryAttempt {
                attempt: a.try_get("attempt")?,
                channel: a.try_get("channel")?,
                started_at: from_millis(a.try_get("started_at")?),
                finished_at: from_millis(a.try_get("finished_at")?),
                outcome: a.try_get("outcome")?,
                http_status: a.try_get("http_status")?,
                provider_id: a.try_get("provider_id")?,
                detail: a.try_get("detail")?,
                retry_at: ts(a, "retry_at")?,
            });
        }
        Ok(views)
    }
}
