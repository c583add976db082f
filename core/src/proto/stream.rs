//! [`IoWriter`]: protobuf straight into an `embedded_io::Write` stream.

use super::sink::Sink;

/// Writes protobuf into an [`embedded_io::Write`] stream: nested messages are sized first
/// ([`Sink::message`]), since nothing written can be patched. Each field is a few small
/// writes, so give it a buffered stream (or write into a [`SliceWriter`](super::SliceWriter)
/// chunk and send the chunk).
///
/// # Examples
/// ```
/// use diag_core::proto::{IoWriter, Sink};
/// let mut out = [0u8; 16];
/// let mut w = IoWriter::new(&mut out[..]);
/// w.string(1, "up").unwrap();
/// assert_eq!(out[..4], *b"\x0a\x02up");
/// ```
#[derive(Debug)]
pub struct IoWriter<W> {
    inner: W,
    written: usize,
}

impl<W: embedded_io::Write> IoWriter<W> {
    /// Wraps a stream.
    pub fn new(inner: W) -> Self {
        Self { inner, written: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// The stream.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: embedded_io::Write> Sink for IoWriter<W> {
    type Error = W::Error;

    fn put(&mut self, bytes: &[u8]) -> Result<(), W::Error> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len();
        Ok(())
    }
}
