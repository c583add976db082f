//! Native histogram observe, one thread: diag's `NativeHistogram` and `HybridHistogram` (native
//! and classic buckets on one series) against diag's classic `Histogram` and the peers' native
//! histograms — prometheus-client 0.25's `Histogram::new_native` and `new_classic_and_native`
//! (a mutex around the state) and metrics-exporter-prometheus 0.18's native distribution
//! (observations buffered, folded into a `RwLock<BTreeMap>` at upkeep, which is untimed here as
//! in the hot-path groups). The `prometheus` crate 0.14 has no native histograms.
//!
//! Part of `cargo bench -p diag-benches` (group `native_observe`).

use criterion::Criterion;
use diag_core::{DEFAULT_BUCKETS, Family, Histogram, HybridHistogram, NativeConfig, NativeHistogram};
use metrics::Recorder as _;

use crate::hot::{run, value};

/// The criterion group.
pub const GROUP: &str = "native_observe";

/// The implementations measured, with their display names (named where the report reads them).
pub use diag_bench_report::rows::NATIVE as IMPLS;

/// Measures every implementation: one series of each (schema 3, the default buckets), the
/// hot-path values, one thread.
pub fn group(c: &mut Criterion) {
    let mut g = c.benchmark_group(GROUP);
    let classic: Family<Histogram<11>, (&str,), 4> = Family::new(["shard"], &DEFAULT_BUCKETS);
    let classic = classic.get_or_create(("0",)).expect("capacity");
    g.bench_function("diag_classic", |b| b.iter_custom(|iters| run(1, iters, |i| classic.observe(value(i)))));
    let native: Family<NativeHistogram<32>, (&str,), 4> = Family::new(["shard"], NativeConfig::new(3));
    let native = native.get_or_create(("0",)).expect("capacity");
    g.bench_function("diag_native", |b| b.iter_custom(|iters| run(1, iters, |i| native.observe(value(i)))));
    let hybrid: Family<HybridHistogram<32, 11>, (&str,), 4> =
        Family::new(["shard"], (NativeConfig::new(3), &DEFAULT_BUCKETS));
    let hybrid = hybrid.get_or_create(("0",)).expect("capacity");
    g.bench_function("diag_hybrid", |b| b.iter_custom(|iters| run(1, iters, |i| hybrid.observe(value(i)))));

    use prometheus_client::metrics::histogram::{Histogram as PcHistogram, NativeHistogramConfig};
    let pc = PcHistogram::new_native(NativeHistogramConfig::with_schema(3));
    g.bench_function("prometheus_client_native", |b| b.iter_custom(|iters| run(1, iters, |i| pc.observe(value(i)))));
    let pc_both = PcHistogram::new_classic_and_native(DEFAULT_BUCKETS, NativeHistogramConfig::with_schema(3));
    g.bench_function("prometheus_client_hybrid", |b| {
        b.iter_custom(|iters| run(1, iters, |i| pc_both.observe(value(i))))
    });

    // Bucket factor 1.1 is schema 3, as above; 160 buckets, client_golang's default limit.
    let config = metrics_exporter_prometheus::NativeHistogramConfig::new(1.1, 160, 2f64.powi(-128)).expect("config");
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_native_histogram_for_metric(metrics_exporter_prometheus::Matcher::Full("h".into()), config)
        .build_recorder();
    let handle = recorder.handle();
    let m = recorder.register_histogram(
        &metrics::Key::from_parts("h", vec![metrics::Label::new("shard", "0")]),
        &crate::workload::METRICS_META,
    );
    g.bench_function("metrics_native", |b| {
        b.iter_custom(|iters| {
            let t = run(1, iters, |i| m.record(value(i)));
            // Untimed: fold the buffered observations into buckets so memory stays bounded.
            handle.run_upkeep();
            t
        })
    });
    g.finish();
}

/// Go's client_golang in the same run (`benches/go/native`, `go test -bench`): native, native +
/// classic and classic observe, ns per operation, with display names; or why not measured.
pub fn client_golang() -> Result<Vec<(&'static str, f64)>, String> {
    const GOPATH: &str = "/usr/share/gocode";
    if !std::path::Path::new(GOPATH).join("src/github.com/prometheus/client_golang/prometheus").is_dir() {
        return Err("client_golang not installed (`apt-get install golang-github-prometheus-client-golang-dev`)".into());
    }
    let dir = diag_bench_report::report::workspace_root().join("benches/go/native");
    let cache = std::env::temp_dir().join("diag-bench-gocache");
    let out = std::process::Command::new("go")
        .args(["test", "-run", "^$", "-bench", ".", "-benchtime", "2s"])
        .current_dir(&dir)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", &cache)
        .output()
        .map_err(|e| format!("go not run ({e}): `apt-get install golang-go`"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("go test -bench failed: {}{}", text, String::from_utf8_lossy(&out.stderr)));
    }
    let mut times = Vec::new();
    for (bench, name) in [
        ("BenchmarkNative-", "client_golang (Go) native"),
        ("BenchmarkNativeAndClassic-", "client_golang (Go) native + classic"),
        ("BenchmarkClassic-", "client_golang (Go) classic"),
    ] {
        // `BenchmarkNative-2   6998026   183.0 ns/op`
        let ns = text
            .lines()
            .find(|l| l.starts_with(bench))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or_else(|| format!("no {bench} line in:\n{text}"))?;
        times.push((name, ns));
    }
    Ok(times)
}
