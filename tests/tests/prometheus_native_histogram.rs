//! A real Prometheus (the Debian package, 2.42) with `--enable-feature=native-histograms`
//! scrapes a diag-tokio server over protobuf and stores diag's native histograms as native
//! histograms: through its query API, `histogram_count`, `histogram_sum` and
//! `histogram_quantile` return what the test observed, and the buckets it reports are the
//! ones of diag's own snapshot. One histogram outgrows its slots, so what Prometheus stores
//! comes after a drop in resolution and a wider zero bucket.

use std::time::Duration;

use diag_core::{Collect, Family, NativeConfig, NativeHistogram, NativeSnapshot, Registry, unix_time_ms};
use diag_tests::fixtures;
use diag_tests::prometheus::Prometheus;
use diag_tests::wait_for;
use serde_json::Value;

static LATENCY: NativeHistogram<16> = NativeHistogram::new(NativeConfig::new(3));
static SIZES: Family<NativeHistogram<4>, (&'static str,), 2> =
    Family::new(["kind"], NativeConfig::new(4).with_max_zero_threshold(0.5));
static REGISTRY: Registry<'static, 4> = Registry::new().with_clock(unix_time_ms);
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

/// The value of the single series `expr` selects, once it is within `1e-9` (relative) of `want`.
fn wait_value(prometheus: &Prometheus, expr: &str, want: f64) {
    wait_for(expr, Duration::from_secs(60), || {
        let result = prometheus.query(expr)?;
        let v = result.first().ok_or("no series yet")?;
        let got: f64 = v["value"][1].as_str().ok_or("no value")?.parse().map_err(|e| format!("{e}"))?;
        if (got - want).abs() <= 1e-9 * want.abs().max(1.0) {
            Ok(())
        } else {
            Err(format!("{expr} = {got}, want {want}"))
        }
    });
}

/// `2^(key / 2^schema)`, the upper bound of a native bucket.
fn upper(key: i32, schema: i8) -> f64 {
    2f64.powf(f64::from(key) / 2f64.powi(i32::from(schema)))
}

/// `(lower, upper, count)` of each bucket.
type Buckets = Vec<(f64, f64, f64)>;

/// The native histogram `expr` selects, as Prometheus' query API returns it: count, sum, and
/// each bucket as (lower, upper, count).
fn native(prometheus: &Prometheus, expr: &str) -> Result<(f64, f64, Buckets), String> {
    let result = prometheus.query(expr)?;
    let series = result.first().ok_or("no series yet")?;
    let h = &series["histogram"][1];
    if h.is_null() {
        return Err(format!("not a native histogram: {series}"));
    }
    let num = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).ok_or(format!("not a number: {v}"));
    let mut buckets = Vec::new();
    for b in h["buckets"].as_array().cloned().unwrap_or_default() {
        buckets.push((num(&b[1])?, num(&b[2])?, num(&b[3])?));
    }
    Ok((num(&h["count"])?, num(&h["sum"])?, buckets))
}

/// The buckets Prometheus must report for `s`: negative ones (ascending by value), the zero
/// bucket, positive ones, as `(lower, upper, count)`. A bucket reaching into the zero bucket
/// (after a drop in resolution) is reported from the zero threshold on, as Prometheus does.
fn expected_buckets<const B: usize>(s: &NativeSnapshot<B>) -> Vec<(f64, f64, f64)> {
    let mut out: Vec<(f64, f64, f64)> = s
        .negative()
        .iter()
        .rev()
        .map(|b| (-upper(b.key, s.schema), -upper(b.key - 1, s.schema).max(s.zero_threshold), b.count as f64))
        .collect();
    if s.zero_count > 0 {
        out.push((-s.zero_threshold, s.zero_threshold, s.zero_count as f64));
    }
    out.extend(
        s.positive()
            .iter()
            .map(|b| (upper(b.key - 1, s.schema).max(s.zero_threshold), upper(b.key, s.schema), b.count as f64)),
    );
    out
}

fn same_buckets(got: &[(f64, f64, f64)], want: &[(f64, f64, f64)]) -> bool {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300);
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| close(g.0, w.0) && close(g.1, w.1) && g.2 == w.2)
}

#[test]
fn prometheus_stores_diag_native_histograms() {
    REGISTRY.register("latency_seconds", "Latency.", &LATENCY).unwrap();
    REGISTRY.register("sizes_bytes", "Sizes.", &SIZES).unwrap();
    // Two zeros, eight values in the bucket of 0.1, ten in the bucket of 0.4: the median
    // ends exactly at the first bucket's upper bound, the maximum at the second's, whatever
    // the interpolation inside a bucket.
    for v in [0.0, 0.0].into_iter().chain([0.1; 8]).chain([0.4; 10]) {
        LATENCY.observe(v);
    }
    let latency = LATENCY.snapshot();
    assert_eq!((latency.count, latency.zero_count, latency.positive().len()), (20, 2, 2));
    // More buckets than slots, negative values too: the zero bucket widens to its limit,
    // then the resolution drops.
    let spread = SIZES.get_or_create(("spread",)).unwrap();
    for k in 0..300 {
        spread.observe(f64::from(k) * 0.37 - 20.0);
    }
    let spread = spread.snapshot();
    assert!(
        spread.schema < 4
            && spread.zero_threshold > NativeConfig::DEFAULT_ZERO_THRESHOLD
            && !spread.negative().is_empty(),
        "{spread:?}"
    );

    let served = fixtures::serve(&SOURCES, Some(256) /* families split across chunks, so across messages */);
    let addr = served.addr;

    {
        let prometheus = Prometheus::start(
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: diag\n    \
                 static_configs:\n      - targets: ['{addr}']\n"
            ),
            &["--enable-feature=native-histograms"],
        );
        wait_value(&prometheus, "histogram_count(latency_seconds)", 20.0);
        wait_value(&prometheus, "histogram_sum(latency_seconds)", latency.sum);
        let first = latency.positive()[0].key;
        let second = latency.positive()[1].key;
        wait_value(&prometheus, "histogram_quantile(0.5,latency_seconds)", upper(first, latency.schema));
        wait_value(&prometheus, "histogram_quantile(1,latency_seconds)", upper(second, latency.schema));
        wait_value(&prometheus, "histogram_count(sizes_bytes%7Bkind%3D%22spread%22%7D)", 300.0);
        wait_value(&prometheus, "histogram_sum(sizes_bytes)", spread.sum);
        // Stored natively: no classic `_count` series, and the buckets are diag's.
        assert_eq!(prometheus.query("latency_seconds_count").unwrap().len(), 0);
        for (expr, snap) in
            [("latency_seconds", expected_buckets(&latency)), ("sizes_bytes", expected_buckets(&spread))]
        {
            wait_for(expr, Duration::from_secs(30), || {
                let (count, _, buckets) = native(&prometheus, expr)?;
                let want: f64 = snap.iter().map(|b| b.2).sum();
                if count == want && same_buckets(&buckets, &snap) {
                    Ok(())
                } else {
                    Err(format!("{expr}: Prometheus has {count} in {buckets:?}, diag {snap:?}"))
                }
            });
        }
    }
    drop(served);
}
