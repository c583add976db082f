//! [`NativeCounts`]: one stripe's native buckets, changed only by the stripe's holder.

use super::bucket::Bucket;
use super::key::{FineKey, MIN_SCHEMA};
use super::{NativeConfig, NativeSnapshot};
use crate::atomic::{AtomicU8, AtomicU32, Ordering, array_of, loom_const_fn};
use crate::stripe::Word;

/// An observation's slot at a stripe's schema, found before the stripe is taken.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prepared {
    key: FineKey,
    tag: u32,
    home: u32,
    schema: i8,
}

/// The native buckets of one stripe: `BUCKETS` slots, each a bucket's tag (sign, schema, key;
/// 0 when empty) and its count, the zero bucket, the NaN count and the sum.
///
/// Only the stripe's holder calls the `&self` methods that change it, so they are plain
/// single-threaded code over loads and stores; a scrape reads it with [`Self::snapshot`] as a
/// seqlock reader (and throws away a copy that overlapped a hold). Every slot has the stripe's
/// current schema: lowering it retags every slot in the same hold.
#[derive(Debug)]
pub(super) struct NativeCounts<const BUCKETS: usize> {
    /// The schema, plus 4 (so it fits an unsigned byte). Only ever lowered.
    schema: AtomicU8,
    /// The zero threshold's bits. Only ever raised.
    zero_threshold: Word,
    zero: Word,
    nan: Word,
    /// `f64` bits: the sum of the stripe's observations, in the order recorded.
    sum: Word,
    tags: [AtomicU32; BUCKETS],
    counts: [Word; BUCKETS],
}

impl<const BUCKETS: usize> NativeCounts<BUCKETS> {
    loom_const_fn! {
        pub(super) fn new(config: NativeConfig) -> Self {
            Self {
                schema: AtomicU8::new((config.schema() - MIN_SCHEMA) as u8),
                zero_threshold: Word::with(config.zero_threshold().to_bits()),
                zero: Word::new(),
                nan: Word::new(),
                sum: Word::new(),
                tags: array_of![AtomicU32::new(0); BUCKETS],
                counts: array_of![Word::new(); BUCKETS],
            }
        }
    }

    #[inline]
    fn schema(&self) -> i8 {
        // Relaxed: the stripe's lock orders every access.
        self.schema.load(Ordering::Relaxed) as i8 + MIN_SCHEMA
    }

    #[inline]
    fn zero_threshold(&self) -> f64 {
        f64::from_bits(self.zero_threshold.get())
    }

    #[inline]
    fn tag(&self, i: usize) -> u32 {
        // Relaxed: the stripe's lock orders every access.
        self.tags[i].load(Ordering::Relaxed)
    }

    fn set_tag(&self, i: usize, tag: u32) {
        // Relaxed: as in `tag`.
        self.tags[i].store(tag, Ordering::Relaxed);
    }

    /// The first slot to probe for `bucket`: consecutive keys get consecutive slots.
    #[inline]
    fn home(bucket: Bucket) -> usize {
        let half = if bucket.negative { BUCKETS / 2 } else { 0 };
        (bucket.key as u32 as usize).wrapping_add(half).checked_rem(BUCKETS).unwrap_or(0)
    }

    /// Where `v` goes at the schema the stripe has now: computed before the stripe is taken
    /// (the schema read then may be stale by the time it is; [`Self::record`] checks).
    #[inline(always)]
    pub(super) fn prepare(&self, v: f64) -> Prepared {
        let key = FineKey::of(v);
        let schema = self.schema();
        let bucket = Bucket { negative: v < 0.0, schema, key: key.at(schema) };
        Prepared { key, schema, tag: bucket.tag(), home: Self::home(bucket) as u32 }
    }

    /// Records `v`, prepared as `at` (the holder only). Never fails: when the slots are full,
    /// client_golang's rules make room (see the [module documentation](super)).
    #[inline(always)]
    pub(super) fn record(&self, v: f64, mut at: Prepared, config: &NativeConfig) {
        self.sum.add_f64(v);
        loop {
            // One branch for the rare cases: NaN compares false, as does a value in the zero
            // bucket.
            #[allow(clippy::neg_cmp_op_on_partial_ord, reason = "NaN must take this branch too")]
            if !(v.abs() > self.zero_threshold()) {
                if v.is_nan() {
                    self.nan.bump();
                } else {
                    self.zero.bump();
                }
                return;
            }
            let schema = self.schema();
            if schema != at.schema {
                // Lowered since `prepare` (or another stripe, at another schema, was free).
                let bucket = Bucket { negative: v < 0.0, schema, key: at.key.at(schema) };
                at = Prepared { key: at.key, schema, tag: bucket.tag(), home: Self::home(bucket) as u32 };
            }
            if self.add_at(at.tag, at.home as usize, 1) {
                return;
            }
            let bucket = Bucket { negative: v < 0.0, schema, key: at.key.at(schema) };
            self.make_room(bucket, config);
        }
    }

