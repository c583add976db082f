//! A response: status and headers decided up front, and a body that fills caller buffers.

use core::fmt;

use crate::Gauge;
use crate::decimal::Digits;
use crate::encoding::Format;
use crate::error::EncodeError;
use crate::http::service::Readiness;
use crate::registry::Scrape;
use crate::state::State;

/// `Content-Type` of the JSON health bodies.
pub(crate) const JSON: &str = "application/json";
/// `Content-Type` of plain-text bodies.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// Largest inline body (the JSON readiness bodies are about 100 bytes).
const INLINE: usize = 160;

/// A response; see the [module docs](crate::http) for the routes.
#[derive(Debug)]
pub struct Response<'a> {
    status: u16,
    content_type: &'static str,
    allow: bool,
    gzip: bool,
    vary: bool,
    content_length: Option<usize>,
    body: Body<'a>,
}

impl<'a> Response<'a> {
    pub(crate) fn new(status: u16, content_type: &'static str, body: Body<'a>) -> Self {
        let content_length = body.len();
        Self { status, content_type, allow: false, gzip: false, vary: false, content_length, body }
    }

    /// A plain-text error response, e.g. `Response::plain(431, "request header fields too large")`;
    /// the body is `"<status> <message>\n"`, written whole whatever the message's length.
    pub fn plain(status: u16, message: &'static str) -> Self {
        Self::new(status, TEXT, Body { kind: Kind::Plain(status, message), offset: 0 })
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self { allow: true, ..Self::plain(405, "method not allowed") }
    }

    pub(crate) fn with_metrics_headers(mut self, gzip: bool) -> Self {
        self.vary = true;
        self.gzip = gzip;
        if gzip {
            self.content_length = None;
        }
        self
    }

    /// Drops the body for a `HEAD` request; the headers, `Content-Length` included, stay.
    pub(crate) fn head(mut self) -> Self {
        self.body = Body::EMPTY;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase of the status code.
    pub fn reason(&self) -> &'static str {
        reason(self.status)
    }

    /// Whether the frontend must gzip the body (`Content-Encoding: gzip` is among the headers).
    pub fn gzip(&self) -> bool {
        self.gzip
    }

    /// The body length when known in advance (fixed bodies, not gzipped); streamed bodies have
    /// none and go out chunked.
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }

    /// Every header except `Content-Length`: `Content-Type`, `Cache-Control: no-store`,
    /// `X-Content-Type-Options: nosniff`, and where they apply `Allow`, `Vary`,
    /// `Content-Encoding`.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        [
            Some(("Content-Type", self.content_type)),
            Some(("Cache-Control", "no-store")),
            Some(("X-Content-Type-Options", "nosniff")),
            self.allow.then_some(("Allow", "GET, HEAD")),
            self.vary.then_some(("Vary", "Accept, Accept-Encoding")),
            self.gzip.then_some(("Content-Encoding", "gzip")),
        ]
        .into_iter()
        .flatten()
    }

    /// The `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// The body, to be streamed with [`Body::fill`].
    pub fn into_body(self) -> Body<'a> {
        self.body
    }
}

/// The standard reason phrase of the codes diag answers with.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A small body held inline.
#[derive(Clone, Copy)]
pub(crate) struct Inline {
    bytes: [u8; INLINE],
    len: usize,
}

impl Default for Inline {
    fn default() -> Self {
        Self { bytes: [0; INLINE], len: 0 }
    }
}

