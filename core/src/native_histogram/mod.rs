//! A Prometheus native histogram in fixed space: exponential buckets, one compare-and-swap
//! per observation, consistent scrapes.
//!
//! # Buckets
//! At schema `s` (`-4..=8`) every power of two is split into `2^s` buckets; bucket `k` holds
//! the values whose absolute value is in `(2^((k-1)/2^s), 2^(k/2^s)]`. Values whose absolute
//! value is at most the zero threshold are counted in the zero bucket; NaN is counted (in
//! `count` and `sum`) but in no bucket, as client_golang does. Positive and negative buckets
//! share one array of `BUCKETS` *slots*, each a bucket's tag (sign, schema, key) and its
//! count, so only populated buckets take space.
//!
//! # When the slots run out
//! client_golang's rules, without allocating: when an observation finds no slot for its
//! bucket and the lowest bucket's upper bound is within the configured maximum zero threshold,
//! the histogram *widens the zero bucket* to swallow that bucket; otherwise it *lowers the
//! resolution* (schema − 1, every pair of buckets becomes one). At schema −4 with every slot
//! still holding a distinct bucket, the zero bucket widens past the maximum as a last resort:
//! the observation is always counted, nothing panics, nothing allocates. The schema never
//! rises again (client_golang can reset the histogram after a while; diag keeps counts
//! monotonic instead).
//!
//! # Concurrency
//! The same stripes as the classic [`Histogram`](crate::Histogram) (see there for why this is
//! the fastest design on Intel and AMD alike): two, each with its own slots, zero bucket, NaN
//! count, sum, schema and zero threshold. An observation takes the calling thread's stripe with
//! one compare-and-swap (or, if it is taken, the other), records with plain loads and stores,
//! and gives it back with a store; making room when the slots are full happens inside that
//! hold, as plain single-threaded code. A scrape reads each stripe as a seqlock reader (or
//! takes it, if observers keep writing it), so each stripe's copy is whole, and merges the two
//! copies: both brought to the lower schema and the wider zero threshold, and, if their buckets
//! together are more than `BUCKETS`, the same rules applied once more to the copy. So a scrape
//! is consistent — `count` equals the zero bucket plus the NaN count plus every bucket, and
//! `sum` is the sum of exactly those observations — and at most `BUCKETS` buckets are written.
//!
//! An observer waits only if both stripes are held at once (by two other observers inside
//! their few instructions, or a scrape copying one while an observer holds the other); a
//! scrape waits for an observer in flight on a stripe. On a single core without an OS, an
//! interrupt handler that observes while the code it interrupted is inside an observation of
//! the same histogram uses the other stripe; do not scrape from an interrupt handler.

mod bucket;
mod counts;
mod hybrid;
mod key;
mod snapshot;

use crossbeam_utils::CachePadded;

use crate::atomic::loom_const_fn;
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop};
use crate::family::Series;
use crate::stripe::{self, Stripe, StripeLock};
use counts::NativeCounts;
pub use hybrid::{HybridHistogram, HybridSnapshot};
pub use snapshot::{NativeBucket, NativeSnapshot};
#[cfg(feature = "protobuf")]
pub(crate) use snapshot::{deltas, spans};

/// How a [`NativeHistogram`] starts and how far its zero bucket may widen.
///
/// # Examples
/// ```
/// use diag_core::NativeConfig;
/// // 8 buckets per power of two; values up to 1 µs may join the zero bucket when space runs out.
/// const LATENCY: NativeConfig = NativeConfig::new(3).with_max_zero_threshold(1e-6);
/// assert_eq!(LATENCY.schema(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeConfig {
    schema: i8,
    zero_threshold: f64,
    max_zero_threshold: f64,
}

impl NativeConfig {
    /// client_golang's default zero threshold, `2^-128`.
    pub const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

    /// Schema 3 (client_golang's default bucket factor 1.1 picks it), the default zero
    /// threshold, no widening of the zero bucket before lowering the resolution.
    pub const DEFAULT: Self = Self::new(3);

    /// Starts at `schema` (clamped to `-4..=8`) with the default zero threshold and no widening.
    pub const fn new(schema: i8) -> Self {
        let schema = if schema < key::MIN_SCHEMA {
            key::MIN_SCHEMA
        } else if schema > key::MAX_SCHEMA {
            key::MAX_SCHEMA
        } else {
            schema
        };
        Self { schema, zero_threshold: Self::DEFAULT_ZERO_THRESHOLD, max_zero_threshold: Self::DEFAULT_ZERO_THRESHOLD }
    }

    /// The initial zero threshold (a negative or NaN value is taken as 0); the maximum rises
    /// with it if lower.
    pub const fn with_zero_threshold(mut self, threshold: f64) -> Self {
        self.zero_threshold = if threshold >= 0.0 { threshold } else { 0.0 };
        if self.max_zero_threshold < self.zero_threshold {
            self.max_zero_threshold = self.zero_threshold;
        }
        self
    }

    /// How far the zero bucket may widen, when the slots run out, before the resolution is
    /// lowered (client_golang's `NativeHistogramMaxZeroThreshold`); not below the threshold.
    pub const fn with_max_zero_threshold(mut self, max: f64) -> Self {
        self.max_zero_threshold = if max >= self.zero_threshold { max } else { self.zero_threshold };
        self
    }

