//! Suppression: which held alerts has nothing holding any more? When a silence
//! runs out or a maintenance window ends while its alerts still fire, they open
//! their incidents then, not at their next repeat. The worker sleeps until the
//! earliest silence end (at most [`MAX_SLEEP`], which also bounds how late a
//! maintenance window's end or a settled flapping alert is noticed).

use std::sync::Arc;
use std::time::Duration;

use tocsin_core::settings::IncidentSettings;
use tocsin_core::time::{Clock, Timestamp};
use tocsin_store::Store;
use tokio::sync::watch;

/// Longest sleep while alerts are held.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// How long to sleep: until just past the next silence end, at most [`MAX_SLEEP`];
/// [`MAX_SLEEP`] too when nothing is held (a new hold is noticed within it).
pub fn sleep_for(now: Timestamp, review: Option<Option<Timestamp>>) -> Duration {
    match review {
        Some(Some(end)) => (end - now + chrono::Duration::milliseconds(1))
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP),
        _ => MAX_SLEEP,
    }
}

/// Runs until `shutdown` turns true (or its sender is dropped).
pub async fn run(
    store: Store,
    settings: Arc<IncidentSettings>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = clock.now();
        let pause = match store.next_suppression_review(now).await {
            Ok(None) => MAX_SLEEP,
            Ok(review) => {
                match store.release_expired_suppressions(&settings, now).await {
                    Ok(released) if !released.is_empty() => {
                        tracing::info!(alerts = released.len(), "held alerts released");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "releasing held alerts failed"),
                }
                sleep_for(clock.now(), review)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read held alerts");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            changed = shutdown.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::time::from_millis;

    #[test]
    fn sleeps_until_the_next_silence_end_and_no_longer_than_the_cap() {
        let now = from_millis(10_000);
        assert_eq!(
            sleep_for(now, Some(Some(from_millis(11_000)))),
            Duration::from_millis(1_001)
        );
        assert_eq!(
            sleep_for(now, Some(Some(from_millis(9_000)))),
            Duration::ZERO
        );
        assert_eq!(sleep_for(now, Some(None)), MAX_SLEEP);
        assert_eq!(sleep_for(now, None), MAX_SLEEP);
        assert_eq!(
            sleep_for(now, Some(Some(from_millis(100_000_000)))),
            MAX_SLEEP
        );
    }
}
