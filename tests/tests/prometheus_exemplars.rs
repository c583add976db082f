//! A real Prometheus (the Debian package, 2.42) with `--enable-feature=exemplar-storage`
//! scrapes a diag-tokio server holding an exemplar counter family and an exemplar histogram,
//! first over OpenMetrics text, then (with native histograms on too) over protobuf; its
//! exemplar query API returns the trace ids, values and timestamps the test attached.

use std::time::Duration;

use diag_core::{Collect, DEFAULT_BUCKETS, ExemplarCounter, ExemplarHistogram, Family, Registry, unix_time_ms};
use diag_tests::fixtures;
use diag_tests::prometheus::Prometheus;
use diag_tests::{request, wait_for};
use serde_json::Value;

static REQUESTS: Family<ExemplarCounter, (&'static str,), 4> = Family::new(["code"], ());
static LATENCY: ExemplarHistogram<11> = ExemplarHistogram::new(&DEFAULT_BUCKETS);
static REGISTRY: Registry<'static, 4> = Registry::new().with_clock(unix_time_ms);
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

/// `(series labels, exemplar labels, value, timestamp in ms)` of every exemplar of `metric`.
fn exemplars(prometheus: &Prometheus, metric: &str) -> Result<Vec<(String, String, f64, u64)>, String> {
    let now = unix_time_ms() as f64 / 1000.0;
    let path = format!("/api/v1/query_exemplars?query={metric}&start={:.3}&end={:.3}", now - 3600.0, now + 3600.0);
    let r = std::panic::catch_unwind(|| request(prometheus.addr, "GET", &path, &[]))
        .map_err(|_| "not listening".to_owned())?;
    let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))?;
    if body["status"] != "success" {
        return Err(r.text());
    }
    let mut out = Vec::new();
    for series in body["data"].as_array().cloned().unwrap_or_default() {
        let labels = &series["seriesLabels"];
        let series_key = ["code", "le"]
            .iter()
            .filter_map(|k| labels[*k].as_str().map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(",");
        for e in series["exemplars"].as_array().cloned().unwrap_or_default() {
            let mut ex: Vec<String> = e["labels"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
                .unwrap_or_default();
            ex.sort();
            let value: f64 = e["value"].as_str().and_then(|v| v.parse().ok()).ok_or("exemplar value")?;
            let ts = (e["timestamp"].as_f64().ok_or("exemplar timestamp")? * 1000.0).round() as u64;
            out.push((series_key.clone(), ex.join(","), value, ts));
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(out)
}

fn config(target: std::net::SocketAddr) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: diag\n    \
         static_configs:\n      - targets: ['{target}']\n"
    )
}

#[test]
fn prometheus_stores_diag_exemplars_from_openmetrics_and_protobuf() {
    REGISTRY.register("requests_total", "Requests.", &REQUESTS).unwrap();
    REGISTRY.register("latency_seconds", "Latency.", &LATENCY).unwrap();
    // Timestamps of a minute ago (whole milliseconds), so both scrapes see the same ones.
    let t = unix_time_ms() - 60_000;
    REQUESTS
        .get_or_create(("200",))
        .unwrap()
        .inc_by_with_exemplar(
            3,
            &[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), ("span_id", "00f067aa0ba902b7")],
            Some(t),
        )
        .unwrap();
    REQUESTS
        .get_or_create(("500",))
        .unwrap()
        .inc_with_exemplar(&[("trace_id", "0af7651916cd43dd8448eb211c80319c")], Some(t + 1))
        .unwrap();
    LATENCY.observe(0.02);
    LATENCY.observe_with_exemplar(0.3, &[("trace_id", "aaaabbbbccccddddeeeeffff00001111")], Some(t + 2)).unwrap();
    LATENCY.observe_with_exemplar(42.0, &[("trace_id", "99998888777766665555444433332222")], Some(t + 3)).unwrap();
    let want = {
        let mut w = vec![
            (
                "code=200".to_owned(),
                "span_id=00f067aa0ba902b7,trace_id=4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
                3.0,
                t,
            ),
            ("code=500".to_owned(), "trace_id=0af7651916cd43dd8448eb211c80319c".to_owned(), 1.0, t + 1),
            ("le=0.5".to_owned(), "trace_id=aaaabbbbccccddddeeeeffff00001111".to_owned(), 0.3, t + 2),
            ("le=+Inf".to_owned(), "trace_id=99998888777766665555444433332222".to_owned(), 42.0, t + 3),
        ];
        w.sort_by(|a, b| a.partial_cmp(b).unwrap());
        w
    };

    let served = fixtures::serve(&SOURCES, Some(2048));
    let addr = served.addr;

    {
        for (format, features) in [
            ("OpenMetrics", "--enable-feature=exemplar-storage"),
            ("protobuf", "--enable-feature=exemplar-storage,native-histograms"),
        ] {
            let prometheus = Prometheus::start(&config(addr), &[features]);
            wait_for(&format!("exemplars over {format}"), Duration::from_secs(60), || {
                let mut got = exemplars(&prometheus, "requests_total")?;
                got.extend(exemplars(&prometheus, "latency_seconds_bucket")?);
                got.sort_by(|a, b| a.partial_cmp(b).unwrap());
                if got == want {
                    Ok(())
                } else {
                    let up = prometheus.query("up").unwrap_or_default();
                    let series = request(prometheus.addr, "GET", "/api/v1/targets", &[]).text();
                    Err(format!("{got:?}, want {want:?} (up {up:?}, requests_total {series:?})"))
                }
            });
        }
    }
    drop(served);
}
