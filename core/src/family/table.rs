//! The storage under a [`Family`](super::Family): `N` series slots, each holding its label text
//! and its series, found through an open-addressed index of `4N` entries (linear probing).
//!
//! * **Lookups** hash the label text (seeded, see [`hash`]), walk at most [`MAX_PROBE`] index
//!   entries from the hash's home position, and *pin* the slot an entry names before reading
//!   its text: one atomic add on the slot's state word, undone when the caller's
//!   [`SeriesRef`](super::SeriesRef) drops. Lookups, updates and scrapes never wait.
//! * **Creation** is lock-free: a creator writes a free slot, *publishes* it (readable, not yet
//!   scraped), and links it with one compare-and-swap of the first free index entry on its
//!   walk (empty, or a tombstone once the walk has found no live copy of the label set). A
//!   creator that loses the swap walks again; if another thread linked the same label set
//!   meanwhile, it takes that series and retracts its own slot. Two creators of one label set
//!   race for the same entry, so it is linked once (see [`Table::find_or_insert`]).
//! * **Removal** (`remove`, `retain`, `clear`) excludes creation for one bounded walk: while
//!   no entry becomes free, an entry a creator passed stays taken, which is what makes the
//!   first free entry of every walk the same for all creators of a label set. Creations wait
//!   only while a removal runs; lookups, updates and scrapes never wait for either.
//! * **Reuse.** A removed slot is unlinked from the index at once, but reused only when its
//!   pin count has dropped to zero: whoever drops the last pin (a lookup that found it just
//!   before it was removed, a scrape, a held `SeriesRef`) returns it to the free list, so no
//!   reader can see a slot change under it.
//!
//! Index entries are `0` (empty), `1` (tombstone: a series was removed; lookups walk past it,
//! creations reuse it) or a slot number plus 2 with 7 bits of the hash above it, so that most
//! collisions are told apart without touching the slot.
//!
//! Slots go `FREE` → `CLAIMED` (written by their creator) → `PUBLISHED` (readable by lookups
//! and creators that find it linked, skipped by scrapes) → `LIVE` once linked → `REMOVED` when unlinked (or
//! when its creator retracts it) → `FREE` when the last pin goes.

use core::mem::MaybeUninit;

use crate::atomic::{AtomicU32, AtomicUsize, Ordering, UnsafeCell, array_of, loom_const_fn, spin_loop};
use crate::labels::eq_short;

/// Index entries per series slot. At most a quarter of the index is live, where linear
/// probing's runs stay short: the chance that a random hash starts a run of [`MAX_PROBE`] is
/// about `e^(-64 (α - 1 - ln α))` = `e^(-40)` at load `α = 1/4` (at 1/2 with 32 entries it was
/// `e^(-6)`, which a family of 512 hit in tests). 16 bytes of index per series.
const SIZE: usize = 4;

/// Longest walk through the index, for lookups and creations alike. With at most `N` live
/// series in `4N` entries and a seeded hash, a walk this long happens only to label values
/// chosen to collide: creation then fails with [`SeriesError::Crowded`](crate::SeriesError).
pub(crate) const MAX_PROBE: usize = 64;

const EMPTY: u32 = 0;
const TOMBSTONE: u32 = 1;
const SLOT_BITS: u32 = 25;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

/// Largest capacity: slot numbers plus 2 fit in 25 bits.
pub(crate) const MAX_SERIES: usize = (SLOT_MASK - 2) as usize;

/// The table's gate while a reclaim holds it (see `Table::gate`).
const RECLAIMING: usize = usize::MAX;

/// The bit of `Table::writers` a removal sets; the bits below count creations in flight.
const REMOVING: usize = 1 << (usize::BITS - 1);

/// Slot states, in the top 4 bits of the state word; the low 28 bits count pins.
const PINS: u32 = (1 << 28) - 1;
const STATE: u32 = 1 << 28;
/// Never used, or reclaimed: on the free list (or not yet handed out).
const FREE: u32 = 0;
/// Being written by the creating thread: no reader reads its text or series.
const CLAIMED: u32 = 1;
/// Written and readable, being linked by its creator: lookups and creators compare it if the
/// entry they found still names it (see `Table::linked`); scrapes skip it.
const PUBLISHED: u32 = 2;
/// Linked: found by lookups, shown by scrapes.
const LIVE: u32 = 3;
/// Unlinked from the index (or never linked: retracted by its creator); reclaimed when the
/// last pin goes.
const REMOVED: u32 = 4;

fn state(word: u32) -> u32 {
    word / STATE
}

/// Drops one pin from a slot's state word; `true` if it was the last pin of a removed slot,
/// which the caller must then [`reclaim`](Table::reclaim).
#[inline]
pub(crate) fn release_pin(word: &AtomicU32) -> bool {
    // Release: this pin's reads of the slot happen before a reclaim that acquires the word.
    let old = word.fetch_sub(1, Ordering::Release);
    state(old) == REMOVED && old & PINS == 1
}

