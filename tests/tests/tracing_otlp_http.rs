//! Spans of real requests to diagd reach an in-test OTLP/HTTP collector, in the caller's trace
//! (W3C `traceparent`), with diagd's resource; rate 0 keeps only what the caller sampled;
//! heartbeat checks make spans too.

use diag_tests::otlp::{Collector, attr, hex, new_ids, traceparent};
use diag_tests::{Diagd, RUNTIMES, request};

fn config(collector: &Collector, rate: u32, extra: &str) -> String {
    format!(
        "tracing_service:\n  enabled: true\n  exporter_url: http://{}\n  sampling_rate_per_million: {rate}\n{extra}",
        collector.addr
    )
}

#[test]
fn request_spans_join_the_callers_trace_at_rate_zero() {
    for runtime in RUNTIMES {
        let collector = Collector::http();
        let diagd = Diagd::start(runtime, Some(&config(&collector, 0, "")));
        let (trace_id, parent) = new_ids();
        let response = request(diagd.addr, "GET", "/healthz", &[("traceparent", &traceparent(&trace_id, &parent))]);
        assert_eq!(response.status, 200);
        let (resource, span) = collector.wait_for_span("the /healthz span", |s| hex(&s.trace_id) == trace_id);
        assert_eq!(hex(&span.parent_span_id), parent, "{runtime}: parent is the caller's span");
        assert_eq!(span.name, "GET /healthz");
        assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
        assert_eq!(attr(&span.attributes, "http.request.method").as_deref(), Some("GET"));
        assert_eq!(attr(&span.attributes, "url.path").as_deref(), Some("/healthz"));
        assert_eq!(attr(&span.attributes, "http.response.status_code").as_deref(), Some("200"));
        assert_eq!(attr(&resource, "service.name").as_deref(), Some("diagd"));
        assert_eq!(attr(&resource, "service.version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(attr(&resource, "process.pid"), Some(diagd.pid().to_string()));
        assert!(attr(&resource, "host.name").is_some_and(|h| !h.is_empty()), "{resource:?}");

        // At rate 0, neither a request without traceparent nor one whose caller did not sample
        // makes a span. They are sent before a sampled marker, so their spans (if any) would
        // have been exported no later than the marker's.
        let (unsampled, unsampled_parent) = new_ids();
        let header = format!("00-{unsampled}-{unsampled_parent}-00");
        assert_eq!(request(diagd.addr, "GET", "/metrics", &[("traceparent", &header)]).status, 200);
        request(diagd.addr, "GET", "/readyz?verbose", &[]);
        let (marker, marker_parent) = new_ids();
        let header = traceparent(&marker, &marker_parent);
        assert_eq!(request(diagd.addr, "GET", "/healthz", &[("traceparent", &header)]).status, 200);
        collector.wait_for_span("the marker span", |s| hex(&s.trace_id) == marker);
        let spans = collector.spans();
        assert!(spans.iter().all(|(_, s)| hex(&s.trace_id) != unsampled), "unsampled caller recorded");
        assert!(spans.iter().all(|(_, s)| s.name != "GET /metrics" && s.name != "GET /readyz"), "{spans:?}");
    }
}

#[test]
fn full_rate_samples_root_requests_and_heartbeats_with_their_outcome() {
    let collector = Collector::http();
    let closed = diag_tests::free_port();
    let components = format!(
        "components:\n  - {{name: db, tcp: '127.0.0.1:{closed}', heartbeat_period: 200ms}}\n  - {{name: job, exec: [true], heartbeat_period: 200ms}}\n"
    );
    let diagd = Diagd::start("tokio", Some(&config(&collector, 1_000_000, &components)));
    assert_eq!(diagd.get("/metrics").status, 200);
    let (_, root) = collector.wait_for_span("a root /metrics span", |s| s.name == "GET /metrics");
    assert!(root.parent_span_id.is_empty(), "a root span: {root:?}");
    let (_, failed) = collector.wait_for_span("a failed db heartbeat", |s| s.name == "heartbeat db");
    assert_eq!(failed.status.as_ref().map(|s| s.code), Some(2), "STATUS_CODE_ERROR: {failed:?}");
    assert!(attr(&failed.attributes, "error").is_some_and(|e| e.contains("cannot connect")), "{failed:?}");
    let (_, ok) = collector.wait_for_span("a job heartbeat", |s| s.name == "heartbeat job");
    assert_ne!(ok.status.as_ref().map(|s| s.code), Some(2), "{ok:?}");
    assert_eq!(attr(&ok.attributes, "component").as_deref(), Some("job"));
}
