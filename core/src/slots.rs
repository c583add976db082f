//! A fixed-capacity, append-only, lock-free list: the storage under the state table,
//! labelled families and the registry.
//!
//! Values are written once, published with a release store, and never moved, changed
//! (except through their own atomics) or removed while the list is shared. Readers walk the
//! published slots without ever waiting. Writers that insert a *key* wait only for other
//! writers that claimed a lower slot a moment earlier, so that two threads inserting the
//! same key concurrently end up sharing one slot: the later slot is then marked dead and
//! never shown to readers (it costs one slot of capacity, only under such a race).

use core::mem::MaybeUninit;

use crate::atomic::{AtomicU8, AtomicUsize, Ordering, UnsafeCell, array_of, loom_const_fn, spin_loop};

/// Claimed, value being written; not visible to readers.
const PENDING: u8 = 0;
/// Value written and visible to readers.
const READY: u8 = 1;
/// Value written but lost a same-key race; never visible to readers.
const DEAD: u8 = 2;

/// The list is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

struct Slot<T> {
    tag: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    loom_const_fn! {
        fn new() -> Self {
            Self { tag: AtomicU8::new(PENDING), value: UnsafeCell::new(MaybeUninit::uninit()) }
        }
    }

    /// Reads a published value.
    ///
    /// # Safety
    /// The caller has loaded `tag == READY` (or `DEAD`) with `Acquire` ordering, or holds
    /// `&mut` to the list after such a value was written.
    unsafe fn value(&self) -> &T {
        // SAFETY: the value was fully written before the release store of the tag that the
        // caller acquired, and published values are never written again, so a shared
        // reference for as long as `self` lives is sound.
        self.value.with(|p| unsafe { (*p).assume_init_ref() })
    }
}

/// See the module documentation.
pub(crate) struct Slots<T, const N: usize> {
    /// Number of slots handed out to writers, at most `N`.
    claimed: AtomicUsize,
    slots: [Slot<T>; N],
}

// SAFETY: values are shared between threads by `&T` (needs `T: Sync`) and may be written by
// one thread and dropped by another (needs `T: Send`); all slot state changes go through
// atomics with release/acquire publication.
unsafe impl<T: Send + Sync, const N: usize> Sync for Slots<T, N> {}
// SAFETY: as above; moving the list moves owned `T`s.
unsafe impl<T: Send, const N: usize> Send for Slots<T, N> {}

impl<T, const N: usize> Slots<T, N> {
    loom_const_fn! {
        /// An empty list.
        pub(crate) fn new() -> Self {
            Self { claimed: AtomicUsize::new(0), slots: array_of![Slot::new(); N] }
        }
    }

    /// Slots handed out so far (published, dead or still being written).
    fn claimed(&self) -> usize {
        // Relaxed: only bounds the walk; each slot's tag is acquired before its value is read.
        self.claimed.load(Ordering::Relaxed).min(N)
    }

