//! [`Connection`]: serves a [`Service`] over one `embedded-io-async` stream, with fixed,
//! caller-provided buffers, no allocator and no runtime.
//!
//! This is the whole HTTP/1.1 server side an embedded TCP stack (e.g. an `embassy-net`
//! `TcpSocket`) needs to expose `/healthz`, `/readyz` and `/metrics`:
//!
//! - The request head is parsed with `httparse` from the *head buffer*. A head that does not
//!   complete within `min(head buffer, Limits::max_head_bytes)` bytes, or with more than
//!   [`MAX_HEADERS`] header fields, gets `431` and the connection closes; a malformed head gets
//!   `400` and the connection closes.
//! - Keep-alive: HTTP/1.1 connections stay open unless the request says `Connection: close`;
//!   HTTP/1.0 ones only with `Connection: keep-alive`. Pipelined requests are served in order.
//! - Bodies of known length go out with `Content-Length`. Streamed bodies (`/metrics`,
//!   `/readyz?verbose`) go out with `Transfer-Encoding: chunked`, one HTTP chunk per
//!   [`Body::fill`](crate::http::Body::fill) of the *chunk buffer*, so memory per scrape is the
//!   chunk buffer whatever the number of series. An HTTP/1.0 client gets a streamed body
//!   delimited by closing the connection (`Connection: close`) instead.
//! - `HEAD` gets the same head as `GET` and no body.
//! - A request that carries a body (`Content-Length` > 0 or `Transfer-Encoding`) is answered
//!   (none of the routes takes a body: usually `405`) with `Connection: close`, and the
//!   connection closes rather than reading the body.
//! - gzip is never applied: there is no compressor without an allocator, so
//!   `Accept-Encoding` is ignored and bodies are sent as identity.
//! - Timeouts need a clock, which the core does not have: pass a [`Timer`] with
//!   [`Connection::with_timer`]. Then the first request head must arrive within
//!   [`Limits::header_timeout_ms`]; between requests the connection may idle for
//!   [`Limits::idle_timeout_ms`], after which the next head again has `header_timeout_ms`.
//!   Without a timer ([`NoTimeouts`]) a silent peer holds the connection until the transport
//!   itself gives up, so the caller must bound it (e.g. a socket timeout).
//!   [`Limits::max_connections`] is the caller's too: it decides how many connections to run.

use core::fmt;
use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embedded_io_async::{Read, Write};

use crate::decimal::Digits;
use crate::error::EncodeError;
use crate::http::{Limits, Request, Response, Service};

/// Most header fields a request head may have; more gets `431`.
pub const MAX_HEADERS: usize = 32;

/// Bytes reserved in the chunk buffer around each HTTP chunk: up to 8 hex digits and CRLF
/// before the data, CRLF after it.
const CHUNK_PREFIX: usize = 10;
const CHUNK_OVERHEAD: usize = CHUNK_PREFIX + 2;

/// A source of sleeps, so the core can apply [`Limits`] timeouts without naming a runtime.
///
/// # Examples
/// With `embassy-time`:
/// ```ignore
/// struct EmbassyTimer;
/// impl diag_core::http::Timer for EmbassyTimer {
///     fn sleep_ms(&mut self, ms: u64) -> impl core::future::Future<Output = ()> {
///         embassy_time::Timer::after_millis(ms)
///     }
/// }
/// ```
pub trait Timer {
    /// A future that completes once `ms` milliseconds have passed.
    fn sleep_ms(&mut self, ms: u64) -> impl Future<Output = ()>;
}

/// A [`Timer`] that never fires: no timeouts (the caller bounds the connection otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoTimeouts;

impl Timer for NoTimeouts {
    fn sleep_ms(&mut self, _ms: u64) -> impl Future<Output = ()> {
        core::future::pending()
    }
}

impl<T: Timer + ?Sized> Timer for &mut T {
    fn sleep_ms(&mut self, ms: u64) -> impl Future<Output = ()> {
        (**self).sleep_ms(ms)
    }
}

