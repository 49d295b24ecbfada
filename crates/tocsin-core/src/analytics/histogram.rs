//! A fixed-bucket logarithmic histogram of durations, small enough to keep one
//! per (day, service, severity) as a rollup and merge at query time, so
//! percentiles over a million incidents never read the incidents.
//!
//! Buckets are log-linear (as in HdrHistogram): values below 64 ms have a bucket
//! each; above, every power of two [2ᵉ, 2ᵉ⁺¹) is cut into 32 equal buckets of
//! width 2ᵉ⁻⁵. The buckets are the same for every histogram ever made, which is
//! what makes merging exact (counts add) and associative.
//!
//! Error bound: a percentile is reported as the midpoint of the bucket holding
//! the nearest-rank value x (clamped to the recorded min and max). x lies in
//! that bucket, of width w = 2ᵉ⁻⁵ ≤ x/32, so the estimate is within w/2 ≤ x/64
//! (under 1.6 %) of the exact nearest-rank percentile, and exact below 64 ms.
//! Count, mean, min and max are exact.

use serde::{Deserialize, Serialize};

use super::stats::{nearest_rank, Summary};

/// Sub-buckets per power of two, as bits: 2⁵ = 32.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// The highest bucket index (values near u64::MAX).
pub const MAX_BUCKET: u16 = ((64 - SUB_BITS) * (SUB as u32) + (SUB as u32) - 1) as u16;

/// The bucket a (non-negative) value falls in.
pub fn bucket_of(v: u64) -> u16 {
    if v < SUB {
        return v as u16;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    ((u64::from(e - SUB_BITS + 1)) * SUB + sub) as u16
}

/// The smallest and largest value (inclusive) bucket `index` holds.
pub fn bucket_bounds(index: u16) -> (u64, u64) {
    let i = u64::from(index.min(MAX_BUCKET));
    if i < SUB {
        return (i, i);
    }
    let e = (i / SUB) as u32 + SUB_BITS - 1;
    let lo = (1u64 << e) + ((i % SUB) << (e - SUB_BITS));
    (lo, lo + ((1u64 << (e - SUB_BITS)) - 1))
}

/// A mergeable, serializable histogram of durations in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HistogramParts", into = "HistogramParts")]
pub struct DurationHistogram {
    count: u64,
    sum_ms: u64,
    min_ms: u64,
    max_ms: u64,
    /// (bucket, count) for non-empty buckets, by bucket.
    buckets: Vec<(u16, u64)>,
}

/// The stored form of a histogram, checked when read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramParts {
    /// Values recorded.
    pub count: u64,
    /// Their sum (saturating).
    pub sum_ms: u64,
    /// Smallest value (0 when empty).
    pub min_ms: u64,
    /// Largest value (0 when empty).
    pub max_ms: u64,
    /// Non-empty buckets as (index, count), by index.
    pub buckets: Vec<(u16, u64)>,
}

/// Why stored histogram data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    /// Buckets out of order, repeated, empty or beyond the last.
    #[error("histogram buckets must be distinct non-empty indexes up to {MAX_BUCKET}, in order")]
    Buckets,
    /// The bucket counts do not add up to the count, or min/max disagree with them.
    #[error("histogram count, min or max disagree with its buckets")]
    Totals,
}

impl TryFrom<HistogramParts> for DurationHistogram {
    type Error = HistogramError;

    fn try_from(p: HistogramParts) -> Result<Self, HistogramError> {
        let ordered = p.buckets.windows(2).all(|w| w[0].0 < w[1].0);
        let sane = p.buckets.iter().all(|&(i, c)| i <= MAX_BUCKET && c > 0);
        if !ordered || !sane {
            return Err(HistogramError::Buckets);
        }
        let total = p
            .buckets
            .iter()
            .try_fold(0u64, |a, &(_, c)| a.checked_add(c));
        let ends_fit = match (p.buckets.first(), p.buckets.last()) {
            (Some(&(first, _)), Some(&(last, _))) => {
                bucket_of(p.min_ms) == first && bucket_of(p.max_ms) == last && p.min_ms <= p.max_ms
            }
            _ => p.min_ms == 0 && p.max_ms == 0 && p.sum_ms == 0,
        };
        if total != Some(p.count) || !ends_fit {
            return Err(HistogramError::Totals);
        }
        Ok(DurationHistogram {
            count: p.count,
            sum_ms: p.sum_ms,
            min_ms: p.min_ms,
            max_ms: p.max_ms,
            buckets: p.buckets,
        })
    }
}

