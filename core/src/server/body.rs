//! [`DiagBody`]: the response body type of the std frontends, either fixed bytes or a core
//! body streamed chunk by chunk: plain chunks are encoded straight into the buffers handed to
//! hyper (no copy), gzipped ones go through [`Chunks`].

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::boxed::Box;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use crate::error::EncodeError;
use crate::gzip::Chunks;
use crate::http::{Body, Response};
use crate::server::pool::ChunkPool;
use crate::server::shared::Shared;
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
    /// The service a streamed `kind` borrows from; declared after `kind` so that it is dropped
    /// after it.
    _keep: Option<Arc<Shared>>,
}

enum Kind {
    Full(Option<Bytes>),
    Plain(Box<Plain>),
    Gzip(Box<Chunks<'static>>),
}

/// A body streamed in plain chunks, each encoded into a fresh part of `buf` and handed over
/// as [`Bytes`] without a copy. Once hyper has written and dropped a chunk, `buf` takes its
/// allocation back, so a scrape reuses a few chunk-sized buffers. Chunks come from the larger
/// buffers of the server's [`ChunkPool`] while it has some; `buf` is only allocated once it
/// has none.
struct Plain {
    body: Body<'static>,
    buf: BytesMut,
    chunk_bytes: usize,
    pool: Option<Arc<ChunkPool>>,
    done: bool,
}

impl Plain {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, EncodeError> {
        if self.done {
            return Ok(None);
        }
        if let Some(mut chunk) = self.pool.as_ref().and_then(ChunkPool::take) {
            // On an error the buffer goes straight back to the pool with `chunk`.
            let n = self.body.fill(chunk.space())?;
            chunk.set_len(n);
            self.done = n == 0;
            return Ok((n > 0).then(|| Bytes::from_owner(chunk)));
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
        Self { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)), _busy: None, _keep: None }
    }

    /// No body.
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// Streams a response's body in chunks of at most `chunk_bytes`, gzipped exactly when
    /// [`Response::gzip`] says so: each poll encodes (and maybe compresses) one chunk.
    pub fn stream(response: Response<'static>, chunk_bytes: usize) -> Self {
        Self::stream_pooled(response, chunk_bytes, None)
    }

    /// [`stream`](Self::stream), continuing a long plain body in `pool`'s larger buffers.
    pub(crate) fn stream_pooled(response: Response<'static>, chunk_bytes: usize, pool: Option<Arc<ChunkPool>>) -> Self {
        let kind = if response.gzip() {
            Kind::Gzip(Box::new(Chunks::from_response(response, chunk_bytes)))
        } else {
            let chunk_bytes = chunk_bytes.max(1);
            let body = response.into_body();
            Kind::Plain(Box::new(Plain { body, buf: BytesMut::new(), chunk_bytes, pool, done: false }))
        };
        Self { kind, _busy: None, _keep: None }
    }

    pub(crate) fn with_busy(mut self, busy: Busy) -> Self {
        self._busy = Some(busy);
        self
    }

    /// Keeps `shared` alive as long as the body (see [`Shared::stream`]).
    pub(crate) fn keeping(mut self, shared: Arc<Shared>) -> Self {
        self._keep = Some(shared);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::encoding::{Desc, Encoder, Labels, MetricType, Value};
    use crate::http::{Request, Service};

    /// Pooled buffers of the test: 256 KiB.
    const POOLED: usize = 256 * 1024;
    use crate::{Collect, StateTable, Stop};
    use http_body::Body as _;
    use std::vec::Vec;

    /// 100,000 counter lines: about 2.3 MB of exposition.
    struct Many;

    impl Collect for Many {
        fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
            let desc = Desc { name: "many_total", help: "", metric_type: MetricType::Counter };
            for i in 0..100_000u64 {
                enc.sample(&desc, &Labels::EMPTY, Value::U64(i * 1_000_003))?;
            }
            Ok(())
        }
    }

    /// The `many_total` lines of an exposition (the built-in scrape counters change between
    /// requests).
    fn many_lines(exposition: &[u8]) -> Vec<&str> {
        core::str::from_utf8(exposition).unwrap().lines().filter(|l| l.starts_with("many_total")).collect()
    }

    /// The frames of `body`, polled to the end.
    fn frames(mut body: DiagBody) -> Vec<Bytes> {
        let mut cx = Context::from_waker(core::task::Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.push(frame.unwrap().into_data().unwrap());
        }
        out
    }

    #[test]
    fn bodies_stream_in_pooled_chunks_and_return_them() {
        static STATES: StateTable<2> = StateTable::new();
        static SOURCES: [&dyn Collect; 1] = [&Many];
        static SERVICE: std::sync::LazyLock<Service<'static>> =
            std::sync::LazyLock::new(|| Service::new(&STATES, &SOURCES, 1));
        let service: &'static Service<'static> = &SERVICE;
        let unpooled = frames(DiagBody::stream(service.respond(&Request::get("/metrics")), 4096));
        assert!(unpooled.iter().all(|c| c.len() <= 4096));
        let whole: Vec<u8> = unpooled.concat();
        assert!(whole.len() > 4 * POOLED, "{}", whole.len());
        assert_eq!(many_lines(&whole).len(), 100_000);

        // A pool of two buffers: the body holds at most two at once as long as the chunks are
        // dropped in turn (as hyper does); holding every chunk, it runs out and goes on unpooled.
        let pool = ChunkPool::new(2 * POOLED, POOLED).unwrap();
        let response = service.respond(&Request::get("/metrics"));
        let held = frames(DiagBody::stream_pooled(response, 4096, Some(Arc::clone(&pool))));
        assert!(many_lines(&held.concat()) == many_lines(&whole), "pooled chunks carry the same lines");
        assert!(held[0].len() > 4096 && held[1].len() > 4096, "pooled chunks");
        assert!(held[2..].iter().all(|c| c.len() <= 4096), "pool exhausted: own chunks");
        drop(held);
        let (a, b) = (pool.take(), pool.take());
        assert!(a.is_some() && b.is_some(), "both buffers back in the pool");
        drop((a, b));

        let response = service.respond(&Request::get("/metrics"));
        let mut body = DiagBody::stream_pooled(response, 4096, Some(pool));
        let mut cx = Context::from_waker(core::task::Waker::noop());
        let mut streamed = Vec::new();
        let mut lengths = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            let chunk = frame.unwrap().into_data().unwrap();
            lengths.push(chunk.len());
            streamed.extend_from_slice(&chunk); // the chunk is dropped here, as hyper would
        }
        assert!(many_lines(&streamed) == many_lines(&whole));
        let (last, full) = lengths.split_last().unwrap();
        assert!(full.iter().all(|n| (POOLED - 64..=POOLED).contains(n)), "every chunk pooled: {lengths:?}");
        assert!(*last <= POOLED, "{lengths:?}");
    }
}