impl Inline {
    pub(crate) fn buffer(&mut self) -> &mut [u8; INLINE] {
        &mut self.bytes
    }

    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len.min(INLINE);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Decrements `promhttp_metric_handler_requests_in_flight` when a metrics body is dropped.
pub(crate) struct InFlight<'a>(pub(crate) &'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

enum Kind<'a> {
    Static(&'static [u8]),
    Inline(Inline),
    Plain(u16, &'static str),
    Verbose { readiness: &'a dyn Readiness, state: State, shutting_down: bool },
    Metrics { scrape: Scrape<'a>, _in_flight: InFlight<'a> },
}

/// A response body, written into caller buffers by [`fill`](Self::fill).
pub struct Body<'a> {
    kind: Kind<'a>,
    /// Bytes (fixed bodies) or items (verbose readiness) already written.
    offset: usize,
}

impl<'a> Body<'a> {
    /// No body.
    pub const EMPTY: Body<'static> = Body { kind: Kind::Static(b""), offset: 0 };

    pub(crate) const fn fixed(bytes: &'static [u8]) -> Self {
        Self { kind: Kind::Static(bytes), offset: 0 }
    }

    pub(crate) fn inline(inline: Inline) -> Self {
        Self { kind: Kind::Inline(inline), offset: 0 }
    }

    pub(crate) fn verbose(readiness: &'a dyn Readiness) -> Self {
        let kind = Kind::Verbose { readiness, state: readiness.state(), shutting_down: readiness.is_shutting_down() };
        Self { kind, offset: 0 }
    }

    pub(crate) fn metrics(scrape: Scrape<'a>, in_flight: &'a Gauge) -> Self {
        in_flight.inc();
        Self { kind: Kind::Metrics { scrape, _in_flight: InFlight(in_flight) }, offset: 0 }
    }

    /// The total length, when fixed.
    pub fn len(&self) -> Option<usize> {
        match &self.kind {
            Kind::Static(b) => Some(b.len()),
            Kind::Inline(i) => Some(i.len),
            Kind::Plain(status, message) => {
                Some(plain_parts(&Digits::new((*status).into()), message).iter().map(|p| p.len()).sum())
            }
            _ => None,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The exposition format, for a metrics body.
    pub fn format(&self) -> Option<Format> {
        match &self.kind {
            Kind::Metrics { scrape, .. } => Some(scrape.format()),
            _ => None,
        }
    }

    /// Writes the next part of the body into `buf` and returns its length; `Ok(0)` means the
    /// body is complete. Streamed bodies write whole lines or series only.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when one line or series does not fit in `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match &mut self.kind {
            Kind::Static(bytes) => Ok(copy_from(bytes, &mut self.offset, buf)),
            Kind::Inline(inline) => Ok(copy_from(inline.as_bytes(), &mut self.offset, buf)),
            Kind::Plain(status, message) => {
                let digits = Digits::new((*status).into());
                let mut n = 0;
                let mut skip = self.offset;
                for part in plain_parts(&digits, message) {
                    let mut at = skip.min(part.len());
                    skip -= at;
                    n += copy_from(part, &mut at, &mut buf[n..]);
                }
                self.offset += n;
                Ok(n)
            }
            Kind::Metrics { scrape, .. } => scrape.fill(buf),
            Kind::Verbose { readiness, state, shutting_down } => {
                fill_verbose(*readiness, *state, *shutting_down, &mut self.offset, buf)
            }
        }
    }
}

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Static(_) | Kind::Inline(_) | Kind::Plain(..) => "fixed",
            Kind::Verbose { .. } => "verbose readiness",
            Kind::Metrics { .. } => "metrics",
        };
        f.debug_struct("Body").field("kind", &kind).field("len", &self.len()).finish()
    }
}

/// The parts of a plain body, `"<status> <message>\n"`, given the status's `digits`.
fn plain_parts<'b>(digits: &'b Digits, message: &'b str) -> [&'b [u8]; 4] {
    [digits.as_bytes(), b" ", message.as_bytes(), b"\n"]
}

fn copy_from(data: &[u8], offset: &mut usize, buf: &mut [u8]) -> usize {
    let rest = data.get(*offset..).unwrap_or_default();
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    *offset += n;
    n
}

/// Writes whole lines: an optional shutdown line, one line per component slot, a verdict.
/// `item` counts lines already written across calls.
fn fill_verbose(
    readiness: &dyn Readiness,
    state: State,
    shutting_down: bool,
    item: &mut usize,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let slots = readiness.slots();
    let mut pos = 0;
    loop {
        if *item == usize::MAX {
            return Ok(pos);
        }
        let mut line = LineBuf { buf: &mut buf[pos..], len: 0 };
        let fits = match *item {
            0 if shutting_down => line.push(&[b"[-]shutdown process is shutting down\n"]),
            0 => true,
            i if i <= slots => match readiness.component_at(i - 1) {
                Some((name, s)) => line.push(&[
                    if s == State::Ok { b"[+]" } else { b"[-]" },
                    name.as_bytes(),
                    b" ",
                    s.as_str().as_bytes(),
                    b"\n",
                ]),
                None => true,
            },
            _ => {
                let passed = state == State::Ok && !shutting_down;
                if line.push(&[if passed { b"readyz check passed\n" } else { b"readyz check failed\n" }]) {
                    *item = usize::MAX;
                    return Ok(pos + line.len);
                }
                false
            }
        };
        if !fits {
            return if pos == 0 { Err(EncodeError::BufferTooSmall) } else { Ok(pos) };
        }
        pos += line.len;
        *item += 1;
    }
}

struct LineBuf<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl LineBuf<'_> {
    /// Appends all `parts`, or nothing (returns `false`) when they do not fit.
    fn push(&mut self, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > self.buf.len() - self.len {
            return false;
        }
        for p in parts {
            self.buf[self.len..self.len + p.len()].copy_from_slice(p);
            self.len += p.len();
        }
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;

    /// Reads a body through `buf`-sized windows.
    fn read(mut body: Body<'_>, window: usize) -> ([u8; 512], usize) {
        let (mut out, mut len, mut buf) = ([0; 512], 0, [0; 512]);
        while let Ok(n @ 1..) = body.fill(&mut buf[..window]) {
            out[len..len + n].copy_from_slice(&buf[..n]);
            len += n;
        }
        (out, len)
    }

    #[test]
    fn plain_bodies_are_whole_in_any_window() {
        const LONG: &str = "a message much longer than any inline buffer would hold: \
            the body must carry every byte of it, whatever the caller's buffer size, and say \
            so in its length up front, because a clipped error message is a silent truncation";
        for (status, message) in [(404, "page not found"), (431, LONG), (1000, "")] {
            let response = Response::plain(status, message);
            let expected = std::format!("{status} {message}\n");
            assert_eq!(response.content_length(), Some(expected.len()));
            for window in [1, 2, 3, 7, 64, 512] {
                let (out, len) = read(Response::plain(status, message).into_body(), window);
                assert_eq!(&out[..len], expected.as_bytes(), "window {window}");
            }
        }
    }
}
