//! `/metrics` in both formats checked by the reference tools: `promtool check metrics` and
//! Python prometheus_client's 0.0.4 and OpenMetrics parsers.

use std::time::Duration;

use diag_tests::{
    Diagd, RUNTIMES, package_dir, pipe, request, require_python_prometheus_client, require_tool, wait_for,
};
use serde_json::Value;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

fn scrape(diagd: &Diagd, accept: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    let r = request(diagd.addr, "GET", "/metrics", &headers);
    assert_eq!(r.status, 200);
    r.text()
}

fn started(runtime: &str) -> Diagd {
    let diagd = Diagd::start(runtime, None);
    wait_for("ready", Duration::from_secs(10), || match diagd.get("/readyz").status {
        200 => Ok(()),
        s => Err(s.to_string()),
    });
    diagd
}

#[test]
fn promtool_accepts_both_formats() {
    let promtool = require_tool("promtool", "apt-get install prometheus (Debian package, provides promtool)");
    for runtime in RUNTIMES {
        let diagd = started(runtime);
        let text = scrape(&diagd, None);
        let (code, out, err) = pipe(&promtool, &["check", "metrics"], &text);
        assert_eq!(code, 0, "{runtime}: promtool rejects the 0.0.4 exposition:\n{out}{err}\n{text}");

        // promtool's `check metrics` reads with the 0.0.4 parser: it must parse OpenMetrics
        // (exit 1 would be a parse error), and its only lint is the one that format
        // difference implies: an OpenMetrics counter family is named without `_total`, so
        // the 0.0.4 linter finds its `_total` samples without HELP.
        let om = scrape(&diagd, Some(OPENMETRICS));
        let (code, out, err) = pipe(&promtool, &["check", "metrics"], &om);
        assert_ne!(code, 1, "{runtime}: promtool cannot parse the OpenMetrics exposition:\n{out}{err}");
        let counters: Vec<&str> =
            om.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
        assert!(counters.len() >= 3, "{counters:?}");
        for problem in format!("{out}{err}").lines().filter(|l| !l.trim().is_empty()) {
            let explained = counters.iter().any(|c| problem == format!("{c}_total no help text"));
            assert!(explained, "{runtime}: unexpected promtool finding on OpenMetrics: {problem:?}");
        }
    }
}

fn parse(python: &std::path::Path, format: &str, text: &str) -> serde_json::Map<String, Value> {
    let script = package_dir().join("python/parse_metrics.py");
    let (code, out, err) = pipe(python, &[script.to_str().unwrap(), format], text);
    assert_eq!(code, 0, "prometheus_client's {format} parser rejects the exposition:\n{err}\n{text}");
    match serde_json::from_str(&out).expect("parser output is JSON") {
        Value::Object(map) => map,
        other => panic!("unexpected parser output {other}"),
    }
}

fn sample<'a>(families: &'a serde_json::Map<String, Value>, family: &str, sample: &str) -> &'a Value {
    let samples = families[family]["samples"].as_array().unwrap();
    &samples.iter().find(|s| s[0] == sample).unwrap_or_else(|| panic!("{sample} not in {family}"))[2]
}

#[test]
fn python_reference_parsers_accept_both_formats() {
    let python = require_python_prometheus_client();
    for runtime in RUNTIMES {
        let diagd = started(runtime);
        for (format, accept) in [("prometheus", None), ("openmetrics", Some(OPENMETRICS))] {
            let families = parse(&python, format, &scrape(&diagd, accept));
            assert_eq!(families["process_state"]["type"], "gauge");
            assert_eq!(sample(&families, "process_state", "process_state"), 0.0, "{runtime} {format}");
            let build = &families["diag_build_info"]["samples"][0];
            assert_eq!(build[1]["version"], env!("CARGO_PKG_VERSION"));
            assert!(build[1]["rustversion"].as_str().unwrap().starts_with("1."), "{build}");
            // Both parsers name a counter family without `_total`, its sample with it.
            let cpu = sample(&families, "process_cpu_seconds", "process_cpu_seconds_total");
            assert!(cpu.as_f64().unwrap() >= 0.0);
            assert_eq!(families["process_cpu_seconds"]["type"], "counter");
            let rss = sample(&families, "process_resident_memory_bytes", "process_resident_memory_bytes");
            assert!(rss.as_f64().unwrap() > 1e6, "{runtime} {format}: rss {rss}");
            let start = sample(&families, "process_start_time_seconds", "process_start_time_seconds");
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
            assert!((now - start.as_f64().unwrap()).abs() < 600.0, "{runtime} {format}: start time {start}");
            if *runtime == "tokio" {
                let workers = sample(&families, "tokio_runtime_workers", "tokio_runtime_workers");
                assert!(workers.as_f64().unwrap() >= 1.0, "{runtime} {format}: workers {workers}");
            } else {
                // smol and async-std expose no runtime gauges; nothing is made up for them.
                assert!(!families.contains_key("tokio_runtime_workers"), "{runtime} {format}");
            }
            let scrapes = families["promhttp_metric_handler_requests"]["samples"].as_array().unwrap();
            assert_eq!(scrapes.len(), 3, "codes 200, 500, 503");
        }
    }
}
