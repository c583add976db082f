//! A Prometheus native histogram in fixed space: exponential buckets, lock-free observations,
//! consistent scrapes.
//!
//! # Buckets
//! At schema `s` (`-4..=8`) every power of two is split into `2^s` buckets; bucket `k` holds
//! the values whose absolute value is in `(2^((k-1)/2^s), 2^(k/2^s)]`. Values whose absolute
//! value is at most the zero threshold are counted in the zero bucket; NaN is counted (in
//! `count` and `sum`) but in no bucket, as client_golang does. Positive and negative buckets
//! share one array of `BUCKETS` *slots*, each a 128-bit word holding a bucket's tag (sign,
//! schema, key) and its count, so only populated buckets take space.
//!
//! # When the slots run out
//! client_golang's rules, without allocating: when an observation finds no slot for its
//! bucket, the histogram first *tidies* (merges slots that ended up holding the same bucket,
//! and folds buckets below the zero threshold into the zero bucket); if that frees nothing and
//! the lowest bucket's upper bound is within the configured maximum zero threshold, it *widens
//! the zero bucket* to swallow that bucket; otherwise it *lowers the resolution* (schema − 1,
//! every pair of buckets becomes one). At schema −4 with every slot still holding a distinct
//! bucket, the zero bucket widens past the maximum as a last resort: the observation is
//! always counted, nothing panics, nothing allocates. The schema never rises again (client_golang
//! can reset the histogram after a while; diag keeps counts monotonic instead).
//!
//! # Concurrency
//! An observation is lock-free: a compare-and-swap on the sum, one on its slot (or on the zero
//! or NaN counter). It reads the schema and zero threshold without synchronising with a
//! change of them: a slot's tag carries the schema it was counted at, and a scrape brings every
//! slot to the lowest schema present and folds buckets under the threshold into the zero
//! bucket, so a stale observation is still counted in the right place.
//!
//! Changing the resolution retags slots in place (one compare-and-swap, the count stays);
//! merging two slots or folding one into the zero bucket takes a count out of one word and
//! adds it to another, and a scrape must not see it in both or neither. Such *moves* are
//! bracketed by a counter (moves in progress, moves finished): a scrape reads everything
//! between two loads of it and retries if a move was under way or finished meanwhile, like a sequence lock. So a
//! scrape is consistent — `count` equals the zero bucket plus the NaN count plus every bucket —
//! and may wait for a move in progress (never for an observation). Moves only happen when the
//! slots are full, a few times in a histogram's life; do not scrape from an interrupt handler
//! that may interrupt a move.
//!
//! The sum is one more atomic, so a scrape concurrent with observations may include an
//! observation in `sum` and not yet in its bucket (or the reverse); once observations stop,
//! both agree. (The classic [`Histogram`](crate::Histogram) keeps sum and count in one word
//! per bucket; a native bucket's word holds its tag instead.)

mod bucket;
mod hybrid;
mod key;
mod snapshot;

use crate::atomic::{AtomicU8, AtomicU64, AtomicU128, Ordering, array_of, loom_const_fn, spin_loop};
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop};
use crate::family::Series;
use bucket::{Bucket, pack, unpack};
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
    /// The current schema, plus 4 (so it fits an unsigned byte). Only ever lowered.
    schema: AtomicU8,
    /// The current zero threshold's bits (a non-negative `f64`, so its bits order like it).
    /// Only ever raised.
    zero_threshold: AtomicU64,
    zero: AtomicU64,
    nan: AtomicU64,
    sum: AtomicU64,
    /// Moves finished (high 32 bits, wrapping) and moves in progress (low 32 bits).
    moves: AtomicU64,
    slots: [AtomicU128; BUCKETS],
}

/// The lowest schema: one bucket per 2^16 (Prometheus' limit).
pub const NATIVE_MIN_SCHEMA: i8 = key::MIN_SCHEMA;
/// The highest schema: 256 buckets per power of two (Prometheus' limit).
pub const NATIVE_MAX_SCHEMA: i8 = key::MAX_SCHEMA;

/// What ending a move adds to [`NativeHistogram::moves`]: one more finished, one fewer in
/// progress (the low half is at least 1 then, so nothing borrows from the high half).
const MOVE_ENDED: u64 = (1 << 32) - 1;
/// The moves-in-progress half of [`NativeHistogram::moves`].
const IN_PROGRESS: u64 = 0xffff_ffff;

