//! [`Metrics`]: the remote write sender's own families in `/metrics` (and in its pushes),
//! listed in docs/metrics.md#remote-write-the-sender. Every series is present from the start, at 0.

use std::sync::atomic::{AtomicU64, Ordering};

use diag_core::{Collect, Counter, Desc, Encoder, Gauge, Labels, MetricType, Stop, Value};

const PUSHES: Desc<'static> = Desc {
    name: "diag_remote_write_pushes_total",
    help: "Times the metrics were read into remote write requests (a push carries its own number).",
    metric_type: MetricType::Counter,
};
const REQUESTS: Desc<'static> = Desc {
    name: "diag_remote_write_requests_total",
    help: "Remote write attempts by result: sent (2xx), failed (kept and retried: no connection, timeout, 429, 5xx), rejected (other status: dropped).",
    metric_type: MetricType::Counter,
};
const SENT_SAMPLES: Desc<'static> = Desc {
    name: "diag_remote_write_sent_samples_total",
    help: "Samples the remote write receiver accepted.",
    metric_type: MetricType::Counter,
};
const DROPPED_SAMPLES: Desc<'static> = Desc {
    name: "diag_remote_write_dropped_samples_total",
    help: "Samples never sent, by reason: queue_full (the oldest request made room), rejected (a 4xx answer), encoding (a series too large for a request).",
    metric_type: MetricType::Counter,
};
const QUEUE_LENGTH: Desc<'static> = Desc {
    name: "diag_remote_write_queue_length",
    help: "Remote write requests waiting to be sent, the one being sent included.",
    metric_type: MetricType::Gauge,
};
const QUEUE_CAPACITY: Desc<'static> = Desc {
    name: "diag_remote_write_queue_capacity",
    help: "The most remote write requests kept waiting (remote_write.queue_size).",
    metric_type: MetricType::Gauge,
};
const LAST_SUCCESS: Desc<'static> = Desc {
    name: "diag_remote_write_last_success_timestamp_seconds",
    help: "When a remote write request was last accepted, in Unix seconds (0: never).",
    metric_type: MetricType::Gauge,
};

/// Results of an attempt, as labelled.
const RESULTS: [&str; 3] = ["sent", "failed", "rejected"];
/// Reasons of a drop, as labelled.
const REASONS: [&str; 3] = ["queue_full", "rejected", "encoding"];

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Accepted (2xx).
    Sent = 0,
    /// No answer in time, or 429/5xx: retried.
    Failed = 1,
    /// Any other status: dropped.
    Rejected = 2,
}

/// Why samples were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// The queue was full: the oldest request made room.
    QueueFull = 0,
    /// The receiver answered a status not worth a retry.
    Rejected = 1,
    /// A series did not fit a request.
    Encoding = 2,
}

/// The sender's counters and gauges.
#[derive(Debug)]
pub(crate) struct Metrics {
    pushes: Counter,
    requests: [Counter; 3],
    sent_samples: Counter,
    dropped_samples: [Counter; 3],
    queue_length: Gauge,
    queue_capacity: Gauge,
    /// Milliseconds since the Unix epoch, 0 for never.
    last_success_ms: AtomicU64,
}

impl Metrics {
    /// All at 0, with `capacity` requests of queue.
    pub(crate) fn new(capacity: usize) -> Self {
        let queue_capacity = Gauge::new();
        queue_capacity.set(i64::try_from(capacity).unwrap_or(i64::MAX));
        Self {
            pushes: Counter::new(),
            requests: [Counter::new(), Counter::new(), Counter::new()],
            sent_samples: Counter::new(),
            dropped_samples: [Counter::new(), Counter::new(), Counter::new()],
            queue_length: Gauge::new(),
            queue_capacity,
            last_success_ms: AtomicU64::new(0),
        }
    }

    /// One more push begins.
    pub(crate) fn push(&self) {
        self.pushes.inc();
    }

    /// An attempt ended as `result`, with `samples` in its request; a success is stamped
    /// `now_ms`.
    pub(crate) fn attempt(&self, result: Attempt, samples: u64, now_ms: u64) {
        self.requests[result as usize].inc();
        if result == Attempt::Sent {
            self.sent_samples.inc_by(samples);
            // Relaxed: a gauge read on its own, ordered with nothing else.
            self.last_success_ms.fetch_max(now_ms, Ordering::Relaxed);
        }
    }

