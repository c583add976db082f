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

/// The cache-line size hints are spaced by (64 bytes on the x86-64 and most AArch64 cores;
/// on a core with larger lines, two hints fall on one line).
const LINE: usize = 64;

/// Hints every cache line that the `len` bytes at `p` touch, up to `MAX_LINES` of them.
#[inline(always)]
pub(crate) fn read_bytes<const MAX_LINES: usize>(p: *const u8, len: usize) {
    let (offset, lines) = span(p.addr(), len);
    let first = p.wrapping_sub(offset);
    for k in 0..lines.min(MAX_LINES) {
        read(first.wrapping_add(k * LINE));
    }
}

/// Where the `len` bytes at address `addr` start in their first line, and how many lines they
/// touch (none for none).
#[inline(always)]
fn span(addr: usize, len: usize) -> (usize, usize) {
    let offset = addr % LINE;
    (offset, if len == 0 { 0 } else { (offset + len).div_ceil(LINE) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_counts_every_line_its_bytes_touch() {
        assert_eq!(span(128, 0), (0, 0));
        assert_eq!(span(128, 1), (0, 1));
        assert_eq!(span(128, 64), (0, 1));
        assert_eq!(span(128, 65), (0, 2));
        // Eight bytes across a line boundary touch two lines.
        assert_eq!(span(188, 8), (60, 2));
        assert_eq!(span(191, 1), (63, 1));
        assert_eq!(span(191, 2), (63, 2));
        for addr in 0..200 {
            for len in 1..200 {
                let (offset, lines) = span(addr, len);
                assert_eq!(lines, (addr + len - 1) / LINE - addr / LINE + 1, "{addr} {len}");
                assert_eq!(addr - offset, addr / LINE * LINE);
            }
        }
    }

    #[test]
    fn hints_accept_any_address() {
        read_bytes::<4>(core::ptr::null(), 1000);
        read_bytes::<4>(usize::MAX as *const u8, 3);
        read(&0u8);
    }
}
