//! Sharded metrics for series that several threads update at once.
//!
//! One shared atomic bounces its cache line between the cores that update it, so a counter
//! bumped from every thread costs far more than one bumped from one. [`ShardedCounter`] and
//! [`ShardedHistogram`] split the series over `S` cache-line-aligned shards; each thread
//! updates "its" shard, a scrape adds the shards up. A thread's shard is:
//!
//! * with the `std` feature, a per-thread number handed out round-robin on first use, so up
//!   to `S` threads never share a shard;
//! * without it, a hash of the thread's stack address: threads (or RTOS tasks) with stacks far
//!   enough apart usually land on different shards. Landing on the same shard is always
//!   correct, only slower.
//!
//! A scrape is as consistent as the unsharded types: a [`ShardedHistogram`] is a
//! [`Histogram`](crate::Histogram) with `S` stripes instead of two (see
//! [its design](crate::histogram)), and its snapshot adds up whole stripes, so `count` still
//! equals the sum of the buckets.

use crate::atomic::{AtomicU64, Ordering, array_of, loom_const_fn};
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
use crate::family::Series;
use crossbeam_utils::CachePadded;

use crate::histogram::{Snapshot, Stripes};

#[cfg(all(feature = "std", not(loom)))]
std::thread_local! {
    /// The calling thread's shard number; `usize::MAX` until its first use.
    static SHARD: core::cell::Cell<usize> = const { core::cell::Cell::new(usize::MAX) };
}

/// The shard number of the calling thread (any `usize`; callers reduce it modulo their `S`).
#[cfg(all(feature = "std", not(loom)))]
#[inline]
pub(crate) fn thread_shard() -> usize {
    static NEXT: crate::atomic::AtomicUsize = crate::atomic::AtomicUsize::new(0);
    SHARD.with(|s| match s.get() {
        usize::MAX => {
            // Relaxed: only hands out distinct numbers; nothing is published through it.
            let n = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
            s.set(n);
            n
        }
        n => n,
    })
}

/// Makes `shard` the calling thread's shard number from now on: it found its own shard busy
/// and used that one instead.
#[cfg(all(feature = "std", not(loom)))]
#[cold]
pub(crate) fn keep_thread_shard(shard: usize) {
    SHARD.with(|s| s.set(shard & (usize::MAX >> 1)));
}

/// Makes `shard` the calling thread's shard number from now on (without `std` threads have no
/// state to keep it in: nothing).
#[cfg(not(all(feature = "std", not(loom))))]
pub(crate) fn keep_thread_shard(_shard: usize) {}

/// The shard number of the calling thread (any `usize`; callers reduce it modulo their `S`).
#[cfg(not(any(feature = "std", loom)))]
#[inline]
pub(crate) fn thread_shard() -> usize {
    if cfg!(miri) {
        // Miri gives every local an address of its own, so the hash below would scatter one
        // thread's updates over every shard; one shard keeps a thread on one as on hardware
        // (concurrent threads still find it taken and move on).
        return 0;
    }
    let marker = 0u8;
    // Threads have distinct stacks: bits above 16 KiB of a local's address tell them apart
    // while staying the same for one thread at any call depth short of 16 KiB.
    let page = (core::ptr::addr_of!(marker).addr() >> 14) as u32;
    (page.wrapping_mul(0x9E37_79B9) >> 16) as usize
}

/// The shard number of the calling thread under loom: from loom's thread id, so that every
/// execution of a model picks the same shards (stack addresses differ between executions, and
/// loom needs a deterministic model).
#[cfg(loom)]
pub(crate) fn thread_shard() -> usize {
    /// Folds what it is given; the id's `Debug` text is its number within the execution
    /// (its `Hash` also covers the execution's id, which changes).
    struct Fold(usize);
    impl core::fmt::Write for Fold {
        fn write_str(&mut self, text: &str) -> core::fmt::Result {
            for b in text.bytes() {
                self.0 = self.0.wrapping_mul(31).wrapping_add(usize::from(b));
            }
            Ok(())
        }
    }
    let mut fold = Fold(0);
    // Writing into `Fold` cannot fail.
    let _ = core::fmt::Write::write_fmt(&mut fold, format_args!("{:?}", loom::thread::current().id()));
    fold.0
}

/// A counter split over `S` shards: [`inc`](Self::inc) costs one uncontended atomic add even
/// when many threads count the same series.
///
/// Reading it ([`get`](Self::get), a scrape) adds `S` shards; use the plain
/// [`Counter`](crate::Counter) for series that one thread at a time updates, where it is as
/// fast and `S` cache lines (128 bytes each on x86_64 and aarch64) smaller.
///
/// # Examples
/// ```
/// use diag_core::ShardedCounter;
/// static REQUESTS: ShardedCounter<8> = ShardedCounter::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..1000).for_each(|_| REQUESTS.inc()));
///     }
/// });
/// assert_eq!(REQUESTS.get(), 4000);
/// ```
#[derive(Debug)]
pub struct ShardedCounter<const S: usize = 8> {
    shards: [CachePadded<AtomicU64>; S],
}

