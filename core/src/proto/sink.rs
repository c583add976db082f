//! [`Sink`]: where protobuf bytes go, and the field writers every sink gets.

use super::message::Message;
use super::varint;
use super::wire::{WireType, key};

/// A destination for protobuf bytes: a caller's slice ([`SliceWriter`](super::SliceWriter)),
/// an `embedded_io::Write` stream ([`IoWriter`](super::IoWriter)), or a byte count
/// ([`Size`](super::Size)). The field writers (`uint64`, `double`, `string`, `message`, …) are
/// provided methods, so one function generic over `Sink` both sizes and writes a message.
///
/// Fields are written in the order called; the writer neither sorts nor checks them against
/// a schema. Optional fields are written even when they hold the default value (callers
/// skip them when they want the shortest encoding).
pub trait Sink {
    /// What a failed write returns: [`BufferFull`](super::BufferFull) for a slice, the
    /// stream's error for a stream, [`Infallible`](core::convert::Infallible) for a count.
    type Error;

    /// Appends `bytes` as they are.
    ///
    /// # Errors
    /// The sink's error when it cannot take them; what was written of them is unspecified.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Appends `v` as a varint (override for a faster path).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn put_varint(&mut self, v: u64) -> Result<(), Self::Error> {
        let mut b = [0u8; varint::MAX_LEN];
        let n = varint::write(v, &mut b).unwrap_or(0); // ten bytes always suffice
        self.put(&b[..n])
    }

    /// A field key.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn key(&mut self, field: u32, wire: WireType) -> Result<(), Self::Error> {
        self.put_varint(key(field, wire))
    }

    /// A `uint64` or `uint32` field.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn uint64(&mut self, field: u32, v: u64) -> Result<(), Self::Error> {
        self.key(field, WireType::Varint)?;
        self.put_varint(v)
    }

    /// An `int64`, `int32` or `enum` field (negative values take ten bytes, as the format says).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn int64(&mut self, field: u32, v: i64) -> Result<(), Self::Error> {
        self.uint64(field, v as u64)
    }

    /// A `sint64` or `sint32` field (zigzag).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn sint64(&mut self, field: u32, v: i64) -> Result<(), Self::Error> {
        self.uint64(field, varint::zigzag(v))
    }

    /// A `bool` field.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn bool(&mut self, field: u32, v: bool) -> Result<(), Self::Error> {
        self.uint64(field, u64::from(v))
    }

    /// A `fixed64` field.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn fixed64(&mut self, field: u32, v: u64) -> Result<(), Self::Error> {
        self.key(field, WireType::Fixed64)?;
        self.put(&v.to_le_bytes())
    }

    /// A `double` field.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn double(&mut self, field: u32, v: f64) -> Result<(), Self::Error> {
        self.fixed64(field, v.to_bits())
    }

    /// A `bytes` field.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn bytes(&mut self, field: u32, v: &[u8]) -> Result<(), Self::Error> {
        self.key(field, WireType::Len)?;
        self.put_varint(v.len() as u64)?;
        self.put(v)
    }

    /// A `string` field.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn string(&mut self, field: u32, v: &str) -> Result<(), Self::Error> {
        self.bytes(field, v.as_bytes())
    }

    /// A nested message (or a packed repeated field) whose encoded length the caller knows:
    /// the key, `len`, then `body`, which must write exactly `len` bytes (a wrong length
    /// corrupts the output; [`message`](Self::message) computes it instead).
    ///
    /// # Errors
    /// As [`put`](Self::put), or `body`'s error.
    #[inline]
    fn message_with_len(
        &mut self,
        field: u32,
        len: usize,
        body: impl FnOnce(&mut Self) -> Result<(), Self::Error>,
    ) -> Result<(), Self::Error> {
        self.key(field, WireType::Len)?;
        self.put_varint(len as u64)?;
        body(self)
    }

    /// A nested message: its length by a sizing pass ([`Message::encoded_len`]), then its
    /// fields. Works on every sink, streams included; on a slice,
    /// [`SliceWriter::nested`](super::SliceWriter::nested) writes once and patches the length.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn message<M: Message + ?Sized>(&mut self, field: u32, m: &M) -> Result<(), Self::Error> {
        self.message_with_len(field, m.encoded_len(), |s| m.write_to(s))
    }

    /// A message as one element of a length-delimited stream (`encoding=delimited`): its
    /// length as a varint, then its fields, with no key.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    #[inline]
    fn delimited<M: Message + ?Sized>(&mut self, m: &M) -> Result<(), Self::Error> {
        self.put_varint(m.encoded_len() as u64)?;
        m.write_to(self)
    }
}
