//! The protobuf exposition (delimited `io.prometheus.client.MetricFamily`) of the encode
//! workloads: diag's chunked, allocation-free encoder against prometheus-client's
//! `prometheus_protobuf::encode_to_vec` (prost messages built per scrape, then encoded).
//! Times are the encoding thread's CPU time; the allocations of one encode are printed.
//!
//! `cargo bench -p diag-benches --bench protobuf -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::Criterion;
use diag_benches::alloc::CountingAlloc;
use diag_benches::hot::cpu_timed;
use diag_benches::workload::{self, LARGE, SMALL, Shape};
use diag_core::{Format, Scrape};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// The chunk diag's frontends stream in by default.
const CHUNK: usize = 64 * 1024;

fn group(c: &mut Criterion, shape: Shape) {
    let diag = workload::Diag::new(shape);
    let registry = diag.registry();
    let mut chunk = vec![0u8; CHUNK];
    // A whole scrape in 64 KiB chunks, each handed on as a frontend would write it out.
    let mut diag_encode = || {
        let mut scrape = Scrape::new(Format::Protobuf, registry);
        let mut total = 0;
        loop {
            match scrape.fill(&mut chunk).expect("a series fits a chunk") {
                0 => return total,
                n => total += black_box(&chunk[..n]).len(),
            }
        }
    };
    let pc = workload::PromClient::new(shape).into_registry();
    let mut pc_encode = || prometheus_client::encoding::prometheus_protobuf::encode_to_vec(&pc).expect("encode").len();

    for (name, f) in [("diag", &mut diag_encode as &mut dyn FnMut() -> usize), ("prometheus_client", &mut pc_encode)] {
        f();
        ALLOC.start();
        let bytes = black_box(f());
        let allocations = ALLOC.stop();
        println!("protobuf_{} {name}: {bytes} bytes, {allocations} allocations per encode", shape.name);
    }

    let mut g = c.benchmark_group(format!("protobuf_{}", shape.name));
    let mut bench = |id: &str, f: &mut dyn FnMut() -> usize| {
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                cpu_timed(|| {
                    for _ in 0..iters {
                        black_box(f());
                    }
                })
            })
        });
    };
    bench("diag", &mut diag_encode);
    bench("prometheus_client", &mut pc_encode);
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    group(&mut c, SMALL);
    group(&mut c, LARGE);
    c.final_summary();
}