/// How a connection ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closed {
    /// The peer closed its side between requests (or in the middle of a head).
    ByPeer,
    /// The server closed it after a response: `Connection: close`, an HTTP/1.0 request, a
    /// request with a body, or an error answered with `400`/`431`.
    ByServer,
    /// A head did not arrive within [`Limits::header_timeout_ms`], or the connection idled
    /// past [`Limits::idle_timeout_ms`].
    Timeout,
}

/// Why a connection ended with an error. Either way the caller just drops the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError<E> {
    /// The transport failed.
    Io(E),
    /// A streamed body has one line or series larger than the chunk buffer. The response was
    /// cut off without its last chunk, so the client sees an incomplete body (never a silently
    /// truncated one), and the connection was dropped.
    Encode(EncodeError),
    /// The chunk buffer cannot hold a response head plus chunk framing; nothing was written.
    BufferTooSmall,
}

impl<E: fmt::Debug> fmt::Display for ConnectionError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "transport error: {e:?}"),
            Self::Encode(e) => write!(f, "response body cut off: {e}"),
            Self::BufferTooSmall => f.write_str("chunk buffer too small for a response head"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for ConnectionError<E> {}

impl<E> From<EncodeError> for ConnectionError<E> {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

/// Serves a [`Service`] over `embedded-io-async` streams, one connection at a time, with two
/// caller-provided buffers: the *head buffer* (request heads; its length, capped by
/// [`Limits::max_head_bytes`], is the largest head accepted) and the *chunk buffer* (response
/// heads and body chunks; 512 bytes or more, and at least the largest series plus 12 bytes).
///
/// # Examples
/// ```
/// use diag_core::StateTable;
/// use diag_core::http::{Closed, Connection, Service};
///
/// /// A connection whose peer sent `input` and then closed; the answer goes to `output`.
/// struct Pipe<'a> { input: &'a [u8], output: &'a mut [u8], written: usize }
/// impl embedded_io_async::ErrorType for Pipe<'_> { type Error = core::convert::Infallible; }
/// impl embedded_io_async::Read for Pipe<'_> {
///     async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
///         let n = buf.len().min(self.input.len());
///         buf[..n].copy_from_slice(&self.input[..n]);
///         self.input = &self.input[n..];
///         Ok(n)
///     }
/// }
/// impl embedded_io_async::Write for Pipe<'_> {
///     async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
///         let n = buf.len().min(self.output.len() - self.written);
///         self.output[self.written..self.written + n].copy_from_slice(&buf[..n]);
///         self.written += n;
///         Ok(n)
///     }
///     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// }
///
/// static STATES: StateTable<4> = StateTable::new();
/// STATES.heartbeat_ok("agent", 0).unwrap();
/// let service = Service::new(&STATES, &[], 7);
/// let (mut head, mut chunk, mut output) = ([0u8; 1024], [0u8; 1024], [0u8; 512]);
/// let mut connection = Connection::new(&service, &mut head, &mut chunk);
///
/// let mut pipe = Pipe { input: b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", output: &mut output, written: 0 };
/// let closed = embassy_futures::block_on(connection.serve(&mut pipe)).unwrap();
/// assert_eq!(closed, Closed::ByPeer);
/// let answer = core::str::from_utf8(&pipe.output[..pipe.written]).unwrap();
/// assert!(answer.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"));
/// assert!(answer.ends_with("Content-Length: 15\r\n\r\n{\"status\":\"ok\"}"));
/// ```
pub struct Connection<'s, 'b, T = NoTimeouts> {
    service: &'s Service<'s>,
    limits: Limits,
    head: &'b mut [u8],
    chunk: &'b mut [u8],
    timer: T,
}

impl<'s, 'b> Connection<'s, 'b> {
    /// A connection server for `service` with [`Limits::DEFAULT`] and no timeouts.
    pub fn new(service: &'s Service<'s>, head: &'b mut [u8], chunk: &'b mut [u8]) -> Self {
        Self { service, limits: Limits::DEFAULT, head, chunk, timer: NoTimeouts }
    }
}

impl<'s, 'b, T: Timer> Connection<'s, 'b, T> {
    /// Applies `limits` (head size and timeouts; the chunk buffer's length replaces
    /// `chunk_bytes`).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Applies the timeouts of the limits with `timer`.
    pub fn with_timer<U: Timer>(self, timer: U) -> Connection<'s, 'b, U> {
        let Self { service, limits, head, chunk, .. } = self;
        Connection { service, limits, head, chunk, timer }
    }

    /// The largest request head accepted.
    pub fn max_head_bytes(&self) -> usize {
        self.head.len().min(self.limits.max_head_bytes)
    }

    /// Serves requests on `io` until the peer closes, a timeout passes, or a response closes
    /// the connection. The buffers are reused, so one `Connection` serves any number of
    /// connections in turn.
    ///
    /// # Errors
    /// [`ConnectionError`] when the transport fails, a streamed body does not fit the chunk
    /// buffer item by item, or the chunk buffer is too small for a response head.
    pub async fn serve<IO: Read + Write>(&mut self, mut io: IO) -> Result<Closed, ConnectionError<IO::Error>> {
        let limit = self.max_head_bytes();
        let mut filled = 0;
        let mut first = true;
        loop {
            // Idle wait for the first byte of the next request (not before the first one: from
            // the start of the connection the head timer runs, as in hyper).
            if filled == 0 && !first {
                match timeout(&mut self.timer, self.limits.idle_timeout_ms, io.read(&mut self.head[..limit])).await {
                    None => return Ok(Closed::Timeout),
                    Some(Ok(0)) => return Ok(Closed::ByPeer),
                    Some(Ok(n)) => filled = n,
                    Some(Err(e)) => return Err(ConnectionError::Io(e)),
                }
            }
            first = false;
            let read = read_head(&mut io, &mut self.head[..limit], filled);
            let head = match timeout(&mut self.timer, self.limits.header_timeout_ms, read).await {
                None => return Ok(Closed::Timeout),
                Some(result) => result.map_err(ConnectionError::Io)?,
            };
            let (head_len, plan) = match head {
                Head::Eof => return Ok(Closed::ByPeer),
                Head::Complete { len, filled: f } => {
                    filled = f;
                    (len, answer(self.service, &self.head[..len], &mut self.chunk[..])?)
                }
                Head::TooLarge => {
                    (0, error_plan(Response::plain(431, "request header fields too large"), &mut self.chunk[..])?)
                }
                Head::Malformed => (0, error_plan(Response::plain(400, "bad request"), &mut self.chunk[..])?),
            };
            let keep_alive = plan.keep_alive;
            send(&mut io, plan, &mut self.chunk[..]).await?;
            if !keep_alive {
                return Ok(Closed::ByServer);
            }
            // Keep what was read past this head: the next pipelined request.
            self.head.copy_within(head_len..filled, 0);
            filled -= head_len;
        }
    }
}

impl<T> fmt::Debug for Connection<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("limits", &self.limits)
            .field("head_buffer", &self.head.len())
            .field("chunk_buffer", &self.chunk.len())
            .finish_non_exhaustive()
    }
}

