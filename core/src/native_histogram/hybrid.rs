//! [`HybridHistogram`]: a native histogram with classic buckets on the same series, as
//! client_golang has them, and the latest exemplar of each classic bucket.
//!
//! # Consistency
//! The stripes of [`NativeHistogram`] (two, see there), each holding native buckets, classic
//! buckets and the sum: an observation takes a stripe with one compare-and-swap, records the
//! native bucket, the classic bucket and the sum with plain loads and stores, and gives the
//! stripe back; a scrape copies each stripe whole (as a seqlock reader, or with the stripe
//! taken) and adds the two. So every scrape is consistent — `count` equals the zero bucket plus
//! the NaN count plus every native bucket, and equals the classic `+Inf` bucket — and an
//! observation costs what a native one does plus a classic bucket's search.
//!
//! # Exemplars
//! Each classic bucket (`+Inf` included) keeps the *latest* exemplar of an observation that fell
//! into it, in an [`ExemplarCell`]: fixed space, `N + 1` cells, whatever the native resolution.
//! They are not part of the consistent snapshot (an exemplar may be newer than the counts).
//! OpenMetrics appends each to its `_bucket` line; protobuf puts each on its classic bucket
//! (where Prometheus 2.x reads a native histogram's exemplars) and all of them in the
//! histogram's `exemplars` field too (where Prometheus 3 reads them).

use crossbeam_utils::CachePadded;

use super::counts::{NativeCounts, Prepared};
use super::{NativeConfig, NativeSnapshot, Observe};
use crate::atomic::{array_of, loom_const_fn};
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop};
use crate::exemplar::{ExemplarCell, ExemplarCopy, ExemplarError};
use crate::family::Series;
use crate::histogram::{Counts, Snapshot};
use crate::stripe::{self, Stripe, StripeLock};

/// One stripe: native and classic buckets, one holder at a time.
#[derive(Debug)]
struct HybridStripe<const BUCKETS: usize, const N: usize> {
    lock: StripeLock,
    classic: Counts<N>,
    native: NativeCounts<BUCKETS>,
}

impl<const BUCKETS: usize, const N: usize> HybridStripe<BUCKETS, N> {
    loom_const_fn! {
        fn new(config: NativeConfig, bounds: &'static [f64; N]) -> Self {
            Self { lock: StripeLock::new(), classic: Counts::new(bounds), native: NativeCounts::new(config) }
        }
    }
}

impl<const BUCKETS: usize, const N: usize> Stripe for HybridStripe<BUCKETS, N> {
    #[inline(always)]
    fn lock(&self) -> &StripeLock {
        &self.lock
    }
}

/// On a hybrid stripe, an observation finds both halves' buckets before the stripe is taken;
/// the classic bucket is what it returns (for the exemplar).
impl<const BUCKETS: usize, const N: usize> stripe::Write<HybridStripe<BUCKETS, N>> for Observe<'_> {
    type Prepared = (Prepared, usize);
    type Output = usize;

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn prepare(&self, stripe: &HybridStripe<BUCKETS, N>) -> (Prepared, usize) {
        (stripe.native.prepare(self.v), stripe.classic.index(self.v))
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn write(&self, stripe: &HybridStripe<BUCKETS, N>, (at, index): (Prepared, usize)) -> usize {
        stripe.native.record(self.v, at, self.config);
        stripe.classic.add(index, self.v);
        index
    }
}

/// A native histogram with at most `BUCKETS` populated buckets *and* `N` classic buckets on
/// the same series, with the latest exemplar of each classic bucket; see the
/// [module documentation](self) for the consistency and exemplar rules.
///
/// Prometheus scraping protobuf with native histograms on stores the native histogram (and
/// its exemplars); the text formats show the classic buckets, with exemplars in OpenMetrics.
/// It takes two stripes, each with `BUCKETS` native slots and `N` classic buckets (plus `N + 1`
/// exemplar cells of about 220 bytes).
///
/// # Examples
/// ```
/// use diag_core::{DEFAULT_BUCKETS, HybridHistogram, NativeConfig};
/// static LATENCY: HybridHistogram<32, 11> = HybridHistogram::new(NativeConfig::new(3), &DEFAULT_BUCKETS);
/// LATENCY.observe(0.2);
/// LATENCY.observe_with_exemplar(0.3, &[("trace_id", "4bf92f35")], Some(1_700_000_000_000)).unwrap();
/// let snap = LATENCY.snapshot();
/// assert_eq!((snap.native().count, snap.classic().count), (2, 2));
/// assert_eq!(snap.classic().cumulative(6), 2); // le="0.5"
/// assert_eq!(LATENCY.exemplar(6).unwrap().view().value, 0.3);
/// ```
pub struct HybridHistogram<const BUCKETS: usize, const N: usize> {
    config: NativeConfig,
    bounds: &'static [f64; N],
    stripes: [CachePadded<HybridStripe<BUCKETS, N>>; 2],
    exemplars: [ExemplarCell; N],
    inf_exemplar: ExemplarCell,
}

