//! The subscriber outbox. Telling subscribers about an update is a durable
//! fan-out job: each run, in one transaction, writes one outbox row (unique by
//! its idempotency key) for each of the next [`FANOUT_BATCH`] confirmed
//! subscribers that follow the post's components and have none yet, and runs
//! again until none is left. A large list is thus written in batches, never
//! in one long transaction, and a crash mid-way repeats nothing. The status
//! mail worker sends the rows at its configured pace.

use serde_json::json;
use tocsin_core::time::{to_millis, Timestamp};

use super::id_list;
use crate::jobs::HandedNotification;
use crate::tx::WriteTx;
use crate::{Backend, Store, StoreError};

/// Subscribers written to the outbox per fan-out transaction.
pub const FANOUT_BATCH: i64 = 500;

/// What a fan-out tells subscribers about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fanout {
    /// A published update.
    Update(i64),
    /// A maintenance starting soon.
    Reminder,
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
        Fanout::Reminder => (
            format!("status_fanout:reminder:{post_id}"),
            json!({ "page_id": page_id, "post_id": post_id, "kind": "reminder" }),
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
            None => (
                format!("d.kind = 'reminder' AND d.post_id = {post_id}"),
                format!("reminder:{post_id}"),
            ),
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
