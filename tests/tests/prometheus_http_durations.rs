//! diagd's own request durations, `diag_http_request_duration_seconds` (native and classic
//! buckets on one series, exemplars from the request's trace): a real Prometheus (the Debian
//! package, 2.42, `--enable-feature=native-histograms,exemplar-storage`) scrapes diagd over
//! protobuf; `histogram_count` through its query API equals the requests the test made per
//! route, the `/metrics` series counting exactly the scrapes (each its own too); the exemplar
//! query API returns the trace ids of the test's requests, with the span ids diagd exported to
//! an OTLP collector. Every runtime counts every request it serves.

use std::collections::BTreeSet;
use std::time::Duration;

use diag_core::unix_time_ms;
use diag_tests::otlp::{Collector, hex, new_ids, traceparent};
use diag_tests::prometheus::Prometheus;
use diag_tests::{Diagd, request, wait_for};
use serde_json::Value;

/// A PromQL expression, URL-encoded for a query string.
fn encode(expr: &str) -> String {
    expr.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'(' | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The single value `expr` evaluates to, as a number.
fn value(prometheus: &Prometheus, expr: &str) -> Result<f64, String> {
    let result = prometheus.query(&encode(expr))?;
    let v = result.first().ok_or_else(|| format!("{expr}: no series yet"))?;
    v["value"][1].as_str().ok_or("no value")?.parse().map_err(|e| format!("{e}"))
}

/// `(trace_id, span_id)` of every exemplar of the series `selector` selects.
fn exemplars(prometheus: &Prometheus, selector: &str) -> Result<BTreeSet<(String, String)>, String> {
    let now = unix_time_ms() as f64 / 1000.0;
    let path =
        format!("/api/v1/query_exemplars?query={}&start={:.3}&end={:.3}", encode(selector), now - 3600.0, now + 3600.0);
    let r = std::panic::catch_unwind(|| request(prometheus.addr, "GET", &path, &[]))
        .map_err(|_| "not listening".to_owned())?;
    let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))?;
    if body["status"] != "success" {
        return Err(r.text());
    }
    let mut out = BTreeSet::new();
    for series in body["data"].as_array().cloned().unwrap_or_default() {
        for e in series["exemplars"].as_array().cloned().unwrap_or_default() {
            let label = |k: &str| e["labels"][k].as_str().unwrap_or_default().to_owned();
            out.insert((label("trace_id"), label("span_id")));
        }
    }
    Ok(out)
}

#[test]
fn prometheus_counts_diagd_requests_and_finds_their_traces() {
    let collector = Collector::http();
    // Rate 0: only the test's own (sampled) requests are traced.
    let config = format!(
        "tracing_service:\n  enabled: true\n  exporter_url: http://{}\n  sampling_rate_per_million: 0\n",
        collector.addr
    );
    let diagd = Diagd::start("tokio", Some(&config));
    let mut traces = BTreeSet::new();
    const HEALTHZ: usize = 7;
    for _ in 0..HEALTHZ {
        let (trace_id, parent) = new_ids();
        let r = request(diagd.addr, "GET", "/healthz", &[("traceparent", &traceparent(&trace_id, &parent))]);
        assert_eq!(r.status, 200);
        traces.insert(trace_id);
    }
    const MISSING: usize = 3;
    for _ in 0..MISSING {
        assert_eq!(diagd.get("/no-such-path").status, 404);
    }

    let prometheus = Prometheus::start(
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: diagd\n    \
             static_configs:\n      - targets: ['{}']\n",
            diagd.addr
        ),
        &["--enable-feature=native-histograms,exemplar-storage"],
    );
    let family = "diag_http_request_duration_seconds";
    wait_for("the healthz and 404 counts", Duration::from_secs(60), || {
        let healthz = value(&prometheus, &format!("histogram_count({family}{{route=\"healthz\",code=\"2xx\"}})"))?;
        let other = value(&prometheus, &format!("histogram_count({family}{{route=\"other\",code=\"4xx\"}})"))?;
        if (healthz, other) == (HEALTHZ as f64, MISSING as f64) {
            Ok(())
        } else {
            Err(format!("healthz {healthz}, other {other}"))
        }
    });
    // A scrape's duration is observed when its response head is ready, and the body is
    // written after that: the `/metrics` series in scrape n counts the n scrapes so far, so its
    // latest count equals the scrapes stored (both come from the same, latest scrape).
    wait_for("the metrics count", Duration::from_secs(30), || {
        let scrapes = value(&prometheus, "sum(count_over_time(up{job=\"diagd\"}[1h]))")?;
        let d = value(
            &prometheus,
            &format!(
                "sum(histogram_count({family}{{route=\"metrics\"}})) - sum(count_over_time(up{{job=\"diagd\"}}[1h]))"
            ),
        )?;
        if scrapes >= 2.0 && d == 0.0 { Ok(()) } else { Err(format!("scrapes {scrapes}, count − scrapes = {d}")) }
    });
    // Exemplars: the latest request of each classic bucket, one of the test's traces, with
    // the span id diagd exported for that request.
    let found = wait_for("exemplars from the request traces", Duration::from_secs(60), || {
        let got = exemplars(&prometheus, &format!("{family}{{route=\"healthz\"}}"))?;
        if !got.is_empty() && got.iter().all(|(t, _)| traces.contains(t)) {
            Ok(got)
        } else {
            Err(format!("exemplars {got:?}, want trace ids among {traces:?}"))
        }
    });
    for (trace_id, span_id) in found {
        let (_, span) = collector.wait_for_span("the exemplar's span", |s| hex(&s.trace_id) == trace_id);
        assert_eq!(hex(&span.span_id), span_id, "the exemplar names diagd's span of that request");
    }
    // Untraced requests give no exemplar.
    let other = exemplars(&prometheus, &format!("{family}{{route=\"other\"}}")).unwrap();
    assert!(other.is_empty(), "{other:?}");
}

#[test]
fn every_runtime_counts_its_requests() {
    diag_tests::each_runtime(|runtime| {
        let diagd = Diagd::start(runtime, None);
        for _ in 0..5 {
            assert_eq!(diagd.get("/livez").status, 200);
        }
        assert_eq!(diagd.get("/readyz/nonexistent").status, 404);
        let text = diagd.get("/metrics").text();
        let line = |labels: &str| {
            let prefix = format!("diag_http_request_duration_seconds_count{{{labels}}} ");
            text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(str::to_owned)
        };
        assert_eq!(line("route=\"livez\",code=\"2xx\"").as_deref(), Some("5"), "{runtime}:\n{text}");
        assert_eq!(line("route=\"readyz\",code=\"4xx\"").as_deref(), Some("1"), "{runtime}:\n{text}");
        // This scrape is not in its own answer.
        assert_eq!(line("route=\"metrics\",code=\"2xx\"").as_deref(), Some("1"), "{runtime}:\n{text}");
        let text = diagd.get("/metrics").text();
        assert!(
            text.contains("diag_http_request_duration_seconds_count{route=\"metrics\",code=\"2xx\"} 2\n"),
            "{runtime}:\n{text}"
        );
    });
}
