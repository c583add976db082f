//! [`Admission`]: the connection cap of one server, and the table of its open connections
//! through which the drain reaches them.
//!
//! At most `max_connections` connections are open. At the cap, a new connection takes the
//! place of the one that has waited longest without a request in flight — an idle keep-alive
//! connection first, else one still receiving its head — which is told to close
//! ([`Signal::Evict`]). Waiting in the listen backlog instead would leave a probe stuck behind
//! idle connections until their idle timeout (30 s): a probe must be answered at once, and an
//! idle connection costs its client nothing but a reconnect. Only when every open connection
//! has a request in flight does a new one get a quick `503` ([`Admit::Rejected`]); at most
//! [`MAX_REJECTING`] such answers are under way at once, and beyond that a new connection is
//! closed without one.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use crate::http::Limits;
use crate::server::watchdog::{Activity, Signal};

/// Most connections being answered `503` at once.
pub(crate) const MAX_REJECTING: usize = 64;

/// Live counts of a server's connections, shared with whatever reports them (a frontend's
/// runtime gauges); every counter of one server's [`Handler`](crate::server::Handler) and its
/// clones.
///
/// # Examples
/// ```
/// use diag_core::server::ConnectionStats;
/// let stats = ConnectionStats::default();
/// assert_eq!((stats.open(), stats.tasks(), stats.evicted(), stats.rejected()), (0, 0, 0, 0));
/// ```
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicUsize,
    tasks: AtomicUsize,
    evicted: AtomicU64,
    rejected: AtomicU64,
}

impl ConnectionStats {
    /// Connections open and counted against the cap.
    pub fn open(&self) -> usize {
        // Relaxed: statistics, each read on its own.
        self.open.load(Ordering::Relaxed)
    }

    /// Connection tasks alive: open connections, and those still closing after being evicted
    /// or while answering `503`.
    pub fn tasks(&self) -> usize {
        self.tasks.load(Ordering::Relaxed)
    }

    /// Connections closed to make room for a new one at the cap, since start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Connections answered `503` (or closed at once) because every open one was busy, since
    /// start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// The open connections of one server.
#[derive(Debug)]
struct Table {
    slots: Vec<Option<Arc<Activity>>>,
    free: Vec<usize>,
    open: usize,
    tasks: usize,
    rejecting: usize,
    /// The drain, waiting for the last task.
    drained: Option<Waker>,
}

/// The connection cap and the open connections of one server; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Admission {
    cap: usize,
    limits: Limits,
    table: Mutex<Table>,
    stats: Arc<ConnectionStats>,
}

/// What to do with a connection just accepted.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Serve it; its activity is in the table until the ticket is dropped.
    Admitted(Ticket, Arc<Activity>),
    /// Every open connection is busy: answer `503` and close.
    Rejected(Ticket),
    /// Too many `503`s under way: close it at once.
    Refused,
}

/// One connection task, counted until dropped (when the task ends).
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    slot: Option<(usize, Arc<Activity>)>,
    rejecting: bool,
}

