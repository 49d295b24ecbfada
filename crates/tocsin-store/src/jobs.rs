//! The durable job table and the notification outbox's hand-off.
//!
//! A job is a row with a `run_at`, unique by `job_key`. Whoever runs it claims
//! it inside a write transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so a
//! second node passes over it; SQLite writers are one at a time already), does
//! its work, and moves `run_at` on or deletes the row in that same transaction:
//! a crash before the commit leaves the job due, a crash after leaves it done,
//! so a step is neither lost nor repeated.
//!
//! Scheduling a job wakes this node's runner when the transaction commits, and
//! other nodes through `NOTIFY tocsin_jobs` (PostgreSQL), so due work starts in
//! milliseconds rather than at the next poll.

use chrono::Duration;
use serde::Serialize;
use sqlx::Row;
use tocsin_core::time::{from_millis, to_millis, Timestamp};
use utoipa::ToSchema;

use crate::tx::WriteTx;
use crate::{Backend, Store, StoreError};

/// The channel other nodes' job runners listen on.
pub const JOBS_CHANNEL: &str = "tocsin_jobs";

/// Longest pause before a failing job is tried again.
const MAX_BACKOFF_SECS: i64 = 600;

/// A claimed job.
struct Job {
    id: i64,
    kind: String,
    key: String,
    payload: String,
    attempts: i64,
}

/// What running one due job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's kind (`escalation`, …).
    pub kind: String,
    /// Its key, e.g. `escalation:42`.
    pub key: String,
    /// Notification requests it handed to delivery (committed as handed).
    pub handed: Vec<HandedNotification>,
    /// Why it failed, when it did (it is tried again later, backing off).
    pub error: Option<String>,
}

/// What the job table and the outbox hold, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct JobStats {
    /// (kind, jobs, overdue by more than a minute, failing).
    pub kinds: Vec<(String, i64, i64, i64)>,
    /// Notification requests waiting for their time.
    pub notifications_scheduled: i64,
    /// Handed notification requests by delivery state (`sending`, `pending`, `sent`, `failed`, `cancelled`).
    pub deliveries: Vec<(String, i64)>,
    /// Of those, due more than a minute ago.
    pub notifications_overdue: i64,
}

/// A notification request handed to delivery: the outbox row, now `handed`.
///
/// Delivery must treat `idempotency_key` as the identity of the message: after
/// a crash between the hand-off commit and the send, the same row is handed
/// again, and the key is how a second send is refused.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HandedNotification {
    /// Outbox row id.
    pub id: i64,
    /// Unique per (incident, step, user, contact method, rule).
    pub idempotency_key: String,
    /// Why: `escalation`, `handoff_reminder`, `shift_started`, `verification` or `test`.
    pub reason: String,
    /// The incident, for escalation notifications.
    pub incident_id: Option<i64>,
    /// Who to reach.
    pub user_id: i64,
    /// Which of their contact methods.
    pub contact_method_id: i64,
    /// `email`, `sms`, `voice`, `push`, `chat` or `webhook`.
    pub contact_kind: String,
    /// Where, as the contact method said when the request was made.
    pub address: String,
    /// What to say, by reason: incident number, title, urgency, level; schedule and
    /// shift times; a verification code (delivery clears it once sent); a method's label.
    pub message: serde_json::Value,
    /// When it was due.
    pub send_at: chrono::DateTime<chrono::Utc>,
    /// When it was handed over.
    pub handed_at: chrono::DateTime<chrono::Utc>,
    /// The attempt the holder of this row may make (1 for the first); recording
    /// its outcome names it, so a sender whose lease ran out cannot overwrite
    /// the one that took over.
    pub attempt: i64,
    /// Until when the holder may send it; past this, another sender takes it over.
    pub lease_until: chrono::DateTime<chrono::Utc>,
}

pub(crate) const OUTBOX_COLUMNS: &str = "id, idempotency_key, reason, incident_id, user_id, \
     contact_method_id, contact_kind, address, message, send_at, status, handed_at, cancelled_at, created_at, \
     delivery, channel, attempts, next_attempt_at, provider_id, last_response, delivered_at, failed_at";

impl HandedNotification {
    pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
        let message: String = r.try_get("message")?;
        Ok(HandedNotification {
            id: r.try_get("id")?,
            idempotency_key: r.try_get("idempotency_key")?,
            reason: r.try_get("reason")?,
            incident_id: r.try_get("incident_id")?,
            user_id: r.try_get("user_id")?,
            contact_method_id: r.try_get("contact_method_id")?,
            contact_kind: r.try_get("contact_kind")?,
            address: r.try_get("address")?,
            message: serde_json::from_str(&message).unwrap_or(serde_json::Value::Null),
            send_at: from_millis(r.try_get("send_at")?),
            handed_at: from_millis(
                r.try_get::<Option<i64>, _>("handed_at")?
                    .unwrap_or_default(),
            ),
            attempt: r.try_get("attempts")?,
            lease_until: from_millis(
                r.try_get::<Option<i64>, _>("next_attempt_at")?
                    .unwrap_or_default(),
            ),
        })
    }
}

