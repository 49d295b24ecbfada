//! Write transactions: on SQLite, one at a time per process.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{Any, Transaction};
use tocsin_core::grouping::CompiledRules;
use tocsin_core::matcher::Matcher;
use tocsin_core::silence::FlappingRule;
use tokio::sync::OwnedMutexGuard;

use crate::{Backend, Store, StoreError};

/// A write transaction; dropping it without `commit` rolls back.
pub(crate) struct WriteTx {
    pub(crate) tx: Transaction<'static, Any>,
    /// What a transaction reads again and again (silences, windows, rules), read once.
    pub(crate) cache: TxCache,
    /// Set when the transaction schedules a job: committing wakes this node's job runner.
    pub(crate) wake_jobs: bool,
    jobs_wake: Arc<tokio::sync::Notify>,
    _guard: Option<OwnedMutexGuard<()>>,
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
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        if self.wake_jobs {
            // A stored permit: a runner that is busy right now still looks again.
            self.jobs_wake.notify_one();
        }
        Ok(())
    }

    /// Undoes the transaction now (rather than when the connection is next used).
    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Store {
    pub(crate) async fn write(&self) -> Result<WriteTx, StoreError> {
        let (guard, tx) = match self.backend {
            // IMMEDIATE takes SQLite's write lock up front: a deferred transaction
            // that read first could not upgrade while a RESTART checkpoint waits
            // for its snapshot, and would fail at once with SQLITE_BUSY instead
            // of waiting out the checkpoint.
            Backend::Sqlite => (
                Some(self.write_lock.clone().lock_owned().await),
                self.pool.begin_with("BEGIN IMMEDIATE").await?,
            ),
            Backend::Postgres => (None, self.pool.begin().await?),
        };
        Ok(WriteTx {
            tx,
            cache: TxCache::default(),
            wake_jobs: false,
            jobs_wake: self.jobs_wake.clone(),
            _guard: guard,
        })
    }
}
