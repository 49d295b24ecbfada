//! Summary statistics over durations: count, mean and nearest-rank percentiles.
//!
//! The percentile is the nearest-rank one: of n values sorted ascending
//! x₁ ≤ … ≤ xₙ, the p-th percentile is x_r with r = ⌈p·n/100⌉ (and x₁ for
//! p = 0). It is always one of the observed values, never an interpolation, so
//! "p90 TTA is 4m 12s" names a real incident and is reproducible from a CSV
//! export by hand.

use serde::{Deserialize, Serialize};

/// The rank (1-based) the nearest-rank `p`-th percentile of `n` values sits at;
/// `None` for no values. `p` is clamped to 0..=100.
pub fn nearest_rank(n: u64, p: u32) -> Option<u64> {
    if n == 0 {
        return None;
    }
    let p = u64::from(p.min(100));
    // Integer ceiling: exact, where a float product would not always be.
    Some((p * n).div_ceil(100).max(1))
}

/// The nearest-rank `p`-th percentile of values sorted ascending; `None` if empty.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    let r = nearest_rank(sorted.len() as u64, p)?;
    sorted.get(usize::try_from(r).ok()? - 1).copied()
}

/// Count, mean and percentiles of a set of durations (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many values.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Smallest value.
    pub min_ms: i64,
    /// Median (nearest rank).
    pub p50_ms: i64,
    /// 90th percentile (nearest rank).
    pub p90_ms: i64,
    /// 95th percentile (nearest rank).
    pub p95_ms: i64,
    /// Largest value.
    pub max_ms: i64,
}

impl Summary {
    /// The summary of `values` (any order); `None` if there are none.
    pub fn of(mut values: Vec<i64>) -> Option<Summary> {
        values.sort_unstable();
        Summary::of_sorted(&values)
    }

    /// The summary of values already sorted ascending; `None` if empty.
    pub fn of_sorted(sorted: &[i64]) -> Option<Summary> {
        let (&min_ms, &max_ms) = (sorted.first()?, sorted.last()?);
        // The sum in i128 cannot overflow, so the mean is the one float division.
        let sum: i128 = sorted.iter().map(|&v| i128::from(v)).sum();
        Some(Summary {
            count: sorted.len() as u64,
            mean_ms: sum as f64 / sorted.len() as f64,
            min_ms,
            p50_ms: percentile(sorted, 50)?,
            p90_ms: percentile(sorted, 90)?,
            p95_ms: percentile(sorted, 95)?,
            max_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank_by_hand() {
        // n = 10: p50 → ⌈5⌉ = 5, p90 → ⌈9⌉ = 9, p95 → ⌈9.5⌉ = 10, p0 → 1, p100 → 10.
        assert_eq!(nearest_rank(10, 50), Some(5));
        assert_eq!(nearest_rank(10, 90), Some(9));
        assert_eq!(nearest_rank(10, 95), Some(10));
        assert_eq!(nearest_rank(10, 0), Some(1));
        assert_eq!(nearest_rank(10, 100), Some(10));
        // n = 7: p50 → ⌈3.5⌉ = 4, p90 → ⌈6.3⌉ = 7.
        assert_eq!(nearest_rank(7, 50), Some(4));
        assert_eq!(nearest_rank(7, 90), Some(7));
        assert_eq!(nearest_rank(0, 50), None);
        assert_eq!(nearest_rank(1, 1), Some(1));
    }

    #[test]
    fn summary_by_hand() {
        // 1..=10 seconds, shuffled: mean 55/10 = 5.5 s; p50 = x5 = 5 s, p90 = x9 = 9 s,
        // p95 = x10 = 10 s.
        let v = vec![7, 1, 10, 3, 5, 2, 9, 4, 8, 6]
            .into_iter()
            .map(|s| s * 1000)
            .collect();
        let s = Summary::of(v).unwrap();
        assert_eq!(s.count, 10);
        assert_eq!(s.mean_ms, 5500.0);
        assert_eq!(
            (s.min_ms, s.p50_ms, s.p90_ms, s.p95_ms, s.max_ms),
            (1000, 5000, 9000, 10000, 10000)
        );
        assert_eq!(Summary::of(Vec::new()), None);
    }

    proptest! {
        #[test]
        fn percentiles_are_monotonic_and_observed(
            mut v in proptest::collection::vec(-1_000_000i64..1_000_000, 1..200),
            p in 0u32..=100,
            q in 0u32..=100,
        ) {
            v.sort_unstable();
            let (lo, hi) = (p.min(q), p.max(q));
            let (a, b) = (percentile(&v, lo).unwrap(), percentile(&v, hi).unwrap());
            prop_assert!(a <= b);
            prop_assert!(v.contains(&a));
            // At least p% of the values are at or below the p-th percentile.
            let at_or_below = v.iter().filter(|&&x| x <= b).count() as u64;
            prop_assert!(at_or_below * 100 >= u64::from(hi) * v.len() as u64);
        }
    }
}
