//! Group commit for inbound alerts: one writer drains every queued notification
//! into one transaction and one fsync, then answers each sender. A 2xx still means
//! committed; many requests just share the commit. Each notification runs inside
//! its own savepoint, so one that is refused leaves the others in the batch intact.

use std::sync::Arc;

use tocsin_core::alert::AlertEvent;
use tocsin_core::model::IntegrationKey;
use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::alerts::AlertOutcome;
use crate::tx::WriteTx;
use crate::{Store, StoreError};

/// Most notifications one transaction takes.
const MAX_BATCH: usize = 512;
/// Notifications that may wait for the writer; senders wait beyond that.
const QUEUE: usize = 4096;

/// One inbound event on its way to the store: the service routing chose for it,
/// the normalized event, and the raw payload it came from.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Service the event was routed to (the key's own service unless a routing rule chose another).
    pub service_id: i64,
    /// The normalized event.
    pub event: AlertEvent,
    /// The payload as received, kept (bounded) for inspection.
    pub raw: String,
}

impl Inbound {
    /// An event for the integration key's own service.
    pub fn new(key: &IntegrationKey, event: AlertEvent, raw: String) -> Inbound {
        Inbound {
            service_id: key.service_id,
            event,
            raw,
        }
    }
}

struct Job {
    key: IntegrationKey,
    events: Vec<Inbound>,
    reply: oneshot::Sender<Result<Vec<AlertOutcome>, StoreError>>,
}

/// Hands notifications to the group-commit writer. Cheap to clone.
#[derive(Clone)]
pub struct AlertWriter {
    tx: mpsc::Sender<Job>,
}

impl AlertWriter {
    /// Applies a notification's events; returns once they are committed.
    pub async fn submit(
        &self,
        key: IntegrationKey,
        events: Vec<Inbound>,
    ) -> Result<Vec<AlertOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { key, events, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the alert writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the alert writer has stopped".into()))?
    }
}

impl Store {
    /// Starts the group-commit writer for alerts (one per process).
    pub fn alert_writer(
        &self,
        settings: Arc<IncidentSettings>,
        clock: Arc<dyn Clock>,
    ) -> AlertWriter {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let store = self.clone();
        tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.recv().await {
                jobs.push(first);
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                store.commit_batch(&settings, &mut jobs, clock.now()).await;
            }
        });
        AlertWriter { tx }
    }

    async fn commit_batch(&self, settings: &IncidentSettings, jobs: &mut Vec<Job>, now: Timestamp) {
        let mut results: Vec<Result<Vec<AlertOutcome>, StoreError>> =
            Vec::with_capacity(jobs.len());
        let outcome = async {
            let mut w = self.write().await?;
            for job in jobs.iter() {
                results.push(self.apply_job(&mut w, settings, job, now).await?);
            }
            w.commit().await
        }
        .await;
        match outcome {
            Ok(()) => {
                for (job, result) in jobs.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                // Nothing of the batch is committed: every sender hears so and may retry.
                tracing::error!(error = %e, jobs = jobs.len(), "alert batch not committed");
                for job in jobs.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Unavailable(format!("not committed: {e}"))));
                }
            }
        }
    }

    // Ok(Err(_)): the job is refused and rolled back to its savepoint; the batch goes on.
    // Err(_): the transaction itself failed; the whole batch is lost.
    async fn apply_job(
        &self,
        w: &mut WriteTx,
        settings: &IncidentSettings,
        job: &Job,
        now: Timestamp,
    ) -> Result<Result<Vec<AlertOutcome>, StoreError>, StoreError> {
        for attempt in 0..2 {
            sqlx::query("SAVEPOINT tocsin_job")
                .execute(&mut *w.tx)
                .await?;
            let mut outcomes = Vec::with_capacity(job.events.len());
            let mut failed = None;
            for inbound in &job.events {
                match self.apply_alert(w, settings, &job.key, inbound, now).await {
                    Ok(o) => outcomes.push(o),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => {
                    self.record_repeats(w, &job.key, &outcomes, now).await?;
                    sqlx::query("RELEASE SAVEPOINT tocsin_job")
                        .execute(&mut *w.tx)
                        .await?;
                    return Ok(Ok(outcomes));
                }
                Some(e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT tocsin_job")
                        .execute(&mut *w.tx)
                        .await?;
                    sqlx::query("RELEASE SAVEPOINT tocsin_job")
                        .execute(&mut *w.tx)
                        .await?;
                    // A concurrent node opened the same alert first (PostgreSQL): once more finds it.
                    let retry = matches!(&e, StoreError::Database(sqlx::Error::Database(d)) if d.is_unique_violation());
                    if !(retry && attempt == 0) {
                        return Ok(Err(e));
                    }
                }
            }
        }
        Ok(Err(StoreError::Unavailable("retry limit".into())))
    }
}

impl Store {
    // Repeats change only counters: one event per notification lists them, which
    // keeps the log complete without writing a row per repeated alert.
    async fn record_repeats(
        &self,
        w: &mut WriteTx,
        key: &IntegrationKey,
        outcomes: &[AlertOutcome],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let ids: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                AlertOutcome::Repeated { alert_id } => Some(*alert_id),
                _ => None,
            })
            .collect();
        let Some(first) = ids.first().copied() else {
            return Ok(());
        };
        let actor = crate::events::Actor {
            user_id: None,
            name: format!("{} (integration key)", key.name),
        };
        let data = serde_json::json!({ "alert_ids": ids, "service_id": key.service_id });
        crate::events::append(
            w,
            crate::events::NewEvent {
                at: now,
                actor: &actor,
                entity: "alert",
                entity_id: first,
                incident_id: None,
                kind: "alert.repeated",
                data,
            },
        )
        .await?;
        Ok(())
    }
}