/// Schedules (or moves) job `key` to run at `run_at`, inside the caller's transaction.
pub(crate) async fn schedule(
    w: &mut WriteTx,
    backend: Backend,
    kind: &str,
    key: &str,
    run_at: Timestamp,
    payload: &serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO jobs (kind, job_key, run_at, payload, attempts, created_at) VALUES ($1, $2, $3, $4, 0, $5) \
         ON CONFLICT (job_key) DO UPDATE SET run_at = excluded.run_at, payload = excluded.payload, \
         attempts = 0, last_error = NULL",
    )
    .bind(kind)
    .bind(key)
    .bind(to_millis(run_at))
    .bind(payload.to_string())
    .bind(to_millis(now))
    .execute(&mut *w.tx)
    .await?;
    if backend == Backend::Postgres {
        // Delivered to listening nodes when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(&mut *w.tx)
            .await?;
    }
    w.wake_jobs = true;
    Ok(())
}

impl Store {
    /// Runs the earliest job due at `now`, if any, in one transaction; `None`
    /// when nothing is due (or every due job is being run by another node).
    pub async fn run_due_job(&self, now: Timestamp) -> Result<Option<JobReport>, StoreError> {
        if !self
            .any_due("SELECT 1 FROM jobs WHERE run_at <= $1 LIMIT 1", now)
            .await?
        {
            return Ok(None);
        }
        let mut w = self.write().await?;
        let row = sqlx::query(&format!(
            "SELECT id, kind, job_key, payload, attempts FROM jobs WHERE run_at <= $1 \
             ORDER BY run_at, id LIMIT 1{}",
            self.skip_locked()
        ))
        .bind(to_millis(now))
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else {
            w.rollback().await?;
            return Ok(None);
        };
        let job = Job {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            key: row.try_get("job_key")?,
            payload: row.try_get("payload")?,
            attempts: row.try_get("attempts")?,
        };
        let result = match job.kind.as_str() {
            "escalation" => self.run_escalation_job(&mut w, &job.payload, now).await,
            "handoff" => self.run_handoff_job(&mut w, &job.payload, now).await,
            "status_maintenance" => {
                self.run_status_maintenance_job(&mut w, &job.payload, now)
                    .await
            }
            "status_fanout" => self.run_status_fanout_job(&mut w, &job.payload, now).await,
            "workflow_schedule" => {
                self.run_workflow_schedule_job(&mut w, &job.payload, now)
                    .await
            }
            "workflow_idle" => self.run_workflow_idle_job(&mut w, &job.payload, now).await,
            other => Err(StoreError::Config(format!("unknown job kind `{other}`"))),
        };
        let (handed, error) = match result {
            Ok((next, handed)) => {
                match next {
                    Some(at) => {
                        sqlx::query("UPDATE jobs SET run_at = $1, attempts = 0, last_error = NULL WHERE id = $2")
                            .bind(to_millis(at))
                            .bind(job.id)
                            .execute(&mut *w.tx)
                            .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM jobs WHERE id = $1")
                            .bind(job.id)
                            .execute(&mut *w.tx)
                            .await?;
                    }
                }
                w.commit().await?;
                (handed, None)
            }
            Err(e) => {
                w.rollback().await?;
                let message = e.to_string();
                tracing::error!(job = %job.key, attempts = job.attempts + 1, error = %message, "job failed; backing off");
                self.job_failed(&job, &message, now).await?;
                (Vec::new(), Some(message))
            }
        };
        Ok(Some(JobReport {
            kind: job.kind,
            key: job.key,
            handed,
            error,
        }))
    }

