//! OTLP over HTTPS with a test CA and a client keypair (mTLS) made with rcgen: spans arrive;
//! with the wrong CA the export fails with a clear error in the log, the spans are counted
//! as dropped, and diagd goes on serving.

use diag_tests::otlp::{Collector, Pki, hex, new_ids, spans_dropped, tls_server, traceparent};
use diag_tests::{Diagd, TempDir, request, wait_for};
use std::time::Duration;

/// diagd exporting to `collector` over HTTPS, trusting `ca_pem` and presenting the test
/// client keypair of `pki`, after one traced `/healthz`; returns diagd, the request's trace
/// and parent ids, and the directory holding the TLS files.
fn traced_diagd(ca_pem: &str, pki: &Pki, collector: &Collector) -> (Diagd, (String, String), TempDir) {
    let dir = TempDir::new("diagd-tls");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let config = format!(
        "tracing_service:\n  enabled: true\n  exporter_url: https://localhost:{}\n  ca_certs: ['{}']\n  https_keypairs:\n    - {{key_file: '{}', cert_file: '{}'}}\n",
        collector.addr.port(),
        write("ca.pem", ca_pem),
        write("client-key.pem", &pki.client.1),
        write("client.pem", &pki.client.0),
    );
    let diagd = Diagd::start("tokio", Some(&config));
    let (trace_id, parent) = new_ids();
    let traced = request(diagd.addr, "GET", "/healthz", &[("traceparent", &traceparent(&trace_id, &parent))]);
    assert_eq!(traced.status, 200);
    (diagd, (trace_id, parent), dir)
}

#[test]
fn mtls_with_the_test_ca_delivers_spans() {
    let pki = Pki::new();
    let collector = Collector::https(tls_server(&pki, Some(&pki.ca_pem)));
    let (diagd, (trace_id, parent), _dir) = traced_diagd(&pki.ca_pem, &pki, &collector);
    let (_, span) = collector.wait_for_span("the span over mTLS", |s| hex(&s.trace_id) == trace_id);
    assert_eq!(hex(&span.parent_span_id), parent);
    assert_eq!(spans_dropped(&diagd), 0);
}

#[test]
fn a_wrong_ca_fails_clearly_and_diagd_keeps_serving() {
    let (pki, other) = (Pki::new(), Pki::new());
    let collector = Collector::https(tls_server(&pki, Some(&pki.ca_pem)));
    let (diagd, _, _dir) = traced_diagd(&other.ca_pem, &pki, &collector);
    wait_for("the export error in the log", Duration::from_secs(30), || {
        let log = diagd.stderr();
        if log.contains("cannot export spans") { Ok(()) } else { Err(log) }
    });
    let log = diagd.stderr();
    let line = log.lines().find(|l| l.contains("cannot export spans")).unwrap();
    assert!(line.contains("certificate") || line.contains("UnknownIssuer"), "not a clear TLS error: {line}");
    assert!(line.contains(&format!("https://localhost:{}", collector.addr.port())), "names the exporter: {line}");
    wait_for("dropped spans counted", Duration::from_secs(30), || match spans_dropped(&diagd) {
        0 => Err("0".into()),
        n => Ok(n),
    });
    assert_eq!(diagd.get("/healthz").status, 200);
    assert!(collector.spans().is_empty(), "nothing got through");
}