/// What a walk compares each candidate's stored text with: a trait rather than a closure so
/// that the comparison is inlined into the walk on servers (LLVM kept a lookup's closure out of
/// line, a call per lookup on the hot path).
pub(crate) trait Matcher {
    /// Whether `stored` (which holds a backslash if `escaped`) is the wanted series' text.
    fn matches(&self, stored: &[u8], escaped: bool) -> bool;
}

/// Rendered label text, compared byte for byte: what creators (and bare-metal lookups) match.
struct Text<'t>(&'t [u8]);

impl Matcher for Text<'_> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn matches(&self, stored: &[u8], _: bool) -> bool {
        eq_short(stored, self.0)
    }
}

/// One series: state word, free-list link, label text and the series. In this order (`C`
/// layout), so that a lookup's pin, hash compare, the start of the text and a small series
/// share the slot's first cache line.
///
/// On servers each slot starts a cache line (128 bytes with the default 64 bytes of text,
/// instead of 96): a slot sharing a line with its neighbour's state word and counter made
/// two threads updating two different series write the same line. With 4 series updated
/// from 2 threads a lookup and increment took 233 ns unaligned, 75 ns aligned (the
/// `lookup_4_2t` group). Bare-metal targets, where RAM counts and cores are one, keep the
/// packed layout.
#[cfg_attr(not(target_os = "none"), repr(C, align(64)))]
#[cfg_attr(target_os = "none", repr(C))]
struct Slot<V, const B: usize> {
    state: AtomicU32,
    /// Next free slot plus 1 (0: none), while on the free list.
    next_free: AtomicU32,
    /// The label text's hash, its low bit replaced by whether the text holds a backslash;
    /// written while `CLAIMED`, read while pinned and `LIVE`.
    hash: UnsafeCell<u64>,
    series: UnsafeCell<MaybeUninit<V>>,
    text: UnsafeCell<heapless::Vec<u8, B, u16>>,
}