    /// The initial schema.
    pub const fn schema(&self) -> i8 {
        self.schema
    }

    /// The initial zero threshold.
    pub const fn zero_threshold(&self) -> f64 {
        self.zero_threshold
    }

    /// The widest the zero bucket gets before the resolution is lowered.
    pub const fn max_zero_threshold(&self) -> f64 {
        self.max_zero_threshold
    }
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A Prometheus native histogram with at most `BUCKETS` populated buckets (positive and
/// negative together); see the [module documentation](self) for the rules.
///
/// Prometheus ingests native histograms only from the protobuf exposition; the text formats
/// show `_count`, `_sum` and the `+Inf` bucket, as client_golang does for a histogram without
/// classic buckets.
///
/// # Examples
/// ```
/// use diag_core::{NativeConfig, NativeHistogram};
/// static LATENCY: NativeHistogram<32> = NativeHistogram::new(NativeConfig::new(0));
/// for v in [0.75, 1.5, 3.0, 3.5] {
///     LATENCY.observe(v);
/// }
/// let snap = LATENCY.snapshot();
/// assert_eq!((snap.count, snap.sum, snap.schema), (4, 8.75, 0));
/// // (0.5, 1], (1, 2], (2, 4]: keys 0, 1, 2.
/// let counts: Vec<(i32, u64)> = snap.positive().iter().map(|b| (b.key, b.count)).collect();
/// assert_eq!(counts, [(0, 1), (1, 1), (2, 2)]);
/// ```
pub struct NativeHistogram<const BUCKETS: usize> {
    config: NativeConfig,
    stripes: [CachePadded<NativeStripe<BUCKETS>>; STRIPES],
}

/// Stripes of a [`NativeHistogram`], as many as a classic [`Histogram`](crate::Histogram) has.
const STRIPES: usize = 2;

/// One stripe of a [`NativeHistogram`].
#[derive(Debug)]
struct NativeStripe<const BUCKETS: usize> {
    lock: StripeLock,
    counts: NativeCounts<BUCKETS>,
}

impl<const BUCKETS: usize> NativeStripe<BUCKETS> {
    loom_const_fn! {
        fn new(config: NativeConfig) -> Self {
            Self { lock: StripeLock::new(), counts: NativeCounts::new(config) }
        }
    }
}

impl<const BUCKETS: usize> Stripe for NativeStripe<BUCKETS> {
    #[inline(always)]
    fn lock(&self) -> &StripeLock {
        &self.lock
    }
}

/// One observation of a native histogram (or of a hybrid one's two halves, in `hybrid.rs`):
/// on a native stripe, its bucket's key and home slot are found before the stripe is taken.
struct Observe<'a> {
    v: f64,
    config: &'a NativeConfig,
}

impl<const BUCKETS: usize> stripe::Write<NativeStripe<BUCKETS>> for Observe<'_> {
    type Prepared = counts::Prepared;
    type Output = ();

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn prepare(&self, stripe: &NativeStripe<BUCKETS>) -> counts::Prepared {
        stripe.counts.prepare(self.v)
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn write(&self, stripe: &NativeStripe<BUCKETS>, at: counts::Prepared) {
        stripe.counts.record(self.v, at, self.config);
    }
}

/// The lowest schema: one bucket per 2^16 (Prometheus' limit).
pub const NATIVE_MIN_SCHEMA: i8 = key::MIN_SCHEMA;
/// The highest schema: 256 buckets per power of two (Prometheus' limit).
pub const NATIVE_MAX_SCHEMA: i8 = key::MAX_SCHEMA;

impl<const BUCKETS: usize> NativeHistogram<BUCKETS> {
    loom_const_fn! {
        /// An empty histogram.
        pub fn new(config: NativeConfig) -> Self {
            Self {
                config,
                stripes: [CachePadded::new(NativeStripe::new(config)), CachePadded::new(NativeStripe::new(config))],
            }
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> NativeConfig {
        self.config
    }

    /// Records one observation: one compare-and-swap, on a stripe of the calling thread's
    /// (see the [module documentation](self), also for what happens when the slots are full).
    #[inline]
    pub fn observe(&self, v: f64) {
        stripe::hold(&self.stripes, Observe { v, config: &self.config });
    }

    /// A consistent snapshot: `count` equals the zero bucket plus the NaN count plus every
    /// bucket, and `sum` is the sum of exactly those observations. Waits only for an
    /// observation in flight.
    pub fn snapshot(&self) -> NativeSnapshot<BUCKETS> {
        let [a, b] = &self.stripes;
        let a = a.lock.read(|| a.counts.snapshot());
        let b = b.lock.read(|| b.counts.snapshot());
        NativeSnapshot::merged(&a, &b)
    }
}

impl<const BUCKETS: usize> core::fmt::Debug for NativeHistogram<BUCKETS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NativeHistogram").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<const BUCKETS: usize> Series for NativeHistogram<BUCKETS> {
    type Template = NativeConfig;
    const TYPE: MetricType = MetricType::Histogram;

    fn new_series(config: Self::Template) -> Self {
        Self::new(config)
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.native_histogram_with(desc, labels, || self.snapshot())
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
