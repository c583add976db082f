//! [`serve`]: the accept loop every frontend runs, with the connection cap and the drain; a
//! frontend brings its listener ([`Accept`]), its timer and its way to spawn a task.

use core::future::{Future, poll_fn};
use core::pin::{Pin, pin};
use core::task::Poll;
use core::time::Duration;
use std::boxed::Box;
use std::io;
use std::sync::Arc;

use hyper::rt::{Read, Sleep, Timer, Write};

use crate::server::Handler;
use crate::server::admission::{Admission, Admit, Ticket};
use crate::server::connection::{drive, reject};
use crate::server::watchdog::{Activity, Signal};

/// How often the loop looks whether the readiness began shutting down by itself (e.g.
/// [`StateTable::begin_shutdown`](crate::StateTable::begin_shutdown) called directly).
const SHUTDOWN_CHECK: Duration = Duration::from_millis(250);

/// Pause after a failed accept before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Pause after an accept that failed for want of file descriptors, once an idle connection
/// was told to close to free one.
const ACCEPT_RETRY_FREED: Duration = Duration::from_millis(5);

/// A listener [`serve`] accepts connections from: the frontend's glue around its runtime's
/// socket.
pub trait Accept: Send {
    /// An accepted connection, behind the runtime's hyper IO adapter.
    type Io: Read + Write + Unpin + Send + 'static;

