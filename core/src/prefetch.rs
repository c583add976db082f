//! A hint to the CPU that memory is about to be read, for the scrape's walk over memory that
//! the kernel's copies of the last response have evicted.
//!
//! A scrape reads every family's descriptor and every series slot once, in order, but the
//! families are separate allocations a few kilobytes each, too short a stream for the
//! hardware prefetcher to catch up on before it ends. Under a load of scrapes the cache holds
//! the previous responses instead of the registry, and `perf` showed the encoder waiting on
//! the first load of each slot's state word and of each family's help text (two thirds of the
//! samples in those functions). Hinting the next slots and the next family while the
//! current one is written overlaps those misses with the writing.
//!
//! Written by hand: `core::intrinsics::prefetch_read_data` is unstable; x86-64 has a stable
//! intrinsic, AArch64 an instruction reached through `asm!`. A prefetch never faults, so any
//! address may be hinted, including one past an allocation's end. Elsewhere it does nothing.

/// Whether this build hints at all: callers skip the work of finding what to hint when not.
pub(crate) const HINTS: bool = cfg!(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(loom), not(miri)));

/// Hints that the cache line holding `p` is about to be read.
#[inline(always)]
pub(crate) fn read<T: ?Sized>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    // SAFETY: `prefetcht0` only hints; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(all(target_arch = "aarch64", not(loom), not(miri)))]
    // SAFETY: `prfm` only hints; it never faults, whatever the address, and touches no
    // register or flag but its operand.
    unsafe {
        core::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p.cast::<u8>(), options(nostack, readonly, preserves_flags));
    }
    #[cfg(any(not(any(target_arch = "x86_64", target_arch = "aarch64")), loom, miri))]
    let _ = p;
}

/// Hints the `len` bytes at `p` (every cache line they touch, up to `MAX_LINES`).
#[inline(always)]
pub(crate) fn read_bytes<const MAX_LINES: usize>(p: *const u8, len: usize) {
    let lines = len.div_ceil(64).min(MAX_LINES);
    for k in 0..lines {
        read(p.wrapping_add(k * 64));
    }
}
