//! Wire types and field keys (tags).

/// How a field's value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WireType {
    /// `int32`, `int64`, `uint32`, `uint64`, `sint*`, `bool`, `enum`: a varint.
    Varint = 0,
    /// `fixed64`, `sfixed64`, `double`: eight bytes, little-endian.
    Fixed64 = 1,
    /// `string`, `bytes`, nested messages, packed repeated fields: a varint length, then the bytes.
    Len = 2,
    /// `fixed32`, `sfixed32`, `float`: four bytes, little-endian.
    Fixed32 = 5,
}

impl WireType {
    /// The wire type of a key's low three bits; `None` for the deprecated groups (3, 4) and
    /// values protobuf does not define.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::Varint),
            1 => Some(Self::Fixed64),
            2 => Some(Self::Len),
            5 => Some(Self::Fixed32),
            _ => None,
        }
    }
}

/// The key that starts a field: `field << 3 | wire type`. Field numbers are 1 to 2^29 - 1; the
/// writer does not check them (they are constants in the caller's schema).
#[inline]
pub const fn key(field: u32, wire: WireType) -> u64 {
    ((field as u64) << 3) | wire as u64
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_field_and_type() {
        assert_eq!(key(1, WireType::Len), 0x0a);
        assert_eq!(key(4, WireType::Len), 0x22);
        assert_eq!(key(2, WireType::Fixed64), 0x11);
        assert_eq!(key(15, WireType::Len), 0x7a);
        assert_eq!(key(16, WireType::Varint), 0x80);
        for w in [WireType::Varint, WireType::Fixed64, WireType::Len, WireType::Fixed32] {
            assert_eq!(WireType::from_bits(w as u8), Some(w));
        }
        assert_eq!(WireType::from_bits(3), None);
    }
}