/// A consistent copy of a [`HybridHistogram`]: its native buckets and its classic buckets,
/// counting the same observations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridSnapshot<const BUCKETS: usize, const N: usize> {
    native: NativeSnapshot<BUCKETS>,
    classic: Snapshot<N>,
}

impl<const BUCKETS: usize, const N: usize> HybridSnapshot<BUCKETS, N> {
    /// The native buckets.
    pub fn native(&self) -> &NativeSnapshot<BUCKETS> {
        &self.native
    }

    /// The classic buckets (`count` and `sum` equal the native ones).
    pub fn classic(&self) -> &Snapshot<N> {
        &self.classic
    }
}

impl<const BUCKETS: usize, const N: usize> HybridHistogram<BUCKETS, N> {
    loom_const_fn! {
        /// An empty histogram: native buckets as `config` says, classic ones over `bounds`
        /// (sorted ascending, finite).
        pub fn new(config: NativeConfig, bounds: &'static [f64; N]) -> Self {
            Self {
                config,
                bounds,
                stripes: [
                    CachePadded::new(HybridStripe::new(config, bounds)),
                    CachePadded::new(HybridStripe::new(config, bounds)),
                ],
                exemplars: array_of![ExemplarCell::new(); N],
                inf_exemplar: ExemplarCell::new(),
            }
        }
    }

    /// The classic bounds.
    pub fn bounds(&self) -> &'static [f64; N] {
        self.bounds
    }

    /// The native configuration.
    pub fn config(&self) -> NativeConfig {
        self.config
    }

    /// Records one observation, with the [exemplar source](crate::set_exemplar_source)'s
    /// labels as its classic bucket's exemplar if it has some: one compare-and-swap (see the
    /// [module documentation](self)), and the exemplar's own write when there is one.
    pub fn observe(&self, v: f64) {
        let traced = crate::exemplar::with_current(|labels, timestamp_ms| {
            // Refused labels (from the source) still record; the exemplar stays as it was.
            let _ = self.observe_with_exemplar(v, labels, timestamp_ms);
        });
        if !traced {
            self.record(v);
        }
    }

    /// Records one observation and makes `labels` (at `timestamp_ms`, Unix milliseconds) the
    /// exemplar of its classic bucket.
    ///
    /// # Errors
    /// [`ExemplarError`] when the labels are refused; the observation is recorded anyway.
    pub fn observe_with_exemplar(
        &self,
        v: f64,
        labels: &[(&str, &str)],
        timestamp_ms: Option<u64>,
    ) -> Result<(), ExemplarError> {
        let i = self.record(v);
        self.exemplars.get(i).unwrap_or(&self.inf_exemplar).set(labels, v, timestamp_ms)
    }

    /// Records `v`; its classic bucket index.
    #[inline]
    fn record(&self, v: f64) -> usize {
        stripe::hold(&self.stripes, Observe { v, config: &self.config })
    }

    /// A consistent snapshot (see the [module documentation](self)). Waits only for an
    /// observation in flight.
    pub fn snapshot(&self) -> HybridSnapshot<BUCKETS, N> {
        let [a, b] = &self.stripes.each_ref().map(|s| s.lock.read(|| (s.native.snapshot(), s.classic.copy())));
        let native = NativeSnapshot::merged(&a.0, &b.0);
        let mut buckets = a.1.buckets;
        for (x, y) in buckets.iter_mut().zip(b.1.buckets) {
            *x = x.wrapping_add(y);
        }
        let inf = a.1.inf.wrapping_add(b.1.inf);
        let count = buckets.iter().fold(inf, |a, b| a.wrapping_add(*b));
        let classic = Snapshot { bounds: self.bounds, buckets, inf, sum: native.sum, count };
        HybridSnapshot { native, classic }
    }

    /// The latest exemplar of classic bucket `i` (`i >= N`: the `+Inf` bucket).
    pub fn exemplar(&self, i: usize) -> Option<ExemplarCopy> {
        self.exemplars.get(i).unwrap_or(&self.inf_exemplar).get()
    }
}

