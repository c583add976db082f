//! [`NativeSnapshot`]: a consistent copy of a native histogram, its buckets sorted by key.

use super::key::{MIN_SCHEMA, reduce, upper_bound};
use crate::encoding::NativeHistogramView;

/// One populated bucket of a native histogram: its key (upper bound `2^(key / 2^schema)`) and
/// count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NativeBucket {
    /// The bucket's key at the snapshot's schema.
    pub key: i32,
    /// Observations in the bucket (not cumulative).
    pub count: u64,
}

/// A consistent copy of a [`NativeHistogram`](crate::NativeHistogram):
/// `count == zero_count + nan_count + Σ negative + Σ positive`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeSnapshot<const BUCKETS: usize> {
    /// The schema of every key (`-4..=8`): `2^schema` buckets per power of two.
    pub schema: i8,
    /// Observations with an absolute value up to this are in the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// NaN observations: counted in `count` and `sum`, in no bucket (as client_golang does).
    pub nan_count: u64,
    /// All observations.
    pub count: u64,
    /// Sum of the observations (see [`NativeHistogram`](crate::NativeHistogram) on how it
    /// relates to a concurrent scrape).
    pub sum: f64,
    /// Negative buckets (by absolute value) ascending by key, then positive ones.
    buckets: [NativeBucket; BUCKETS],
    negative: usize,
    len: usize,
}

impl<const BUCKETS: usize> NativeSnapshot<BUCKETS> {
    /// No observations.
    pub const fn empty(schema: i8, zero_threshold: f64) -> Self {
        Self {
            schema,
            zero_threshold,
            zero_count: 0,
            nan_count: 0,
            count: 0,
            sum: 0.0,
            buckets: [NativeBucket { key: 0, count: 0 }; BUCKETS],
            negative: 0,
            len: 0,
        }
    }

    /// Builds a snapshot from unsorted `(negative, key, count)` entries at `schema`, merging
    /// entries of the same bucket; entries beyond `BUCKETS` are ignored (the histogram never
    /// holds more).
    pub(crate) fn fill(&mut self, entries: impl Iterator<Item = (bool, i32, u64)>) {
        let mut n = 0;
        let mut keys = [(false, 0i32, 0u64); BUCKETS];
        for (slot, e) in keys.iter_mut().zip(entries) {
            *slot = e;
            n += 1;
        }
        let keys = &mut keys[..n];
        keys.sort_unstable_by_key(|&(negative, key, _)| (!negative, key));
        let mut len = 0;
        let mut negative = 0;
        for &(neg, key, count) in keys.iter() {
            // The last bucket is negative exactly when `negative == len`.
            if len > 0 && self.buckets[len - 1].key == key && (negative == len) == neg {
                self.buckets[len - 1].count = self.buckets[len - 1].count.wrapping_add(count);
                continue;
            }
            self.buckets[len] = NativeBucket { key, count };
            len += 1;
            if neg {
                negative = len;
            }
        }
        self.negative = negative;
        self.len = len;
    }

    /// The sum of two snapshots (the two stripes of a native or hybrid histogram):
    /// both brought to the lower schema and the wider zero threshold. If their buckets together
    /// are more than `BUCKETS`, client_golang's rules apply once more: the resolution drops
    /// until they fit, and at the lowest schema the zero bucket widens. Counts are kept:
    /// `count == zero_count + nan_count + Σ buckets` holds for the result when it holds for both.
    pub(crate) fn merged(a: &Self, b: &Self) -> Self {
        let mut schema = a.schema.min(b.schema);
        let mut threshold = a.zero_threshold.max(b.zero_threshold);
        loop {
            let mut distinct = 0usize;
            let mut lowest = f64::INFINITY;
            for negative in [true, false] {
                merge_walk(a, b, negative, schema, threshold, |key, _| {
                    distinct += 1;
                    lowest = lowest.min(upper_bound(key, schema));
                });
            }
            if distinct <= BUCKETS {
                break;
            }
            if schema > MIN_SCHEMA {
                schema -= 1;
            } else {
                threshold = lowest; // folds at least that one bucket
            }
        }
        let mut out = Self::empty(schema, threshold);
        let mut len = 0;
        let mut folded = 0u64;
        for negative in [true, false] {
            folded = folded.wrapping_add(merge_walk(a, b, negative, schema, threshold, |key, count| {
                if let Some(slot) = out.buckets.get_mut(len) {
                    *slot = NativeBucket { key, count };
                    len += 1;
                }
            }));
            if negative {
                out.negative = len;
            }
        }
        out.len = len;
        out.zero_count = a.zero_count.wrapping_add(b.zero_count).wrapping_add(folded);
        out.nan_count = a.nan_count.wrapping_add(b.nan_count);
        out.count = a.count.wrapping_add(b.count);
        out.sum = a.sum + b.sum;
        out
    }

