//! [`DiagBody`]: the response body type of the std frontends, either fixed bytes or a core
//! body streamed chunk by chunk: plain chunks are encoded straight into the buffers handed to
//! hyper (no copy), gzipped ones go through [`Chunks`].

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::boxed::Box;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use crate::error::EncodeError;
use crate::gzip::Chunks;
use crate::http::{Body, Response};
use crate::server::watchdog::Busy;

/// A response body: fixed bytes, or a core [`Body`](crate::http::Body) streamed in chunks.
///
/// # Examples
/// ```
/// use diag_core::server::DiagBody;
/// use http_body::Body as _;
/// let body = DiagBody::full("hello\n");
/// assert_eq!(body.size_hint().exact(), Some(6));
/// assert!(DiagBody::empty().is_end_stream());
/// ```
pub struct DiagBody {
    kind: Kind,
    /// Marks the connection busy until the body is sent or dropped.
    _busy: Option<Busy>,
}

enum Kind {
    Full(Option<Bytes>),
    Plain(Box<Plain>),
    Gzip(Box<Chunks<'static>>),
}

/// A body streamed in plain chunks, each encoded into a fresh part of `buf` and handed over
/// as [`Bytes`] without a copy. Once hyper has written and dropped a chunk, `buf` takes its
/// allocation back, so a scrape reuses a few chunk-sized buffers.
struct Plain {
    body: Body<'static>,
    buf: BytesMut,
    chunk_bytes: usize,
    done: bool,
}

impl Plain {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, EncodeError> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        self.buf.resize(self.chunk_bytes, 0);
        let n = self.body.fill(&mut self.buf)?;
        self.done = n == 0;
        Ok((n > 0).then(|| self.buf.split_to(n).freeze()))
    }
}

impl DiagBody {
    /// A fixed body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)), _busy: None }
    }

    /// No body.
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// Streams a response's body in chunks of at most `chunk_bytes`, gzipped exactly when
    /// [`Response::gzip`] says so: each poll encodes (and maybe compresses) one chunk.
    pub fn stream(response: Response<'static>, chunk_bytes: usize) -> Self {
        let kind = if response.gzip() {
            Kind::Gzip(Box::new(Chunks::from_response(response, chunk_bytes)))
        } else {
            let chunk_bytes = chunk_bytes.max(1);
            let buf = BytesMut::with_capacity(chunk_bytes);
            Kind::Plain(Box::new(Plain { body: response.into_body(), buf, chunk_bytes, done: false }))
        };
        Self { kind, _busy: None }
    }

    pub(crate) fn with_busy(mut self, busy: Busy) -> Self {
        self._busy = Some(busy);
        self
    }
}

impl fmt::Debug for DiagBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(b) => f.debug_tuple("DiagBody::Full").field(&b.as_ref().map_or(0, Bytes::len)).finish(),
            Kind::Plain(p) => f.debug_tuple("DiagBody::Plain").field(&p.body).finish(),
            Kind::Gzip(c) => f.debug_tuple("DiagBody::Gzip").field(c).finish(),
        }
    }
}

/// A streamed body failed mid-way (a series larger than the chunk); the response is aborted,
/// so the client sees an incomplete body rather than a silently truncated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyError(pub EncodeError);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response body aborted: {}", self.0)
    }
}

impl core::error::Error for BodyError {}

/// The frame for the next chunk: data, the end, or the error that aborts the response.
fn frame(chunk: Result<Option<Bytes>, EncodeError>) -> Option<Result<Frame<Bytes>, BodyError>> {
    match chunk {
        Ok(chunk) => chunk.map(|c| Ok(Frame::data(c))),
        Err(e) => {
            tracing::warn!(error = %e, "aborting a streamed response");
            Some(Err(BodyError(e)))
        }
    }
}

impl http_body::Body for DiagBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        Poll::Ready(match &mut this.kind {
            Kind::Full(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
            Kind::Plain(plain) => frame(plain.next_chunk()),
            Kind::Gzip(chunks) => frame(chunks.next_chunk().map(|c| c.map(Bytes::copy_from_slice))),
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Plain(_) | Kind::Gzip(_) => SizeHint::default(),
        }
    }
}
