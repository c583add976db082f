//! Remote write 1.0 requests (snappy-compressed `WriteRequest`s) of the encode workloads:
//! diag's core (`remote_write::Push` into fixed buffers, split at series boundaries, and its
//! own snappy) against what a std service does with the `prometheus` crate: `gather()`, prost
//! `WriteRequest` messages built from the families (labels as `String`s), `encode_to_vec`,
//! then `snap`'s block compressor. Both carry the same series with `job` and `instance`
//! external labels. Times are the encoding thread's CPU time; the bytes and allocations of one
//! push are printed.
//!
//! `cargo bench -p diag-benches --bench remote_write -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::Criterion;
use diag_benches::alloc::CountingAlloc;
use diag_benches::hot::cpu_timed;
use diag_benches::workload::{self, LARGE, SMALL, Shape};
use diag_core::Collect;
use diag_core::remote_write::Push;
use diag_core::snappy::{Compressor, max_compressed_len};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// The sender's buffers in diag (`diag::push`): exposition text a chunk at a time, and one
/// uncompressed request.
const TEXT: usize = 32 * 1024;
const REQUEST: usize = 128 * 1024;
const EXTERNAL: [(&str, &str); 2] = [("instance", "bench-1"), ("job", "bench")];
const TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// `prometheus.WriteRequest` as prost messages, the baseline's model.
#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

/// One series of the baseline: name, its own labels plus `extra`, the external labels, sorted.
fn series(name: String, own: &[prometheus::proto::LabelPair], extra: Option<(&str, String)>, value: f64) -> TimeSeries {
    let mut labels = vec![Label { name: "__name__".into(), value: name }];
    labels.extend(own.iter().map(|l| Label { name: l.name().to_owned(), value: l.value().to_owned() }));
    labels.extend(extra.map(|(n, v)| Label { name: n.to_owned(), value: v }));
    labels.extend(EXTERNAL.iter().map(|(n, v)| Label { name: (*n).to_owned(), value: (*v).to_owned() }));
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries { labels, samples: vec![Sample { value, timestamp: TIMESTAMP_MS }] }
}

/// The baseline push: gather, build, encode, compress; returns the compressed bytes and the
/// series.
fn baseline(registry: &prometheus::Registry, snap: &mut snap::raw::Encoder) -> (usize, usize) {
    use prometheus::proto::MetricType;
    let mut timeseries = Vec::new();
    for family in registry.gather() {
        let name = family.name();
        for m in family.get_metric() {
            let own = m.get_label();
            match family.get_field_type() {
                MetricType::COUNTER => timeseries.push(series(name.into(), own, None, m.get_counter().get_value())),
                MetricType::GAUGE => timeseries.push(series(name.into(), own, None, m.get_gauge().get_value())),
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    for b in h.get_bucket() {
                        let le = Some(("le", b.upper_bound().to_string()));
                        timeseries.push(series(format!("{name}_bucket"), own, le, b.cumulative_count() as f64));
                    }
                    let count = h.get_sample_count() as f64;
                    timeseries.push(series(format!("{name}_bucket"), own, Some(("le", "+Inf".into())), count));
                    timeseries.push(series(format!("{name}_sum"), own, None, h.get_sample_sum()));
                    timeseries.push(series(format!("{name}_count"), own, None, count));
                }
                other => panic!("the workload has no {other:?}"),
            }
        }
    }
    let n = timeseries.len();
    let raw = prost::Message::encode_to_vec(&WriteRequest { timeseries });
    (snap.compress_vec(&raw).expect("compress").len(), n)
}

/// diag's buffers and compressor, made once as the sender makes them.
struct DiagPush {
    text: Vec<u8>,
    request: Vec<u8>,
    wire: Vec<u8>,
    snappy: Box<Compressor>,
}

impl DiagPush {
    fn new() -> Self {
        Self {
            text: vec![0; TEXT],
            request: vec![0; REQUEST],
            wire: vec![0; max_compressed_len(REQUEST)],
            snappy: Box::new(Compressor::new()),
        }
    }

    /// One push of `sources`: every request built and compressed; returns the compressed bytes
    /// and the requests.
    fn push(&mut self, sources: &[&dyn Collect; 1]) -> (usize, usize) {
        let mut push = Push::new(sources, &EXTERNAL, TIMESTAMP_MS, &mut self.text);
        let (mut bytes, mut requests) = (0, 0);
        while let Some(len) = push.next_request(&mut self.request).expect("every series fits") {
            let n = self.snappy.compress(&self.request[..len], &mut self.wire).expect("room");
            bytes += black_box(&self.wire[..n]).len();
            requests += 1;
        }
        (bytes, requests)
    }
}

fn group(c: &mut Criterion, shape: Shape) {
    let diag = workload::Diag::new(shape);
    let registry = diag.registry();
    let sources: [&dyn Collect; 1] = [registry];
    let mut push = DiagPush::new();
    let prom = workload::Prometheus::new(shape);
    let mut snap = snap::raw::Encoder::new();

    push.push(&sources);
    ALLOC.start();
    let (bytes, requests) = black_box(push.push(&sources));
    let allocations = ALLOC.stop();
    println!(
        "remote_write_{} diag: {bytes} bytes in {requests} requests, {allocations} allocations per push",
        shape.name
    );
    baseline(prom.registry(), &mut snap);
    ALLOC.start();
    let (bytes, series) = black_box(baseline(prom.registry(), &mut snap));
    let allocations = ALLOC.stop();
    println!(
        "remote_write_{} prost_snap: {bytes} bytes in 1 request of {series} series, {allocations} allocations per push",
        shape.name
    );

    let mut g = c.benchmark_group(format!("remote_write_{}", shape.name));
    g.bench_function("diag", |b| {
        b.iter_custom(|iters| {
            cpu_timed(|| {
                for _ in 0..iters {
                    black_box(push.push(&sources));
                }
            })
        })
    });
    g.bench_function("prost_snap", |b| {
        b.iter_custom(|iters| {
            cpu_timed(|| {
                for _ in 0..iters {
                    black_box(baseline(prom.registry(), &mut snap));
                }
            })
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    group(&mut c, SMALL);
    group(&mut c, LARGE);
    c.final_summary();
}
