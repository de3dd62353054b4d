//! The window's latency histogram: hdrhistogram's bucket layout for 1 µs ..= `MAX_LATENCY_US` at 3
//! significant digits, so every percentile is the value hdrhistogram 7 gives for the same samples
//! (the tests check it against hdrhistogram), but with what the ingest path needs that
//! hdrhistogram lacks: the range of buckets in use is tracked, so clearing a slot, taking it out
//! of the running total or copying it costs what the slot holds instead of the whole 23,552-bucket
//! array, one index computation serves a slot and the total, and the three percentiles come from
//! one scan.

use super::MAX_LATENCY_US;

/// hdrhistogram's layout for lowest value 1 (unit magnitude 0) and 3 significant digits: 2048
/// sub-buckets (single-unit resolution up to 2 * 10^3), half of them per bucket above the first.
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = 10;
const SUB_BUCKET_HALF_COUNT: usize = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (2 * SUB_BUCKET_HALF_COUNT as u64) - 1;
/// 64 - unit magnitude (0) - sub-bucket count magnitude (11).
const LEADING_ZERO_COUNT_BASE: u32 = 53;

/// Buckets hdrhistogram allocates to cover `MAX_LATENCY_US`: the first k with
/// 2048 * 2^(k-1) > MAX_LATENCY_US.
const fn buckets_to_cover(value: u64) -> u32 {
    let mut smallest_untrackable = 2 * SUB_BUCKET_HALF_COUNT as u64;
    let mut buckets = 1;
    while smallest_untrackable <= value {
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    buckets
}

/// Number of counters (hdrhistogram's `distinct_values()`).
pub const LEN: usize = (buckets_to_cover(MAX_LATENCY_US) as usize + 1) * SUB_BUCKET_HALF_COUNT;

#[inline]
fn bucket_for(value: u64) -> u32 {
    LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros()
}

/// Counter index of `value`; may be past `LEN` for values above the tracked range.
#[inline]
fn index_for(value: u64) -> usize {
    let bucket = bucket_for(value);
    let sub_bucket = (value >> bucket) as usize;
    // bucket <= 53 and sub_bucket < 2048: no overflow; sub_bucket >= 1024 unless bucket is 0.
    ((bucket as usize + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + sub_bucket - SUB_BUCKET_HALF_COUNT
}

/// The lowest value counted at `index`.
fn value_for(index: usize) -> u64 {
    let bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) as i64 - 1;
    let sub_bucket = ((index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT) as u64;
    if bucket < 0 {
        sub_bucket - SUB_BUCKET_HALF_COUNT as u64
    } else {
        sub_bucket << bucket
    }
}

/// The highest value counted with `value` (hdrhistogram's `highest_equivalent`).
fn highest_equivalent(value: u64) -> u64 {
    if value == u64::MAX {
        return u64::MAX;
    }
    let bucket = bucket_for(value);
    let lowest = (value >> bucket) << bucket;
    lowest.saturating_add(1u64 << bucket) - 1
}

/// Index where `saturating_record(value)` counts: a value beyond the counters is clamped to
/// `MAX_LATENCY_US`, as hdrhistogram does.
#[inline]
fn clamped_index(value: u64) -> usize {
    let i = index_for(value);
    if i < LEN {
        i
    } else {
        index_for(MAX_LATENCY_US)
    }
}

/// Counts of latencies in microseconds. Fixed size: never grows.
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Box<[u32]>,
    total: u64,
    /// Lowest and highest counter that may be non-zero; `lo > hi` when none is.
    lo: usize,
    hi: usize,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; LEN].into_boxed_slice(),
            total: 0,
            lo: LEN,
            hi: 0,
        }
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Number of counters, constant (hdrhistogram's `distinct_values()`).
    pub fn distinct_values(&self) -> usize {
        self.counts.len()
    }

    /// Counts `us`; above the tracked range it counts as `MAX_LATENCY_US`. Never fails. (The
    /// window records through `saturating_record_both`.)
    #[cfg(test)]
    pub fn saturating_record(&mut self, us: u64) {
        self.record_at(clamped_index(us));
    }

    #[inline]
    fn record_at(&mut self, i: usize) {
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(1);
            self.total = self.total.saturating_add(1);
            self.lo = self.lo.min(i);
            self.hi = self.hi.max(i);
        }
    }

    /// Counts `us` here and in `also` (a running total) with one index computation.
    #[inline]
    pub fn saturating_record_both(&mut self, also: &mut Self, us: u64) {
        let i = clamped_index(us);
        self.record_at(i);
        also.record_at(i);
    }

    /// The counters in use, as a range (empty when none are).
    fn used(&self) -> std::ops::Range<usize> {
        if self.lo > self.hi {
            0..0
        } else {
            self.lo..self.hi + 1
        }
    }

    pub fn reset(&mut self) {
        let used = self.used();
        if let Some(c) = self.counts.get_mut(used) {
            c.fill(0);
        }
        self.total = 0;
        self.lo = LEN;
        self.hi = 0;
    }

    /// Adds `other`'s counts (saturating).
    pub fn add(&mut self, other: &Self) {
        let used = other.used();
        if used.is_empty() {
            return;
        }
        for (c, o) in self.counts[used.clone()]
            .iter_mut()
            .zip(&other.counts[used.clone()])
        {
            *c = c.saturating_add(*o);
        }
        self.total = self.total.saturating_add(other.total);
        self.lo = self.lo.min(used.start);
        self.hi = self.hi.max(used.end - 1);
    }

    /// Takes `other`'s counts out again; `other` must have been added (or recorded alongside).
    /// Saturates at zero rather than fail.
    pub fn subtract(&mut self, other: &Self) {
        let used = other.used();
        if used.is_empty() {
            return;
        }
        for (c, o) in self.counts[used.clone()]
            .iter_mut()
            .zip(&other.counts[used])
        {
            *c = c.saturating_sub(*o);
        }
        self.total = self.total.saturating_sub(other.total);
        if self.total == 0 {
            // Nothing left: forget the range, so the next reset has nothing to clear.
            self.lo = LEN;
            self.hi = 0;
        }
    }

    /// Becomes a copy of `other`, touching only the counters either uses.
    pub fn copy_from(&mut self, other: &Self) {
        self.reset();
        self.add(other);
    }

    /// hdrhistogram's `value_at_quantile` for each of `quantiles` (in (0, 1], ascending), in one
    /// scan: the highest value equivalent to the first counter at which the running count reaches
    /// `ceil(q * len)` (at least 1). 0 where the counts never reach it (only when empty).
    pub fn values_at_quantiles<const N: usize>(&self, quantiles: [f64; N]) -> [u64; N] {
        let targets = quantiles.map(|q| ((q.min(1.0) * self.total as f64).ceil() as u64).max(1));
        let mut out = [0u64; N];
        let mut k = 0;
        let mut running: u64 = 0;
        let used = self.used();
        let start = used.start;
        // Whole chunks while no target is reached (the compiler vectorises the sum), then one
        // counter at a time in the chunk that reaches one.
        const CHUNK: usize = 16;
        let counts = &self.counts[used];
        let mut base = 0;
        while k < N && base < counts.len() {
            let chunk = &counts[base..counts.len().min(base + CHUNK)];
            let sum: u64 = chunk.iter().map(|&c| u64::from(c)).sum();
            if running + sum < targets[k] {
                running += sum;
            } else {
                for (off, &c) in chunk.iter().enumerate() {
                    running += u64::from(c);
                    while k < N && running >= targets[k] {
                        out[k] = highest_equivalent(value_for(start + base + off));
                        k += 1;
                    }
                }
            }
            base += CHUNK;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    fn hdr() -> Histogram<u32> {
        Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap()
    }

    const QS: [f64; 3] = [0.50, 0.95, 0.99];

    fn same(ours: &LatencyHistogram, theirs: &Histogram<u32>) {
        assert_eq!(ours.len(), theirs.len());
        let want = QS.map(|q| {
            if theirs.is_empty() {
                0
            } else {
                theirs.value_at_quantile(q)
            }
        });
        assert_eq!(ours.values_at_quantiles(QS), want);
    }

    #[test]
    fn layout_matches_hdrhistogram() {
        assert_eq!(LEN, hdr().distinct_values());
        for v in [
            0,
            1,
            2,
            1023,
            1024,
            2047,
            2048,
            2049,
            4095,
            4096,
            123_456,
            MAX_LATENCY_US,
            MAX_LATENCY_US + 1,
            (2048 << 21) - 1,
            2048 << 21,
            u64::MAX / 2,
            u64::MAX,
        ] {
            let mut h = hdr();
            h.saturating_record(v);
            let mut ours = LatencyHistogram::new();
            ours.saturating_record(v);
            same(&ours, &h);
            assert_eq!(
                ours.values_at_quantiles([1.0]),
                [h.value_at_quantile(1.0)],
                "{v}"
            );
        }
    }

    #[test]
    fn empty_histogram_reads_zero() {
        let h = LatencyHistogram::new();
        assert!(h.is_empty());
        assert_eq!(h.values_at_quantiles(QS), [0, 0, 0]);
        assert_eq!(h.used(), 0..0);
    }

    proptest::proptest! {
        /// Any samples, in slots added to, subtracted from and copied into a total, read the
        /// same percentiles as hdrhistogram fed the same way.
        #[test]
        fn percentiles_match_hdrhistogram(
            slots in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![0u64..3000, 0u64..200_000, 0u64..5_000_000_000, proptest::arbitrary::any::<u64>()],
                    0..60,
                ),
                1..5,
            ),
            drop_first in proptest::arbitrary::any::<bool>(),
        ) {
            let mut total = LatencyHistogram::new();
            let mut hdr_total = hdr();
            let mut ours_slots = Vec::new();
            let mut hdr_slots = Vec::new();
            for samples in &slots {
                let mut s = LatencyHistogram::new();
                let mut h = hdr();
                for &v in samples {
                    s.saturating_record_both(&mut total, v);
                    h.saturating_record(v);
                    hdr_total.saturating_record(v);
                }
                same(&s, &h);
                ours_slots.push(s);
                hdr_slots.push(h);
            }
            same(&total, &hdr_total);
            if drop_first {
                total.subtract(&ours_slots[0]);
                hdr_total.subtract(&hdr_slots[0]).unwrap();
                same(&total, &hdr_total);
            }
            let mut merged = LatencyHistogram::new();
            merged.saturating_record(7);
            merged.copy_from(&total);
            same(&merged, &hdr_total);
            merged.reset();
            let mut hdr_merged = hdr();
            for (s, h) in ours_slots.iter().zip(&hdr_slots).skip(1) {
                merged.add(s);
                hdr_merged.add(h).unwrap();
            }
            same(&merged, &hdr_merged);
        }
    }
}