    /// Adds `n` to the slot of `bucket`, or claims an empty slot for it; `false` if every slot
    /// holds another bucket.
    fn add(&self, bucket: Bucket, n: u64) -> bool {
        self.add_at(bucket.tag(), Self::home(bucket), n)
    }

    /// Adds `n` to the slot tagged `tag`, probing from `home`, or claims an empty slot for it;
    /// `false` if every slot holds another bucket. Always inlined on servers: left to LLVM it
    /// was a call on every observation in some builds (6.7 ns against 5.6 inlined).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn add_at(&self, tag: u32, home: usize, n: u64) -> bool {
        if BUCKETS == 0 {
            return false;
        }
        for probe in 0..BUCKETS {
            let i = (home + probe) % BUCKETS;
            let t = self.tag(i);
            if t == tag {
                self.counts[i].set(self.counts[i].get().wrapping_add(n));
                return true;
            }
            if t == 0 {
                self.counts[i].set(n);
                self.set_tag(i, tag);
                return true;
            }
        }
        false
    }

    /// Makes room after `bucket` found no slot: widen the zero bucket over the lowest bucket if
    /// that stays within the maximum zero threshold, else lower the resolution, else (at the
    /// lowest schema) widen the zero bucket anyway.
    #[cold]
    #[inline(never)]
    fn make_room(&self, bucket: Bucket, config: &NativeConfig) {
        // The lowest bucket, `bucket` included: what the zero bucket would have to swallow.
        let mut lowest = bucket.upper();
        for i in 0..BUCKETS {
            if let Some(b) = Bucket::from_tag(self.tag(i)) {
                lowest = lowest.min(b.upper());
            }
        }
        let schema = self.schema();
        if lowest > config.max_zero_threshold() && schema > MIN_SCHEMA {
            // Relaxed: the stripe's lock orders every access.
            self.schema.store((schema - 1 - MIN_SCHEMA) as u8, Ordering::Relaxed);
        } else {
            self.zero_threshold.set(lowest.max(self.zero_threshold()).to_bits());
        }
        self.rebuild();
    }

    /// Brings every slot to the current schema, folds buckets under the zero threshold into
    /// the zero bucket and merges slots that now hold the same bucket. Each slot's bucket ends
    /// up in at most as many slots as before, so re-adding always finds room.
    fn rebuild(&self) {
        let schema = self.schema();
        let threshold = self.zero_threshold();
        let mut entries = [(0u32, 0u64); BUCKETS];
        for (i, entry) in entries.iter_mut().enumerate() {
            *entry = (self.tag(i), self.counts[i].get());
            self.set_tag(i, 0);
        }
        for (tag, count) in entries {
            let Some(b) = Bucket::from_tag(tag) else { continue };
            let b = b.at(schema);
            if b.upper() <= threshold {
                self.zero.set(self.zero.get().wrapping_add(count));
            } else {
                let added = self.add(b, count);
                debug_assert!(added, "a rebuild never needs more slots than it had");
            }
        }
    }

    /// A copy (in a seqlock read or by the holder); a copy that overlapped a hold may not add
    /// up, and is thrown away by the caller.
    pub(super) fn snapshot(&self) -> NativeSnapshot<BUCKETS> {
        let schema = self.schema();
        let mut snap = NativeSnapshot::empty(schema, self.zero_threshold());
        let mut count = 0u64;
        snap.fill((0..BUCKETS).filter_map(|i| {
            let b = Bucket::from_tag(self.tag(i))?.at(schema);
            let n = self.counts[i].get();
            count = count.wrapping_add(n);
            Some((b.negative, b.key, n))
        }));
        snap.zero_count = self.zero.get();
        snap.nan_count = self.nan.get();
        snap.count = count.wrapping_add(snap.zero_count).wrapping_add(snap.nan_count);
        snap.sum = f64::from_bits(self.sum.get());
        snap
    }
}
