//! diag against `prometheus`, `prometheus-client` and `metrics`: hot path, encode and serve,
//! measured in one run; writes BENCHMARKS.md and BENCHMARKS.svg at the workspace root when the
//! whole suite ran.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use diag_benches::alloc::CountingAlloc;
use diag_benches::history;
use diag_benches::hot::{bench_encode, cpu_timed, run, value};
use diag_benches::lookup;
use diag_benches::report::{self, EncodeFacts, Group, Machine, Run};
use diag_benches::workload::{self, LARGE, SMALL, Shape};
use diag_core::{Counter, DEFAULT_BUCKETS, Family, Gauge, Histogram, ShardedCounter, ShardedHistogram};
use metrics::Recorder as _;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Hot-path groups: `(criterion group id, table title, threads)`.
const HOT: [(&str, &str, usize); 6] = [
    ("counter_inc_1t", "counter inc, 1 thread", 1),
    ("counter_inc_2t", "counter inc, 2 threads, same series", 2),
    ("gauge_set_1t", "gauge set, 1 thread", 1),
    ("gauge_set_2t", "gauge set, 2 threads, same series", 2),
    ("histogram_observe_1t", "histogram observe, 1 thread", 1),
    ("histogram_observe_2t", "histogram observe, 2 threads, same series", 2),
];

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// Times `op` on `threads` threads as the criterion function `id`.
fn bench_op<F: Fn(u64) + Sync>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, threads: usize, op: F) {
    g.bench_function(id, |b| b.iter_custom(|iters| run(threads, iters, &op)));
}

fn counter_group(c: &mut Criterion, id: &str, threads: usize) {
    let mut g = c.benchmark_group(id);
    let atomic = leak(AtomicU64::new(0));
    bench_op(&mut g, "atomic", threads, |_| {
        atomic.fetch_add(1, Ordering::Relaxed);
    });
    let diag = leak(Family::<Counter, (&str,), 4>::new(["shard"], ())).get_or_create(("0",)).expect("capacity");
    bench_op(&mut g, "diag", threads, |_| diag.inc());
    let sharded =
        leak(Family::<ShardedCounter<8>, (&str,), 4>::new(["shard"], ())).get_or_create(("0",)).expect("capacity");
    bench_op(&mut g, "diag_sharded", threads, |_| sharded.inc());
    let prom = prometheus::IntCounterVec::new(prometheus::Opts::new("c_total", "c"), &["shard"])
        .expect("opts")
        .with_label_values(&["0"]);
    bench_op(&mut g, "prometheus", threads, |_| prom.inc());
    let fam = prometheus_client::metrics::family::Family::<
        workload::ShardLabel,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let pc = fam.get_or_create(&[("shard", "0")]).clone();
    bench_op(&mut g, "prometheus_client", threads, |_| {
        pc.inc();
    });
    let recorder = workload::metrics_recorder();
    let m = recorder.register_counter(&workload::metrics_key("c_total".into(), "0"), &workload::METRICS_META);
    bench_op(&mut g, "metrics", threads, |_| m.increment(1));
    g.finish();
}

fn gauge_group(c: &mut Criterion, id: &str, threads: usize) {
    let mut g = c.benchmark_group(id);
    let atomic = leak(AtomicI64::new(0));
    bench_op(&mut g, "atomic", threads, |i| atomic.store(i as i64, Ordering::Relaxed));
    let diag = leak(Family::<Gauge, (&str,), 4>::new(["shard"], ())).get_or_create(("0",)).expect("capacity");
    bench_op(&mut g, "diag", threads, |i| diag.set(i as i64));
    let prom = prometheus::IntGaugeVec::new(prometheus::Opts::new("g", "g"), &["shard"])
        .expect("opts")
        .with_label_values(&["0"]);
    bench_op(&mut g, "prometheus", threads, |i| prom.set(i as i64));
    let fam = prometheus_client::metrics::family::Family::<
        workload::ShardLabel,
        prometheus_client::metrics::gauge::Gauge,
    >::default();
    let pc = fam.get_or_create(&[("shard", "0")]).clone();
    bench_op(&mut g, "prometheus_client", threads, |i| {
        pc.set(i as i64);
    });
    let recorder = workload::metrics_recorder();
    let m = recorder.register_gauge(&workload::metrics_key("g".into(), "0"), &workload::METRICS_META);
    bench_op(&mut g, "metrics", threads, |i| m.set(i as f64));
    g.finish();
}

