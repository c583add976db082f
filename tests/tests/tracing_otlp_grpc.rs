//! Spans of real requests to diagd reach an in-test OTLP/gRPC collector (tonic), by
//! `grpc://host:port` and by a bare `host:port`, in the caller's trace.

use diag_tests::otlp::{Collector, attr, hex, new_ids, traceparent};
use diag_tests::{Diagd, RUNTIMES, request};

#[test]
fn request_spans_reach_a_grpc_collector() {
    for (runtime, scheme) in RUNTIMES.iter().flat_map(|r| [(r, "grpc://"), (r, "")]) {
        let collector = Collector::grpc();
        let config = format!("tracing_service: {{enabled: true, exporter_url: '{scheme}{}'}}\n", collector.addr);
        let diagd = Diagd::start(runtime, Some(&config));
        let (trace_id, parent) = new_ids();
        // Whatever /readyz answers (400 while starting, then 200), the span records it.
        let response = request(diagd.addr, "GET", "/readyz", &[("traceparent", &traceparent(&trace_id, &parent))]);
        let (resource, span) = collector
            .wait_for_span(&format!("{runtime} {scheme:?}: the /readyz span"), |s| hex(&s.trace_id) == trace_id);
        assert_eq!(hex(&span.parent_span_id), parent);
        assert_eq!(span.name, "GET /readyz");
        assert_eq!(attr(&span.attributes, "http.response.status_code"), Some(response.status.to_string()));
        assert_eq!(attr(&resource, "process.pid"), Some(diagd.pid().to_string()));
    }
}
