//! A native histogram bucket's identity (sign, schema, key) and the slot tag that names it.

use super::key::{MAX_SCHEMA, MIN_SCHEMA, reduce, upper_bound};

/// Keys are stored offset by this, in 21 bits (the keys of finite and infinite values at
/// schema 8 lie within `-2^19..2^19`).
const KEY_OFFSET: i32 = 1 << 20;
const KEY_MASK: u32 = (1 << 21) - 1;
const SCHEMA_SHIFT: u32 = 21;
const NEGATIVE: u32 = 1 << 25;
const PRESENT: u32 = 1 << 26;

/// One bucket: the sign of its values, the schema its key is of, and the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) negative: bool,
    pub(crate) schema: i8,
    pub(crate) key: i32,
}

impl Bucket {
    /// The slot tag of this bucket (never 0, which marks an empty slot).
    #[inline]
    pub(crate) fn tag(self) -> u32 {
        let key = (self.key + KEY_OFFSET) as u32 & KEY_MASK;
        let schema = ((self.schema - MIN_SCHEMA) as u32) << SCHEMA_SHIFT;
        PRESENT | if self.negative { NEGATIVE } else { 0 } | schema | key
    }

    /// The bucket a slot tag names; `None` for an empty slot.
    pub(crate) fn from_tag(tag: u32) -> Option<Self> {
        if tag & PRESENT == 0 {
            return None;
        }
        let schema = (((tag >> SCHEMA_SHIFT) & 0xf) as i8 + MIN_SCHEMA).min(MAX_SCHEMA);
        Some(Self { negative: tag & NEGATIVE != 0, schema, key: (tag & KEY_MASK) as i32 - KEY_OFFSET })
    }

    /// The bucket at schema `schema` (if lower than this one's) that holds this one.
    pub(crate) fn at(self, schema: i8) -> Self {
        if schema >= self.schema {
            return self;
        }
        Self { schema, key: reduce(self.key, self.schema, schema), ..self }
    }

    /// The largest absolute value the bucket holds.
    pub(crate) fn upper(self) -> f64 {
        upper_bound(self.key, self.schema)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_at_the_extremes() {
        for negative in [false, true] {
            for schema in MIN_SCHEMA..=MAX_SCHEMA {
                for key in [-(1074 * 256), -1, 0, 1, 1024 * 256 + 1] {
                    let b = Bucket { negative, schema, key };
                    assert_ne!(b.tag(), 0);
                    assert_eq!(Bucket::from_tag(b.tag()), Some(b));
                }
            }
        }
        assert_eq!(Bucket::from_tag(0), None);
    }
}
