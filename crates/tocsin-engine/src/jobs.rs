//! The job runner: which jobs are due, and which notification requests? It runs
//! every due job (escalation steps, each in its own transaction) and hands due
//! notification requests to [`Delivery`], then sleeps until the next due time,
//! or until a transaction scheduling a job wakes it (on this node at once; on
//! other nodes through PostgreSQL's NOTIFY). No polling cycle adds latency.
//!
//! Time comes from the [`Clock`]: tests call [`Runner::tick`] after moving a
//! fake clock, and hours of escalation run in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use tocsin_core::time::{Clock, Timestamp};
use tocsin_store::{Store, StoreError};
use tokio::sync::watch;

use crate::delivery::Delivery;

/// Longest sleep: bounds how late a job scheduled by another node is noticed
/// should its NOTIFY be lost.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Shortest pause after a tick that found nothing it could claim.
const IDLE_RECHECK: Duration = Duration::from_millis(50);
/// Notification requests handed per transaction.
const HAND_BATCH: i64 = 200;

/// What one [`Runner::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Jobs run.
    pub jobs: usize,
    /// Jobs that failed (each backs off and is tried again).
    pub failed: usize,
    /// Notification requests handed to delivery.
    pub handed: usize,
}

/// Runs due jobs and hands due notifications, on one node. Several runners (on
/// several nodes) may share one PostgreSQL: each job and request is claimed by one.
#[derive(Clone)]
pub struct Runner {
    store: Store,
    clock: Arc<dyn Clock>,
    delivery: Arc<dyn Delivery>,
}

impl Runner {
    /// A runner over `store`, taking time from `clock`, handing to `delivery`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, delivery: Arc<dyn Delivery>) -> Self {
        Runner {
            store,
            clock,
            delivery,
        }
    }

    /// Does everything due at the clock's current time.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        self.tick_at(self.clock.now()).await
    }

    /// Does everything due at `now`.
    pub async fn tick_at(&self, now: Timestamp) -> Result<Tick, StoreError> {
        let mut tick = Tick::default();
        while let Some(report) = self.store.run_due_job(now).await? {
            tick.jobs += 1;
            if report.error.is_some() {
                tick.failed += 1;
            }
            if !report.handed.is_empty() {
                tick.handed += report.handed.len();
                self.delivery.handed(&report.handed);
            }
        }
        // Overdue action items remind their owners, at most once a day each.
        let reminded = self.store.remind_overdue_action_items(now).await?;
        if !reminded.is_empty() {
            tick.handed += reminded.len();
            self.delivery.handed(&reminded);
        }
        loop {
            let handed = self.store.hand_due_notifications(now, HAND_BATCH).await?;
            if handed.is_empty() {
                break;
            }
            tick.handed += handed.len();
            self.delivery.handed(&handed);
        }
        Ok(tick)
    }

    /// Runs until `shutdown` turns true (or its sender is dropped).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let wake = self.store.jobs_wake();
        self.store.listen_for_jobs();
        // Schedules made before handoff notifications existed have no job yet.
        match self.store.arm_handoff_jobs(self.clock.now()).await {
            Ok(n) => tracing::info!(added = n, "handoff notification jobs armed"),
            Err(e) => tracing::error!(error = %e, "cannot arm handoff notification jobs"),
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match self.tick().await {
                Ok(tick) => match self.store.next_work_due().await {
                    // Due work this tick could not claim is another node's for the
                    // moment: look again shortly rather than spin on it.
                    Ok(next) if tick == Tick::default() => {
                        match sleep_for(self.clock.now(), next) {
                            p if p.is_zero() => IDLE_RECHECK,
                            p => p,
                        }
                    }
                    Ok(next) => sleep_for(self.clock.now(), next),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read when the next job is due");
                        Duration::from_secs(1)
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "job runner failed; trying again");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
                changed = shutdown.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// How long to sleep until `next`, at most [`MAX_SLEEP`].
pub fn sleep_for(now: Timestamp, next: Option<Timestamp>) -> Duration {
    match next {
        None => MAX_SLEEP,
        Some(due) => (due - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::time::from_millis;

    #[test]
    fn sleeps_until_the_next_due_time_and_no_longer_than_the_cap() {
        let now = from_millis(10_000);
        assert_eq!(
            sleep_for(now, Some(from_millis(12_500))),
            Duration::from_millis(2_500)
        );
        assert_eq!(sleep_for(now, Some(from_millis(1_000))), Duration::ZERO);
        assert_eq!(sleep_for(now, None), MAX_SLEEP);
        assert_eq!(sleep_for(now, Some(from_millis(10_000_000))), MAX_SLEEP);
    }
}
