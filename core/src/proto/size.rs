//! [`Size`]: a sink that counts bytes, for the sizing pass.

use core::convert::Infallible;

use super::sink::Sink;
use super::varint;

/// Counts the bytes written into it; never fails.
///
/// # Examples
/// ```
/// use diag_core::proto::{Sink, Size};
/// let mut s = Size::new();
/// s.string(1, "job").unwrap();
/// s.double(2, 1.5).unwrap();
/// assert_eq!(s.len(), 5 + 9);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size(usize);

impl Size {
    /// Zero bytes.
    pub const fn new() -> Self {
        Self(0)
    }

    /// The bytes counted.
    pub const fn len(&self) -> usize {
        self.0
    }

    /// Whether nothing was counted.
    pub const fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

impl Sink for Size {
    type Error = Infallible;

    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Infallible> {
        self.0 += bytes.len();
        Ok(())
    }

    #[inline]
    fn put_varint(&mut self, v: u64) -> Result<(), Infallible> {
        self.0 += varint::len(v);
        Ok(())
    }
}
