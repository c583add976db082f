//! A global allocator that counts allocations while asked to, to show which encoders allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// The system allocator, counting `alloc`/`realloc` calls between [`start`](Self::start) and
/// [`stop`](Self::stop). Install it with `#[global_allocator]` in the bench binary.
#[derive(Debug)]
pub struct CountingAlloc {
    on: AtomicBool,
    count: AtomicU64,
    /// Bytes allocated minus bytes freed, always (for memory per series).
    live: AtomicI64,
}

impl CountingAlloc {
    /// A counter that is off.
    pub const fn new() -> Self {
        Self { on: AtomicBool::new(false), count: AtomicU64::new(0), live: AtomicI64::new(0) }
    }

    /// Bytes allocated and not yet freed, by the whole process.
    pub fn live_bytes(&self) -> i64 {
        self.live.load(Ordering::Relaxed)
    }

    fn grow(&self, by: usize) {
        self.live.fetch_add(by as i64, Ordering::Relaxed);
    }

    fn shrink(&self, by: usize) {
        self.live.fetch_sub(by as i64, Ordering::Relaxed);
    }

    /// Zeroes the count and starts counting.
    pub fn start(&self) {
        // Relaxed everywhere: the count is read on the thread that counted, after `stop`.
        self.count.store(0, Ordering::Relaxed);
        self.on.store(true, Ordering::Relaxed);
    }

    /// Stops counting and returns the number of allocations since `start`.
    pub fn stop(&self) -> u64 {
        self.on.store(false, Ordering::Relaxed);
        self.count.load(Ordering::Relaxed)
    }

    fn note(&self) {
        if self.on.load(Ordering::Relaxed) {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for CountingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        self.grow(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        self.grow(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.shrink(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        self.grow(new_size);
        self.shrink(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
