//! Start timestamps and Prometheus 3 negotiation in the text formats, checked by the reference
//! parsers: a diag-tokio server whose registry stamps registrations with the wall clock writes
//! `_created` samples for counters and histograms in OpenMetrics (Python prometheus_client's
//! strict OpenMetrics parser reads them), and answers Prometheus 3's `text/plain;
//! version=1.0.0; escaping=…` with that content type and a body promtool accepts.

use std::net::SocketAddr;

use diag_core::{Collect, Counter, Family, Histogram, Registry, unix_time_ms};
use diag_tests::fixtures;
use diag_tests::{package_dir, pipe, request, require_python_prometheus_client, require_tool};
use serde_json::Value;

static BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
static JOBS: Family<Counter, (&'static str,), 4> = Family::new(["queue"], ());
static LATENCY: Histogram<3> = Histogram::new(&BOUNDS);
static REGISTRY: Registry<'static, 4> = Registry::new().with_clock(unix_time_ms);
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

fn check(addr: SocketAddr, registered_ms: (u64, u64)) {
    let python = require_python_prometheus_client();
    let script = package_dir().join("python/parse_metrics.py");
    let om = request(addr, "GET", "/metrics", &[("Accept", "application/openmetrics-text;version=1.0.0")]);
    assert_eq!(om.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    let text = om.text();
    let (code, out, err) = pipe(&python, &[script.to_str().unwrap(), "openmetrics"], &text);
    assert_eq!(code, 0, "the strict OpenMetrics parser rejects:\n{err}\n{text}");
    let families: serde_json::Map<String, Value> = serde_json::from_str(&out).unwrap();
    let created = |family: &str, sample: &str| -> Vec<f64> {
        let samples = families[family]["samples"].as_array().unwrap();
        samples.iter().filter(|s| s[0] == sample).map(|s| s[2].as_f64().unwrap()).collect()
    };
    let (lo, hi) = (registered_ms.0 as f64 / 1000.0, registered_ms.1 as f64 / 1000.0);
    for (family, sample, series) in [("jobs", "jobs_created", 2), ("latency_seconds", "latency_seconds_created", 1)] {
        let times = created(family, sample);
        assert_eq!(times.len(), series, "{family}: {text}");
        assert!(times.iter().all(|t| (lo..=hi).contains(t)), "{family}: {times:?} not in {lo}..={hi}");
    }
    // Built-in collectors have no start time: no `_created` for them.
    assert!(!text.contains("promhttp_metric_handler_requests_created"), "{text}");

    // Prometheus 3 without OpenMetrics: text 1.0.0 with its escaping echoed; the body is what
    // promtool (and the 0.0.4 parser) accept, with no `_created` lines.
    let accept = "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
    let v1 = request(addr, "GET", "/metrics", &[("Accept", accept)]);
    assert_eq!(v1.header("content-type"), Some("text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"));
    let text = v1.text();
    assert!(!text.contains("_created"), "{text}");
    let promtool = require_tool("promtool", "apt-get install prometheus (Debian package, provides promtool)");
    let (code, out, err) = pipe(&promtool, &["check", "metrics"], &text);
    assert_eq!(code, 0, "promtool rejects text 1.0.0:\n{out}{err}\n{text}");
    let (code, _, err) = pipe(&python, &[script.to_str().unwrap(), "prometheus"], &text);
    assert_eq!(code, 0, "the 0.0.4 parser rejects text 1.0.0:\n{err}\n{text}");
}

#[test]
fn created_samples_and_text_v1_pass_the_reference_parsers() {
    let before = unix_time_ms();
    REGISTRY.register("jobs_total", "Jobs done.", &JOBS).unwrap();
    REGISTRY.register("latency_seconds", "Latency.", &LATENCY).unwrap();
    let after = unix_time_ms();
    JOBS.get_or_create(("mail",)).unwrap().inc();
    JOBS.get_or_create(("a \"quoted\" queue",)).unwrap().inc_by(2);
    LATENCY.observe(0.5);

    let served = fixtures::serve(&SOURCES, None);
    let addr = served.addr;
    check(addr, (before, after));
    drop(served);
}
