//! [`DiagBody`]: the response body type of the std frontends, either fixed bytes or a core
//! body streamed chunk by chunk (gzipped when negotiated) through [`Chunks`].

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::boxed::Box;

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::error::EncodeError;
use crate::gzip::Chunks;
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
    Stream(Box<Chunks<'static>>),
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

    /// Streams `chunks`: each poll encodes (and maybe compresses) one chunk.
    pub fn stream(chunks: Chunks<'static>) -> Self {
        Self { kind: Kind::Stream(Box::new(chunks)), _busy: None }
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
            Kind::Stream(c) => f.debug_tuple("DiagBody::Stream").field(c).finish(),
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

impl http_body::Body for DiagBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        Poll::Ready(match &mut this.kind {
            Kind::Full(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
            Kind::Stream(chunks) => match chunks.next_chunk() {
                Ok(Some(chunk)) => Some(Ok(Frame::data(Bytes::copy_from_slice(chunk)))),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "aborting a streamed response");
                    Some(Err(BodyError(e)))
                }
            },
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}