/// Runs `future` unless `ms` milliseconds pass first (then `None`).
async fn timeout<F: Future>(timer: &mut impl Timer, ms: u64, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut sleep = pin!(timer.sleep_ms(ms));
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// What reading a request head found.
enum Head {
    /// A complete head of `len` bytes; `filled` bytes are in the buffer (the rest is the next
    /// request).
    Complete { len: usize, filled: usize },
    /// The buffer filled up (or too many header fields) before the head completed.
    TooLarge,
    /// Not HTTP/1.x.
    Malformed,
    /// The peer closed before a complete head.
    Eof,
}

/// Reads until `buf[..filled]` holds a complete head.
async fn read_head<R: Read>(io: &mut R, buf: &mut [u8], mut filled: usize) -> Result<Head, R::Error> {
    loop {
        if filled > 0 {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::Request::new(&mut headers).parse(&buf[..filled]) {
                Ok(httparse::Status::Complete(len)) => return Ok(Head::Complete { len, filled }),
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Ok(Head::TooLarge),
                Err(_) => return Ok(Head::Malformed),
            }
        }
        if filled == buf.len() {
            return Ok(Head::TooLarge);
        }
        match io.read(&mut buf[filled..]).await? {
            0 => return Ok(Head::Eof),
            n => filled += n,
        }
    }
}

/// A response about to be sent, its head already in the chunk buffer.
struct Plan<'s> {
    response: Response<'s>,
    head_len: usize,
    framing: Framing,
    keep_alive: bool,
    head_only: bool,
}

