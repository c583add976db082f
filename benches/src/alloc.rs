//! A global allocator that counts allocations while asked to, to show which encoders allocate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The system allocator, counting `alloc`/`realloc` calls between [`start`](Self::start) and
/// [`stop`](Self::stop). Install it with `#[global_allocator]` in the bench binary.
#[derive(Debug)]
pub struct CountingAlloc {
    on: AtomicBool,
    count: AtomicU64,
}

impl CountingAlloc {
    /// A counter that is off.
    pub const fn new() -> Self {
        Self { on: AtomicBool::new(false), count: AtomicU64::new(0) }
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
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