    /// The published value at `index`, if any.
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        let slot = self.slots.get(index)?;
        // Acquire: pairs with the release store in `publish`, making the value visible.
        if slot.tag.load(Ordering::Acquire) == READY {
            // SAFETY: READY acquired just above.
            Some(unsafe { slot.value() })
        } else {
            None
        }
    }

    /// Number of slots a reader may find published (an upper bound on `iter().count()`).
    pub(crate) fn len_hint(&self) -> usize {
        self.claimed()
    }

    /// Published values in insertion order, with their slot index. Never waits.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        (0..self.claimed()).filter_map(move |i| self.get(i).map(|v| (i, v)))
    }

    /// Claims a slot and writes `value` into it, unpublished.
    fn claim(&self, value: T) -> Result<usize, T> {
        // Relaxed: the claim only reserves an index; publication of the value is ordered by
        // the slot's own tag.
        let claimed = self.claimed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < N).then_some(n + 1));
        let Ok(index) = claimed else { return Err(value) };
        self.slots[index].value.with_mut(|p| {
            // SAFETY: index `index` was handed to this thread alone by the update above, and
            // no reader touches a slot before its tag says READY.
            unsafe { (*p).write(value) };
        });
        Ok(index)
    }

    fn set_tag(&self, index: usize, tag: u8) {
        // Release: makes the value written in `claim` visible to acquiring readers.
        self.slots[index].tag.store(tag, Ordering::Release);
    }

    /// Appends `value` and publishes it, handing it back when the list is full.
    pub(crate) fn push(&self, value: T) -> Result<usize, T> {
        let index = self.claim(value)?;
        self.set_tag(index, READY);
        Ok(index)
    }

    /// Waits until the slot at `index` has left `PENDING` and returns its value if it is
    /// published. Only writers call this, and only for slots below their own (see module
    /// docs), so waits cannot form a cycle.
    fn settled(&self, index: usize) -> Option<&T> {
        loop {
            // Acquire: as in `get`.
            match self.slots[index].tag.load(Ordering::Acquire) {
                PENDING => spin_loop(),
                // SAFETY: READY acquired just above.
                READY => return Some(unsafe { self.slots[index].value() }),
                _ => return None,
            }
        }
    }

    /// Returns the published value for which `matches` holds, or inserts `make()`.
    ///
    /// At most one value per key is ever published, even when threads race to insert it.
    pub(crate) fn get_or_insert_with(
        &self,
        matches: impl Fn(&T) -> bool,
        make: impl FnOnce() -> T,
    ) -> Result<(usize, &T), Full> {
        if let Some(found) = self.iter().find(|(_, v)| matches(v)) {
            return Ok(found);
        }
        let index = match self.claim(make()) {
            Ok(index) => index,
            Err(_value) => {
                // Full: the key may still be arriving in a slot being written right now.
                return (0..N).find_map(|i| self.settled(i).filter(|v| matches(v)).map(|v| (i, v))).ok_or(Full);
            }
        };
        for lower in 0..index {
            if let Some(existing) = self.settled(lower).filter(|v| matches(v)) {
                self.set_tag(index, DEAD);
                return Ok((lower, existing));
            }
        }
        self.set_tag(index, READY);
        // SAFETY: this thread wrote the value and published it; it is never written again.
        Ok((index, unsafe { self.slots[index].value() }))
    }
}

impl<T, const N: usize> Drop for Slots<T, N> {
    fn drop(&mut self) {
        for slot in &mut self.slots[..self.claimed.load(Ordering::Relaxed).min(N)] {
            // Relaxed: `&mut self` means no other thread can be touching the list.
            if slot.tag.load(Ordering::Relaxed) != PENDING {
                // SAFETY: a non-PENDING slot holds an initialised value, dropped exactly once here.
                slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
            }
        }
    }
}

impl<T: core::fmt::Debug, const N: usize> core::fmt::Debug for Slots<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter().map(|(_, v)| v)).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::Arc;
    use std::vec::Vec;

    #[test]
    fn push_until_full_hands_value_back() {
        let s: Slots<u32, 2> = Slots::new();
        assert_eq!(s.push(1), Ok(0));
        assert_eq!(s.push(2), Ok(1));
        assert_eq!(s.push(3), Err(3));
        assert_eq!(s.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn get_or_insert_finds_existing() {
        let s: Slots<&str, 4> = Slots::new();
        let (a, _) = s.get_or_insert_with(|v| *v == "a", || "a").unwrap();
        let (b, _) = s.get_or_insert_with(|v| *v == "b", || "b").unwrap();
        let (a2, _) = s.get_or_insert_with(|v| *v == "a", || "a").unwrap();
        assert_eq!((a, b, a2), (0, 1, 0));
        assert_eq!(s.len_hint(), 2);
    }

    #[test]
    fn full_keyed_insert_errors_but_finds_existing() {
        let s: Slots<u8, 1> = Slots::new();
        s.get_or_insert_with(|v| *v == 1, || 1).unwrap();
        assert_eq!(s.get_or_insert_with(|v| *v == 1, || 1).unwrap().0, 0);
        assert_eq!(s.get_or_insert_with(|v| *v == 2, || 2), Err(Full));
    }

    #[test]
    fn drops_owned_values() {
        let tracker = Arc::new(());
        {
            let s: Slots<Arc<()>, 3> = Slots::new();
            s.push(tracker.clone()).unwrap();
            s.get_or_insert_with(|_| false, || tracker.clone()).unwrap();
            assert_eq!(Arc::strong_count(&tracker), 3);
        }
        assert_eq!(Arc::strong_count(&tracker), 1);
    }

    #[test]
    fn concurrent_same_key_inserts_publish_one() {
        let s: Arc<Slots<u32, 64>> = Arc::new(Slots::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..8u32).map(|k| s.get_or_insert_with(|v| *v == k, || k).unwrap().0).collect::<Vec<_>>()
                })
            })
            .collect();
        let seen: Vec<Vec<usize>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "every thread got the same slot per key");
        let mut keys: Vec<u32> = s.iter().map(|(_, v)| *v).collect();
        keys.sort();
        assert_eq!(keys, (0..8).collect::<Vec<_>>());
    }
}