impl Admission {
    /// At most `limits.max_connections` (at least one) open connections, counted in `stats`.
    pub(crate) fn new(limits: Limits, stats: Arc<ConnectionStats>) -> Arc<Self> {
        let table = Table { slots: Vec::new(), free: Vec::new(), open: 0, tasks: 0, rejecting: 0, drained: None };
        Arc::new(Self { cap: limits.max_connections.max(1), limits, table: Mutex::new(table), stats })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Held for a table update or a scan of the open connections, never across an await.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection just accepted, making room at the cap; see the [module docs](self).
    pub(crate) fn admit(self: &Arc<Self>) -> Admit {
        let activity = Activity::new(&self.limits);
        let mut evicted = None;
        let mut table = self.lock();
        let slot = if table.open < self.cap {
            table.open += 1;
            match table.free.pop() {
                Some(i) => {
                    table.slots[i] = Some(Arc::clone(&activity));
                    Some(i)
                }
                None => {
                    table.slots.push(Some(Arc::clone(&activity)));
                    Some(table.slots.len() - 1)
                }
            }
        } else {
            victim(&table).inspect(|&i| evicted = table.slots[i].replace(Arc::clone(&activity)))
        };
        let admit = match slot {
            Some(i) => {
                table.tasks += 1;
                let ticket =
                    Ticket { admission: Arc::clone(self), slot: Some((i, Arc::clone(&activity))), rejecting: false };
                Admit::Admitted(ticket, activity)
            }
            None if table.rejecting < MAX_REJECTING => {
                table.tasks += 1;
                table.rejecting += 1;
                Admit::Rejected(Ticket { admission: Arc::clone(self), slot: None, rejecting: true })
            }
            None => Admit::Refused,
        };
        self.publish(&table);
        drop(table);
        // Relaxed: statistics.
        if let Some(victim) = evicted {
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
            victim.signal(Signal::Evict);
        } else if !matches!(admit, Admit::Admitted(..)) {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        }
        admit
    }

    /// Out of file descriptors: closes the connection that has waited longest without a
    /// request in flight, if any, so that the next accept can succeed. Returns whether one was
    /// told to close.
    pub(crate) fn evict_one(&self) -> bool {
        let table = self.lock();
        let Some(activity) = victim(&table).and_then(|i| table.slots[i].clone()) else { return false };
        drop(table);
        // Relaxed: a statistic.
        self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        activity.signal(Signal::Evict);
        true
    }

    fn publish(&self, table: &Table) {
        // Relaxed: statistics, written under the table's lock.
        self.stats.open.store(table.open, Ordering::Relaxed);
        self.stats.tasks.store(table.tasks, Ordering::Relaxed);
    }

    /// Sends `signal` to every open connection.
    pub(crate) fn signal_all(&self, signal: Signal) {
        let open: Vec<Arc<Activity>> = self.lock().slots.iter().flatten().cloned().collect();
        for activity in open {
            activity.signal(signal);
        }
    }

    /// Ready once no connection task is left.
    pub(crate) fn poll_drained(&self, cx: &Context<'_>) -> Poll<()> {
        let mut table = self.lock();
        if table.tasks == 0 {
            return Poll::Ready(());
        }
        table.drained = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Open connections (for tests).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open
    }
}

/// The slot of the connection that has waited longest without a request in flight: an idle
/// keep-alive one first, else one still receiving its head.
fn victim(table: &Table) -> Option<usize> {
    table.slots.iter().enumerate().filter_map(|(i, a)| Some((a.as_ref()?.waiting()?, i))).min().map(|(_, i)| i)
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = self.admission.lock();
        if let Some((i, activity)) = self.slot.take() {
            // An evicted connection's slot already holds its successor.
            if table.slots[i].as_ref().is_some_and(|a| Arc::ptr_eq(a, &activity)) {
                table.slots[i] = None;
                table.free.push(i);
                table.open -= 1;
            }
        }
        table.tasks -= 1;
        if self.rejecting {
            table.rejecting -= 1;
        }
        self.admission.publish(&table);
        let drained = if table.tasks == 0 { table.drained.take() } else { None };
        drop(table);
        if let Some(waker) = drained {
            waker.wake();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::server::watchdog::Waiting;

    fn admission(cap: usize) -> (Arc<Admission>, Arc<ConnectionStats>) {
        let mut limits = Limits::DEFAULT;
        limits.max_connections = cap;
        let stats = Arc::new(ConnectionStats::default());
        (Admission::new(limits, Arc::clone(&stats)), stats)
    }

    fn admitted(admit: Admit) -> (Ticket, Arc<Activity>) {
        match admit {
            Admit::Admitted(ticket, activity) => (ticket, activity),
            other => panic!("not admitted: {other:?}"),
        }
    }

    /// The signal `activity` received.
    fn signal(activity: &Activity) -> Option<Signal> {
        activity.poll(&Context::from_waker(Waker::noop())).1
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_gives_way_then_the_longest_receiving_a_head() {
        let (admission, stats) = admission(3);
        let (t1, a1) = admitted(admission.admit());
        let (_t2, a2) = admitted(admission.admit());
        let (_t3, a3) = admitted(admission.admit());
        assert_eq!((stats.open(), stats.tasks()), (3, 3));
        // a1 and a3 go idle after a request, a3 first; a2 is still receiving its first head.
        drop(a3.begin());
        std::thread::sleep(core::time::Duration::from_millis(2));
        drop(a1.begin());
        assert!(matches!(a2.waiting(), Some(Waiting::Head(_))));

        let (_t4, a4) = admitted(admission.admit());
        assert_eq!(signal(&a3), Some(Signal::Evict), "the longest idle goes first");
        assert_eq!((signal(&a1), signal(&a2)), (None, None));
        assert_eq!((stats.open(), stats.tasks(), stats.evicted()), (3, 4, 1));

        let _busy = a4.begin();
        let (_t5, _a5) = admitted(admission.admit());
        assert_eq!(signal(&a1), Some(Signal::Evict), "then the other idle one");
        let (_t6, _a6) = admitted(admission.admit());
        assert_eq!(signal(&a2), Some(Signal::Evict), "then the one receiving a head");
        assert_eq!(admission.open(), 3);
        // An evicted connection's task ending frees no slot: its successor holds it.
        drop(t1);
        assert_eq!((stats.open(), stats.tasks()), (3, 5));
    }

    #[test]
    fn when_every_connection_is_busy_new_ones_are_rejected_boundedly_and_drain_waits_for_all() {
        let (admission, stats) = admission(1);
        let (ticket, activity) = admitted(admission.admit());
        let _busy = activity.begin();
        let mut rejected = Vec::new();
        for _ in 0..MAX_REJECTING {
            match admission.admit() {
                Admit::Rejected(t) => rejected.push(t),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(admission.admit(), Admit::Refused), "at most MAX_REJECTING answers under way");
        assert_eq!(stats.rejected(), MAX_REJECTING as u64 + 1);
        assert_eq!((stats.open(), stats.tasks()), (1, 1 + MAX_REJECTING));

        admission.signal_all(Signal::Stop);
        assert_eq!(signal(&activity), Some(Signal::Stop));
        let cx = Context::from_waker(Waker::noop());
        assert!(admission.poll_drained(&cx).is_pending());
        drop(rejected);
        assert!(admission.poll_drained(&cx).is_pending(), "the open connection is left");
        drop(ticket);
        assert!(admission.poll_drained(&cx).is_ready());
        assert_eq!((stats.open(), stats.tasks()), (0, 0));
        let (_t, _a) = admitted(admission.admit());
        assert_eq!(admission.open(), 1, "freed slots are reused");
    }

    #[test]
    fn out_of_descriptors_the_longest_idle_connection_is_closed() {
        let (admission, stats) = admission(8);
        assert!(!admission.evict_one(), "nothing to close");
        let (_t1, a1) = admitted(admission.admit());
        let (_t2, a2) = admitted(admission.admit());
        let _busy = a2.begin();
        assert!(admission.evict_one());
        assert_eq!((signal(&a1), signal(&a2)), (Some(Signal::Evict), None));
        assert_eq!(stats.evicted(), 1);
    }
}