impl<const BUCKETS: usize, const N: usize> core::fmt::Debug for HybridHistogram<BUCKETS, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HybridHistogram")
            .field("config", &self.config())
            .field("bounds", &&self.bounds[..])
            .finish_non_exhaustive()
    }
}

impl<const BUCKETS: usize, const N: usize> Series for HybridHistogram<BUCKETS, N> {
    type Template = (NativeConfig, &'static [f64; N]);
    const TYPE: MetricType = MetricType::Histogram;

    fn new_series((config, bounds): Self::Template) -> Self {
        Self::new(config, bounds)
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.hybrid_histogram_with(desc, labels, || self.snapshot(), |i| self.exemplar(i))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use std::sync::Arc;
    use std::vec::Vec;

    use super::*;
    use crate::{Family, Format, Registry, Scrape};

    static BOUNDS: [f64; 3] = [0.5, 1.0, 2.5];

    fn assert_consistent<const B: usize, const N: usize>(s: &HybridSnapshot<B, N>) {
        let n = s.native();
        let buckets: u64 = n.negative().iter().chain(n.positive()).map(|b| b.count).sum();
        assert_eq!(n.count, n.zero_count + n.nan_count + buckets, "{s:?}");
        assert_eq!(n.count, s.classic().count, "{s:?}");
        assert_eq!(s.classic().cumulative(N), n.count, "{s:?}");
    }

    #[test]
    fn native_and_classic_buckets_count_the_same_observations() {
        let h: HybridHistogram<16, 3> = HybridHistogram::new(NativeConfig::new(0), &BOUNDS);
        let values = [0.1, 0.75, 0.75, 1.5, 3.0, 100.0, -2.0, 0.0, f64::NAN];
        for v in values {
            h.observe(v);
            assert_consistent(&h.snapshot());
        }
        let s = h.snapshot();
        assert_consistent(&s);
        assert_eq!(s.classic().buckets, [3, 2, 1]); // -2, 0, 0.1 | 0.75 ×2 | 1.5
        assert_eq!(s.classic().inf, 3); // 3, 100, NaN
        assert_eq!(s.native().nan_count, 1);
        assert_eq!(s.native().negative(), [super::super::NativeBucket { key: 1, count: 1 }]);
        let positive: Vec<(i32, u64)> = s.native().positive().iter().map(|b| (b.key, b.count)).collect();
        // (0.0625, 0.125], (0.5, 1], (1, 2], (2, 4], (64, 128].
        assert_eq!(positive, [(-3, 1), (0, 2), (1, 1), (2, 1), (7, 1)]);
        assert!(s.native().sum.is_nan());
    }

    #[test]
    fn stripes_with_different_resolutions_merge_within_the_bucket_limit() {
        // Two slots per stripe: the stripes drop their schema independently (every other
        // value is observed from a thread of its own, which takes the other stripe); the
        // merged snapshot has at most two buckets and every observation.
        let h: HybridHistogram<2, 3> = HybridHistogram::new(NativeConfig::new(3).with_zero_threshold(0.0), &BOUNDS);
        let mut all = Vec::new();
        for (i, v) in [1.1, 1.3, 1.7, 5.0, 9.0, 40.0, 0.3, 600.0].into_iter().enumerate() {
            if i % 2 == 0 {
                h.observe(v);
            } else {
                std::thread::scope(|s| {
                    s.spawn(|| h.observe(v));
                });
            }
            all.push(v);
            if i % 3 == 0 {
                let s = h.snapshot();
                assert_consistent(&s);
                assert_eq!(s.native().count, all.len() as u64);
            }
        }
        let s = h.snapshot();
        assert_consistent(&s);
        assert!(s.native().positive().len() <= 2, "{s:?}");
        // Each stripe sums its own values in order, then the two sums are added.
        let sum: f64 = all.iter().sum();
        assert!((s.native().sum - sum).abs() <= 1e-12 * sum.abs(), "{} vs {sum}", s.native().sum);
        // Every value lies within its bucket's bounds at the merged schema.
        let n = s.native();
        for v in all {
            let k = super::super::key::key(v, n.schema);
            assert!(v <= n.zero_threshold || n.positive().iter().any(|b| b.key == k), "{v} has no bucket in {n:?}");
        }
    }

    #[test]
    fn scrapes_are_consistent_under_concurrent_observers() {
        let h: Arc<HybridHistogram<6, 3>> =
            Arc::new(HybridHistogram::new(NativeConfig::new(6).with_zero_threshold(0.0), &BOUNDS));
        let per_thread: u64 = if cfg!(miri) { 40 } else { 20_000 };
        let observers: Vec<_> = (0..3)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        h.observe(((i * 7 + t * 13) % 97) as f64 * 0.05);
                    }
                })
            })
            .collect();
        let mut last = 0;
        loop {
            let done = observers.iter().all(|o| o.is_finished());
            let s = h.snapshot();
            assert_consistent(&s);
            assert!(s.native().count >= last, "counts only grow");
            last = s.native().count;
            if done {
                break;
            }
        }
        for o in observers {
            o.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.native().count, 3 * per_thread);
        let expect: Vec<u64> = BOUNDS
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let lower = if i == 0 { f64::NEG_INFINITY } else { BOUNDS[i - 1] };
                (0..3u64)
                    .flat_map(|t| (0..per_thread).map(move |i| ((i * 7 + t * 13) % 97) as f64 * 0.05))
                    .filter(|v| *v > lower && *v <= *b)
                    .count() as u64
            })
            .collect();
        assert_eq!(s.classic().buckets[..], expect[..]);
    }

    #[test]
    fn a_family_encodes_classic_buckets_and_exemplars_in_text() {
        let family: Family<HybridHistogram<8, 3>, (&str,), 4> = Family::new(["route"], (NativeConfig::new(0), &BOUNDS));
        let registry: Registry<'_, 2> = Registry::new();
        registry.register("latency_seconds", "Latency.", &family).unwrap();
        let h = family.get_or_create(("/a",)).unwrap();
        h.observe(0.75);
        h.observe_with_exemplar(1.5, &[("trace_id", "t1")], Some(1_700_000_000_500)).unwrap();
        h.observe_with_exemplar(7.0, &[("trace_id", "t2")], None).unwrap();
        let mut buf = [0u8; 2048];
        let n = Scrape::new(Format::Prometheus, &registry).fill(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            text,
            "# HELP latency_seconds Latency.\n# TYPE latency_seconds histogram\n\
             latency_seconds_bucket{route=\"/a\",le=\"0.5\"} 0\n\
             latency_seconds_bucket{route=\"/a\",le=\"1.0\"} 1\n\
             latency_seconds_bucket{route=\"/a\",le=\"2.5\"} 2\n\
             latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n\
             latency_seconds_sum{route=\"/a\"} 9.25\nlatency_seconds_count{route=\"/a\"} 3\n"
        );
        crate::encoding::parse::validate(Format::Prometheus, text).unwrap();
        let n = Scrape::new(Format::OpenMetrics, &registry).fill(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            text.contains("latency_seconds_bucket{route=\"/a\",le=\"2.5\"} 2 # {trace_id=\"t1\"} 1.5 1700000000.500\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3 # {trace_id=\"t2\"} 7.0\n"),
            "{text}"
        );
        crate::encoding::parse::validate(Format::OpenMetrics, text).unwrap();
    }

    #[cfg(feature = "protobuf")]
    #[test]
    fn protobuf_carries_native_fields_classic_buckets_and_exemplars() {
        let h: HybridHistogram<8, 3> = HybridHistogram::new(NativeConfig::new(0), &BOUNDS);
        let registry: Registry<'_, 1> = Registry::new();
        registry.register("latency_seconds", "", &h).unwrap();
        h.observe(0.75);
        h.observe_with_exemplar(1.5, &[("trace_id", "t1")], None).unwrap();
        let mut buf = [0u8; 1024];
        let n = Scrape::new(Format::Protobuf, &registry).fill(&mut buf).unwrap();
        let bytes = &buf[..n];
        let find = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
        // The exemplar's label value twice: on bucket le="2.5" and in `exemplars` (field 16).
        assert_eq!(find(b"t1"), 2);
        // Field 16, length-delimited: key varint 0x82 0x01.
        assert_eq!(find(&[0x82, 0x01]), 1);
        // Schema 0 (field 5, zigzag 0) and the positive deltas [1, 0] for keys 0, 1.
        assert_eq!(find(&[0x28, 0x00]), 1);
        assert_eq!(find(&[0x6a, 0x02, 0x02, 0x00]), 1);
    }
}