/// Routes a complete head and writes the response head into `out`.
fn answer<'s, E>(service: &'s Service<'s>, head: &[u8], out: &mut [u8]) -> Result<Plan<'s>, ConnectionError<E>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        // `read_head` parsed the same bytes already; answer as it would have.
        return error_plan(Response::plain(400, "bad request"), out);
    }
    let (mut accept, mut connection, mut has_body) = (None, None, false);
    for header in parsed.headers.iter() {
        let value = core::str::from_utf8(header.value).ok().map(str::trim);
        if header.name.eq_ignore_ascii_case("accept") {
            accept = value;
        } else if header.name.eq_ignore_ascii_case("connection") {
            connection = value;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        } else if header.name.eq_ignore_ascii_case("content-length") {
            has_body |= value != Some("0");
        }
    }
    let http10 = parsed.version == Some(0);
    let token = |t: &str| connection.is_some_and(|c| c.split(',').any(|v| v.trim_ascii().eq_ignore_ascii_case(t)));
    let mut keep_alive = !has_body && if http10 { token("keep-alive") } else { !token("close") };
    let request = Request {
        method: parsed.method.unwrap_or(""),
        target: parsed.path.unwrap_or(""),
        accept,
        // No compressor without an allocator: bodies always go out as identity.
        accept_encoding: None,
    };
    let response = service.respond(&request);
    let framing = match response.content_length() {
        Some(_) => Framing::Length,
        None if http10 => {
            keep_alive = false;
            Framing::Close
        }
        None => Framing::Chunked,
    };
    let head_len = write_head(&response, out, keep_alive, http10, framing)?;
    Ok(Plan { response, head_len, framing, keep_alive, head_only: request.is_head() })
}

/// The plan for an error answered before routing (`400`, `431`): then the connection closes.
fn error_plan<'s, E>(response: Response<'s>, out: &mut [u8]) -> Result<Plan<'s>, ConnectionError<E>> {
    let head_len = write_head(&response, out, false, false, Framing::Length)?;
    Ok(Plan { response, head_len, framing: Framing::Length, keep_alive: false, head_only: false })
}

/// How a response body is delimited.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
    Close,
}

/// Writes the status line and headers into `out`; returns the length.
fn write_head<E>(
    response: &Response<'_>,
    out: &mut [u8],
    keep_alive: bool,
    http10: bool,
    framing: Framing,
) -> Result<usize, ConnectionError<E>> {
    let mut w = Cursor { buf: out, len: 0 };
    w.push(&[
        b"HTTP/1.1 ",
        Digits::new(response.status().into()).as_bytes(),
        b" ",
        response.reason().as_bytes(),
        b"\r\n",
    ])?;
    for (name, value) in response.headers() {
        w.push(&[name.as_bytes(), b": ", value.as_bytes(), b"\r\n"])?;
    }
    match (framing, response.content_length()) {
        (Framing::Length, Some(n)) => w.push(&[b"Content-Length: ", Digits::new(n as u64).as_bytes(), b"\r\n"])?,
        (Framing::Chunked, _) => w.push(&[b"Transfer-Encoding: chunked\r\n"])?,
        _ => {}
    }
    match (keep_alive, http10) {
        (false, _) => w.push(&[b"Connection: close\r\n"])?,
        (true, true) => w.push(&[b"Connection: keep-alive\r\n"])?,
        (true, false) => {}
    }
    w.push(&[b"\r\n"])?;
    // Room for chunk framing and some data after the head, so the body can always proceed.
    if w.buf.len() < CHUNK_OVERHEAD + 64 {
        return Err(ConnectionError::BufferTooSmall);
    }
    Ok(w.len)
}