impl<V, const B: usize> Slot<V, B> {
    loom_const_fn! {
        fn new() -> Self {
            Self {
                state: AtomicU32::new(FREE),
                next_free: AtomicU32::new(0),
                hash: UnsafeCell::new(0),
                text: UnsafeCell::new(heapless::Vec::new()),
                series: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }
    }
}

/// See the module documentation.
pub(crate) struct Table<V, const N: usize, const B: usize> {
    slots: [Slot<V, B>; N],
    index: [[AtomicU32; N]; SIZE],
    /// Slots ever handed out (`0..bump` have held a series), at most `N`.
    bump: AtomicUsize,
    /// Head of the free list: slot number plus 1 (0 when empty) in the low bits, and a count
    /// of the changes to the head above them, so that a pop's compare-and-swap fails on a
    /// head that was popped and pushed back meanwhile (no ABA); see [`head`]. Anyone pushes
    /// (the thread that drops a removed slot's last pin); creators pop.
    free: head::Atomic,
    /// Live series.
    len: AtomicUsize,
    /// Creations in flight, and [`REMOVING`] while a removal changes the index.
    writers: AtomicUsize,
    /// Scrapes walking the table now, or [`RECLAIMING`]. A scrape pins no slot (two atomic
    /// adds per series made a large scrape more than twice as slow): instead, no removed slot
    /// is reclaimed while a scrape runs, so none changes under a scrape reading it. A reclaim
    /// takes the gate only when no scrape runs, else puts itself off; a scrape waits only
    /// while a reclaim (a few instructions) holds it. One word, acquire/release: no reliance on
    /// sequential consistency between two locations.
    gate: AtomicUsize,
    /// Removed slots whose reclaim was put off because a scrape was running; the scrape that
    /// ends last (or a creation that finds no free slot) sweeps them.
    deferred: AtomicUsize,
}

// SAFETY: slots' text, hash and series are written only by the creator that claimed the slot,
// while it is `CLAIMED` (no reader reads them then), and read only while `PUBLISHED` or `LIVE`
// and pinned, which keeps the slot from being reclaimed; the state word's release/acquire orders both. Series
// are shared by `&V` (needs `V: Sync`) and may be dropped by another thread (needs `V: Send`).
unsafe impl<V: Send + Sync, const N: usize, const B: usize> Sync for Table<V, N, B> {}
// SAFETY: as above; moving the table moves owned `V`s.
unsafe impl<V: Send, const N: usize, const B: usize> Send for Table<V, N, B> {}

impl<V, const N: usize, const B: usize> Table<V, N, B> {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            const { assert!(N <= MAX_SERIES, "a family holds at most 2^25 - 3 series") };
            const {
                assert!(
                    (N as u64) < (1 << head::SLOT_BITS) - 1,
                    "a family holds at most 65,534 series on targets without 64-bit atomics"
                )
            };
            Self {
                slots: array_of![Slot::new(); N],
                index: array_of![array_of![AtomicU32::new(EMPTY); N]; SIZE],
                bump: AtomicUsize::new(0),
                free: head::Atomic::new(0),
                len: AtomicUsize::new(0),
                writers: AtomicUsize::new(0),
                gate: AtomicUsize::new(0),
                deferred: AtomicUsize::new(0),
            }
        }
    }

    fn entry(&self, i: usize) -> &AtomicU32 {
        // One flat index (no division by `N`, which is a real division when `N` is not a
        // power of two).
        &self.index.as_flattened()[i]
    }

    /// The index position a hash starts at: `hash` scaled onto `0..2N` (multiply-shift, so
    /// `2N` need not be a power of two).
    #[inline]
    fn home(hash: u64) -> usize {
        (((hash >> 32) * ((SIZE * N) as u64)) >> 32) as usize
    }

    #[inline]
    fn tag(hash: u64) -> u32 {
        (hash as u32) >> SLOT_BITS << SLOT_BITS
    }

    /// The longest run of occupied index entries (live or tombstones): the longest walk a
    /// lookup of an absent label set can take.
    #[cfg(test)]
    pub(crate) fn longest_run(&self) -> usize {
        let (mut longest, mut run) = (0, 0);
        // Twice round, so a run that wraps past the end is counted whole.
        for at in 0..2 * SIZE * N {
            if self.entry(at % (SIZE * N)).load(Ordering::Relaxed) == EMPTY {
                run = 0;
            } else {
                run += 1;
                longest = longest.max(run);
            }
        }
        longest.min(SIZE * N)
    }

    /// Slots that have ever held a series: a scrape walks `0..high_water()`.
    pub(crate) fn high_water(&self) -> usize {
        // Relaxed: only bounds the walk; each slot's state is acquired before it is read.
        self.bump.load(Ordering::Relaxed).min(N)
    }

    /// Live series (a snapshot).
    pub(crate) fn len(&self) -> usize {
        // Relaxed: a count for reports, ordering nothing.
        self.len.load(Ordering::Relaxed)
    }

    /// Pins slot `i` and returns its state.
    #[inline]
    pub(crate) fn pin(&self, i: usize) -> u32 {
        // Acquire: pairs with the release that made the slot LIVE, so its text and series
        // (written while CLAIMED) are visible; the pin keeps it from being reclaimed.
        state(self.slots[i].state.fetch_add(1, Ordering::Acquire))
    }

    /// Starts a scrape: until the guard drops, no slot is reclaimed, so
    /// [`peek`](Self::peek) may read any LIVE slot without pinning it.
    /// The scrape ends when the returned guard drops (a panic included).
    pub(crate) fn scrape_begin(&self) -> ScrapeGuard<'_, V, N, B> {
        // Relaxed: the compare-and-swap below decides.
        let mut gate = self.gate.load(Ordering::Relaxed);
        loop {
            if gate == RECLAIMING {
                spin_loop(); // a reclaim holds the gate for a few instructions
                // Relaxed: as above.
                gate = self.gate.load(Ordering::Relaxed);
                continue;
            }
            // Acquire: a reclaim that released the gate happened before this scrape's reads.
            match self.gate.compare_exchange_weak(gate, gate + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return ScrapeGuard(self),
                Err(now) => gate = now,
            }
        }
    }

    /// Ends a scrape; the last one sweeps the reclaims put off meanwhile.
    fn scrape_end(&self) {
        // Release: this scrape's reads happen before a reclaim that takes the gate.
        // Relaxed (deferred): a hint; sweeps check every slot.
        if self.gate.fetch_sub(1, Ordering::Release) == 1 && self.deferred.load(Ordering::Relaxed) != 0 {
            self.sweep();
        }
    }

    /// Reclaims removed slots whose pins are gone (their reclaim was put off by a scrape).
    #[cold]
    fn sweep(&self) {
        // Relaxed: a reclaim put off after this counts again and is swept later.
        self.deferred.store(0, Ordering::Relaxed);
        for i in 0..self.high_water() {
            // Relaxed: a hint; `reclaim` decides with its own compare-and-swap.
            if self.slots[i].state.load(Ordering::Relaxed) == REMOVED * STATE {
                self.reclaim(i);
            }
        }
    }

    /// Slots a scrape hints ahead of the one it writes: about 512 bytes of them, enough for
    /// the writing of the slots between to cover a miss (see `crate::prefetch`).
    const AHEAD: usize = {
        let slot = core::mem::size_of::<Slot<V, B>>();
        if slot >= 512 { 1 } else { 512 / slot }
    };

    /// Hints what a scrape reads first: the high-water mark, the gate and the first slots.
    #[inline(always)]
    pub(crate) fn prefetch_walk(&self) {
        crate::prefetch::read(&self.bump);
        crate::prefetch::read(&self.gate);
        for i in 0..Self::AHEAD {
            self.prefetch_slot(i);
        }
    }

    /// Hints the slot a scrape writing slot `i` reads [`AHEAD`](Self::AHEAD) slots later.
    #[inline(always)]
    pub(crate) fn prefetch_ahead(&self, i: usize) {
        self.prefetch_slot(i + Self::AHEAD);
    }

    /// Hints the lines of slot `i` a scrape reads: the state word's, the series' (up to six)
    /// and the first of the text's (which holds a short text whole); not the padding that
    /// keeps slots a line apart, nor the rest of a long text. Nothing past the table.
    #[inline(always)]
    fn prefetch_slot(&self, i: usize) {
        if let Some(slot) = self.slots.get(i) {
            crate::prefetch::read(&slot.state);
            crate::prefetch::read_bytes::<6>(core::ptr::addr_of!(slot.series).cast(), core::mem::size_of::<V>());
            crate::prefetch::read(core::ptr::addr_of!(slot.text));
        }
    }

    /// The text and series of slot `i` if it is LIVE, during a scrape (between
    /// [`scrape_begin`](Self::scrape_begin) and the guard drops).
    #[inline]
    pub(crate) fn peek(&self, i: usize) -> Option<(&[u8], &V)> {
        // Acquire: as in `pin`. No pin: the gate keeps the slot from being reclaimed.
        if state(self.slots[i].state.load(Ordering::Acquire)) != LIVE {
            return None;
        }
        // SAFETY: LIVE, and not reclaimed (so not rewritten) while a scrape runs: a slot
        // removed after the load above is reclaimed only once the scrape ends.
        Some(unsafe { (self.text(i), self.series(i)) })
    }

    /// Drops a pin taken by [`pin`](Self::pin) (or by a lookup).
    #[inline]
    pub(crate) fn unpin(&self, i: usize) {
        if release_pin(&self.slots[i].state) {
            self.reclaim(i);
        }
    }

    /// Slot `i`'s state word, for a [`SeriesRef`](super::SeriesRef) to drop its pin with
    /// [`release_pin`].
    pub(crate) fn state_word(&self, i: usize) -> &AtomicU32 {
        &self.slots[i].state
    }

    /// Puts a removed slot whose pins are gone on the free list (once: the compare-and-swap
    /// decides between threads racing here).
    #[cold]
    fn reclaim(&self, i: usize) {
        let slot = &self.slots[i];
        loop {
            // Acquire: every scrape's reads (released by its end) happen before the reclaim.
            match self.gate.compare_exchange_weak(0, RECLAIMING, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                // Another reclaim holds the gate for a few instructions: wait for it.
                Err(RECLAIMING) => spin_loop(),
                Err(0) => {} // spurious failure
                Err(_) => {
                    // A scrape runs: put it off; the scrape's end (or a creation) sweeps.
                    // Relaxed: a hint for sweeps, which check every slot themselves.
                    self.deferred.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        // Acquire: every pin's reads (released by its unpin) happen before the slot is reused.
        let reclaimed =
            slot.state.compare_exchange(REMOVED * STATE, FREE * STATE, Ordering::Acquire, Ordering::Relaxed).is_ok();
        // Release: the reclaim happens before any scrape that then takes the gate.
        self.gate.store(0, Ordering::Release);
        if !reclaimed {
            return; // pinned again (a reader passing by; it reclaims on unpin) or done already
        }
        let mut head = self.free.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the release compare-and-swap of the head below.
            slot.next_free.store(head_slot(head), Ordering::Relaxed);
            let pushed = next_head(head, i as u32 + 1);
            // Release: the link and the reclaim above happen before a pop that acquires the head.
            match self.free.compare_exchange_weak(head, pushed, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// The stored hash of a slot pinned in the `LIVE` state (its low bit: whether the text
    /// holds a backslash).
    ///
    /// # Safety
    /// The caller pinned slot `i` and saw it `LIVE`.
    #[inline]
    unsafe fn hash_of(&self, i: usize) -> u64 {
        // SAFETY: as for `text`.
        self.slots[i].hash.with(|h| unsafe { *h })
    }

    /// The text of a slot pinned in the `LIVE` state.
    ///
    /// # Safety
    /// The caller pinned slot `i` and saw it `LIVE`.
    #[inline]
    pub(crate) unsafe fn text(&self, i: usize) -> &[u8] {
        // SAFETY: written while CLAIMED, before the release that made it LIVE, which the pin
        // acquired; not written again while pinned (reclaim needs zero pins).
        self.slots[i].text.with(|p| unsafe { (*p).as_slice() })
    }

    /// The series of a slot pinned in the `LIVE` state (or of a slot the caller holds a pin
    /// on, for as long as it does).
    ///
    /// # Safety
    /// As for [`text`](Self::text).
    #[inline]
    pub(crate) unsafe fn series(&self, i: usize) -> &V {
        // SAFETY: initialised while CLAIMED (as `text`) and only ever read through `&V` after.
        self.slots[i].series.with(|p| unsafe { (*p).assume_init_ref() })
    }

    /// Whether a slot pinned by the caller is still `LIVE` (not removed since).
    pub(crate) fn is_live(&self, i: usize) -> bool {
        // Relaxed: advisory (a removed series' updates are kept but no longer exported).
        state(self.slots[i].state.load(Ordering::Relaxed)) == LIVE
    }

    /// Finds the series whose text `matches` (hashed to `hash`), pinning its slot. Never
    /// waits. `matches` gets the stored text and whether it holds a backslash (an escaped
    /// value).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn find(&self, hash: u64, matches: &impl Matcher) -> Option<usize> {
        self.walk::<false>(hash, matches).found()
    }

    /// [`find`](Self::find) by rendered text, with the creators' matcher (bare metal: one walk
    /// compiled for lookups and creations, where flash counts more than nanoseconds).
    pub(crate) fn find_text(&self, text: &[u8], hash: u64) -> Option<usize> {
        self.walk_text(text, hash).found()
    }

    /// The walk of lookups and creators alike, from `hash`'s home: the slot whose text
    /// `matches`, pinned (`LIVE`, or `PUBLISHED` and still linked), or else the first free
    /// entry (the first tombstone before the first empty entry, or that empty entry) and what
    /// it holds (only if `FREE`: lookups do not track it, which keeps a register free on their
    /// hot path).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn walk<const FREE: bool>(&self, hash: u64, matches: &impl Matcher) -> Walk {
        let tag = Self::tag(hash);
        let mut at = Self::home(hash);
        let mut free = None;
        for _ in 0..MAX_PROBE.min(SIZE * N) {
            // Acquire: pairs with the release swap that linked the entry.
            let e = self.entry(at).load(Ordering::Acquire);
            if e == EMPTY {
                let (at, seen) = free.unwrap_or((at, EMPTY));
                return Walk::Free(at, seen);
            }
            if e == TOMBSTONE {
                if FREE {
                    free.get_or_insert((at, TOMBSTONE));
                }
            } else if e & !SLOT_MASK == tag {
                let i = (e & SLOT_MASK) as usize - 2;
                let state = self.pin(i);
                if self.linked(at, e, state) {
                    // SAFETY: pinned, and LIVE or PUBLISHED: written before the release that
                    // published it, which the pin acquired.
                    let (stored, text) = unsafe { (self.hash_of(i), self.text(i)) };
                    if stored | 1 == hash | 1 && matches.matches(text, stored & 1 == 1) {
                        return Walk::Found(i);
                    }
                }
                self.unpin(i);
            }
            at = if at + 1 == SIZE * N { 0 } else { at + 1 };
        }
        match free {
            Some((at, seen)) => Walk::Free(at, seen),
            None => Walk::Crowded,
        }
    }

    /// [`walk`](Self::walk) for rendered label text: what creators (and bare-metal lookups)
    /// compare.
    fn walk_text(&self, text: &[u8], hash: u64) -> Walk {
        self.walk::<true>(hash, &Text(text))
    }

    /// Whether the slot named by entry `e`, read at `at` and then pinned in `state`, is that
    /// entry's series: `LIVE`, or `PUBLISHED` (its creator turns it `LIVE` right after linking
    /// it) and still linked at `at`, which an entry read before its slot was removed and
    /// reused would not be (the unlink happened before the publication the pin acquired).
    #[inline(always)]
    fn linked(&self, at: usize, e: u32, state: u32) -> bool {
        // Relaxed: after the pin's acquire.
        state == LIVE || (state == PUBLISHED && self.entry(at).load(Ordering::Relaxed) == e)
    }

    /// Enters a creation: waits only while a removal runs.
    fn creating(&self) -> WritersGuard<'_> {
        self.enter(|w| w + 1);
        WritersGuard { writers: &self.writers, removal: false }
    }

    /// Enters a removal: no creation starts until it ends, and it waits for those in flight.
    fn removing(&self) -> WritersGuard<'_> {
        self.enter(|w| w | REMOVING);
        // Acquire: pairs with each creation's release as it ends, so its links are seen.
        while self.writers.load(Ordering::Acquire) != REMOVING {
            spin_loop(); // creations in flight finish one walk each
        }
        WritersGuard { writers: &self.writers, removal: true }
    }

    /// Turns `writers` into `next(writers)` once no removal holds it (a removal holds it for
    /// one bounded walk).
    fn enter(&self, next: impl Fn(usize) -> usize) {
        // Relaxed: the compare-and-swap below decides.
        let mut w = self.writers.load(Ordering::Relaxed);
        loop {
            if w & REMOVING != 0 {
                spin_loop();
                // Relaxed: as above.
                w = self.writers.load(Ordering::Relaxed);
                continue;
            }
            // Acquire: the last removal's index changes happen before this creation's or
            // removal's walk.
            match self.writers.compare_exchange_weak(w, next(w), Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// Finds `text`, or creates its series with `make`: the slot comes back pinned. Lock-free
    /// (see the [module documentation](self)); waits only while a removal runs.
    ///
    /// Why a label set is linked once: while creations run, no index entry becomes free, so an
    /// entry one creator walked past as taken stays taken. Every creator of a label set walks
    /// the same entries from the same home, and links at the first free one only after walking
    /// on to the first empty one without meeting the label set; so all of them try the same
    /// entry first, one swap wins, and the others, walking again, meet the winner's slot
    /// before any free entry (they compare `PUBLISHED` slots too, the winner's state until it
    /// turns `LIVE`).
    ///
    /// # Errors
    /// [`Insert::Full`] when all `N` slots hold series (live, or removed but still pinned);
    /// [`Insert::Crowded`] when no index entry within [`MAX_PROBE`] of the home is free.
    pub(crate) fn find_or_insert(&self, text: &[u8], hash: u64, make: impl FnOnce() -> V) -> Result<usize, Insert> {
        if N == 0 {
            return Err(Insert::Full);
        }
        let _creating = self.creating();
        let (mut at, mut seen) = match self.walk_text(text, hash) {
            Walk::Found(i) => return Ok(i),
            Walk::Free(at, seen) => (at, seen),
            Walk::Crowded => return Err(Insert::Crowded),
        };
        let Some((i, reused)) = self.take_slot().or_else(|| {
            // Removed slots whose reclaim was put off may be free by now.
            // Relaxed: a hint; the sweep's reclaims decide.
            (self.deferred.load(Ordering::Relaxed) != 0).then(|| self.sweep()).and_then(|()| self.take_slot())
        }) else {
            // Another creator may have just taken the last slot for this same label set.
            return match self.walk_text(text, hash) {
                Walk::Found(j) => Ok(j),
                _ => Err(Insert::Full),
            };
        };
        let slot = &self.slots[i];
        // Relaxed: FREE -> CLAIMED keeps any passing reader's pin; readers never read a
        // CLAIMED slot's contents, and the release below publishes them.
        slot.state.fetch_add((CLAIMED - FREE) * STATE, Ordering::Relaxed);
        slot.hash.with_mut(|h| {
            // SAFETY: CLAIMED by this creator; no reader reads it in this state, and no pin of
            // an earlier life remains (reclaim needed zero pins).
            // The low bit says whether the text holds a backslash (see `find`).
            #[allow(clippy::manual_contains, reason = "`contains` pulls memchr into bare-metal builds")]
            let escaped = text.iter().any(|&b| b == b'\\');
            // SAFETY: as above.
            unsafe { *h = (hash & !1) | u64::from(escaped) };
        });
        slot.text.with_mut(|t| {
            // SAFETY: as above.
            let t = unsafe { &mut *t };
            t.clear();
            // Cannot fail: the caller rendered `text` into a buffer of `B` bytes.
            let _ = t.extend_from_slice(text);
        });
        let fresh = make();
        slot.series.with_mut(|s| {
            // SAFETY: as above; a slot from the free list holds the series of its earlier
            // life, dropped here before it is replaced.
            unsafe {
                if reused {
                    (*s).assume_init_drop();
                }
                (*s).write(fresh);
            }
        });
        // Publish, pinned for the caller: Release makes the text and series visible to the
        // creators that acquire the state word (by pinning) after finding the entry.
        slot.state.fetch_add((PUBLISHED - CLAIMED) * STATE + 1, Ordering::Release);
        let linked = (i as u32 + 2) | Self::tag(hash);
        loop {
            // Release: a walk acquiring the entry then pins a PUBLISHED or LIVE slot. Relaxed
            // (failure): the walk below acquires the entry that won.
            if self.entry(at).compare_exchange(seen, linked, Ordering::Release, Ordering::Relaxed).is_ok() {
                break;
            }
            match self.walk_text(text, hash) {
                Walk::Free(next, value) => (at, seen) = (next, value),
                found_or_crowded => {
                    // Another creator linked it (or the free entries ran out): retract ours.
                    // Relaxed: the unpin's release orders the slot's reclaim.
                    slot.state.fetch_add((REMOVED - PUBLISHED) * STATE, Ordering::Relaxed);
                    self.unpin(i);
                    return match found_or_crowded {
                        Walk::Found(j) => Ok(j),
                        _ => Err(Insert::Crowded),
                    };
                }
            }
        }
        // Release: scrapes that acquire the state word see the series (and lookups find it).
        slot.state.fetch_add((LIVE - PUBLISHED) * STATE, Ordering::Release);
        // Relaxed: a count.
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(i)
    }

    /// A slot for a new series, and whether it held one before (from the free list).
    fn take_slot(&self) -> Option<(usize, bool)> {
        // Relaxed: scrapes read it as a bound and acquire each slot's state.
        let mut bump = self.bump.load(Ordering::Relaxed);
        while bump < N {
            // Relaxed: as above; the swap alone decides which creator gets the slot.
            match self.bump.compare_exchange_weak(bump, bump + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some((bump, false)),
                Err(now) => bump = now,
            }
        }
        // Acquire: pairs with the release push, so the reclaim (and every pin's reads before
        // it) happen before this slot is rewritten.
        let mut head = self.free.load(Ordering::Acquire);
        loop {
            let i = head_slot(head).checked_sub(1)? as usize;
            // Relaxed: the link was written before the push this thread acquired; if the slot
            // was popped and pushed again since, the head's count changed and the swap fails.
            let next = self.slots[i].next_free.load(Ordering::Relaxed);
            // Acquire: as the load above, for a head pushed meanwhile.
            match self.free.compare_exchange_weak(head, next_head(head, next), Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Some((i, true)),
                Err(now) => head = now,
            }
        }
    }

    /// Removes the series with `text`, if present. Returns whether it was.
    pub(crate) fn remove(&self, text: &[u8], hash: u64) -> bool {
        let _removing = self.removing();
        let mut at = Self::home(hash);
        let tag = Self::tag(hash);
        for _ in 0..MAX_PROBE.min(SIZE * N) {
            // Relaxed: only a removal, excluding creations, stores entries now.
            let e = self.entry(at).load(Ordering::Relaxed);
            if e == EMPTY {
                return false;
            }
            if e != TOMBSTONE && e & !SLOT_MASK == tag {
                let i = (e & SLOT_MASK) as usize - 2;
                let hit = self.pin(i) == LIVE && {
                    // SAFETY: pinned and LIVE.
                    let (stored, stored_text) = unsafe { (self.hash_of(i), self.text(i)) };
                    stored | 1 == hash | 1 && eq_short(stored_text, text)
                };
                if hit {
                    self.unlink(at, i);
                }
                self.unpin(i);
                if hit {
                    return true;
                }
            }
            at = if at + 1 == SIZE * N { 0 } else { at + 1 };
        }
        false
    }

    /// Removes every live series for which `keep` is false; returns how many. `keep` sees each
    /// series' label text and series.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&[u8], &V) -> bool) -> usize {
        let _removing = self.removing();
        let mut removed = 0;
        for i in 0..self.high_water() {
            if self.pin(i) == LIVE {
                // SAFETY: pinned and LIVE.
                let (text, series) = unsafe { (self.text(i), self.series(i)) };
                if !keep(text, series) {
                    // SAFETY: as above.
                    let hash = unsafe { self.slots[i].hash.with(|h| *h) };
                    if let Some(at) = self.position_of(i, hash) {
                        self.unlink(at, i);
                        removed += 1;
                    }
                }
            }
            self.unpin(i);
        }
        removed
    }

    /// The index position linking slot `i` (whose hash is `hash`). Removals only.
    fn position_of(&self, i: usize, hash: u64) -> Option<usize> {
        let want = (i as u32 + 2) | Self::tag(hash);
        let mut at = Self::home(hash);
        for _ in 0..MAX_PROBE.min(SIZE * N) {
            // Relaxed: only a removal, excluding creations, stores entries now.
            match self.entry(at).load(Ordering::Relaxed) {
                EMPTY => return None,
                e if e == want => return Some(at),
                _ => at = if at + 1 == SIZE * N { 0 } else { at + 1 },
            }
        }
        None
    }

    /// Unlinks the live slot `i` at index position `at` (the caller is a removal and holds a pin).
    fn unlink(&self, at: usize, i: usize) {
        let next = if at + 1 == SIZE * N { 0 } else { at + 1 };
        // Relaxed (loads): only a removal, excluding creations, stores entries now.
        if self.entry(next).load(Ordering::Relaxed) == EMPTY {
            // The end of a cluster: this entry and the tombstones before it are on no walk
            // that goes further, so they can be empty again (a walk stops one step earlier).
            let mut at = at;
            loop {
                // Release: as in `find_or_insert`; a walk that reads EMPTY stops, correctly.
                self.entry(at).store(EMPTY, Ordering::Release);
                at = if at == 0 { SIZE * N - 1 } else { at - 1 };
                if self.entry(at).load(Ordering::Relaxed) != TOMBSTONE {
                    break;
                }
            }
        } else {
            // Release: as above.
            self.entry(at).store(TOMBSTONE, Ordering::Release);
        }
        // Relaxed: LIVE -> REMOVED; the caller's pin keeps the slot until its unpin, whose
        // release and the reclaim's acquire order everything after.
        self.slots[i].state.fetch_add((REMOVED - LIVE) * STATE, Ordering::Relaxed);
        // Relaxed: a count.
        self.len.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<V, const N: usize, const B: usize> Drop for Table<V, N, B> {
    fn drop(&mut self) {
        let bump = self.bump.load(Ordering::Relaxed).min(N);
        for slot in &mut self.slots[..bump] {
            // SAFETY: every slot below `bump` was initialised when first handed out and holds
            // a series until dropped here; `&mut self` means no other thread touches it.
            slot.series.with_mut(|s| unsafe { (*s).assume_init_drop() });
        }
    }
}

/// What a [`SeriesRef`](super::SeriesRef) needs of its table, without naming its capacities.
pub(crate) trait Pins: Sync {
    /// Reclaims `slot` after its last pin went (see [`Table::unpin`]).
    fn reclaim(&self, slot: usize);
    /// Whether `slot` is still live.
    fn is_live(&self, slot: usize) -> bool;
}

impl<V: Send + Sync, const N: usize, const B: usize> Pins for Table<V, N, B> {
    fn reclaim(&self, slot: usize) {
        Table::reclaim(self, slot);
    }

    fn is_live(&self, slot: usize) -> bool {
        Table::is_live(self, slot)
    }
}

/// Why a series could not be created.
pub(crate) enum Insert {
    Full,
    Crowded,
}

/// Ends a scrape when dropped; see [`Table::scrape_begin`].
pub(crate) struct ScrapeGuard<'a, V, const N: usize, const B: usize>(&'a Table<V, N, B>);

impl<V, const N: usize, const B: usize> Drop for ScrapeGuard<'_, V, N, B> {
    fn drop(&mut self) {
        self.0.scrape_end();
    }
}

/// Where a walk ended.
enum Walk {
    /// The label set's slot, pinned.
    Found(usize),
    /// Not linked: the first free entry, and what it holds (empty or tombstone).
    Free(usize, u32),
    /// Neither, within [`MAX_PROBE`] entries.
    Crowded,
}

impl Walk {
    /// The slot found, pinned, if any.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn found(self) -> Option<usize> {
        match self {
            Self::Found(i) => Some(i),
            Self::Free(..) | Self::Crowded => None,
        }
    }
}

/// The free list's head word: 64 bits (32 for the slot, 32 for the change count) where the
/// target has 64-bit atomics; elsewhere 32 bits (16 and 16), as a 64-bit compare-and-swap
/// there is a lock-table fallback costing flash (136 bytes on Cortex-M3) for no gain: such
/// targets' families are far below 65,535 series.
#[cfg(any(loom, target_has_atomic = "64"))]
mod head {
    pub(super) type Word = u64;
    pub(super) type Atomic = crate::atomic::AtomicU64;
    pub(super) const SLOT_BITS: u32 = 32;
}

/// See the 64-bit variant.
#[cfg(not(any(loom, target_has_atomic = "64")))]
mod head {
    pub(super) type Word = u32;
    pub(super) type Atomic = crate::atomic::AtomicU32;
    pub(super) const SLOT_BITS: u32 = 16;
}

/// The slot number plus 1 (0: empty list) a free-list head names.
fn head_slot(head: head::Word) -> u32 {
    (head & ((1 << head::SLOT_BITS) - 1)) as u32
}

/// The free list's head after a push or pop that makes `slot` (number plus 1, or 0) the top:
/// the change count above it goes up by one.
fn next_head(head: head::Word, slot: u32) -> head::Word {
    ((head >> head::SLOT_BITS).wrapping_add(1) << head::SLOT_BITS) | head::Word::from(slot)
}

/// Ends a creation or a removal when dropped.
struct WritersGuard<'a> {
    writers: &'a AtomicUsize,
    removal: bool,
}

impl Drop for WritersGuard<'_> {
    fn drop(&mut self) {
        // Release: this creation's or removal's index changes happen before the next removal's
        // (or, for a removal, the next creations') walk.
        if self.removal {
            self.writers.fetch_and(!REMOVING, Ordering::Release);
        } else {
            self.writers.fetch_sub(1, Ordering::Release);
        }
    }
}