    /// Accepts the next connection. The future may be dropped before it completes (when
    /// shutdown begins); that must lose no connection, as with tokio's and async-net's
    /// `accept`.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// One accepted connection, served to its end: what [`serve`] hands to its `spawn`.
pub type ConnectionTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What woke the accept loop.
enum Event<I> {
    Accepted(io::Result<I>),
    /// Shutdown began: `shutdown` completed, or the readiness says so.
    Begin,
    /// The shutdown delay is over: stop accepting.
    Stop,
}

/// Accepts connections from `listener` and serves each with `handler` in a task handed to
/// `spawn`, until shutdown, then drains.
///
/// - **Connection cap**: at most `max_connections` connections are open. At the cap, a new
///   connection takes the place of the connection that has waited longest without a request
///   in flight (an idle keep-alive one first, else one still sending its head), which is
///   closed; when every open connection has a request in flight, the new one is answered
///   `503 Service Unavailable` and closed. A probe is thus answered at once however many
///   idle connections are open. Counts are in [`Handler::connection_stats`].
/// - **Shutdown** begins when `shutdown` completes, when [`Handler::begin_shutdown`] is called
///   on a clone of `handler`, or when the service's readiness begins shutting down by itself
///   (seen within 250 ms). At once `/readyz` answers 503 "process is shutting down" while
///   `/healthz` stays 200; the loop keeps accepting and serving for `shutdown_delay_ms`, so
///   that load balancers and probes see the process leave. Then it stops accepting (the
///   listener is dropped), lets requests in flight finish and closes every connection after
///   its request (idle ones at once), and returns once every connection has closed — or after
///   `drain_timeout_ms`, having told the connections still open to close at once.
/// - A failed accept is logged and retried after 100 ms, never fatal. When it failed for want
///   of file descriptors (a limit below `max_connections`), the longest-waiting connection
///   without a request in flight is closed first, as at the cap, and the retry comes after 5 ms.
///
/// # Errors
/// None today; the `Result` leaves room for listener errors that must end serving.
///
/// # Examples
/// `diag_tokio::Server::serve` and `diag_smol::Server::serve_spawning` are this function with
/// their runtime's listener, timer and spawn: a few lines each.
pub async fn serve<L, T>(
    handler: Handler,
    mut listener: L,
    timer: T,
    spawn: impl Fn(ConnectionTask),
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    L: Accept,
    T: Timer + Clone + Send + Sync + 'static,
{
    let limits = handler.limits();
    let handler = Arc::new(handler);
    let admission = Admission::new(limits, Arc::clone(handler.connection_stats()));
    let mut shutdown = pin!(shutdown);
    let mut shutdown_done = false;
    let mut check = timer.sleep(SHUTDOWN_CHECK);
    let mut delay: Option<Pin<Box<dyn Sleep>>> = None;
    let mut retry: Option<Pin<Box<dyn Sleep>>> = None;
    loop {
        let event = {
            let mut accept = pin!(listener.accept());
            poll_fn(|cx| {
                match delay.as_mut() {
                    None => {
                        if !shutdown_done && shutdown.as_mut().poll(cx).is_ready() {
                            shutdown_done = true;
                            return Poll::Ready(Event::Begin);
                        }
                        while check.as_mut().poll(cx).is_ready() {
                            if handler.is_shutting_down() {
                                return Poll::Ready(Event::Begin);
                            }
                            check = timer.sleep(SHUTDOWN_CHECK);
                        }
                    }
                    Some(delay) => {
                        if delay.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Event::Stop);
                        }
                    }
                }
                if let Some(pause) = retry.as_mut() {
                    if pause.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    retry = None;
                }
                accept.as_mut().poll(cx).map(Event::Accepted)
            })
            .await
        };
        match event {
            Event::Accepted(Ok(io)) => match admission.admit() {
                Admit::Admitted(ticket, activity) => {
                    spawn(Box::pin(connection(Arc::clone(&handler), io, timer.clone(), activity, ticket)));
                }
                Admit::Rejected(ticket) => {
                    tracing::debug!("every connection is busy: answering a new one 503");
                    let timer = timer.clone();
                    spawn(Box::pin(async move {
                        reject(io, timer).await;
                        drop(ticket);
                    }));
                }
                Admit::Refused => tracing::debug!("every connection is busy: closing a new one"),
            },
            Event::Accepted(Err(e)) => {
                // EMFILE, ENFILE: out of file descriptors. Close the longest-idle connection
                // to free one, as the cap would, so a probe is not left in the backlog.
                // 23 and 24 on Linux, macOS and the BSDs alike.
                let pause = if matches!(e.raw_os_error(), Some(23 | 24)) && admission.evict_one() {
                    tracing::debug!(error = %e, "out of file descriptors: closed an idle connection");
                    ACCEPT_RETRY_FREED
                } else {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    ACCEPT_RETRY
                };
                retry = Some(timer.sleep(pause));
            }
            Event::Begin => {
                handler.begin_shutdown();
                let wait = Duration::from_millis(limits.shutdown_delay_ms);
                tracing::info!(delay = ?wait, "shutting down: /readyz answers 503 while serving goes on for the delay");
                delay = Some(timer.sleep(wait));
            }
            Event::Stop => break,
        }
    }
    drop(listener);
    let stats = handler.connection_stats();
    tracing::info!(open = stats.open(), "stopped accepting; draining connections");
    admission.signal_all(Signal::Stop);
    let mut bound = timer.sleep(Duration::from_millis(limits.drain_timeout_ms));
    let drained = poll_fn(|cx| match admission.poll_drained(cx) {
        Poll::Ready(()) => Poll::Ready(true),
        Poll::Pending => bound.as_mut().poll(cx).map(|()| false),
    })
    .await;
    if drained {
        tracing::debug!("every connection closed");
    } else {
        tracing::warn!(
            open = stats.open(),
            timeout_ms = limits.drain_timeout_ms,
            "connections still open after the drain timeout; closing them"
        );
        admission.signal_all(Signal::Abort);
    }
    Ok(())
}

/// Serves one admitted connection; its ticket ends with it.
async fn connection<I, T>(handler: Arc<Handler>, io: I, timer: T, activity: Arc<Activity>, ticket: Ticket)
where
    I: Read + Write + Unpin + Send + 'static,
    T: Timer,
{
    drive(handler, io, timer, activity, core::future::pending()).await;
    drop(ticket);
}
