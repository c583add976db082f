//! [`SliceWriter`]: protobuf into a caller's byte slice, with nested lengths patched in place.

use core::fmt;

use super::sink::Sink;
use super::varint;
use super::wire::{WireType, key};

/// The slice has no room for what was being written.
///
/// What part of the failed write landed is unspecified: callers that must not leave a partial
/// message take [`SliceWriter::pos`] before and [`SliceWriter::truncate`] after, as the
/// exposition encoder does for each series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BufferFull;

impl fmt::Display for BufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("protobuf buffer full")
    }
}

impl core::error::Error for BufferFull {}

/// A length reserved by [`SliceWriter::open`], to be closed by [`SliceWriter::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an open length must be closed"]
pub struct Open {
    /// Where the reserved bytes start.
    at: usize,
    /// How many bytes were reserved.
    reserved: usize,
}

/// Writes protobuf into a byte slice without allocating.
///
/// A nested message's length precedes it, and is only known after its fields. Rather than
/// sizing every message first (which walks it twice; [`Sink::message`] does that, and is what a
/// stream must do), a slice writer *reserves* the length's bytes, writes the fields, then
/// writes the length into the reservation, moving the fields when the length needs a
/// different number of bytes than reserved. Guessing the reservation right makes the move
/// rare: [`nested`](Self::nested) reserves one byte (a label pair, a counter, a series with a
/// few labels are shorter than 128 bytes); [`open`](Self::open) takes the guess, and a caller
/// that reserves `varint::len(remaining)` can only ever move left, by a byte or two.
/// The output is canonical (shortest lengths) either way.
///
/// # Examples
/// A remote-write `TimeSeries` (labels, then a sample) as field 1 of a `WriteRequest`:
/// ```
/// use diag_core::proto::{Sink, SliceWriter};
///
/// let mut buf = [0u8; 64];
/// let mut w = SliceWriter::new(&mut buf);
/// w.nested(1, |w| {
///     w.nested(1, |w| { w.string(1, "__name__")?; w.string(2, "up") })?;
///     w.nested(2, |w| { w.double(1, 1.0)?; w.int64(2, 1_700_000_000_000) })
/// })
/// .unwrap();
/// assert_eq!(w.written()[..2], [0x0a, 0x22]);
/// assert_eq!(w.pos(), 2 + 0x22);
/// ```
#[derive(Debug)]
pub struct SliceWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> SliceWriter<'b> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A writer continuing at `pos` (clamped to the slice), after bytes written earlier.
    pub fn at(buf: &'b mut [u8], pos: usize) -> Self {
        let pos = pos.min(buf.len());
        Self { buf, pos }
    }

    /// Bytes written so far: the next write goes here.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Forgets everything written after `pos` (a mark taken with [`pos`](Self::pos)), e.g. to
    /// drop a message that did not fit whole. A `pos` beyond the current one changes nothing.
    pub fn truncate(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    /// The bytes written.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// Reserves `reserve` bytes (1 to 10) for a length to be written by [`close`](Self::close)
    /// once everything after it is written.
    ///
    /// # Errors
    /// [`BufferFull`].
    pub fn open(&mut self, reserve: usize) -> Result<Open, BufferFull> {
        let reserved = reserve.clamp(1, varint::MAX_LEN);
        if self.remaining() < reserved {
            return Err(BufferFull);
        }
        let at = self.pos;
        self.pos += reserved;
        Ok(Open { at, reserved })
    }

    /// Writes the length of what was written since `open` into its reservation, moving those
    /// bytes when the length takes another number of bytes than reserved.
    ///
    /// # Errors
    /// [`BufferFull`] when the length needs more bytes than reserved and the slice has no
    /// room to move the body right; the body stays unpatched, so roll back with
    /// [`truncate`](Self::truncate) to a mark taken before the message.
    #[inline]
    pub fn close(&mut self, open: Open) -> Result<(), BufferFull> {
        let Open { at, reserved } = open;
        let body_start = at + reserved;
        let body = self.pos.checked_sub(body_start).ok_or(BufferFull)?;
        let need = varint::len(body as u64);
        if need != reserved {
            let end = at + need + body;
            if end > self.buf.len() {
                return Err(BufferFull);
            }
            self.buf.copy_within(body_start..self.pos, at + need);
            self.pos = end;
        }
        varint::write(body as u64, &mut self.buf[at..at + need]).ok_or(BufferFull)?;
        Ok(())
    }

    /// A nested message written by `body` into this writer, its length patched in afterwards
    /// (see the type's documentation). Nests to any depth.
    ///
    /// # Errors
    /// [`BufferFull`], or `body`'s error.
    #[inline]
    pub fn nested(
        &mut self,
        field: u32,
        body: impl FnOnce(&mut Self) -> Result<(), BufferFull>,
    ) -> Result<(), BufferFull> {
        self.put_varint(key(field, WireType::Len))?;
        let open = self.open(1)?;
        body(self)?;
        self.close(open)
    }
}

