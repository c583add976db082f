//! Stripes: the storage of every histogram. A histogram's counts are split over `S` stripes,
//! each on its own cache line(s) and written by one thread at a time; see
//! [`Histogram`](crate::Histogram) for why this is the fastest design on Intel and AMD alike.
//!
//! A stripe starts with a [`StripeLock`], a sequence word that is even while the stripe is
//! free and odd while a writer holds it:
//!
//! - an observer *takes* the stripe of the calling thread with one compare-and-swap of the
//!   word from even to odd ([`hold`]; if it is taken, the next free one), changes the counts
//!   with plain loads and stores, and gives it back with a plain store of the word plus 2;
//! - a scrape reads each stripe as a seqlock reader ([`StripeLock::read`]): the word, the
//!   counts, the word again, keeping the copy if the word was even and did not change; if
//!   observers keep changing it, the scrape takes the stripe itself (observers then use
//!   another) and copies it. So every stripe a scrape adds up is whole.
//!
//! The counts are atomics only so that a seqlock reader's overlapping read is not a data race:
//! a [`Word`] is read and written with single-copy loads and stores, never a read-modify-write.

use crossbeam_utils::CachePadded;

use crate::atomic::{AtomicUsize, Ordering, fence, loom_const_fn, spin_loop};
use crate::sharded::{keep_thread_shard, thread_shard};

/// A 64-bit value in a stripe, read and written with single-copy loads and stores (never a
/// read-modify-write): the stripe's lock keeps its parts together, so on targets without
/// 64-bit atomics it is two 32-bit words and needs no lock of its own.
#[cfg(any(loom, target_has_atomic = "64"))]
#[derive(Debug)]
pub(crate) struct Word(crate::atomic::AtomicU64);

#[cfg(any(loom, target_has_atomic = "64"))]
impl Word {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            Self::with(0)
        }
    }

    loom_const_fn! {
        pub(crate) fn with(value: u64) -> Self {
            Self(crate::atomic::AtomicU64::new(value))
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> u64 {
        // Relaxed: the stripe's lock orders every access.
        self.0.load(Ordering::Relaxed)
    }

    #[inline(always)]
    pub(crate) fn set(&self, value: u64) {
        // Relaxed: as in `get`.
        self.0.store(value, Ordering::Relaxed);
    }
}

/// A 64-bit value in a stripe, read and written with single-copy loads and stores (never a
/// read-modify-write): the stripe's lock keeps its parts together, so on targets without
/// 64-bit atomics it is two 32-bit words and needs no lock of its own.
#[cfg(not(any(loom, target_has_atomic = "64")))]
#[derive(Debug)]
pub(crate) struct Word([crate::atomic::AtomicU32; 2]);

#[cfg(not(any(loom, target_has_atomic = "64")))]
impl Word {
    pub(crate) const fn new() -> Self {
        Self::with(0)
    }

    pub(crate) const fn with(value: u64) -> Self {
        Self([crate::atomic::AtomicU32::new(value as u32), crate::atomic::AtomicU32::new((value >> 32) as u32)])
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> u64 {
        // Relaxed: the stripe's lock orders every access.
        u64::from(self.0[0].load(Ordering::Relaxed)) | (u64::from(self.0[1].load(Ordering::Relaxed)) << 32)
    }

    #[inline(always)]
    pub(crate) fn set(&self, value: u64) {
        // Relaxed: as in `get`.
        self.0[0].store(value as u32, Ordering::Relaxed);
        self.0[1].store((value >> 32) as u32, Ordering::Relaxed);
    }
}

impl Word {
    /// Adds 1 (the holder only).
    #[inline(always)]
    pub(crate) fn bump(&self) {
        self.set(self.get().wrapping_add(1));
    }

    /// Adds `v` to the `f64` it holds (the holder only).
    #[inline(always)]
    pub(crate) fn add_f64(&self, v: f64) {
        self.set((f64::from_bits(self.get()) + v).to_bits());
    }
}

/// The sequence word at the start of a stripe: even while the stripe is free, odd while a
/// writer (an observer, or a scrape that took it) holds it; each hold adds 2 in all.
#[derive(Debug)]
pub(crate) struct StripeLock {
    seq: AtomicUsize,
}

/// Optimistic reads a scrape tries on a stripe before taking it.
const OPTIMISTIC_READS: usize = if cfg!(loom) { 1 } else { 4 };

impl StripeLock {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            Self { seq: AtomicUsize::new(0) }
        }
    }

    /// Takes the stripe if it is free: its `seq` before (even), or `None`.
    #[inline(always)]
    pub(crate) fn try_take(&self) -> Option<usize> {
        // Relaxed: only a guess of the value to swap; the compare-and-swap checks it.
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 != 0 {
            return None;
        }
        // Acquire: pairs with the release that gave the stripe back, so the holder sees the
        // previous holder's counts. A failed attempt writes nothing. Strong, not weak: a
        // spurious failure would send the thread to another stripe for good (one thread's
        // observations split over two stripes merge at a lower resolution); on x86 both are
        // the same `lock cmpxchg`.
        self.seq.compare_exchange(seq, seq | 1, Ordering::Acquire, Ordering::Relaxed).ok()?;
        // Release fence: a seqlock reader that reads any store of this hold also reads an odd
        // or later `seq` afterwards (its acquire fence pairs with this one), so it retries.
        fence(Ordering::Release);
        Some(seq)
    }

    /// Gives the stripe back, taken when `seq` was `seq`.
    #[inline(always)]
    pub(crate) fn give_back(&self, seq: usize) {
        // Release: the next holder (acquire) and seqlock readers see this hold's stores.
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// What `copy` returns from a whole stripe: read as a seqlock reader, or, when observers
    /// keep writing, with the stripe taken. `copy` may run on a stripe being written (its
    /// result is then thrown away), so it must not panic on counts that do not add up.
    pub(crate) fn read<T>(&self, mut copy: impl FnMut() -> T) -> T {
        for _ in 0..OPTIMISTIC_READS {
            // Acquire: pairs with `give_back`'s release, so the copy holds every store of the
            // holds before this value.
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let copied = copy();
                // Acquire fence: if the copy read a store of a later hold, the load below sees
                // that hold's odd `seq` or later (pairs with the fence in `try_take`).
                fence(Ordering::Acquire);
                // Relaxed: ordered by the fence above.
                if self.seq.load(Ordering::Relaxed) == before {
                    return copied;
                }
            }
            spin_loop();
        }
        loop {
            if let Some(seq) = self.try_take() {
                let copied = copy();
                self.give_back(seq);
                return copied;
            }
            spin_loop();
        }
    }
}

