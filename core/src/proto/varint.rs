//! Base-128 varints: the integer encoding of protobuf's wire format.

/// The most bytes a varint takes (a `u64` with its top bit set).
pub const MAX_LEN: usize = 10;

/// The number of bytes `v` takes as a varint: 1 to 10.
///
/// # Examples
/// ```
/// use diag_core::proto::varint;
/// assert_eq!(varint::len(0), 1);
/// assert_eq!(varint::len(127), 1);
/// assert_eq!(varint::len(128), 2);
/// assert_eq!(varint::len(u64::MAX), 10);
/// ```
#[inline]
pub const fn len(v: u64) -> usize {
    // Bits used, rounded up to groups of seven: (64 - lz) * 9 / 64 + 1 is exact for 1..=64 bits
    // and gives 1 for zero, without a loop or a table.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    (bits * 9 + 64) / 64
}

/// Writes `v` into the front of `out` and returns the bytes written, or `None` when `out` is too
/// short (nothing meaningful is written then).
///
/// # Examples
/// ```
/// use diag_core::proto::varint;
/// let mut out = [0u8; 10];
/// assert_eq!(varint::write(300, &mut out), Some(2));
/// assert_eq!(&out[..2], &[0xac, 0x02]);
/// assert_eq!(varint::write(300, &mut out[..1]), None);
/// ```
#[inline]
pub fn write(mut v: u64, out: &mut [u8]) -> Option<usize> {
    let n = len(v);
    let out = out.get_mut(..n)?;
    let (last, rest) = out.split_last_mut()?;
    for b in rest {
        *b = (v as u8) | 0x80;
        v >>= 7;
    }
    *last = v as u8;
    Some(n)
}

/// Writes `v` as a varint of exactly `width` bytes (1 to 10), padding with continuation bytes:
/// what a length reserved before the body was known looks like when the body came out shorter
/// than the reservation and is not moved. Decoders accept such varints (the wire format allows
/// redundant zero groups). `None` if `v` needs more than `width` bytes or `out` is shorter.
pub fn write_padded(mut v: u64, width: usize, out: &mut [u8]) -> Option<()> {
    if width == 0 || width > MAX_LEN || len(v) > width {
        return None;
    }
    let (last, rest) = out.get_mut(..width)?.split_last_mut()?;
    for b in rest {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    *last = v as u8;
    Some(())
}

/// Reads a varint from the front of `bytes`: the value and the bytes it took; `None` when the
/// bytes end first or the varint runs past ten bytes. Accepts redundant (padded) encodings,
/// as protobuf decoders do.
///
/// # Examples
/// ```
/// use diag_core::proto::varint;
/// assert_eq!(varint::read(&[0xac, 0x02, 0xff]), Some((300, 2)));
/// assert_eq!(varint::read(&[0x80]), None);
/// ```
pub fn read(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().take(MAX_LEN).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Zigzag encoding of a signed integer (`sint32`, `sint64`): small magnitudes of either sign
/// stay short.
#[inline]
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_encoding_at_every_boundary() {
        let mut out = [0u8; MAX_LEN];
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1] {
                let n = write(v, &mut out).unwrap();
                assert_eq!(n, len(v), "{v}");
                assert_eq!(read(&out[..n]), Some((v, n)));
            }
        }
        assert_eq!(write(u64::MAX, &mut out), Some(10));
        assert_eq!(read(&out), Some((u64::MAX, 10)));
    }

    #[test]
    fn padded_varints_read_back() {
        let mut out = [0u8; MAX_LEN];
        for (v, width) in [(0u64, 3), (5, 2), (300, 5), (u64::MAX, 10)] {
            write_padded(v, width, &mut out).unwrap();
            assert_eq!(read(&out[..width]), Some((v, width)));
        }
        assert_eq!(write_padded(300, 1, &mut out), None);
        assert_eq!(write_padded(1, 0, &mut out), None);
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
