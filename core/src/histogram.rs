//! A histogram with fixed buckets whose scrape is always consistent.
//!
//! The hot/cold technique of client_golang: observations go to the *hot* half; a scrape flips
//! which half is hot, waits for the few observations still finishing in the now-cold half,
//! reads it (a consistent snapshot: `count` equals the `+Inf` bucket and the sum matches),
//! then folds it into the hot half. Observers never wait; scrapes wait only for observers
//! already in flight and for each other.
//!
//! Two changes from client_golang make it cheaper, both on the same invariant:
//!
//! * A half keeps no separate completion count, which saves an atomic read-modify-write per
//!   observation. An observer's bucket increment is its last write, so the scraper waits until
//!   the cold half's buckets add up to the observations started in it. Buckets of the cold half
//!   only grow and can never add up to more than that, so when the loaded values add up to it,
//!   every load saw its bucket's final value and (the increments being release operations)
//!   every observer's sum update before it.
//! * A scrape folds nothing: each half only ever accumulates the observations made while it
//!   was hot, and is never reset. The scraper keeps a copy of the half it read last time
//!   (complete then, and unchanged since, because it was cold); the snapshot is the cold half,
//!   now complete, plus that copy. A scrape thus costs loads and plain stores, not two atomic
//!   read-modify-writes per bucket.

use crate::atomic::{AtomicBool, AtomicU64, Ordering, array_of, loom_const_fn, spin_loop};
use crate::encoding::{Desc, Encoder, HistogramView, Labels, MetricType, Stop};
use crate::family::Series;
use crate::gauge::add_f64;

/// The default buckets of the Prometheus clients, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const HOT_BIT: u64 = 1 << 63;
const COUNT_MASK: u64 = HOT_BIT - 1;

struct Half<const N: usize> {
    /// Per-bucket (not cumulative) counts for the `N` finite upper bounds.
    buckets: [AtomicU64; N],
    /// Observations above every bound (and NaN).
    inf: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Half<N> {
    loom_const_fn! {
        fn new() -> Self {
            Self { buckets: array_of![AtomicU64::new(0); N], inf: AtomicU64::new(0), sum: AtomicU64::new(0) }
        }
    }

    fn bucket(&self, i: usize) -> &AtomicU64 {
        self.buckets.get(i).unwrap_or(&self.inf)
    }

    /// Observations completed in this half: the sum of its buckets.
    fn completed(&self) -> u64 {
        // Acquire: pairs with the observers' release bucket increments, making their sum
        // updates visible (see the module documentation).
        self.buckets.iter().chain([&self.inf]).fold(0u64, |n, b| n.wrapping_add(b.load(Ordering::Acquire)))
    }
}

/// A histogram over `N` finite upper bounds (the `+Inf` bucket is implicit).
///
/// # Examples
/// ```
/// use diag_core::{Histogram, DEFAULT_BUCKETS};
/// static LATENCY: Histogram<11> = Histogram::new(&DEFAULT_BUCKETS);
/// LATENCY.observe(0.2);
/// LATENCY.observe(7.0);
/// let snap = LATENCY.snapshot();
/// assert_eq!(snap.count, 2);
/// assert_eq!(snap.cumulative(5), 1); // le="0.25"
/// assert_eq!(snap.sum, 7.2);
/// ```
pub struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    /// Bit 63: index of the hot half; bits 0..63: observations started.
    count_and_hot: AtomicU64,
    halves: [Half<N>; 2],
    /// Serialises scrapes (not observers).
    scraping: AtomicBool,
    /// The hot half's values when it was last cold and complete; read and written only by
    /// the scraper holding `scraping`.
    saved: Half<N>,
}

impl<const N: usize> Histogram<N> {
    loom_const_fn! {
        /// An empty histogram over `bounds`, which must be sorted ascending and finite (the
        /// `+Inf` bucket is added implicitly).
        pub fn new(bounds: &'static [f64; N]) -> Self {
            Self {
                bounds,
                count_and_hot: AtomicU64::new(0),
                halves: [Half::new(), Half::new()],
                scraping: AtomicBool::new(false),
                saved: Half::new(),
            }
        }
    }

