//! Per-connection timeouts hyper does not apply separately: a request head must arrive within
//! `header_timeout_ms` of the connection opening or of its first byte, and an idle keep-alive
//! connection (no request in flight, no byte of a new head) is closed after
//! `idle_timeout_ms`.
//!
//! The connection's reads ([`Watched`](crate::server::io::Watched)), its service calls and its response bodies report to one
//! [`Activity`]; the connection driver sleeps until [`Activity::deadline`] and asks
//! [`Activity::expired`] what to do. Every change of phase happens while hyper's connection
//! future is polled, so the driver re-reads the deadline after each poll of it.

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

/// The activity of one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    phase: Mutex<Phase>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Activity {
    /// A connection just accepted: its first head is due within the header timeout.
    pub(crate) fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
            header_timeout: Duration::from_millis(limits.header_timeout_ms),
            idle_timeout: Duration::from_millis(limits.idle_timeout_ms),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Phase) -> R) -> R {
        // The lock is held for a few instructions and never across an await.
        f(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner))
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
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.with(|p| match *p {
            Phase::Head(since) => Some(since + self.header_timeout),
            Phase::Idle(since) => Some(since + self.idle_timeout),
            Phase::Busy(_) => None,
        })
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
}
