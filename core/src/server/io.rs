//! [`Watched`]: the connection's stream as hyper sees it. It reports reads to the connection's
//! [`Activity`] (for the timeouts), and rewrites the error responses hyper writes on its own —
//! `400` for a malformed head, `431` for one over the limit — into the core's form, so they
//! carry the same headers and plain-text body as every other response, and `Connection: close`.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::format;
use std::io::{self, IoSlice};
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use hyper::rt::{Read, ReadBufCursor, Write};

use crate::http::Response;
use crate::server::watchdog::Activity;

/// A hyper IO that reports reads to an [`Activity`] and rewrites hyper's own error responses.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
    /// The rewritten error response and how much of it is written.
    rewrite: Option<(Vec<u8>, usize)>,
}

impl<T> Watched<T> {
    pub(crate) fn new(io: T, activity: Arc<Activity>) -> Self {
        Self { io, activity, rewrite: None }
    }
}

/// The body message of an error hyper answers on its own (it only ever sends a few).
fn message(code: u16) -> &'static str {
    match code {
        408 => "request timeout",
        413 => "payload too large",
        414 => "uri too long",
        431 => "request header fields too large",
        501 => "not implemented",
        505 => "http version not supported",
        500..600 => "internal server error",
        _ => "bad request",
    }
}

/// Whether `written` starts an error response head (`HTTP/1.x 4xx` or `5xx`).
fn is_error_head(written: &[u8]) -> bool {
    matches!(written, [b'H', b'T', b'T', b'P', b'/', b'1', b'.', _, b' ', b'4' | b'5', ..])
}

/// The core's rendering of an error response that hyper wrote on its own, if `written` is
/// one: an error status and no `Cache-Control` (every response of the server has one).
fn rewritten(written: &[u8]) -> Option<Vec<u8>> {
    if !is_error_head(written) {
        return None;
    }
    let end = written.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(written.len());
    let head = String::from_utf8_lossy(&written[..end]).to_ascii_lowercase();
    if head.contains("\r\ncache-control:") {
        return None;
    }
    let line = written.split(|&b| b == b'\r').next()?;
    let line = core::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("HTTP/1.1 ").or_else(|| line.strip_prefix("HTTP/1.0 "))?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok().filter(|c| (400..600).contains(c))?;
    Some(render(code, reason, message(code)))
}

/// The core's plain-text response `code` with `message`, closing the connection, as bytes.
pub(crate) fn render_plain(code: u16, message: &'static str) -> Vec<u8> {
    render(code, Response::plain(code, message).reason(), message)
}

fn render(code: u16, reason: &str, message: &'static str) -> Vec<u8> {
    let response = Response::plain(code, message);
    let mut out = format!("HTTP/1.1 {code} {reason}\r\n");
    for (name, value) in response.headers() {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    // A plain body has a known length; fill it whole.
    let mut body = std::vec![0u8; response.content_length().unwrap_or(0)];
    let mut len = 0;
    let mut response_body = response.into_body();
    while let Ok(n @ 1..) = response_body.fill(&mut body[len..]) {
        len += n;
    }
    out.push_str(&format!("Content-Length: {len}\r\nConnection: close\r\n\r\n"));
    let mut out = out.into_bytes();
    out.extend_from_slice(&body[..len]);
    out
}

impl<T: Write + Unpin> Watched<T> {
    /// Writes the core's version of the error response in `buf` if hyper produced it on its
    /// own; `None` to write `buf` as it is. Bytes hyper writes after a rewritten response (the
    /// connection is closing) are dropped.
    fn write_rewritten(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        if self.rewrite.is_none() {
            self.rewrite = Some((rewritten(buf)?, 0));
        }
        let (bytes, written) = self.rewrite.as_mut()?;
        while *written < bytes.len() {
            match Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Some(Poll::Ready(Err(io::ErrorKind::WriteZero.into()))),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => return Some(Poll::Pending),
            }
        }
        Some(Poll::Ready(Ok(buf.len())))
    }
}

impl<T: Read + Unpin> Read for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        // hyper never reads into a full buffer, so a completed read brought bytes or hit the end
        // of the stream; after the end the connection closes, whatever the phase says.
        if matches!(poll, Poll::Ready(Ok(()))) {
            this.activity.on_read();
        }
        poll
    }
}

impl<T: Write + Unpin> Write for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.write_rewritten(cx, buf) {
            Some(poll) => poll,
            None => Pin::new(&mut this.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        if this.rewrite.is_some() || is_error_head(first) {
            // Rare path (an error response, or its aftermath): flatten and check it.
            let flat: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(poll) = this.write_rewritten(cx, &flat) {
                return poll;
            }
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_become_core_responses() {
        let out = rewritten(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{text}");
        assert!(text.contains("Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\n\r\n431 request header fields too large\n"), "{text}");
        assert!(text.contains("Content-Length: 36\r\n"), "{text}");
        assert_eq!(rewritten(b"HTTP/1.1 200 OK\r\n\r\n"), None, "only errors");
        assert_eq!(rewritten(b"0\r\n\r\n"), None, "not a head");
        let served = b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncache-control: no-store\r\n\r\n404 x\n";
        assert_eq!(rewritten(served), None, "responses of the server are left alone");
        assert!(rewritten(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n").is_some());
    }

    #[test]
    fn the_over_capacity_answer_has_the_common_form() {
        let text = String::from_utf8(render_plain(503, "too many connections")).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{text}");
        assert!(text.contains("Cache-Control: no-store\r\n") && text.contains("Content-Length: 25\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\n\r\n503 too many connections\n"), "{text}");
    }
}
