//! The `metrics` facade: diag-recorder against metrics-exporter-prometheus 0.18, in the same run.
//!
//! - `recorder_update/handle`: `increment(1)` on a kept `metrics::Counter` handle.
//! - `recorder_update/macro`: `counter!("…", "shard" => label).increment(1)` with a runtime
//!   label, through `with_local_recorder` (the macro looks the series up on every call).
//! - `recorder_scrape/1k`: the whole 0.0.4 exposition of 1,000 series (10 counter families of
//!   100 label values each): diag encoding chunk by chunk into a 64 KiB buffer, the exporter
//!   rendering its `String`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use diag_core::{Format, Scrape};
use diag_recorder::Recorder;
use metrics::Recorder as _;

/// Label values of the `macro` benchmark.
const SHARDS: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];

static META: metrics::Metadata<'static> = metrics::Metadata::new("recorder", metrics::Level::INFO, None);

fn exporter() -> metrics_exporter_prometheus::PrometheusRecorder {
    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()
}

/// 1,000 counter series registered on `recorder`, each incremented once.
fn fill(recorder: &dyn metrics::Recorder) {
    for family in 0..10 {
        for value in 0..100 {
            let key = metrics::Key::from_parts(
                format!("bench_family_{family}_total"),
                vec![metrics::Label::new("path", format!("/a/fairly/long/request/path/{value}"))],
            );
            recorder.register_counter(&key, &META).increment(1);
        }
    }
}

fn update(c: &mut Criterion) {
    let mut group = c.benchmark_group("recorder_update");
    let key = metrics::Key::from_parts("bench_requests_total", vec![metrics::Label::new("shard", "s0")]);
    let diag = Recorder::new();
    let counter = diag.register_counter(&key, &META);
    group.bench_function("handle/diag-recorder", |b| b.iter(|| counter.increment(black_box(1))));
    let exporter = exporter();
    let counter = exporter.register_counter(&key, &META);
    group.bench_function("handle/metrics-exporter-prometheus", |b| b.iter(|| counter.increment(black_box(1))));

    let mut i = 0usize;
    let mut by_macro = |recorder: &dyn metrics::Recorder| {
        metrics::with_local_recorder(recorder, || {
            i = i.wrapping_add(1);
            metrics::counter!("bench_macro_total", "shard" => SHARDS[i % SHARDS.len()]).increment(1);
        });
    };
    group.bench_function("macro/diag-recorder", |b| b.iter(|| by_macro(&diag)));
    group.bench_function("macro/metrics-exporter-prometheus", |b| b.iter(|| by_macro(&exporter)));
    group.finish();
}

fn scrape(c: &mut Criterion) {
    let mut group = c.benchmark_group("recorder_scrape");
    let diag = Recorder::new();
    fill(&diag);
    let sources: [&dyn diag_core::Collect; 1] = [&diag];
    let mut buf = vec![0u8; 64 * 1024];
    group.bench_function("1k/diag-recorder", |b| {
        b.iter(|| {
            let mut scrape = Scrape::new(Format::Prometheus, &sources);
            let mut total = 0;
            while let Ok(n @ 1..) = scrape.fill(&mut buf) {
                total += n;
            }
            black_box(total)
        })
    });
    let exporter = exporter();
    fill(&exporter);
    let handle = exporter.handle();
    group.bench_function("1k/metrics-exporter-prometheus", |b| b.iter(|| black_box(handle.render().len())));
    group.finish();
}

criterion_group!(benches, update, scrape);
criterion_main!(benches);
