//! [`Message`]: something that writes its fields into any [`Sink`].

use super::sink::Sink;
use super::size::Size;

/// A protobuf message: writes its fields, in order, into any [`Sink`].
///
/// `write_to` must write the same bytes every time it is called on the same value, since
/// [`encoded_len`](Self::encoded_len) runs it once into a [`Size`] to learn the length that
/// precedes a nested message (the sizing pass costs arithmetic only: no bytes move).
///
/// # Examples
/// A remote-write `Label { string name = 1; string value = 2; }`:
/// ```
/// use diag_core::proto::{Message, Sink, SliceWriter};
///
/// struct Label<'a>(&'a str, &'a str);
///
/// impl Message for Label<'_> {
///     fn write_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), S::Error> {
///         s.string(1, self.0)?;
///         s.string(2, self.1)
///     }
/// }
///
/// let mut buf = [0u8; 32];
/// let mut w = SliceWriter::new(&mut buf);
/// w.message(1, &Label("job", "diag")).unwrap();
/// assert_eq!(w.written(), b"\x0a\x0b\x0a\x03job\x12\x04diag");
/// assert_eq!(Label("job", "diag").encoded_len(), 11);
/// ```
pub trait Message {
    /// Writes the fields.
    ///
    /// # Errors
    /// The sink's error, returned unchanged.
    fn write_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), S::Error>;

    /// The encoded length of the fields (without a key or length prefix).
    fn encoded_len(&self) -> usize {
        let mut size = Size::new();
        let Ok(()) = self.write_to(&mut size);
        size.len()
    }
}

impl<M: Message + ?Sized> Message for &M {
    fn write_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), S::Error> {
        (**self).write_to(s)
    }

    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
}