impl<const S: usize> ShardedCounter<S> {
    loom_const_fn! {
        /// A counter at zero. `S` must be at least 1.
        pub fn new() -> Self {
            Self { shards: array_of![CachePadded::new(AtomicU64::new(0)); S] }
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n` to the calling thread's shard (wrapping, like [`Counter`](crate::Counter)).
    #[inline]
    pub fn inc_by(&self, n: u64) {
        if let Some(shard) = self.shards.get(thread_shard() % S.max(1)) {
            // Relaxed: a counter publishes nothing but its own value.
            shard.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The current value: the sum of the shards.
    pub fn get(&self) -> u64 {
        // Relaxed: see `inc_by`; each shard is read once, so the sum is a value the counter
        // passed through or will pass through (shards only grow).
        self.shards.iter().fold(0u64, |sum, s| sum.wrapping_add(s.load(Ordering::Relaxed)))
    }
}

#[cfg(not(loom))]
impl<const S: usize> Default for ShardedCounter<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const S: usize> Series for ShardedCounter<S> {
    type Template = ();
    const TYPE: MetricType = MetricType::Counter;

    fn new_series((): ()) -> Self {
        Self::new()
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.sample(desc, labels, Value::U64(self.get()))
    }
}

/// A [`Histogram`](crate::Histogram) split over `S` stripes instead of two, for a series
/// observed by more than two threads at once.
///
/// Each stripe is a cache-line-aligned set of counts that one observer at a time takes (see
/// [the histogram's design](crate::histogram)), so threads on different stripes never share a
/// line. A snapshot adds up every stripe and is consistent in the same way as
/// [`Histogram`](crate::Histogram)'s: `count` equals the sum of the buckets and `sum` is the
/// sum of exactly those observations (added stripe by stripe).
///
/// # Examples
/// ```
/// use diag_core::{ShardedHistogram, DEFAULT_BUCKETS};
/// static LATENCY: ShardedHistogram<11, 4> = ShardedHistogram::new(&DEFAULT_BUCKETS);
/// std::thread::scope(|s| {
///     s.spawn(|| LATENCY.observe(0.2));
///     s.spawn(|| LATENCY.observe(7.0));
/// });
/// let snap = LATENCY.snapshot();
/// assert_eq!((snap.count, snap.cumulative(5), snap.sum), (2, 1, 7.2));
/// ```
#[derive(Debug)]
pub struct ShardedHistogram<const N: usize, const S: usize = 4> {
    stripes: Stripes<N, S>,
}

impl<const N: usize, const S: usize> ShardedHistogram<N, S> {
    loom_const_fn! {
        /// An empty histogram over `bounds` (sorted ascending, finite; `+Inf` is implicit).
        /// `S` must be at least 1 (checked when compiling); with 1, concurrent observers wait
        /// for each other.
        pub fn new(bounds: &'static [f64; N]) -> Self {
            Self { stripes: Stripes::new(bounds) }
        }
    }

    /// The finite upper bounds.
    pub fn bounds(&self) -> &'static [f64; N] {
        self.stripes.bounds()
    }

    /// Records one observation in the calling thread's stripe (or the next free one).
    #[inline]
    pub fn observe(&self, v: f64) {
        self.stripes.observe(v);
    }

    /// A consistent snapshot: the sum of every stripe's buckets, counts and sums.
    pub fn snapshot(&self) -> Snapshot<N> {
        self.stripes.snapshot()
    }
}

impl<const N: usize, const S: usize> Series for ShardedHistogram<N, S> {
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
    use std::vec::Vec;

    #[test]
    fn sharded_counter_sums_every_thread() {
        let c: Arc<ShardedCounter<4>> = Arc::new(ShardedCounter::new());
        let per_thread = if cfg!(miri) { 20 } else { 10_000 };
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..per_thread).for_each(|_| c.inc()))
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        c.inc_by(5);
        assert_eq!(c.get(), 6 * per_thread + 5);
    }

    #[test]
    fn one_shard_is_a_plain_counter() {
        let c: ShardedCounter<1> = ShardedCounter::new();
        c.inc();
        c.inc_by(2);
        assert_eq!(c.get(), 3);
    }

    #[test]
    fn threads_get_distinct_shards_with_std() {
        let mine = thread_shard();
        assert_eq!(mine, thread_shard(), "stable within a thread");
        if cfg!(feature = "std") {
            let other = std::thread::spawn(thread_shard).join().unwrap();
            assert_ne!(mine, other);
        }
    }

    static BOUNDS: [f64; 3] = [1.0, 2.0, 5.0];

    #[test]
    fn sharded_histogram_snapshots_stay_consistent() {
        let h: Arc<ShardedHistogram<3, 2>> = Arc::new(ShardedHistogram::new(&BOUNDS));
        let per_thread = if cfg!(miri) { 50 } else { 20_000 };
        let observers: Vec<_> = (0..3)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || (0..per_thread).for_each(|i| h.observe(((i + t) % 7) as f64)))
            })
            .collect();
        let mut last = 0;
        loop {
            let s = h.snapshot();
            // Buckets hold {0, 1}, {2}, {3, 4, 5} and {6}: a sum made of exactly the counted
            // observations lies within the bounds those counts allow.
            let b = s.buckets.map(|n| n as f64);
            let (low, high) =
                (2.0 * b[1] + 3.0 * b[2] + 6.0 * s.inf as f64, b[0] + 2.0 * b[1] + 5.0 * b[2] + 6.0 * s.inf as f64);
            assert!((low..=high).contains(&s.sum), "sum {} outside [{low}, {high}]", s.sum);
            assert!(s.count >= last);
            last = s.count;
            if observers.iter().all(|o| o.is_finished()) {
                break;
            }
        }
        observers.into_iter().for_each(|o| o.join().unwrap());
        let s = h.snapshot();
        assert_eq!(s.count, 3 * per_thread);
        // Each thread observes ((i + t) % 7) for i in 0..per_thread.
        let expected: u64 = (0..3).map(|t| (0..per_thread).map(|i| (i + t) % 7).sum::<u64>()).sum();
        assert_eq!(s.sum, expected as f64);
    }
}