fn histogram_group(c: &mut Criterion, id: &str, threads: usize) {
    let mut g = c.benchmark_group(id);
    let diag = leak(Family::<Histogram<11>, (&str,), 4>::new(["shard"], &DEFAULT_BUCKETS))
        .get_or_create(("0",))
        .expect("capacity");
    bench_op(&mut g, "diag", threads, |i| diag.observe(value(i)));
    let sharded = leak(Family::<ShardedHistogram<11, 4>, (&str,), 4>::new(["shard"], &DEFAULT_BUCKETS))
        .get_or_create(("0",))
        .expect("capacity");
    bench_op(&mut g, "diag_sharded", threads, |i| sharded.observe(value(i)));
    let prom = prometheus::HistogramVec::new(prometheus::HistogramOpts::new("h", "h"), &["shard"])
        .expect("opts")
        .with_label_values(&["0"]);
    bench_op(&mut g, "prometheus", threads, |i| prom.observe(value(i)));
    let fam = prometheus_client::metrics::family::Family::<
        workload::ShardLabel,
        prometheus_client::metrics::histogram::Histogram,
        fn() -> prometheus_client::metrics::histogram::Histogram,
    >::new_with_constructor(workload::prom_client_histogram);
    let pc = fam.get_or_create(&[("shard", "0")]).clone();
    bench_op(&mut g, "prometheus_client", threads, |i| pc.observe(value(i)));
    let recorder = workload::metrics_recorder();
    let handle = recorder.handle();
    let m = recorder.register_histogram(&workload::metrics_key("h".into(), "0"), &workload::METRICS_META);
    g.bench_function("metrics", |b| {
        b.iter_custom(|iters| {
            let t = run(threads, iters, |i| m.record(value(i)));
            // Untimed: fold the buffered observations into buckets so memory stays bounded.
            handle.run_upkeep();
            t
        })
    });
    g.finish();
}

/// Lookup groups: `(criterion group id, table title, series present, threads)`.
fn lookup_groups() -> Vec<(String, String, usize, usize)> {
    let mut out = Vec::new();
    for threads in [1, 2] {
        for size in lookup::SIZES {
            out.push((
                format!("lookup_{size}_{threads}t"),
                format!("get_or_create + inc, {size} series, {threads} thread{}", if threads > 1 { "s" } else { "" }),
                size,
                threads,
            ));
        }
    }
    out
}

/// `get_or_create(labels)` plus `inc()` per operation, with `size` series present and the
/// keys cycling through them.
fn lookup_group(c: &mut Criterion, id: &str, size: usize, threads: usize) {
    let users = lookup::users(size);
    // Sizes are powers of two: a mask, not a division, so the harness costs every peer little.
    let key = |i: u64| (i as usize) & (size - 1);
    let mut g = c.benchmark_group(id);

    let diag = lookup::DiagRequests::new(["method", "user"], ());
    users.iter().for_each(|u| drop(diag.get_or_create((lookup::METHOD, u.as_str())).expect("capacity")));
    bench_op(&mut g, "diag", threads, |i| {
        if let Ok(c) = diag.get_or_create((lookup::METHOD, &users[key(i)])) {
            c.inc();
        }
    });

    let prom = prometheus::IntCounterVec::new(prometheus::Opts::new("requests_total", "r"), &["method", "user"])
        .expect("opts");
    users.iter().for_each(|u| drop(prom.with_label_values(&[lookup::METHOD, u.as_str()])));
    bench_op(&mut g, "prometheus", threads, |i| prom.with_label_values(&[lookup::METHOD, &users[key(i)]]).inc());

    let fam = prometheus_client::metrics::family::Family::<
        lookup::PromClientLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let sets: Vec<lookup::PromClientLabels> =
        users.iter().map(|u| vec![("method", lookup::METHOD.to_owned()), ("user", u.clone())]).collect();
    sets.iter().for_each(|s| drop(fam.get_or_create(s)));
    bench_op(&mut g, "prometheus_client", threads, |i| {
        fam.get_or_create(&sets[key(i)]).inc();
    });

    let recorder = workload::metrics_recorder();
    users.iter().for_each(|u| drop(recorder.register_counter(&lookup::metrics_key(u), &workload::METRICS_META)));
    bench_op(&mut g, "metrics", threads, |i| {
        recorder.register_counter(&lookup::metrics_key(&users[key(i)]), &workload::METRICS_META).increment(1);
    });
    g.finish();
}