    /// The negative buckets (keys of absolute values), ascending by key.
    pub fn negative(&self) -> &[NativeBucket] {
        &self.buckets[..self.negative]
    }

    /// The positive buckets, ascending by key.
    pub fn positive(&self) -> &[NativeBucket] {
        &self.buckets[self.negative..self.len]
    }

    /// A borrowed view for the encoder.
    pub fn view(&self) -> NativeHistogramView<'_> {
        NativeHistogramView {
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count,
            count: self.count,
            sum: self.sum,
            negative: self.negative(),
            positive: self.positive(),
        }
    }
}

/// Walks the buckets of one sign of `a` and `b` at `schema` in ascending key order, calling
/// `f` once per distinct key with its total count; buckets whose upper bound is within
/// `threshold` are not passed on: their total is returned (they join the zero bucket).
fn merge_walk<const B: usize>(
    a: &NativeSnapshot<B>,
    b: &NativeSnapshot<B>,
    negative: bool,
    schema: i8,
    threshold: f64,
    mut f: impl FnMut(i32, u64),
) -> u64 {
    fn side<const B: usize>(s: &NativeSnapshot<B>, negative: bool) -> &[NativeBucket] {
        if negative { s.negative() } else { s.positive() }
    }
    let (sa, sb) = (a.schema, b.schema);
    // `reduce` is monotonic, so each side stays sorted at the lower schema.
    let mut ia = side(a, negative).iter().map(move |x| (reduce(x.key, sa, schema), x.count)).peekable();
    let mut ib = side(b, negative).iter().map(move |x| (reduce(x.key, sb, schema), x.count)).peekable();
    let mut zero = 0u64;
    let mut current: Option<(i32, u64)> = None;
    loop {
        let next = match (ia.peek(), ib.peek()) {
            (Some(x), Some(y)) if x.0 <= y.0 => ia.next(),
            (Some(_), Some(_)) => ib.next(),
            (Some(_), None) => ia.next(),
            (None, _) => ib.next(),
        };
        let Some((key, count)) = next else { break };
        if upper_bound(key, schema) <= threshold {
            zero = zero.wrapping_add(count);
            continue;
        }
        current = match current {
            Some((k, c)) if k == key => Some((k, c.wrapping_add(count))),
            Some((k, c)) => {
                f(k, c);
                Some((key, count))
            }
            None => Some((key, count)),
        };
    }
    if let Some((k, c)) = current {
        f(k, c);
    }
    zero
}

#[cfg(any(test, feature = "protobuf"))]
/// The spans of `buckets` (ascending keys): `(offset, length)` as Prometheus' `BucketSpan`,
/// the first offset the first key, each later one the gap of empty buckets before it.
pub(crate) fn spans(buckets: &[NativeBucket]) -> impl Iterator<Item = (i32, u32)> + '_ {
    let mut i = 0;
    let mut prev: Option<i32> = None;
    core::iter::from_fn(move || {
        let first = buckets.get(i)?;
        let offset = match prev {
            None => first.key,
            Some(p) => first.key.wrapping_sub(p).wrapping_sub(1),
        };
        let mut len = 1;
        while buckets.get(i + len).is_some_and(|b| b.key == first.key.wrapping_add(len as i32)) {
            len += 1;
        }
        i += len;
        prev = Some(first.key.wrapping_add(len as i32 - 1));
        Some((offset, len as u32))
    })
}

#[cfg(any(test, feature = "protobuf"))]
/// Each bucket's count minus the previous bucket's (0 before the first), as Prometheus'
/// `*_delta` fields.
pub(crate) fn deltas(buckets: &[NativeBucket]) -> impl Iterator<Item = i64> + '_ {
    let mut prev = 0i64;
    buckets.iter().map(move |b| {
        let d = (b.count as i64).wrapping_sub(prev);
        prev = b.count as i64;
        d
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn fill_sorts_and_merges_per_sign() {
        let mut s: NativeSnapshot<6> = NativeSnapshot::empty(0, 0.0);
        s.fill([(false, 3, 1), (true, 3, 2), (false, -1, 4), (false, 3, 5), (true, -2, 1)].into_iter());
        assert_eq!(s.negative(), [NativeBucket { key: -2, count: 1 }, NativeBucket { key: 3, count: 2 }]);
        assert_eq!(s.positive(), [NativeBucket { key: -1, count: 4 }, NativeBucket { key: 3, count: 6 }]);
    }

    #[test]
    fn spans_and_deltas_follow_prometheus() {
        let b = |key, count| NativeBucket { key, count };
        let buckets = [b(-2, 3), b(-1, 1), b(0, 4), b(4, 4), b(5, 2), b(9, 1)];
        assert_eq!(spans(&buckets).collect::<Vec<_>>(), [(-2, 3), (3, 2), (3, 1)]);
        assert_eq!(deltas(&buckets).collect::<Vec<_>>(), [3, -2, 3, 0, -2, -1]);
        assert_eq!(spans(&[]).count(), 0);
    }
}