impl From<DurationHistogram> for HistogramParts {
    fn from(h: DurationHistogram) -> Self {
        HistogramParts {
            count: h.count,
            sum_ms: h.sum_ms,
            min_ms: h.min_ms,
            max_ms: h.max_ms,
            buckets: h.buckets,
        }
    }
}

impl DurationHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// A histogram of `values` (negative values count as 0).
    pub fn of(values: impl IntoIterator<Item = i64>) -> Self {
        let mut h = Self::new();
        values.into_iter().for_each(|v| h.record(v));
        h
    }

    /// Records one duration; a negative one counts as 0.
    pub fn record(&mut self, ms: i64) {
        let v = ms.max(0) as u64;
        self.min_ms = if self.count == 0 {
            v
        } else {
            self.min_ms.min(v)
        };
        self.max_ms = self.max_ms.max(v);
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(v);
        let bucket = bucket_of(v);
        match self.buckets.binary_search_by_key(&bucket, |b| b.0) {
            Ok(i) => self.buckets[i].1 += 1,
            Err(i) => self.buckets.insert(i, (bucket, 1)),
        }
    }

    /// Adds every value of `other` to this one.
    pub fn merge(&mut self, other: &DurationHistogram) {
        if other.count == 0 {
            return;
        }
        let (a, b) = (&self.buckets, &other.buckets);
        let mut merged = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            if j == b.len() || (i < a.len() && a[i].0 < b[j].0) {
                merged.push(a[i]);
                i += 1;
            } else if i == a.len() || b[j].0 < a[i].0 {
                merged.push(b[j]);
                j += 1;
            } else {
                merged.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
        self.buckets = merged;
        self.min_ms = if self.count == 0 {
            other.min_ms
        } else {
            self.min_ms.min(other.min_ms)
        };
        self.max_ms = self.max_ms.max(other.max_ms);
        self.count += other.count;
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The exact mean; `None` when empty.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms as f64 / self.count as f64)
    }

    /// The exact smallest and largest value; `None` when empty.
    pub fn range_ms(&self) -> Option<(i64, i64)> {
        (self.count > 0).then(|| (to_i64(self.min_ms), to_i64(self.max_ms)))
    }

    /// The nearest-rank `p`-th percentile, within 1/64 of the exact one (see the
    /// module documentation); `None` when empty.
    pub fn percentile(&self, p: u32) -> Option<i64> {
        let rank = nearest_rank(self.count, p)?;
        let mut seen = 0u64;
        for &(index, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let (lo, hi) = bucket_bounds(index);
                let mid = lo + (hi - lo) / 2;
                return Some(to_i64(mid.clamp(self.min_ms, self.max_ms)));
            }
        }
        None
    }

    /// Count, exact mean, min and max, and estimated percentiles.
    pub fn summary(&self) -> Option<Summary> {
        let (min_ms, max_ms) = self.range_ms()?;
        Some(Summary {
            count: self.count,
            mean_ms: self.mean_ms()?,
            min_ms,
            p50_ms: self.percentile(50)?,
            p90_ms: self.percentile(90)?,
            p95_ms: self.percentile(95)?,
            max_ms,
        })
    }

    /// Non-empty buckets as (smallest value, largest value, count), for charts.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.buckets.iter().map(|&(i, n)| {
            let (lo, hi) = bucket_bounds(i);
            (lo, hi, n)
        })
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::stats::percentile;
    use proptest::prelude::*;

    #[test]
    fn buckets_by_hand() {
        // Below 64 every value has its own bucket.
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(31), 31);
        assert_eq!(bucket_of(32), 32);
        assert_eq!(bucket_of(63), 63);
        assert_eq!(bucket_bounds(63), (63, 63));
        // 64..128 in buckets of 2: 100 = 64 + 18×2 → bucket 64 + 18 = 82, [100, 101].
        assert_eq!(bucket_of(100), 82);
        assert_eq!(bucket_bounds(82), (100, 101));
        // 1 h = 3_600_000 ms: 2^21 = 2_097_152 ≤ v < 2^22, width 2^16 = 65_536;
        // (3_600_000 − 2_097_152) / 65_536 = 22.93 → sub 22, bucket (21−5+1)×32 + 22 = 566,
        // [2_097_152 + 22×65_536, … + 65_535] = [3_538_944, 3_604_479].
        assert_eq!(bucket_of(3_600_000), 566);
        assert_eq!(bucket_bounds(566), (3_538_944, 3_604_479));
        assert_eq!(bucket_of(u64::MAX), MAX_BUCKET);
        assert_eq!(bucket_bounds(MAX_BUCKET).1, u64::MAX);
    }

    #[test]
    fn percentiles_by_hand() {
        // Nine values of 10 s and one of 1 h. p50 → rank 5 → 10_000, which lies in
        // [2^13, 2^14) cut in widths of 2^8 = 256: sub ⌊(10_000 − 8_192)/256⌋ = 7,
        // bucket [9_984, 10_239], midpoint 9_984 + ⌊255/2⌋ = 10_111 (error 111 ≤ 10_000/64).
        let h = DurationHistogram::of((0..9).map(|_| 10_000).chain([3_600_000]));
        assert_eq!(h.count(), 10);
        assert_eq!(h.percentile(50), Some(10_111));
        // p95 → rank ⌈9.5⌉ = 10 → the 1 h bucket [3_538_944, 3_604_479], midpoint
        // 3_538_944 + 32_767 = 3_571_711 (error 28_289 ≤ 3_600_000/64 = 56_250).
        assert_eq!(h.percentile(95), Some(3_571_711));
        assert_eq!(h.range_ms(), Some((10_000, 3_600_000)));
        // Mean is exact: (9×10_000 + 3_600_000) / 10 = 369_000.
        assert_eq!(h.mean_ms(), Some(369_000.0));
        // One value: the clamp makes every percentile exact.
        let one = DurationHistogram::of([3_600_000]);
        assert_eq!(one.percentile(50), Some(3_600_000));
        assert_eq!(DurationHistogram::new().percentile(50), None);
    }

    #[test]
    fn stored_form_is_checked() {
        let h = DurationHistogram::of([5, 70, 70, 3_600_000]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<DurationHistogram>(&json).unwrap(), h);
        let bad = r#"{"count":2,"sum_ms":10,"min_ms":5,"max_ms":5,"buckets":[[5,1]]}"#;
        assert!(serde_json::from_str::<DurationHistogram>(bad).is_err());
        let unordered = r#"{"count":2,"sum_ms":10,"min_ms":5,"max_ms":5,"buckets":[[6,1],[5,1]]}"#;
        assert!(serde_json::from_str::<DurationHistogram>(unordered).is_err());
        let empty = r#"{"count":0,"sum_ms":0,"min_ms":0,"max_ms":0,"buckets":[]}"#;
        assert_eq!(
            serde_json::from_str::<DurationHistogram>(empty).unwrap(),
            DurationHistogram::new()
        );
    }

    fn durations() -> impl Strategy<Value = Vec<i64>> {
        // Mostly realistic durations (seconds to days), some tiny, some huge.
        proptest::collection::vec(
            prop_oneof![0i64..100, 1_000i64..86_400_000, 0i64..i64::MAX / 4],
            0..60,
        )
    }

    proptest! {
        #[test]
        fn every_value_lies_in_its_bucket(v in any::<u64>()) {
            let (lo, hi) = bucket_bounds(bucket_of(v));
            prop_assert!(lo <= v && v <= hi);
            // Width at most lo/32 above the exact range.
            if v >= 64 { prop_assert!(hi - lo < lo / 32); }
        }

        #[test]
        fn merge_is_associative_commutative_and_lossless(a in durations(), b in durations(), c in durations()) {
            let (ha, hb, hc) = (DurationHistogram::of(a.clone()), DurationHistogram::of(b.clone()), DurationHistogram::of(c.clone()));
            let mut left = ha.clone();
            left.merge(&hb);
            left.merge(&hc);
            let mut bc = hb.clone();
            bc.merge(&hc);
            let mut right = ha.clone();
            right.merge(&bc);
            prop_assert_eq!(&left, &right);
            let mut ba = hb.clone();
            ba.merge(&ha);
            let mut ab = ha.clone();
            ab.merge(&hb);
            prop_assert_eq!(&ab, &ba);
            let all = DurationHistogram::of(a.into_iter().chain(b).chain(c));
            prop_assert_eq!(left, all);
        }

        #[test]
        fn percentiles_are_within_one_sixty_fourth(mut v in durations(), p in 0u32..=100) {
            let h = DurationHistogram::of(v.clone());
            v.sort_unstable();
            match percentile(&v, p) {
                None => prop_assert_eq!(h.percentile(p), None),
                Some(exact) => {
                    let est = h.percentile(p).unwrap();
                    prop_assert!((est - exact).abs() <= exact / 64, "p{} est {} exact {}", p, est, exact);
                }
            }
            let json = serde_json::to_string(&h).unwrap();
            prop_assert_eq!(serde_json::from_str::<DurationHistogram>(&json).unwrap(), h);
        }
    }
}