    /// `samples` were dropped for `reason`.
    pub(crate) fn dropped(&self, reason: Dropped, samples: u64) {
        self.dropped_samples[reason as usize].inc_by(samples);
    }

    /// The queue holds `len` requests.
    pub(crate) fn queue_length(&self, len: usize) {
        self.queue_length.set(i64::try_from(len).unwrap_or(i64::MAX));
    }
}

impl Collect for Metrics {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.entry(0, |enc| {
            enc.header(&PUSHES)?;
            enc.sample(&PUSHES, &Labels::EMPTY, Value::U64(self.pushes.get()))
        })?;
        enc.entry(1, |enc| {
            enc.header(&REQUESTS)?;
            for (result, counter) in RESULTS.iter().zip(&self.requests) {
                enc.sample(&REQUESTS, &Labels::new(&["result"], &[result]), Value::U64(counter.get()))?;
            }
            Ok(())
        })?;
        enc.entry(2, |enc| {
            enc.header(&SENT_SAMPLES)?;
            enc.sample(&SENT_SAMPLES, &Labels::EMPTY, Value::U64(self.sent_samples.get()))
        })?;
        enc.entry(3, |enc| {
            enc.header(&DROPPED_SAMPLES)?;
            for (reason, counter) in REASONS.iter().zip(&self.dropped_samples) {
                enc.sample(&DROPPED_SAMPLES, &Labels::new(&["reason"], &[reason]), Value::U64(counter.get()))?;
            }
            Ok(())
        })?;
        enc.entry(4, |enc| {
            enc.header(&QUEUE_LENGTH)?;
            enc.sample(&QUEUE_LENGTH, &Labels::EMPTY, Value::I64(self.queue_length.get()))
        })?;
        enc.entry(5, |enc| {
            enc.header(&QUEUE_CAPACITY)?;
            enc.sample(&QUEUE_CAPACITY, &Labels::EMPTY, Value::I64(self.queue_capacity.get()))
        })?;
        enc.entry(6, |enc| {
            enc.header(&LAST_SUCCESS)?;
            // Relaxed: see `attempt`.
            let ms = self.last_success_ms.load(Ordering::Relaxed);
            enc.sample(&LAST_SUCCESS, &Labels::EMPTY, Value::F64(ms as f64 / 1000.0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_from_the_start_then_counted() {
        let m = Metrics::new(5);
        let text = |m: &Metrics| {
            let mut buf = vec![0u8; 8192];
            let mut scrape = diag_core::Scrape::new(diag_core::Format::Prometheus, m);
            let n = scrape.fill(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        let t = text(&m);
        for line in [
            "diag_remote_write_pushes_total 0\n",
            "diag_remote_write_requests_total{result=\"sent\"} 0\n",
            "diag_remote_write_requests_total{result=\"rejected\"} 0\n",
            "diag_remote_write_dropped_samples_total{reason=\"queue_full\"} 0\n",
            "diag_remote_write_queue_length 0\n",
            "diag_remote_write_queue_capacity 5\n",
            "diag_remote_write_last_success_timestamp_seconds 0",
        ] {
            assert!(t.contains(line), "{line:?} in\n{t}");
        }
        m.push();
        m.attempt(Attempt::Failed, 7, 1_000);
        m.attempt(Attempt::Sent, 7, 1_700_000_000_500);
        m.dropped(Dropped::QueueFull, 3);
        m.queue_length(2);
        let t = text(&m);
        for line in [
            "diag_remote_write_pushes_total 1\n",
            "diag_remote_write_requests_total{result=\"sent\"} 1\n",
            "diag_remote_write_requests_total{result=\"failed\"} 1\n",
            "diag_remote_write_sent_samples_total 7\n",
            "diag_remote_write_dropped_samples_total{reason=\"queue_full\"} 3\n",
            "diag_remote_write_queue_length 2\n",
            "diag_remote_write_last_success_timestamp_seconds 1700000000.5\n",
        ] {
            assert!(t.contains(line), "{line:?} in\n{t}");
        }
    }
}