    /// The finite upper bounds.
    pub fn bounds(&self) -> &'static [f64; N] {
        self.bounds
    }

    /// Records one observation. Never waits.
    #[inline]
    pub fn observe(&self, v: f64) {
        self.observe_in(bucket_index(self.bounds, v), v);
    }

    /// Records `v` in bucket `index` (`N` or more: the `+Inf` bucket).
    #[inline]
    pub(crate) fn observe_in(&self, index: usize, v: f64) {
        // Relaxed: the ticket only picks a half and counts; halves are never reset, so there
        // is nothing to acquire from the scraper, and our writes are published by the release
        // bucket increment below.
        let n = self.count_and_hot.fetch_add(1, Ordering::Relaxed);
        let half = &self.halves[(n >> 63) as usize];
        // Relaxed: published by the release bucket increment below.
        add_f64(&half.sum, v);
        // Release: the scraper acquires the buckets (`Half::completed`), then reads the sum.
        half.bucket(index).fetch_add(1, Ordering::Release);
    }

    /// A consistent snapshot: `count` equals the sum of every bucket and `sum` is the sum of
    /// exactly those observations. Waits only for observations already in flight and for
    /// concurrent snapshots.
    pub fn snapshot(&self) -> Snapshot<N> {
        // Acquire: pairs with the release in the unlock below, ordering this scrape after the
        // previous one's update of `saved`.
        while self.scraping.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spin_loop();
        }
        // Relaxed: the flip only splits the tickets into before and after (the modification
        // order of `count_and_hot`); the halves' data is acquired through their buckets.
        let n = self.count_and_hot.fetch_add(HOT_BIT, Ordering::Relaxed);
        let started = n & COUNT_MASK;
        let cold = &self.halves[(n >> 63) as usize];
        // Relaxed (every access to `saved`): guarded by the scrape flag.
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let saved_count = self.saved.buckets.iter().chain([&self.saved.inf]).fold(0u64, |n, b| n.wrapping_add(load(b)));
        // Every ticket before the flip went to the cold half, except those of the hot half,
        // which had all completed when `saved` was taken and got none since.
        let expected = started.wrapping_sub(saved_count);
        while cold.completed() != expected {
            spin_loop();
        }
        let mut snap = Snapshot { bounds: self.bounds, buckets: [0; N], inf: 0, sum: 0.0, count: started };
        // Relaxed (the cold half's loads): ordered after the observers' writes by the
        // acquire loads in `completed`; no observer writes the cold half any more.
        let store = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        for ((out, c), s) in snap.buckets.iter_mut().zip(&cold.buckets).zip(&self.saved.buckets) {
            let v = load(c);
            *out = v.wrapping_add(load(s));
            store(s, v);
        }
        let inf = load(&cold.inf);
        snap.inf = inf.wrapping_add(load(&self.saved.inf));
        store(&self.saved.inf, inf);
        let sum = load(&cold.sum);
        snap.sum = f64::from_bits(sum) + f64::from_bits(load(&self.saved.sum));
        store(&self.saved.sum, sum);
        // Release: the next scrape acquires the flag and sees `saved`.
        self.scraping.store(false, Ordering::Release);
        snap
    }
}

/// The bucket of `v`: the first bound `>= v`, or `N` (`+Inf`) for larger values and NaN.
#[inline]
pub(crate) fn bucket_index<const N: usize>(bounds: &[f64; N], v: f64) -> usize {
    if N <= 32 {
        // Branch-free: the number of bounds below `v` (all of them for NaN), which compiles to
        // a few vector compares instead of a mispredicted branch per bound.
        let nan = v.is_nan();
        bounds.iter().map(|b| usize::from(*b < v || nan)).sum()
    } else if v.is_nan() {
        N
    } else {
        bounds.partition_point(|b| *b < v)
    }
}

impl<const N: usize> core::fmt::Debug for Histogram<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Histogram").field("bounds", &self.bounds).finish_non_exhaustive()
    }
}

/// A consistent copy of a histogram's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot<const N: usize> {
    /// The finite upper bounds.
    pub bounds: &'static [f64; N],
    /// Per-bucket (non-cumulative) counts.
    pub buckets: [u64; N],
    /// Observations above every bound (and NaN).
    pub inf: u64,
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations: the sum of `buckets` and `inf`.
    pub count: u64,
}

impl<const N: usize> Snapshot<N> {
    /// The cumulative count of bucket `i` (`le = bounds[i]`); `i >= N` is the `+Inf` bucket.
    pub fn cumulative(&self, i: usize) -> u64 {
        if i >= N { self.count } else { self.buckets[..=i].iter().sum() }
    }

    /// A borrowed view for the encoder.
    pub fn view(&self) -> HistogramView<'_> {
        HistogramView { bounds: self.bounds, buckets: &self.buckets, inf: self.inf, sum: self.sum }
    }
}

impl<const N: usize> Series for Histogram<N> {
    type Template = &'static [f64; N];
    const TYPE: MetricType = MetricType::Histogram;