struct Cursor<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Cursor<'_> {
    fn push<E>(&mut self, parts: &[&[u8]]) -> Result<(), ConnectionError<E>> {
        for part in parts {
            let end = self.len + part.len();
            self.buf.get_mut(self.len..end).ok_or(ConnectionError::BufferTooSmall)?.copy_from_slice(part);
            self.len = end;
        }
        Ok(())
    }
}

/// Writes the response head in `chunk[..plan.head_len]` and then the body.
async fn send<W: Write>(io: &mut W, plan: Plan<'_>, chunk: &mut [u8]) -> Result<(), ConnectionError<W::Error>> {
    let Plan { response, head_len, framing, head_only, .. } = plan;
    let mut body = response.into_body();
    if head_only {
        write_all(io, &chunk[..head_len]).await?;
        return io.flush().await.map_err(ConnectionError::Io);
    }
    match framing {
        Framing::Length => {
            // Fixed bodies: as much as fits goes out with the head.
            let mut pos = head_len;
            loop {
                if pos == chunk.len() {
                    write_all(io, chunk).await?;
                    pos = 0;
                }
                match body.fill(&mut chunk[pos..])? {
                    0 => break,
                    n => pos += n,
                }
            }
            write_all(io, &chunk[..pos]).await?;
        }
        Framing::Close => {
            write_all(io, &chunk[..head_len]).await?;
            loop {
                match body.fill(chunk)? {
                    0 => break,
                    n => write_all(io, &chunk[..n]).await?,
                }
            }
        }
        Framing::Chunked => {
            write_all(io, &chunk[..head_len]).await?;
            // At most 8 hex digits of chunk size, whatever the buffer.
            let end = (chunk.len() - 2).min(CHUNK_PREFIX.saturating_add(0xffff_ffff));
            loop {
                let n = body.fill(&mut chunk[CHUNK_PREFIX..end])?;
                if n == 0 {
                    write_all(io, b"0\r\n\r\n").await?;
                    break;
                }
                let start = chunk_size_line(&mut chunk[..CHUNK_PREFIX], n);
                chunk[CHUNK_PREFIX + n..CHUNK_PREFIX + n + 2].copy_from_slice(b"\r\n");
                write_all(io, &chunk[start..CHUNK_PREFIX + n + 2]).await?;
            }
        }
    }
    io.flush().await.map_err(ConnectionError::Io)
}

/// Writes `<hex n>\r\n` right-aligned into `prefix` (10 bytes) and returns where it starts.
fn chunk_size_line(prefix: &mut [u8], mut n: usize) -> usize {
    let mut start = CHUNK_PREFIX - 2;
    prefix[start..].copy_from_slice(b"\r\n");
    loop {
        start -= 1;
        prefix[start] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 || start == 0 {
            return start;
        }
    }
}

async fn write_all<W: Write>(io: &mut W, bytes: &[u8]) -> Result<(), ConnectionError<W::Error>> {
    io.write_all(bytes).await.map_err(ConnectionError::Io)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines() {
        let mut prefix = [0u8; CHUNK_PREFIX];
        let start = chunk_size_line(&mut prefix, 0x1a2);
        assert_eq!(&prefix[start..], b"1a2\r\n");
        let start = chunk_size_line(&mut prefix, 5);
        assert_eq!(&prefix[start..], b"5\r\n");
        let start = chunk_size_line(&mut prefix, 0xffff_ffff);
        assert_eq!(&prefix[start..], b"ffffffff\r\n");
    }
}
