//! [`TokioMetrics`]: gauges of a tokio runtime from its stable `RuntimeMetrics`.

use diag_core::{Collect, Desc, Encoder, Labels, MetricType, Stop, Value};
use tokio::runtime::{Handle, RuntimeMetrics};

const WORKERS: Desc<'static> = Desc {
    name: "tokio_runtime_workers",
    help: "Number of worker threads of the tokio runtime.",
    metric_type: MetricType::Gauge,
};
const ALIVE_TASKS: Desc<'static> = Desc {
    name: "tokio_runtime_alive_tasks",
    help: "Number of tasks alive in the tokio runtime.",
    metric_type: MetricType::Gauge,
};
const GLOBAL_QUEUE: Desc<'static> = Desc {
    name: "tokio_runtime_global_queue_depth",
    help: "Number of tasks in the tokio runtime's global queue.",
    metric_type: MetricType::Gauge,
};

/// The `tokio_runtime_*` gauges of one runtime: workers, alive tasks, global queue depth.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use diag_core::{Format, Scrape};
/// let metrics = diag_tokio::TokioMetrics::current();
/// let mut buf = [0u8; 1024];
/// let n = Scrape::new(Format::Prometheus, &metrics).fill(&mut buf).unwrap();
/// assert!(std::str::from_utf8(&buf[..n]).unwrap().contains("tokio_runtime_workers 1\n"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TokioMetrics {
    metrics: RuntimeMetrics,
}

impl TokioMetrics {
    /// The gauges of the runtime behind `handle`.
    pub fn new(handle: &Handle) -> Self {
        Self { metrics: handle.metrics() }
    }

    /// The gauges of the runtime this is called from.
    ///
    /// # Panics
    /// Outside a tokio runtime, like [`Handle::current`].
    pub fn current() -> Self {
        Self::new(&Handle::current())
    }
}

fn gauge(enc: &mut Encoder<'_>, desc: &Desc<'_>, value: usize) -> Result<(), Stop> {
    enc.header(desc)?;
    enc.sample(desc, &Labels::EMPTY, Value::I64(i64::try_from(value).unwrap_or(i64::MAX)))
}

impl Collect for TokioMetrics {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        let m = &self.metrics;
        enc.entry(0, |enc| gauge(enc, &WORKERS, m.num_workers()))?;
        enc.entry(1, |enc| gauge(enc, &ALIVE_TASKS, m.num_alive_tasks()))?;
        enc.entry(2, |enc| gauge(enc, &GLOBAL_QUEUE, m.global_queue_depth()))
    }
}
