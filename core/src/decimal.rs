//! Decimal integers written straight into the output buffer.
//!
//! `itoa` formats into its own buffer, and copying that out reads back bytes still in the
//! store buffer with wider loads than the stores that wrote them, which stalls the copy (store
//! forwarding fails): that copy was the costliest instruction of a counter line. Writing the
//! digits in place avoids it.

/// `"00"`, `"01"`, …, `"99"`.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `10^i`.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Digits of `v` in decimal: `log10(2) ≈ 1233 / 4096` estimates them from the bit length,
/// one compare corrects the estimate (`v | 1` keeps 0 at one digit and crosses no power of 10).
#[cfg_attr(not(target_os = "none"), inline(always))]
pub(crate) fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let estimate = (bits * 1233) >> 12;
    estimate + 1 - usize::from((v | 1) < POW10[estimate])
}

/// Writes `v`'s [`len`]`(v)` digits into the bytes just before `end` (the line writer's
/// raw form of [`write`]).
///
/// # Safety
/// `end - len(v)..end` must be writable.
#[inline(always)]
pub(crate) unsafe fn write_back(end: *mut u8, mut v: u64) {
    // SAFETY: each step writes below `end` and above `end - len(v)`: one byte or pair per
    // digit or pair of digits of `v` (the caller's contract); `PAIRS` is read at `2 * (v % 100)`
    // and `2 * v` for `v < 100`, within its 200 bytes.
    unsafe {
        let mut end = end;
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            end = end.sub(2);
            core::ptr::copy_nonoverlapping(PAIRS.as_ptr().add(pair), end, 2);
        }
        if v >= 10 {
            core::ptr::copy_nonoverlapping(PAIRS.as_ptr().add(v as usize * 2), end.sub(2), 2);
        } else {
            end.sub(1).write(b'0' + v as u8);
        }
    }
}

/// Writes `v` into `dst`, which must be exactly [`len`]`(v)` bytes long.
#[cfg_attr(not(target_os = "none"), inline(always))]
pub(crate) fn write(dst: &mut [u8], mut v: u64) {
    if cfg!(target_os = "none") {
        return crate::float::write_u64(dst, v); // no 64-bit division on bare metal
    }
    let mut end = dst.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        dst[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if v >= 10 {
        let pair = v as usize * 2;
        dst[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        dst[end - 1] = b'0' + v as u8;
    }
}

/// `v` in decimal, for callers that want the digits as a slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Digits {
    buf: [u8; 20],
    len: usize,
}

impl Digits {
    pub(crate) fn new(v: u64) -> Self {
        let mut buf = [0; 20];
        let len = len(v);
        write(&mut buf[..len], v);
        Self { buf, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use std::string::ToString;

    #[test]
    fn matches_display_at_every_length() {
        let mut values = std::vec![0, 1, 9, 10, 11, 99, 100, 101, u64::MAX, u64::MAX - 1];
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, next - 1]);
            p = next;
        }
        for v in values {
            let mut buf = [0u8; 20];
            let n = super::len(v);
            super::write(&mut buf[..n], v);
            assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), v.to_string());
            assert_eq!(super::Digits::new(v).as_bytes(), v.to_string().as_bytes());
        }
    }
}
