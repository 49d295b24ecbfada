//! Heartbeats: which are overdue? Each overdue heartbeat goes down and raises its
//! alert (in the store, under a row lock, so several nodes never raise twice).
//! The worker sleeps until the earliest deadline in the table, or until a ping or
//! a change wakes it.

use std::sync::Arc;
use std::time::Duration;

use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, Timestamp};
use tocsin_store::{Store, StoreError};
use tokio::sync::{watch, Notify};

/// Longest sleep: another node sharing PostgreSQL may create a heartbeat with an
/// earlier deadline without waking this one.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Sleep after a failed check before trying again.
const RETRY: Duration = Duration::from_secs(5);

/// Marks every heartbeat whose deadline passed before `now` as down and raises its
/// alert. Returns how many went down; a repeated call at the same `now` finds none.
pub async fn check_heartbeats(
    store: &Store,
    settings: &IncidentSettings,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut down = 0;
    let mut first_error = None;
    for id in store.due_heartbeats(now).await? {
        // One heartbeat that cannot go down must not keep the others from it.
        match store.heartbeat_missed(id, settings, now).await {
            Ok(true) => {
                tracing::warn!(heartbeat_id = id, "heartbeat missed");
                down += 1;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(heartbeat_id = id, error = %e, "cannot mark heartbeat down");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if down == 0 => Err(e),
        _ => Ok(down),
    }
}

/// How long to sleep until `next` (the earliest deadline), at most [`MAX_SLEEP`].
/// A heartbeat is missed once `now` is strictly past its deadline, hence the 1 ms.
pub fn sleep_for(now: Timestamp, next: Option<Timestamp>) -> Duration {
    match next {
        None => MAX_SLEEP,
        Some(due) => (due - now + chrono_ms(1))
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP),
    }
}

fn chrono_ms(ms: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(ms)
}

/// Runs the heartbeat checker until `shutdown` turns true (or its sender is dropped).
pub async fn run(
    store: Store,
    settings: Arc<IncidentSettings>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = clock.now();
        let pause = match check_heartbeats(&store, &settings, now).await {
            Ok(_) => match store.next_heartbeat_due().await {
                Ok(next) => sleep_for(clock.now(), next),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the next heartbeat deadline");
                    RETRY
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "heartbeat check failed");
                RETRY
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
            // A dropped sender also means stop.
            changed = shutdown.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::time::from_millis;

    #[test]
    fn sleeps_until_just_past_the_deadline_and_no_longer_than_the_cap() {
        let now = from_millis(10_000);
        assert_eq!(
            sleep_for(now, Some(from_millis(12_000))),
            Duration::from_millis(2_001)
        );
        assert_eq!(sleep_for(now, Some(from_millis(5_000))), Duration::ZERO);
        assert_eq!(sleep_for(now, None), MAX_SLEEP);
        assert_eq!(sleep_for(now, Some(from_millis(10_000_000))), MAX_SLEEP);
    }
}