/// Creating a series: each operation removes the series made `SIZE` operations before and
/// creates a new one (label values never seen), with 1,024 series present. `metrics` has no
/// removal, so it is not in this group.
fn create_group(c: &mut Criterion) {
    const SIZE: usize = 1024;
    let users = lookup::users(4 * SIZE);
    let key = |i: u64| (i as usize) & (4 * SIZE - 1);
    let mut g = c.benchmark_group("create_1t");
    let diag = lookup::DiagRequests::new(["method", "user"], ());
    bench_op(&mut g, "diag", 1, |i| {
        diag.remove((lookup::METHOD, &users[key(i.wrapping_sub(SIZE as u64))]));
        if let Ok(c) = diag.get_or_create((lookup::METHOD, &users[key(i)])) {
            c.inc();
        }
    });
    let prom = prometheus::IntCounterVec::new(prometheus::Opts::new("requests_total", "r"), &["method", "user"])
        .expect("opts");
    bench_op(&mut g, "prometheus", 1, |i| {
        let _ = prom.remove_label_values(&[lookup::METHOD, &users[key(i.wrapping_sub(SIZE as u64))]]);
        prom.with_label_values(&[lookup::METHOD, &users[key(i)]]).inc();
    });
    let fam = prometheus_client::metrics::family::Family::<
        lookup::PromClientLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let sets: Vec<lookup::PromClientLabels> =
        users.iter().map(|u| vec![("method", lookup::METHOD.to_owned()), ("user", u.clone())]).collect();
    bench_op(&mut g, "prometheus_client", 1, |i| {
        fam.remove(&sets[key(i.wrapping_sub(SIZE as u64))]);
        fam.get_or_create(&sets[key(i)]).inc();
    });
    g.finish();
}

/// Memory per series with 1,024 series of `requests_total{method, user}`: diag's is its
/// fixed storage (the family's size over its capacity); the peers' is what their allocations
/// grew by, measured by the counting allocator.
fn memory_per_series() -> Vec<(&'static str, f64)> {
    const SIZE: usize = 1024;
    let users = lookup::users(SIZE);
    let grown = |f: &mut dyn FnMut()| {
        let before = ALLOC.live_bytes();
        f();
        (ALLOC.live_bytes() - before) as f64 / SIZE as f64
    };
    let diag = std::mem::size_of::<lookup::DiagRequests>() as f64 / 1024.0;
    let prom = prometheus::IntCounterVec::new(prometheus::Opts::new("requests_total", "r"), &["method", "user"])
        .expect("opts");
    let prom_bytes = grown(&mut || users.iter().for_each(|u| drop(prom.with_label_values(&[lookup::METHOD, u]))));
    let fam = prometheus_client::metrics::family::Family::<
        lookup::PromClientLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let pc_bytes = grown(&mut || {
        users
            .iter()
            .for_each(|u| drop(fam.get_or_create(&vec![("method", lookup::METHOD.to_owned()), ("user", u.clone())])))
    });
    let recorder = workload::metrics_recorder();
    let m_bytes = grown(&mut || {
        users.iter().for_each(|u| drop(recorder.register_counter(&lookup::metrics_key(u), &workload::METRICS_META)))
    });
    vec![("diag", diag), ("prometheus", prom_bytes), ("prometheus_client", pc_bytes), ("metrics", m_bytes)]
}

fn encode_group(c: &mut Criterion, shape: Shape) -> Vec<EncodeFacts> {
    let mut diag = workload::Diag::new(shape);
    let mut prom = workload::Prometheus::new(shape);
    let mut pc = workload::PromClient::new(shape);
    let mut m = workload::Metrics::new(shape);
    // One warm-up encode each (buffers reach their size), then one counted encode.
    let mut facts = Vec::new();
    let mut count = |imp: &'static str, f: &mut dyn FnMut() -> usize| {
        f();
        ALLOC.start();
        let bytes = black_box(f());
        let allocations = ALLOC.stop();
        facts.push(EncodeFacts { workload: shape.name, imp, allocations, bytes });
    };
    count("diag", &mut || diag.encode());
    count("prometheus", &mut || prom.encode());
    count("prometheus_client", &mut || pc.encode());
    count("metrics", &mut || m.encode());

    let mut g = c.benchmark_group(format!("encode_{}", shape.name));
    let mut bench = |id: &str, f: &mut dyn FnMut() -> usize| bench_encode(&mut g, id, f);
    bench("diag", &mut || diag.encode());
    bench("prometheus", &mut || prom.encode());
    bench("prometheus_client", &mut || pc.encode());
    bench("metrics", &mut || m.encode());
    g.finish();
    // The floor: a `memcpy` of the bytes diag wrote, into a buffer reused the same way.
    let len = diag.encode();
    let text = diag.output(len).to_vec();
    let mut dst = vec![0u8; len];
    c.bench_function(&format!("encode_{}_memcpy", shape.name), |b| {
        b.iter_custom(|iters| {
            cpu_timed(|| {
                for _ in 0..iters {
                    dst.copy_from_slice(black_box(&text));
                    black_box(&mut dst);
                }
            })
        })
    });
    facts
}

