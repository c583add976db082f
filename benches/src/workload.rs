//! The encode workloads, built the same way on diag and on each peer crate.
//!
//! A workload is `families` counter families `app_requests_{f}_total` and as many gauge
//! families `app_inflight_{f}`, each with `series` values of the label `shard`, plus
//! `histograms` histogram families `app_latency_{f}_seconds` with `series` series each, over
//! the default buckets. Every crate gets the same names, help texts, label values and sample
//! values, so their outputs differ only in formatting.

use std::io::Write as _;

use diag_core::{Counter, DEFAULT_BUCKETS, Family, Format, Gauge, Histogram, Registry, Scrape};
use metrics::Recorder as _;

/// The size of an encode workload.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// The workload's name in reports.
    pub name: &'static str,
    /// Counter families, and as many gauge families.
    pub families: usize,
    /// Series per family (values of the label `shard`).
    pub series: usize,
    /// Histogram families.
    pub histograms: usize,
}

/// 50 + 50 families × 4 series, 10 histogram families × 4.
pub const SMALL: Shape = Shape { name: "small", families: 50, series: 4, histograms: 10 };
/// 500 + 500 families × 20 series, 100 histogram families × 20.
pub const LARGE: Shape = Shape { name: "large", families: 500, series: 20, histograms: 100 };

/// The most series per family in any shape (diag families have a fixed capacity).
pub const MAX_SERIES: usize = 20;
/// Registry capacity for the largest shape.
pub const MAX_ENTRIES: usize = 1104;

/// Observations fed to every histogram series: they spread over the default buckets.
pub const OBSERVATIONS: [f64; 8] = [0.003, 0.008, 0.02, 0.07, 0.2, 0.7, 3.0, 12.0];

/// A diag counter family sized for every shape.
pub type DiagCounters = Family<Counter, (usize,), MAX_SERIES>;
/// A diag gauge family sized for every shape.
pub type DiagGauges = Family<Gauge, (usize,), MAX_SERIES>;
/// A diag histogram family sized for every shape.
pub type DiagHistograms = Family<Histogram<11>, (usize,), MAX_SERIES>;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn counter_name(f: usize) -> String {
    format!("app_requests_{f}_total")
}
fn counter_help(f: usize) -> String {
    format!("Requests handled by route group {f}.")
}
fn gauge_name(f: usize) -> String {
    format!("app_inflight_{f}")
}
fn gauge_help(f: usize) -> String {
    format!("Requests in flight in route group {f}.")
}
fn histogram_name(f: usize) -> String {
    format!("app_latency_{f}_seconds")
}
fn histogram_help(f: usize) -> String {
    format!("Latency of route group {f}.")
}
fn shard(s: usize) -> &'static str {
    leak(s.to_string())
}
fn counter_value(f: usize, s: usize) -> u64 {
    (f as u64 * 7919 + s as u64 * 104_729) % 1_000_000
}
fn gauge_value(f: usize, s: usize) -> i64 {
    ((f * 31 + s * 17) % 500) as i64
}

/// The workload on diag: a [`Registry`] of [`Family`] entries.
pub struct Diag {
    registry: &'static Registry<'static, MAX_ENTRIES>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diag").finish_non_exhaustive()
    }
}

impl Diag {
    /// Builds and fills the workload (leaking it: benches build a handful).
    ///
    /// # Panics
    /// If the registry refuses an entry, which would be a bug in the workload.
    pub fn new(shape: Shape) -> Self {
        let registry: &'static Registry<'static, MAX_ENTRIES> = Box::leak(Box::new(Registry::new()));
        for f in 0..shape.families {
            let fam: &'static DiagCounters = Box::leak(Box::new(Family::new(["shard"], ())));
            for s in 0..shape.series {
                fam.get_or_create((s,)).expect("capacity").inc_by(counter_value(f, s));
            }
            registry.register(leak(counter_name(f)), leak(counter_help(f)), fam).expect("register");
        }
        for f in 0..shape.families {
            let fam: &'static DiagGauges = Box::leak(Box::new(Family::new(["shard"], ())));
            for s in 0..shape.series {
                fam.get_or_create((s,)).expect("capacity").set(gauge_value(f, s));
            }
            registry.register(leak(gauge_name(f)), leak(gauge_help(f)), fam).expect("register");
        }
        for f in 0..shape.histograms {
            let fam: &'static DiagHistograms = Box::leak(Box::new(Family::new(["shard"], &DEFAULT_BUCKETS)));
            for s in 0..shape.series {
                let h = fam.get_or_create((s,)).expect("capacity");
                OBSERVATIONS.iter().for_each(|v| h.observe(*v));
            }
            registry.register(leak(histogram_name(f)), leak(histogram_help(f)), fam).expect("register");
        }
        Self { registry, buf: vec![0; 8 << 20] }
    }