    fn new_series(bounds: Self::Template) -> Self {
        Self::new(bounds)
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.histogram_with(desc, labels, || self.snapshot())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::Arc;

    static BOUNDS: [f64; 3] = [1.0, 2.0, 5.0];

    #[test]
    fn buckets_are_le() {
        let h = Histogram::new(&BOUNDS);
        for v in [0.5, 1.0, 1.5, 2.0, 5.0, 5.1, f64::INFINITY] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, [2, 2, 1]);
        assert_eq!(s.inf, 2);
        assert_eq!((0..4).map(|i| s.cumulative(i)).collect::<std::vec::Vec<_>>(), [2, 4, 5, 7]);
        assert_eq!(s.count, 7);
    }

    #[test]
    fn nan_goes_to_inf_bucket() {
        let h = Histogram::new(&BOUNDS);
        h.observe(f64::NAN);
        let s = h.snapshot();
        assert_eq!((s.inf, s.count), (1, 1));
        assert!(s.sum.is_nan());
    }

    #[test]
    fn repeated_snapshots_accumulate() {
        let h = Histogram::new(&BOUNDS);
        h.observe(1.0);
        assert_eq!(h.snapshot().count, 1);
        h.observe(3.0);
        let s = h.snapshot();
        assert_eq!((s.count, s.sum, s.buckets), (2, 4.0, [1, 0, 1]));
        assert_eq!(h.snapshot(), s, "a snapshot does not consume");
    }

    #[test]
    fn bucket_index_agrees_with_a_linear_search() {
        static B: [f64; 40] = {
            let mut b = [0.0; 40];
            let mut i = 0;
            while i < 40 {
                b[i] = i as f64 * 0.5;
                i += 1;
            }
            b
        };
        let small: &[f64; 3] = &BOUNDS;
        for v in [-1.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 4.9, 5.0, 5.1, 19.5, 19.6, 100.0, f64::INFINITY, f64::NAN] {
            let expect = |b: &[f64]| b.iter().position(|x| v <= *x).unwrap_or(b.len());
            assert_eq!(bucket_index(small, v), expect(small), "{v} in 3 bounds");
            assert_eq!(bucket_index(&B, v), expect(&B), "{v} in 40 bounds");
        }
    }

    #[test]
    fn many_bounds_use_binary_search() {
        static B: [f64; 20] =
            [1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 20.];
        let h = Histogram::new(&B);
        h.observe(0.0);
        h.observe(10.0);
        h.observe(10.5);
        h.observe(21.0);
        let s = h.snapshot();
        assert_eq!((s.buckets[0], s.buckets[9], s.buckets[10], s.inf), (1, 1, 1, 1));
    }

    #[test]
    fn snapshots_consistent_under_concurrent_observers() {
        let h: Arc<Histogram<3>> = Arc::new(Histogram::new(&BOUNDS));
        let per_thread = if cfg!(miri) { 50 } else { 20_000 };
        let observers: std::vec::Vec<_> = (0..2)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..per_thread {
                        h.observe(((i + t) % 7) as f64);
                    }
                })
            })
            .collect();
        let mut last = 0;
        while last < 2 * per_thread {
            let s = h.snapshot();
            assert_eq!(s.buckets.iter().sum::<u64>() + s.inf, s.count);
            assert!(s.count >= last);
            last = s.count;
            if observers.iter().all(|o| o.is_finished()) {
                break;
            }
        }
        for o in observers {
            o.join().unwrap();
        }
        assert_eq!(h.snapshot().count, 2 * per_thread);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    static BOUNDS: [f64; 1] = [1.0];

    /// Several scrapes, so that both halves are read and `saved` is used, racing an observer
    /// that observes twice: every snapshot is consistent and monotonic, the last one exact.
    #[test]
    fn successive_snapshots_use_saved_half() {
        loom::model(|| {
            let h: Arc<Histogram<1>> = Arc::new(Histogram::new(&BOUNDS));
            let observer = {
                let h = h.clone();
                loom::thread::spawn(move || {
                    h.observe(0.5);
                    h.observe(2.0);
                })
            };
            let mut last = 0;
            for _ in 0..2 {
                let s = h.snapshot();
                assert_eq!(s.buckets[0] + s.inf, s.count);
                assert_eq!(s.sum, 0.5 * s.buckets[0] as f64 + 2.0 * s.inf as f64);
                assert!(s.count >= last);
                last = s.count;
            }
            observer.join().unwrap();
            let s = h.snapshot();
            assert_eq!((s.buckets[0], s.inf, s.count, s.sum), (1, 1, 2, 2.5));
            assert_eq!(h.snapshot(), s);
        });
    }
}
