//! The protobuf exposition (delimited `io.prometheus.client.MetricFamily`) of the encode
//! workloads: diag's chunked, allocation-free encoder against prometheus-client's
//! `prometheus_protobuf::encode_to_vec` (prost messages built per scrape, then encoded).
//! Times are the encoding thread's CPU time.
//!
//! Part of `cargo bench -p diag-benches` (groups `protobuf_small`, `protobuf_large`).

use std::hint::black_box;

use criterion::Criterion;
use diag_core::{Format, Scrape};

use crate::alloc::CountingAlloc;
use crate::hot::bench_encode;
use crate::workload::{self, Shape};
use diag_bench_report::report::EncodeFacts;

/// The chunk diag's frontends stream in by default.
const CHUNK: usize = 64 * 1024;

/// The workload name of `shape`'s protobuf facts.
fn workload_name(shape: Shape) -> &'static str {
    if shape.name == "small" { "small, protobuf" } else { "large, protobuf" }
}

/// Measures `shape` in protobuf on diag and prometheus-client (group `protobuf_<shape>`);
/// the allocations and size of one encode each, counted by `alloc` (the global allocator).
pub fn group(c: &mut Criterion, shape: Shape, alloc: &CountingAlloc) -> Vec<EncodeFacts> {
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

    let mut facts = Vec::new();
    for (imp, f) in [("diag", &mut diag_encode as &mut dyn FnMut() -> usize), ("prometheus_client", &mut pc_encode)] {
        f();
        alloc.start();
        let bytes = black_box(f());
        let allocations = alloc.stop();
        facts.push(EncodeFacts { workload: workload_name(shape), imp, allocations, bytes });
    }

    let mut g = c.benchmark_group(format!("protobuf_{}", shape.name));
    let mut bench = |id: &str, f: &mut dyn FnMut() -> usize| bench_encode(&mut g, id, f);
    bench("diag", &mut diag_encode);
    bench("prometheus_client", &mut pc_encode);
    g.finish();
    facts
}