    /// Encodes the whole exposition into the reused buffer; returns its length.
    ///
    /// # Panics
    /// If the buffer is too small for the workload.
    pub fn encode(&mut self) -> usize {
        let mut scrape = Scrape::new(Format::Prometheus, self.registry);
        let mut len = 0;
        loop {
            match scrape.fill(&mut self.buf[len..]).expect("buffer holds the workload") {
                0 => return len,
                n => len += n,
            }
        }
    }

    /// The registry, to serve it.
    pub fn registry(&self) -> &'static Registry<'static, MAX_ENTRIES> {
        self.registry
    }

    /// The last encoded output.
    pub fn output(&self, len: usize) -> &[u8] {
        &self.buf[..len]
    }
}

/// The workload on `prometheus` 0.14: vectors in a registry, gathered and text-encoded.
pub struct Prometheus {
    registry: prometheus::Registry,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus").finish_non_exhaustive()
    }
}

impl Prometheus {
    /// Builds and fills the workload.
    ///
    /// # Panics
    /// If `prometheus` refuses a family, which would be a bug in the workload.
    pub fn new(shape: Shape) -> Self {
        use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};
        let registry = prometheus::Registry::new();
        for f in 0..shape.families {
            let v = IntCounterVec::new(Opts::new(counter_name(f), counter_help(f)), &["shard"]).expect("opts");
            for s in 0..shape.series {
                v.with_label_values(&[shard(s)]).inc_by(counter_value(f, s));
            }
            registry.register(Box::new(v)).expect("register");
        }
        for f in 0..shape.families {
            let v = IntGaugeVec::new(Opts::new(gauge_name(f), gauge_help(f)), &["shard"]).expect("opts");
            for s in 0..shape.series {
                v.with_label_values(&[shard(s)]).set(gauge_value(f, s));
            }
            registry.register(Box::new(v)).expect("register");
        }
        for f in 0..shape.histograms {
            let v =
                HistogramVec::new(HistogramOpts::new(histogram_name(f), histogram_help(f)), &["shard"]).expect("opts");
            for s in 0..shape.series {
                let h = v.with_label_values(&[shard(s)]);
                OBSERVATIONS.iter().for_each(|x| h.observe(*x));
            }
            registry.register(Box::new(v)).expect("register");
        }
        Self { registry, buf: Vec::with_capacity(8 << 20) }
    }

    /// The registry, to gather it another way (the remote write baseline).
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// Gathers and encodes into the reused buffer; returns its length.
    ///
    /// # Panics
    /// If encoding fails.
    pub fn encode(&mut self) -> usize {
        use prometheus::Encoder as _;
        self.buf.clear();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut self.buf).expect("encode");
        self.buf.len()
    }

    /// The last encoded output.
    pub fn output(&self) -> &[u8] {
        &self.buf
    }
}

/// Label set of the `prometheus-client` workload.
pub type ShardLabel = [(&'static str, &'static str); 1];

/// The workload on `prometheus-client` 0.25: families in a registry, text-encoded.
pub struct PromClient {
    registry: prometheus_client::registry::Registry,
    buf: String,
}

impl std::fmt::Debug for PromClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromClient").finish_non_exhaustive()
    }
}

/// A `prometheus-client` histogram over the default buckets.
pub fn prom_client_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(DEFAULT_BUCKETS)
}

