//! Per-connection timeouts hyper does not apply separately: a request head must arrive within
//! `header_timeout_ms` of the connection opening or of its first byte, and an idle keep-alive
//! connection (no request in flight, no byte of a new head) is closed after
//! `idle_timeout_ms`.
//!
//! The connection's reads ([`Watched`](crate::server::io::Watched)), its service calls and its response bodies report to one
//! [`Activity`]; the connection driver sleeps until [`Activity::deadline`] and asks
//! [`Activity::expired`] what to do. Every change of phase happens while hyper's connection
//! future is polled, so the driver re-reads the deadline after each poll of it.
//!
//! The server reaches a connection through its `Activity` too: [`Activity::signal`] asks it
//! to close (the drain, the connection cap) and wakes its driver.

use core::task::{Context, Waker};
use core::time::Duration;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::http::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the rest of a request head (or the first one), since the instant.
    Head(Instant),
    /// Requests in flight.
    Busy(usize),
    /// Keep-alive, no request, since the instant.
    Idle(Instant),
}

/// What an expired deadline means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A head took too long: close at once.
    Head,
    /// Idle too long: close gracefully.
    Idle,
}

/// What the server asks of a connection, weakest first: a later, stronger signal replaces
/// a weaker one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Signal {
    /// The server is draining: finish the request in flight, then close.
    Stop,
    /// The connection cap gives this connection's place to a new one: close now unless a
    /// request is in flight, else close after it.
    Evict,
    /// The drain took too long: close now.
    Abort,
}

/// How long a connection without a request in flight has been waiting, for the connection
/// cap: idle keep-alive connections give way before ones still receiving a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Waiting {
    /// Idle keep-alive since the instant.
    Idle(Instant),
    /// Receiving a head since the instant.
    Head(Instant),
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    signal: Option<Signal>,
    /// The driver's waker, to deliver a signal.
    waker: Option<Waker>,
}

/// The activity of one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    inner: Mutex<Inner>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Activity {
    /// A connection just accepted: its first head is due within the header timeout.
    pub(crate) fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner { phase: Phase::Head(Instant::now()), signal: None, waker: None }),
            header_timeout: Duration::from_millis(limits.header_timeout_ms),
            idle_timeout: Duration::from_millis(limits.idle_timeout_ms),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The lock is held for a few instructions and never across an await.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Phase) -> R) -> R {
        f(&mut self.lock().phase)
    }

    /// The driver's view, in one lock: when the current phase expires (if it can), and the
    /// signal received, if any. Registers `cx`'s waker for [`signal`](Self::signal).
    pub(crate) fn poll(&self, cx: &Context<'_>) -> (Option<Instant>, Option<Signal>) {
        let mut inner = self.lock();
        if !inner.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            inner.waker = Some(cx.waker().clone());
        }
        (self.due(inner.phase), inner.signal)
    }

    /// Asks the connection to close (see [`Signal`]) and wakes its driver.
    pub(crate) fn signal(&self, signal: Signal) {
        let waker = {
            let mut inner = self.lock();
            inner.signal = inner.signal.max(Some(signal));
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether a request is in flight.
    pub(crate) fn is_busy(&self) -> bool {
        self.with(|p| matches!(p, Phase::Busy(_)))
    }

    /// How long the connection has been waiting without a request in flight; `None` while one
    /// is.
    pub(crate) fn waiting(&self) -> Option<Waiting> {
        self.with(|p| match *p {
            Phase::Idle(since) => Some(Waiting::Idle(since)),
            Phase::Head(since) => Some(Waiting::Head(since)),
            Phase::Busy(_) => None,
        })
    }

    fn due(&self, phase: Phase) -> Option<Instant> {
        match phase {
            Phase::Head(since) => Some(since + self.header_timeout),
            Phase::Idle(since) => Some(since + self.idle_timeout),
            Phase::Busy(_) => None,
        }
    }

    /// Bytes arrived: an idle connection starts a head.
    pub(crate) fn on_read(&self) {
        self.with(|p| {
            if let Phase::Idle(_) = p {
                *p = Phase::Head(Instant::now());
            }
        });
    }

    /// A request head is complete and being served; the returned guard ends it.
    pub(crate) fn begin(self: &Arc<Self>) -> Busy {
        self.with(|p| {
            *p = match *p {
                Phase::Busy(n) => Phase::Busy(n + 1),
                _ => Phase::Busy(1),
            }
        });
        Busy(Arc::clone(self))
    }

    fn end(&self) {
        self.with(|p| {
            *p = match *p {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Idle(Instant::now()),
            }
        });
    }

    /// When the current phase expires, if it can.
    #[cfg(test)]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.due(self.lock().phase)
    }

    /// Whether the current phase has expired at `now`.
    pub(crate) fn expired(&self, now: Instant) -> Option<Expired> {
        self.with(|p| match *p {
            Phase::Head(since) if now >= since + self.header_timeout => Some(Expired::Head),
            Phase::Idle(since) if now >= since + self.idle_timeout => Some(Expired::Idle),
            _ => None,
        })
    }
}

/// A request in flight; dropping it (when the response body is done) ends it.
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        let limits = Limits::DEFAULT;
        let a = Activity::new(&limits);
        let t0 = a.deadline().unwrap() - Duration::from_secs(10);
        assert_eq!(a.expired(t0 + Duration::from_secs(9)), None);
        assert_eq!(a.expired(t0 + Duration::from_secs(10)), Some(Expired::Head));
        let busy = a.begin();
        let busy2 = a.begin();
        assert_eq!(a.deadline(), None);
        assert_eq!(a.expired(t0 + Duration::from_secs(3600)), None);
        drop(busy);
        assert_eq!(a.deadline(), None, "still one in flight");
        drop(busy2);
        let idle_until = a.deadline().unwrap();
        assert!(idle_until >= t0 + Duration::from_secs(30));
        a.on_read();
        assert!(a.deadline().unwrap() < idle_until, "a new head has the header timeout");
    }

    #[test]
    fn signals_wake_the_driver_and_only_grow_stronger() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Wake;
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let a = Activity::new(&Limits::DEFAULT);
        assert!(matches!(a.waiting(), Some(Waiting::Head(_))));
        assert_eq!(a.poll(&Context::from_waker(&waker)).1, None);
        a.signal(Signal::Evict);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        a.signal(Signal::Stop);
        assert_eq!(a.poll(&Context::from_waker(&waker)).1, Some(Signal::Evict), "a weaker signal is ignored");
        a.signal(Signal::Abort);
        assert_eq!(a.poll(&Context::from_waker(&waker)).1, Some(Signal::Abort));
        assert_eq!(count.0.load(Ordering::Relaxed), 2, "woken once per registered waker");
        let busy = a.begin();
        assert!(a.is_busy() && a.waiting().is_none());
        drop(busy);
        assert!(matches!(a.waiting(), Some(Waiting::Idle(_))));
    }
}
