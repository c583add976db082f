//! [`serve_connection`]: one accepted connection, from its first byte to its close: hyper's
//! HTTP/1 state machine, the header and idle timeouts, and graceful close on shutdown.

use core::convert::Infallible;
use core::future::{Future, poll_fn};
use core::pin::{Pin, pin};
use core::task::Poll;
use core::time::Duration;
use std::boxed::Box;
use std::sync::Arc;
use std::time::Instant;

use hyper::rt::{Read, ReadBuf, Sleep, Timer, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;

use crate::server::Handler;
use crate::server::io::{Watched, render_plain};
use crate::server::watchdog::{Activity, Expired, Signal};

/// What woke the driver.
enum Event {
    /// hyper finished the connection.
    Done(Result<(), hyper::Error>),
    /// The deadline of the current phase passed.
    Deadline,
    /// Shutdown began (`stop` completed).
    Stop,
    /// The server asked the connection to close.
    Signal(Signal),
}

/// Serves one connection until it closes, answering every request with `handler`.
///
/// - A request head (the first, or one begun on a keep-alive connection) must arrive within
///   `header_timeout_ms`, else the connection closes at once without an answer.
/// - A keep-alive connection with no request in flight and no byte of a new head for
///   `idle_timeout_ms` is closed gracefully.
/// - A head larger than [`Handler::max_head_bytes`] gets `431`, a malformed one `400`, and
///   the connection closes.
/// - When `stop` completes, the request in flight (if any) finishes and the connection closes
///   after it; an idle connection closes at once.
///
/// `io` is the accepted stream behind the runtime's hyper IO adapter; `timer` is the runtime's
/// [`hyper::rt::Timer`]. Errors of the connection (a client that vanished, a broken head) end
/// it and are logged at debug level: they concern that client only.
///
/// This serves a connection on its own, outside any connection cap; a server accepting from
/// a listener uses [`serve`](crate::server::serve), which also caps and drains its connections.
///
/// # Examples
/// See the [module docs](crate::server).
pub async fn serve_connection<I, T>(handler: Arc<Handler>, io: I, timer: T, stop: impl Future<Output = ()>)
where
    I: Read + Write + Unpin + Send + 'static,
    T: Timer,
{
    let activity = Activity::new(&handler.limits());
    drive(handler, io, timer, activity, stop).await;
}

/// [`serve_connection`] with the connection's [`Activity`] given, through which the server
/// signals it.
pub(crate) async fn drive<I, T>(
    handler: Arc<Handler>,
    io: I,
    timer: T,
    activity: Arc<Activity>,
    stop: impl Future<Output = ()>,
) where
    I: Read + Write + Unpin + Send + 'static,
    T: Timer,
{
    let io = Watched::new(io, Arc::clone(&activity));
    let max_buf = handler.max_head_bytes();
    let service = {
        let activity = Arc::clone(&activity);
        service_fn(move |request| {
            let busy = activity.begin();
            let handler = Arc::clone(&handler);
            // Boxed so the connection is `Unpin` and hands its IO back when done.
            Box::pin(async move { Ok::<_, Infallible>(handler.handle(request, busy).await) })
                as Pin<Box<dyn Future<Output = Result<_, Infallible>> + Send>>
        })
    };
    let mut builder = http1::Builder::new();
    builder.max_buf_size(max_buf).keep_alive(true);
    let mut conn = builder.serve_connection(io, service);
    let mut stop = pin!(stop);
    let mut closing = false;
    let mut handled: Option<Signal> = None;
    let mut deadline: Option<Instant> = None;
    let mut sleep: Option<Pin<Box<dyn Sleep>>> = None;
    loop {
        let event = poll_fn(|cx| {
            if let Poll::Ready(result) = conn.poll_without_shutdown(cx) {
                return Poll::Ready(Event::Done(result));
            }
            // Every change of phase (a read, a request begun, a body done) happened inside that
            // poll: follow the deadline it left.
            let (now_due, signal) = activity.poll(cx);
            if signal > handled {
                handled = signal;
                if let Some(signal) = signal {
                    return Poll::Ready(Event::Signal(signal));
                }
            }
            if now_due != deadline {
                deadline = now_due;
                sleep = now_due.map(|at| timer.sleep_until(at));
            }
            if let Some(s) = sleep.as_mut() {
                if s.as_mut().poll(cx).is_ready() {
                    sleep = None;
                    deadline = None;
                    return Poll::Ready(Event::Deadline);
                }
            }
            if !closing && stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Stop);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Done(result) => {
                let mut io = conn.into_parts().io;
                let _ = poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx)).await;
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                    linger(io, &timer).await;
                }
                return;
            }
            Event::Deadline => match activity.expired(Instant::now()) {
                Some(Expired::Head) => {
                    tracing::debug!("closing a connection: request head not received in time");
                    return;
                }
                Some(Expired::Idle) if closing => return,
                Some(Expired::Idle) => {
                    Pin::new(&mut conn).graceful_shutdown();
                    closing = true;
                }
                None => {}
            },
            Event::Signal(Signal::Abort) => {
                tracing::debug!("closing a connection: the drain timed out");
                return;
            }
            Event::Signal(Signal::Evict) if !activity.is_busy() => {
                tracing::debug!("closing a connection waiting for a request: the connection cap admits a new one");
                return;
            }
            Event::Stop | Event::Signal(Signal::Stop | Signal::Evict) => {
                Pin::new(&mut conn).graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Answers a connection over the cap with `503 Service Unavailable` and `Connection: close`,
/// without reading its request, and closes it after lingering (see [`linger`]); at most
/// [`LINGER`] for the write and as much for the linger.
pub(crate) async fn reject<I, T>(mut io: I, timer: T)
where
    I: Read + Write + Unpin,
    T: Timer,
{
    let response = render_plain(503, "too many connections: every connection has a request in flight");
    let mut written = 0;
    let mut sleep = timer.sleep(LINGER);
    let sent = poll_fn(|cx| {
        while written < response.len() {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(false);
            }
            match Pin::new(&mut io).poll_write(cx, &response[written..]) {
                Poll::Ready(Ok(n @ 1..)) => written += n,
                Poll::Ready(_) => return Poll::Ready(false),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(true)
    })
    .await;
    if sent {
        let _ = poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx)).await;
        linger(io, &timer).await;
    }
}

/// Longest a connection lingers after an error response.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and dropped while lingering.
const LINGER_BYTES: usize = 64 * 1024;

/// Reads and drops what the client still sends, until it closes, for at most [`LINGER`] and
/// [`LINGER_BYTES`], after the write side was shut down.
///
/// After an error response (`400`, `431`) part of the request is usually unread; closing at
/// once would answer it with a reset, which can erase the response from the client's buffers
/// before the client reads it (RFC 9112 §9.6). Lingering lets the response arrive.
async fn linger<I: Read + Unpin>(mut io: I, timer: &impl Timer) {
    let mut sleep = timer.sleep(LINGER);
    let mut scratch = [0u8; 4096];
    let mut dropped = 0;
    poll_fn(|cx| {
        loop {
            if dropped >= LINGER_BYTES || sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut io).poll_read(cx, buf.unfilled()) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => dropped += buf.filled().len(),
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
}