impl PromClient {
    /// Builds and fills the workload.
    pub fn new(shape: Shape) -> Self {
        use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
        let mut registry = prometheus_client::registry::Registry::default();
        for f in 0..shape.families {
            let fam = Family::<ShardLabel, Counter>::default();
            for s in 0..shape.series {
                fam.get_or_create(&[("shard", shard(s))]).inc_by(counter_value(f, s));
            }
            // prometheus-client appends `_total` to counter names itself.
            registry.register(format!("app_requests_{f}"), counter_help(f), fam);
        }
        for f in 0..shape.families {
            let fam = Family::<ShardLabel, Gauge>::default();
            for s in 0..shape.series {
                fam.get_or_create(&[("shard", shard(s))]).set(gauge_value(f, s));
            }
            registry.register(gauge_name(f), gauge_help(f), fam);
        }
        for f in 0..shape.histograms {
            let fam = Family::<ShardLabel, Histogram, fn() -> Histogram>::new_with_constructor(prom_client_histogram);
            for s in 0..shape.series {
                let h = fam.get_or_create(&[("shard", shard(s))]);
                OBSERVATIONS.iter().for_each(|x| h.observe(*x));
            }
            registry.register(histogram_name(f), histogram_help(f), fam);
        }
        Self { registry, buf: String::with_capacity(8 << 20) }
    }

    /// Encodes into the reused buffer; returns its length.
    ///
    /// # Panics
    /// If encoding fails.
    pub fn encode(&mut self) -> usize {
        self.buf.clear();
        prometheus_client::encoding::text::encode(&mut self.buf, &self.registry).expect("encode");
        self.buf.len()
    }

    /// The registry, to serve it.
    pub fn into_registry(self) -> prometheus_client::registry::Registry {
        self.registry
    }

    /// The last encoded output.
    pub fn output(&self) -> &[u8] {
        self.buf.as_bytes()
    }
}

/// The workload on `metrics` 0.24 with `metrics-exporter-prometheus` 0.18.
pub struct Metrics {
    handle: metrics_exporter_prometheus::PrometheusHandle,
    _recorder: metrics_exporter_prometheus::PrometheusRecorder,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A `metrics-exporter-prometheus` recorder that renders histograms over the default buckets.
///
/// # Panics
/// If the exporter refuses the buckets.
pub fn metrics_recorder() -> metrics_exporter_prometheus::PrometheusRecorder {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&DEFAULT_BUCKETS)
        .expect("buckets")
        .build_recorder()
}

/// The key of a `metrics` series with label `shard`.
pub fn metrics_key(name: String, shard: &'static str) -> metrics::Key {
    metrics::Key::from_parts(name, vec![metrics::Label::new("shard", shard)])
}

/// Metadata for registering `metrics` series.
pub static METRICS_META: metrics::Metadata<'static> =
    metrics::Metadata::new("diag_benches", metrics::Level::INFO, Some("diag_benches"));

impl Metrics {
    /// Builds and fills the workload.
    pub fn new(shape: Shape) -> Self {
        let recorder = metrics_recorder();
        for f in 0..shape.families {
            recorder.describe_counter(counter_name(f).into(), None, counter_help(f).into());
            for s in 0..shape.series {
                recorder
                    .register_counter(&metrics_key(counter_name(f), shard(s)), &METRICS_META)
                    .absolute(counter_value(f, s));
            }
        }
        for f in 0..shape.families {
            recorder.describe_gauge(gauge_name(f).into(), None, gauge_help(f).into());
            for s in 0..shape.series {
                recorder
                    .register_gauge(&metrics_key(gauge_name(f), shard(s)), &METRICS_META)
                    .set(gauge_value(f, s) as f64);
            }
        }
        for f in 0..shape.histograms {
            recorder.describe_histogram(histogram_name(f).into(), None, histogram_help(f).into());
            for s in 0..shape.series {
                let h = recorder.register_histogram(&metrics_key(histogram_name(f), shard(s)), &METRICS_META);
                OBSERVATIONS.iter().for_each(|x| h.record(*x));
            }
        }
        Self { handle: recorder.handle(), _recorder: recorder, buf: Vec::with_capacity(8 << 20) }
    }

    /// Renders into the reused buffer; returns its length.
    ///
    /// # Panics
    /// If rendering fails.
    pub fn encode(&mut self) -> usize {
        self.buf.clear();
        self.handle.render_to_write(&mut self.buf).expect("render");
        let _ = self.buf.flush();
        self.buf.len()
    }

    /// The last encoded output.
    pub fn output(&self) -> &[u8] {
        &self.buf
    }
}