impl Sink for SliceWriter<'_> {
    type Error = BufferFull;

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put(&mut self, bytes: &[u8]) -> Result<(), BufferFull> {
        let end = self.pos + bytes.len();
        crate::encoding::copy_short(self.buf.get_mut(self.pos..end).ok_or(BufferFull)?, bytes);
        self.pos = end;
        Ok(())
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put_varint(&mut self, v: u64) -> Result<(), BufferFull> {
        if v < 0x80 {
            // Keys, short lengths, small counts: one byte.
            let slot = self.buf.get_mut(self.pos).ok_or(BufferFull)?;
            *slot = v as u8;
            self.pos += 1;
            return Ok(());
        }
        let rest = self.buf.get_mut(self.pos..).ok_or(BufferFull)?;
        self.pos += varint::write(v, rest).ok_or(BufferFull)?;
        Ok(())
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn fixed64(&mut self, field: u32, v: u64) -> Result<(), BufferFull> {
        let k = key(field, WireType::Fixed64);
        if k < 0x80 {
            // Key and value in one bounds check.
            let dst = self.buf.get_mut(self.pos..self.pos + 9).ok_or(BufferFull)?;
            dst[0] = k as u8;
            dst[1..].copy_from_slice(&v.to_le_bytes());
            self.pos += 9;
            return Ok(());
        }
        self.put_varint(k)?;
        self.put(&v.to_le_bytes())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::proto::{Message, Size};

    struct Blob(usize);

    impl Message for Blob {
        fn write_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), S::Error> {
            for i in 0..self.0 {
                s.uint64(1, i as u64 % 3)?;
            }
            Ok(())
        }
    }

    /// Patched lengths equal the sizing pass's, across the one-, two- and three-byte length
    /// boundaries and nested two deep.
    #[test]
    #[cfg_attr(miri, ignore = "safe code only; minutes in the interpreter")]
    fn patched_lengths_equal_sized_lengths() {
        let mut patched = [0u8; 70_000];
        let mut sized = [0u8; 70_000];
        for n in [0, 1, 63, 64, 65, 8191, 8192, 8193, 30_000] {
            let mut w = SliceWriter::new(&mut patched);
            w.nested(3, |w| w.nested(1, |w| Blob(n).write_to(w))).unwrap();
            let a = w.pos();
            struct Outer(usize);
            impl Message for Outer {
                fn write_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), S::Error> {
                    s.message(1, &Blob(self.0))
                }
            }
            let mut v = SliceWriter::new(&mut sized);
            v.message(3, &Outer(n)).unwrap();
            let b = v.pos();
            assert_eq!(patched[..a], sized[..b], "{n}");
            let mut size = Size::new();
            size.message(3, &Outer(n)).unwrap();
            assert_eq!(size.len(), a);
        }
    }

    #[test]
    fn open_reservations_move_either_way_and_refuse_without_room() {
        let mut buf = [0u8; 8];
        let mut w = SliceWriter::new(&mut buf);
        let open = w.open(3).unwrap();
        w.put(b"ab").unwrap();
        w.close(open).unwrap();
        assert_eq!(w.written(), b"\x02ab");
        // A body of 200 bytes does not fit an eight-byte slice.
        let mut small = [0u8; 8];
        let mut w = SliceWriter::new(&mut small);
        assert_eq!(w.nested(1, |w| w.put(&[0; 200])), Err(BufferFull));
        // Exactly full after moving right by one byte: refused, nothing written past the end.
        let mut buf = [0u8; 130];
        let mut w = SliceWriter::new(&mut buf);
        let open = w.open(1).unwrap();
        w.put(&[7; 128]).unwrap();
        assert_eq!(w.pos(), 129);
        w.close(open).unwrap();
        assert_eq!(&w.written()[..2], &[0x80, 0x01]);
        assert_eq!(w.pos(), 130);
        let mut buf = [0u8; 129];
        let mut w = SliceWriter::new(&mut buf);
        let open = w.open(1).unwrap();
        w.put(&[7; 128]).unwrap();
        assert_eq!(w.close(open), Err(BufferFull));
    }
}
