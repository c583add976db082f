//! [`SmolMetrics`]: gauges of a diag-smol server, named and shaped like diag-tokio's
//! `TokioMetrics`.
//!
//! smol, async-executor, async-global-executor and async-std expose no counts of their own
//! (tasks, threads, queues), so these come from the server: the tasks it has alive, the
//! connections it has open, and the threads its connections run on where the server knows
//! them ([`Server::serve`](crate::Server::serve) runs them on the one thread that polls it;
//! with [`serve_spawning`](crate::Server::serve_spawning) they run wherever the caller's spawn
//! puts them, and the gauge is left out).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diag_core::server::ConnectionStats;
use diag_core::{Collect, Desc, Encoder, Labels, MetricType, Stop, Value};

const ALIVE_TASKS: Desc<'static> = Desc {
    name: "diag_smol_alive_tasks",
    help: "Number of tasks the diag-smol server has alive: one per connection, open or closing.",
    metric_type: MetricType::Gauge,
};
const OPEN_CONNECTIONS: Desc<'static> = Desc {
    name: "diag_smol_open_connections",
    help: "Number of connections the diag-smol server has open, counted against its cap.",
    metric_type: MetricType::Gauge,
};
const EXECUTOR_THREADS: Desc<'static> = Desc {
    name: "diag_smol_executor_threads",
    help: "Number of threads running the diag-smol server's connection tasks.",
    metric_type: MetricType::Gauge,
};

/// The `diag_smol_*` gauges of the servers linked to it with
/// [`Server::with_metrics`](crate::Server::with_metrics): alive tasks, open connections and,
/// while [`Server::serve`](crate::Server::serve) runs, executor threads (1). Cheap to clone;
/// clones report the same counts.
///
/// | gauge | what |
/// |---|---|
/// | `diag_smol_alive_tasks` | tasks the server has alive: one per connection, open or still closing |
/// | `diag_smol_open_connections` | connections open, counted against `max_connections` |
/// | `diag_smol_executor_threads` | threads running the connection tasks; only with `serve` (1) |
///
/// # Examples
/// ```
/// use diag_core::{Format, Scrape};
/// let metrics = diag_smol::SmolMetrics::new();
/// let mut buf = [0u8; 1024];
/// let n = Scrape::new(Format::Prometheus, &metrics).fill(&mut buf).unwrap();
/// let text = std::str::from_utf8(&buf[..n]).unwrap();
/// assert!(text.contains("diag_smol_alive_tasks 0\n") && text.contains("diag_smol_open_connections 0\n"));
/// assert!(!text.contains("diag_smol_executor_threads"), "no server is running");
/// ```
#[derive(Debug, Clone, Default)]
pub struct SmolMetrics {
    stats: Arc<ConnectionStats>,
    /// Servers running with `serve`, each on one thread.
    threads: Arc<AtomicUsize>,
}

impl SmolMetrics {
    /// Gauges at zero, to link to a server with [`Server::with_metrics`](crate::Server::with_metrics).
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn stats(&self) -> &Arc<ConnectionStats> {
        &self.stats
    }

    /// Counts one thread running connection tasks until the guard is dropped.
    pub(crate) fn running_on_one_thread(&self) -> Running {
        // Relaxed: a statistic, read on its own.
        self.threads.fetch_add(1, Ordering::Relaxed);
        Running(Arc::clone(&self.threads))
    }
}

/// A thread counted in `diag_smol_executor_threads`.
#[derive(Debug)]
pub(crate) struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        // Relaxed: see `running_on_one_thread`.
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn gauge(enc: &mut Encoder<'_>, desc: &Desc<'_>, value: usize) -> Result<(), Stop> {
    enc.header(desc)?;
    enc.sample(desc, &Labels::EMPTY, Value::I64(i64::try_from(value).unwrap_or(i64::MAX)))
}

impl Collect for SmolMetrics {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.entry(0, |enc| gauge(enc, &ALIVE_TASKS, self.stats.tasks()))?;
        enc.entry(1, |enc| gauge(enc, &OPEN_CONNECTIONS, self.stats.open()))?;
        // Relaxed: a statistic.
        let threads = self.threads.load(Ordering::Relaxed);
        enc.entry(2, |enc| if threads > 0 { gauge(enc, &EXECUTOR_THREADS, threads) } else { Ok(()) })
    }
}
