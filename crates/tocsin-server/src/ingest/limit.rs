//! Per-integration-key rate limits: a token bucket per key, refilled from the
//! injected clock, charged one token per alert. A key over its limit gets 429 with
//! `Retry-After`, so one noisy source cannot crowd out the others.

use std::collections::HashMap;
use std::sync::Mutex;

use tocsin_core::time::Timestamp;

/// Events per second and burst allowed per integration key; zero rate means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained events per second.
    pub per_second: f64,
    /// Events that may arrive at once.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 1000.0,
            burst: 10_000.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// The buckets of one node.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl Limiter {
    /// Charges `events` to `key_id`; on refusal returns the seconds to wait.
    pub fn charge(
        &self,
        limit: RateLimit,
        key_id: i64,
        events: usize,
        now: Timestamp,
    ) -> Result<(), u64> {
        if limit.per_second <= 0.0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let b = buckets.entry(key_id).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        let elapsed = (now - b.at).num_milliseconds().max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * limit.per_second).min(limit.burst);
        b.at = now;
        let need = events as f64;
        if need <= b.tokens {
            b.tokens -= need;
            Ok(())
        } else {
            // A notification larger than the burst can never pass; say so with the longest wait.
            let missing = need.min(limit.burst) - b.tokens;
            Err((missing / limit.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_core::time::from_millis;

    #[test]
    fn bucket_refills_with_time() {
        let l = Limiter::default();
        let limit = RateLimit {
            per_second: 10.0,
            burst: 20.0,
        };
        let t0 = from_millis(0);
        assert_eq!(l.charge(limit, 1, 20, t0), Ok(()));
        assert_eq!(l.charge(limit, 1, 1, t0), Err(1));
        assert_eq!(
            l.charge(limit, 2, 5, t0),
            Ok(()),
            "keys are limited separately"
        );
        assert_eq!(l.charge(limit, 1, 10, from_millis(1000)), Ok(()));
        assert_eq!(l.charge(limit, 1, 15, from_millis(1000)), Err(2));
        assert_eq!(
            l.charge(
                RateLimit {
                    per_second: 0.0,
                    burst: 0.0
                },
                1,
                1_000_000,
                t0
            ),
            Ok(())
        );
    }
}