impl<const BUCKETS: usize> NativeHistogram<BUCKETS> {
    loom_const_fn! {
        /// An empty histogram.
        pub fn new(config: NativeConfig) -> Self {
            Self {
                config,
                schema: AtomicU8::new((config.schema - key::MIN_SCHEMA) as u8),
                zero_threshold: AtomicU64::new(config.zero_threshold.to_bits()),
                zero: AtomicU64::new(0),
                nan: AtomicU64::new(0),
                sum: AtomicU64::new(0),
                moves: AtomicU64::new(0),
                slots: array_of![AtomicU128::new(0); BUCKETS],
            }
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> NativeConfig {
        self.config
    }

    /// Records one observation. Lock-free: it never waits for a scrape or another observer
    /// (see the [module documentation](self) for what happens when the slots are full).
    pub fn observe(&self, v: f64) {
        // Relaxed throughout: each counter publishes only its own value; scrapes order
        // themselves against moves, not against observations (see `snapshot`).
        let mut sum = self.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(sum) + v).to_bits();
            match self.sum.compare_exchange_weak(sum, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => sum = now,
            }
        }
        if v.is_nan() {
            self.nan.fetch_add(1, Ordering::Relaxed);
            return;
        }
        loop {
            if v.abs() <= self.zero_threshold() {
                self.zero.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let schema = self.schema();
            let bucket = Bucket { negative: v < 0.0, schema, key: key::key(v, schema) };
            if self.add_to_slot(bucket, 1) {
                return;
            }
            self.make_room(bucket);
        }
    }

    fn schema(&self) -> i8 {
        // Relaxed: a stale schema only counts an observation at a finer resolution, which a
        // slot's tag records (see the module documentation).
        self.schema.load(Ordering::Relaxed) as i8 + key::MIN_SCHEMA
    }

    fn zero_threshold(&self) -> f64 {
        // Relaxed: a stale (lower) threshold puts a value in a bucket that scrapes and tidying
        // fold into the zero bucket.
        f64::from_bits(self.zero_threshold.load(Ordering::Relaxed))
    }

    /// The first slot to probe for `bucket`: consecutive keys get consecutive slots.
    fn home(bucket: Bucket) -> usize {
        let half = if bucket.negative { BUCKETS / 2 } else { 0 };
        (bucket.key as u32 as usize).wrapping_add(half) % BUCKETS
    }

    /// Adds `n` to the slot holding `bucket`, or claims an empty slot for it; `false` if every
    /// slot holds another bucket.
    fn add_to_slot(&self, bucket: Bucket, n: u64) -> bool {
        if BUCKETS == 0 {
            return false;
        }
        let tag = bucket.tag();
        let home = Self::home(bucket);
        for probe in 0..BUCKETS {
            let slot = &self.slots[(home + probe) % BUCKETS];
            // Relaxed: see `observe`. The compare-and-swap fails if the slot's bucket changed.
            let mut word = slot.load(Ordering::Relaxed);
            loop {
                let (t, count) = unpack(word);
                let next = match t {
                    0 => pack(tag, n),
                    t if t == tag => pack(tag, count.wrapping_add(n)),
                    _ => break,
                };
                match slot.compare_exchange_weak(word, next, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return true,
                    Err(now) => word = now,
                }
            }
        }
        false
    }

    /// Makes room after `bucket` found no slot: tidy, else widen the zero bucket, else lower the
    /// resolution, else (at the lowest schema) widen the zero bucket anyway.
    #[cold]
    fn make_room(&self, bucket: Bucket) {
        if self.tidy() {
            return;
        }
        // The lowest bucket, `bucket` included: what the zero bucket would have to swallow.
        let mut lowest = bucket.upper();
        for slot in &self.slots {
            if let Some(b) = Bucket::from_tag(unpack(slot.load(Ordering::SeqCst)).0) {
                lowest = lowest.min(b.upper());
            }
        }
        if lowest <= self.config.max_zero_threshold {
            self.widen_zero(lowest);
            return;
        }
        let schema = self.schema();
        if schema > key::MIN_SCHEMA {
            let current = (schema - key::MIN_SCHEMA) as u8;
            // SeqCst with the other changes of shape. If another thread lowered it already,
            // this one has nothing more to do: its retry sees the new schema.
            let _ = self.schema.compare_exchange(current, current - 1, Ordering::SeqCst, Ordering::SeqCst);
            self.tidy();
            return;
        }
        self.widen_zero(lowest);
    }

    fn begin_move(&self) {
        // SeqCst: a scrape that sees any effect of the move sees this first (see `snapshot`).
        self.moves.fetch_add(1, Ordering::SeqCst);
    }

    fn end_move(&self) {
        self.moves.fetch_add(MOVE_ENDED, Ordering::SeqCst);
    }

    /// Raises the zero threshold to `to` and folds every bucket under it into the zero bucket.
    fn widen_zero(&self, to: f64) {
        self.begin_move();
        // SeqCst: inside the move, so a scrape reads a threshold that fits its zero count.
        self.zero_threshold.fetch_max(to.to_bits(), Ordering::SeqCst);
        self.end_move();
        self.tidy();
    }

    /// Brings every slot to the current schema, folds buckets under the zero threshold into
    /// the zero bucket and merges slots holding the same bucket. `true` if a slot is free
    /// after it (which another thread may take at once).
    fn tidy(&self) -> bool {
        let mut free = false;
        for i in 0..BUCKETS {
            let slot = &self.slots[i];
            loop {
                // SeqCst: moves and scrapes are ordered with the move counter (see `snapshot`).
                let word = slot.load(Ordering::SeqCst);
                let (tag, count) = unpack(word);
                let Some(b) = Bucket::from_tag(tag) else {
                    free = true;
                    break;
                };
                let schema = self.schema();
                if b.schema > schema {
                    // Retag in place: the count stays, only its resolution drops.
                    let next = pack(b.at(schema).tag(), count);
                    let _ = slot.compare_exchange_weak(word, next, Ordering::SeqCst, Ordering::SeqCst);
                    continue;
                }
                let into_zero = b.upper() <= self.zero_threshold();
                let twin = if into_zero {
                    None
                } else {
                    match self.slots[..i].iter().position(|s| unpack(s.load(Ordering::SeqCst)).0 == tag) {
                        Some(j) => Some(j),
                        None => break, // a bucket of its own: keep it
                    }
                };
                self.begin_move();
                if slot.compare_exchange_weak(word, 0, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                    self.end_move();
                    continue; // an observer got there first: look again
                }
                match twin {
                    None => {
                        self.zero.fetch_add(count, Ordering::SeqCst);
                    }
                    Some(j) => self.deposit(b, count, j),
                }
                self.end_move();
                free = true;
                break;
            }
        }
        free
    }

    /// Adds `count` observations of `bucket`, taken out of a slot by a move, preferably to slot
    /// `hint` (which held the same bucket). Never fails: if the bucket has no slot and none is
    /// free, the zero bucket widens to hold it.
    fn deposit(&self, bucket: Bucket, count: u64, hint: usize) {
        let slot = &self.slots[hint];
        let mut word = slot.load(Ordering::SeqCst);
        while unpack(word).0 == bucket.tag() {
            let next = pack(bucket.tag(), unpack(word).1.wrapping_add(count));
            match slot.compare_exchange_weak(word, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return,
                Err(now) => word = now,
            }
        }
        let bucket = bucket.at(self.schema());
        if bucket.upper() > self.zero_threshold() && self.add_to_slot(bucket, count) {
            return;
        }
        self.zero_threshold.fetch_max(bucket.upper().to_bits(), Ordering::SeqCst);
        self.zero.fetch_add(count, Ordering::SeqCst);
    }

    /// A consistent snapshot: `count` equals the zero bucket plus the NaN count plus every
    /// bucket (see the [module documentation](self) for `sum`). Waits only while a move is in
    /// progress.
    pub fn snapshot(&self) -> NativeSnapshot<BUCKETS> {
        loop {
            // SeqCst, like every move's steps: if this scrape reads any word a move changed,
            // the second load of the move counter sees the move started, so the scrape retries.
            let before = self.moves.load(Ordering::SeqCst);
            if before & IN_PROGRESS != 0 {
                spin_loop();
                continue;
            }
            let schema = self.schema.load(Ordering::SeqCst) as i8 + key::MIN_SCHEMA;
            let zero_threshold = f64::from_bits(self.zero_threshold.load(Ordering::SeqCst));
            let mut zero = self.zero.load(Ordering::SeqCst);
            let nan = self.nan.load(Ordering::SeqCst);
            let sum = f64::from_bits(self.sum.load(Ordering::SeqCst));
            let mut words = [0u128; BUCKETS];
            for (w, slot) in words.iter_mut().zip(&self.slots) {
                *w = slot.load(Ordering::SeqCst);
            }
            if self.moves.load(Ordering::SeqCst) != before {
                continue;
            }
            // The lowest schema of any slot: observers that read a stale schema, or a tidy in
            // progress, may leave finer ones.
            let target =
                words.iter().filter_map(|w| Bucket::from_tag(unpack(*w).0)).fold(schema, |s, b| s.min(b.schema));
            let mut count = zero.wrapping_add(nan);
            let mut snap = NativeSnapshot::empty(target, zero_threshold);
            for w in &words {
                let (tag, n) = unpack(*w);
                if let Some(b) = Bucket::from_tag(tag) {
                    count = count.wrapping_add(n);
                    if b.at(target).upper() <= zero_threshold {
                        zero = zero.wrapping_add(n);
                    }
                }
            }
            snap.fill(words.iter().filter_map(|w| {
                let (tag, n) = unpack(*w);
                let b = Bucket::from_tag(tag)?.at(target);
                (b.upper() > zero_threshold).then_some((b.negative, b.key, n))
            }));
            snap.zero_count = zero;
            snap.nan_count = nan;
            snap.count = count;
            snap.sum = sum;
            return snap;
        }
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