/// The median of the `encode_<workload>_memcpy` benchmark, if it ran.
fn memcpy_time(dir: &std::path::Path, workload: &str) -> Option<(String, f64)> {
    let path = dir.join(format!("encode_{workload}_memcpy")).join("new").join("estimates.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    Some((workload.to_owned(), json["median"]["point_estimate"].as_f64()?))
}

/// `<target>/criterion`, from this executable's path `<target>/release/deps/peers-…`.
fn criterion_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors().nth(3).map_or_else(|| PathBuf::from("target"), |t| t.to_path_buf()).join("criterion")
}

/// The benchmark filters given on the command line (criterion's positional arguments).
fn filters() -> Vec<String> {
    const WITH_VALUE: [&str; 12] = [
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--color",
        "--output-format",
        "--plotting-backend",
        "--noise-threshold",
    ];
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            out.push(a);
        }
    }
    out
}

fn main() {
    lookup::check_prometheus_merges_concatenated_values();
    let machine = Machine::detect();
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .sample_size(30)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_millis(2500))
        .configure_from_args();
    for (id, _, threads) in HOT {
        match &id[..5] {
            "count" => counter_group(&mut c, id, threads),
            "gauge" => gauge_group(&mut c, id, threads),
            _ => histogram_group(&mut c, id, threads),
        }
    }
    for (id, _, size, threads) in lookup_groups() {
        lookup_group(&mut c, &id, size, threads);
    }
    create_group(&mut c);
    let memory = memory_per_series();
    let mut facts = encode_group(&mut c, SMALL);
    facts.extend(encode_group(&mut c, LARGE));
    facts.extend(diag_benches::protobuf::group(&mut c, SMALL, &ALLOC));
    facts.extend(diag_benches::protobuf::group(&mut c, LARGE, &ALLOC));
    diag_benches::native::group(&mut c);
    c.final_summary();

    let filters = filters();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and criterion then runs
    // every benchmark once as a smoke test: serving and the report are skipped.
    let benching = std::env::args().any(|a| a == "--bench");
    let serve_wanted = filters.is_empty() || filters.iter().any(|f| "serve_large".contains(f.as_str()));
    let native_wanted = filters.is_empty() || filters.iter().any(|f| diag_benches::native::GROUP.contains(f.as_str()));
    let go_native =
        if benching && native_wanted { diag_benches::native::client_golang() } else { Err("filtered out".to_owned()) };
    let (serve, serve_note) = if benching && serve_wanted {
        diag_benches::serve::run_all()
    } else {
        (Vec::new(), "Not measured in this run (filtered out).".to_owned())
    };
    let run = Run {
        machine: machine.finish(),
        hot: HOT.iter().map(|(id, title, _)| report::read_group(&dir, id, title)).collect(),
        lookup: lookup_groups()
            .iter()
            .map(|(id, title, _, _)| report::read_group(&dir, id, title))
            .chain([report::read_group(&dir, "create_1t", "create + remove a series, 1,024 present, 1 thread")])
            .collect(),
        memory,
        encode: [SMALL, LARGE]
            .iter()
            .map(|s| report::read_group(&dir, &format!("encode_{}", s.name), &format!("encode {}", s.name)))
            .collect(),
        protobuf: [SMALL, LARGE]
            .iter()
            .map(|s| {
                let id = format!("protobuf_{}", s.name);
                report::read_group(&dir, &id, &format!("protobuf encode {}", s.name))
            })
            .filter(|g| !g.times.is_empty())
            .collect(),
        native: Some(report::read_group_of(
            &dir,
            diag_benches::native::GROUP,
            "native histogram observe, 1 thread",
            &diag_benches::native::IMPLS,
        ))
        .filter(|g| !g.times.is_empty()),
        go_native,
        facts,
        memcpy: [SMALL, LARGE].iter().filter_map(|s| memcpy_time(&dir, s.name)).collect(),
        serve,
        serve_note,
    };
    let complete = filters.is_empty() && run.hot.iter().chain(&run.encode).all(|g: &Group| g.times.len() >= 4);
    let root = report::workspace_root();
    if benching {
        println!("\n{}", run.markdown("BENCHMARKS.svg"));
    }
    if complete && benching {
        if let Err(e) = report::chart(&run, &root.join("BENCHMARKS.svg")) {
            eprintln!("chart: {e}");
        }
        match history::archive_if_other_cpu(&root, &run.machine.model) {
            Ok(Some(path)) => println!("the previous BENCHMARKS.md, from another CPU, is kept as {}", path.display()),
            Ok(None) => {}
            Err(e) => eprintln!("{}: {e}", history::DIR),
        }
        let markdown = run.markdown("BENCHMARKS.svg") + &history::markdown(&root);
        if let Err(e) = std::fs::write(root.join("BENCHMARKS.md"), markdown) {
            eprintln!("BENCHMARKS.md: {e}");
        }
        println!("wrote {}", root.join("BENCHMARKS.md").display());
    }
}
