//! Write transactions: on SQLite, one at a time per process.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{Any, AnyConnection, Transaction};
use tocsin_core::grouping::CompiledRules;
use tocsin_core::matcher::Matcher;
use tocsin_core::silence::FlappingRule;
use tokio::sync::OwnedMutexGuard;

use crate::{Backend, Store, StoreError};

/// A write transaction; dropping it without `commit` rolls back.
pub(crate) struct WriteTx {
    pub(crate) tx: TxSlot,
    /// What a transaction reads again and again (silences, windows, rules), read once.
    pub(crate) cache: TxCache,
    /// Set when the transaction schedules a job: committing wakes this node's job runner.
    pub(crate) wake_jobs: bool,
    jobs_wake: Arc<tokio::sync::Notify>,
    /// Set when the transaction wrote subscriber mail: committing wakes this node's status mail worker.
    pub(crate) wake_status_mail: bool,
    status_mail_wake: Arc<tokio::sync::Notify>,
    /// Set when the transaction changed what a status page shows: committing tells this node's page cache.
    pub(crate) status_changed: bool,
    status_watch: Arc<tokio::sync::watch::Sender<u64>>,
    /// Trigger kinds to queue, the cause of the changes, and workflow wake-ups.
    pub(crate) workflow: crate::workflows::TxHooks,
    _guard: Option<OwnedMutexGuard<()>>,
}

/// The open transaction; `&mut *w.tx` is its connection. Taken out by `commit`
/// and `rollback`; still there when the `WriteTx` is dropped unfinished.
pub(crate) struct TxSlot(Option<Transaction<'static, Any>>);

impl std::ops::Deref for TxSlot {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.0.as_deref().expect("transaction already finished")
    }
}

impl std::ops::DerefMut for TxSlot {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.0.as_deref_mut().expect("transaction already finished")
    }
}

/// Dropped unfinished — an error returned early, or the future cancelled (a client
/// hanging up, shutdown): the rollback runs now, on its own task, and the SQLite
/// write lock is held until it has. Left to sqlx, the rollback would wait until the
/// connection is next used, and that next user would find the connection still
/// inside this transaction.
impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(tx) = self.tx.0.take() else { return };
        let guard = self._guard.take();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = tx.rollback().await {
                        tracing::warn!(error = %e, "rolling back an abandoned transaction failed");
                    }
                    drop(guard);
                });
            }
            Err(_) => drop((tx, guard)),
        }
    }
}

/// Configuration read inside one write transaction, kept for its duration: a batch
/// of new alerts reads silences, maintenance windows and service rules once, not per
/// alert. Nothing written in the same transaction changes them.
/// A silence in force: id, service scope (none: every service), matchers.
pub(crate) type ActiveSilence = (i64, Option<i64>, Vec<Matcher>);

/// A maintenance window active now: id, service ids.
pub(crate) type ActiveWindow = (i64, Vec<i64>);

#[derive(Default)]
pub(crate) struct TxCache {
    /// Silences in force at the time given: (id, service scope, matchers).
    pub(crate) silences: Option<(i64, Arc<Vec<ActiveSilence>>)>,
    /// Maintenance windows active at the time given: (id, service ids).
    pub(crate) windows: Option<(i64, Arc<Vec<ActiveWindow>>)>,
    /// Flapping rules by service.
    pub(crate) flapping: HashMap<i64, Option<FlappingRule>>,
    /// Compiled alert rules by service.
    pub(crate) rules: HashMap<i64, Arc<CompiledRules>>,
    /// (service, dedup key) the batch's bulk statement found with no open alert; the
    /// first event for one skips looking for a repeat again.
    pub(crate) not_open: std::collections::HashSet<(i64, String)>,
}

impl WriteTx {
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx.0.take() {
            tx.commit().await?;
        }
        if self.wake_jobs {
            // A stored permit: a runner that is busy right now still looks again.
            self.jobs_wake.notify_one();
        }
        if self.wake_status_mail {
            self.status_mail_wake.notify_one();
        }
        if self.status_changed {
            self.status_watch.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.workflow.committed();
        Ok(())
    }

    /// Undoes the transaction now (rather than when the connection is next used).
    pub(crate) async fn rollback(mut self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx.0.take() {
            tx.rollback().await?;
        }
        Ok(())
    }
}

impl Store {
    // BEGIN IMMEDIATE on its own task: a caller cancelled while it runs (a client
    // hanging up) would otherwise leave a pooled connection inside a transaction
    // that nothing rolls back, holding SQLite's write lock for good. Here a
    // transaction nobody is waiting for any more is rolled back by the task.
    async fn begin_immediate(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let pool = self.pool.clone();
        let (send, receive) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let begun = pool.begin_with("BEGIN IMMEDIATE").await;
            if let Err(Ok(orphan)) = send.send(begun) {
                let _ = orphan.rollback().await;
            }
        });
        receive
            .await
            .map_err(|_| StoreError::Unavailable("the transaction could not begin".into()))?
            .map_err(StoreError::from)
    }

    pub(crate) async fn write(&self) -> Result<WriteTx, StoreError> {
        let (guard, tx) = match self.backend {
            // IMMEDIATE takes SQLite's write lock up front: a deferred transaction
            // that read first could not upgrade while a RESTART checkpoint waits
            // for its snapshot, and would fail at once with SQLITE_BUSY instead
            // of waiting out the checkpoint.
            Backend::Sqlite => {
                let guard = self.write_lock.clone().lock_owned().await;
                (Some(guard), self.begin_immediate().await?)
            }
            Backend::Postgres => (None, self.pool.begin().await?),
        };
        Ok(WriteTx {
            tx: TxSlot(Some(tx)),
            cache: TxCache::default(),
            wake_jobs: false,
            jobs_wake: self.jobs_wake.clone(),
            wake_status_mail: false,
            status_mail_wake: self.status_mail_wake.clone(),
            status_changed: false,
            status_watch: self.status_watch.clone(),
            workflow: crate::workflows::TxHooks::new(&self.workflows, self.cause.clone()),
            _guard: guard,
        })
    }
}