    // Counts the failure and moves the job on: 2 s, 4 s, … up to ten minutes.
    async fn job_failed(&self, job: &Job, error: &str, now: Timestamp) -> Result<(), StoreError> {
        let backoff = 2i64
            .saturating_pow(job.attempts.clamp(0, 30) as u32 + 1)
            .min(MAX_BACKOFF_SECS);
        let mut w = self.write().await?;
        sqlx::query(
            "UPDATE jobs SET attempts = attempts + 1, last_error = $1, run_at = $2 \
             WHERE id = $3 AND run_at <= $4",
        )
        .bind(error.chars().take(2000).collect::<String>())
        .bind(to_millis(now + Duration::seconds(backoff)))
        .bind(job.id)
        // Moved on since (run by another node, or escalated now): not pushed back.
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Hands scheduled notification requests due at `now` to delivery (at most
    /// `limit`, oldest first): they are committed as handed and returned.
    pub async fn hand_due_notifications(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<HandedNotification>, StoreError> {
        let due = "SELECT 1 FROM notification_requests WHERE status = 'scheduled' AND send_at <= $1 LIMIT 1";
        if !self.any_due(due, now).await? {
            return Ok(Vec::new());
        }
        let mut w = self.write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM notification_requests WHERE status = 'scheduled' AND send_at <= $1 \
             ORDER BY send_at, id LIMIT $2{}",
            self.skip_locked()
        ))
        .bind(to_millis(now))
        .bind(limit)
        .fetch_all(&mut *w.tx)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // A request waits minutes: it goes to the contact method's address as it
            // is now, and not at all to a method deleted, or unverified (a new
            // address), or a user deactivated since.
            let gone = sqlx::query(
                "UPDATE notification_requests SET status = 'cancelled', cancelled_at = $1 \
                 WHERE id = $2 AND status = 'scheduled' AND (\
                   NOT EXISTS (SELECT 1 FROM contact_methods c \
                     WHERE c.id = notification_requests.contact_method_id AND c.verified = 1) \
                   OR EXISTS (SELECT 1 FROM users u WHERE u.id = notification_requests.user_id AND u.active = 0))",
            )
            .bind(to_millis(now))
            .bind(id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            if gone > 0 {
                continue;
            }
            let row = sqlx::query(&format!(
                "UPDATE notification_requests SET status = 'handed', handed_at = $1, \
                 delivery = 'sending', attempts = 1, next_attempt_at = $3, \
                 address = COALESCE((SELECT c.address FROM contact_methods c \
                   WHERE c.id = notification_requests.contact_method_id), address) \
                 WHERE id = $2 AND status = 'scheduled' RETURNING {OUTBOX_COLUMNS}"
            ))
            .bind(to_millis(now))
            .bind(id)
            .bind(to_millis(now) + self.delivery_lease_ms)
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(row) = row {
                out.push(HandedNotification::from_row(&row)?);
            }
        }
        w.commit().await?;
        Ok(out)
    }

    // Every tick ends by finding nothing due: asked of a reader, not under the
    // write lock, which the alert writer needs meanwhile.
    pub(crate) async fn any_due(&self, query: &str, now: Timestamp) -> Result<bool, StoreError> {
        Ok(sqlx::query(query)
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// When the next job or scheduled notification falls due, if anything is waiting.
    pub async fn next_work_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let job: Option<i64> = sqlx::query_scalar("SELECT MIN(run_at) FROM jobs")
            .fetch_one(&self.pool)
            .await?;
        let sent: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(send_at) FROM notification_requests WHERE status = 'scheduled'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(match (job, sent) {
            (Some(a), Some(b)) => Some(from_millis(a.min(b))),
            (a, b) => a.or(b).map(from_millis),
        })
    }

    /// For `/metrics`: per job kind (kind, jobs, overdue, failing), and the
    /// notification requests scheduled (all, overdue). Overdue means due more
    /// than a minute before `now`: the runners are behind or stuck.
    pub async fn job_stats(&self, now: Timestamp) -> Result<JobStats, StoreError> {
        let late = to_millis(now - Duration::minutes(1));
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n, COUNT(CASE WHEN run_at < $1 THEN 1 END) AS overdue, \
             COUNT(CASE WHEN attempts > 0 THEN 1 END) AS failing FROM jobs GROUP BY kind ORDER BY kind",
        )
        .bind(late)
        .fetch_all(&self.pool)
        .await?;
        let kinds = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("kind")?,
                    r.try_get("n")?,
                    r.try_get("overdue")?,
                    r.try_get("failing")?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(CASE WHEN send_at < $1 THEN 1 END) AS overdue \
             FROM notification_requests WHERE status = 'scheduled'",
        )
        .bind(late)
        .fetch_one(&self.pool)
        .await?;
        let deliveries = sqlx::query(
            "SELECT delivery, COUNT(*) AS n FROM notification_requests \
             WHERE delivery IS NOT NULL GROUP BY delivery ORDER BY delivery",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("delivery")?, r.try_get("n")?)))
        .collect::<Result<_, StoreError>>()?;
        Ok(JobStats {
            kinds,
            notifications_scheduled: row.try_get("n")?,
            notifications_overdue: row.try_get("overdue")?,
            deliveries,
        })
    }

    /// Kicked when a transaction that scheduled a job commits on this node.
    pub fn jobs_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.jobs_wake.clone()
    }

    /// On PostgreSQL, relays other nodes' `NOTIFY tocsin_jobs` to
    /// [`Store::jobs_wake`] until the pool closes; reconnects after errors.
    /// Nothing to do on SQLite (one node).
    pub fn listen_for_jobs(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let (url, wake, pool) = (
            self.url.to_string(),
            self.jobs_wake.clone(),
            self.pool.clone(),
        );
        tokio::spawn(async move {
            while !pool.is_closed() {
                match sqlx::postgres::PgListener::connect(&url).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(JOBS_CHANNEL).await {
                            tracing::warn!(error = %e, "cannot LISTEN for jobs");
                        } else {
                            // Whatever was notified while not listening: look again.
                            wake.notify_one();
                            loop {
                                match listener.try_recv().await {
                                    Ok(Some(_)) => wake.notify_one(),
                                    // The connection dropped: anything sent meanwhile is lost,
                                    // so look at the table again.
                                    Ok(None) => wake.notify_one(),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "job notifications lost; reconnecting");
                                        break;
                                    }
                                }
                                if pool.is_closed() {
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot connect to LISTEN for jobs"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }
}