/// A stripe: counts behind a [`StripeLock`].
pub(crate) trait Stripe {
    fn lock(&self) -> &StripeLock;
}

/// What an observation does on a stripe, in two parts (see [`hold`]). A trait rather than two
/// closures: its methods are always inlined on servers, where LLVM kept a large closure (both
/// halves of a `HybridHistogram`) out of line, a call and its register saves per observation.
pub(crate) trait Write<T> {
    /// The work that does not need the stripe held (which bucket a value falls in).
    type Prepared;
    /// What the observation returns.
    type Output;
    /// Runs on the stripe before it is taken, and again on another stripe if it was taken.
    fn prepare(&self, stripe: &T) -> Self::Prepared;
    /// Runs on the stripe, held.
    fn write(&self, stripe: &T, prepared: Self::Prepared) -> Self::Output;
}

/// Runs `op` on a stripe of the calling thread's, held: with the `std` feature, the thread's
/// number (handed out round-robin on first use, so two threads started one after the other
/// get different stripes); without it, a hash of the address of a local on its stack. If that
/// stripe is taken (by another observer or a scrape), the first free one after it, which
/// becomes the thread's stripe from then on (with `std`).
///
/// [`Write::prepare`] runs first, on the thread's stripe before it is taken: outside the hold,
/// that work overlaps the compare-and-swap instead of following it. When the thread's stripe
/// is taken, it runs again for the stripe used instead, so nothing prepared has to be kept
/// (in memory, for a large result) across the rare path.
#[inline(always)]
pub(crate) fn hold<T: Stripe, W: Write<T>, const S: usize>(stripes: &[CachePadded<T>; S], op: W) -> W::Output {
    let k = thread_shard() % S;
    let stripe = &stripes[k];
    let prepared = op.prepare(stripe);
    if let Some(seq) = stripe.lock().try_take() {
        let r = op.write(stripe, prepared);
        stripe.lock().give_back(seq);
        return r;
    }
    hold_elsewhere(stripes, k, op)
}

/// [`hold`] when stripe `k` was taken.
#[cold]
#[inline(never)]
fn hold_elsewhere<T: Stripe, W: Write<T>, const S: usize>(stripes: &[CachePadded<T>; S], k: usize, op: W) -> W::Output {
    let mut i = k;
    loop {
        i = if i + 1 >= S { 0 } else { i + 1 };
        let stripe = &stripes[i];
        if let Some(seq) = stripe.lock().try_take() {
            let r = op.write(stripe, op.prepare(stripe));
            stripe.lock().give_back(seq);
            if i != k {
                keep_thread_shard(i);
            }
            return r;
        }
        if i == k {
            // Every stripe was taken: each holder is inside a few instructions.
            spin_loop();
        }
    }
}
