//! Bad `tracing_service` settings stop diagd at start with an error naming the key.

use diag_tests::{TempDir, run_diagd};

fn start_with(yaml: &str) -> String {
    let dir = TempDir::new("diagd-tracing-config");
    let path = dir.path().join("diagd.yaml");
    std::fs::write(&path, yaml).unwrap();
    let (status, stderr) = run_diagd(&["start", "-c", path.to_str().unwrap()]);
    assert!(!status.success(), "diagd started with {yaml:?}");
    stderr
}

#[test]
fn bad_settings_name_the_key() {
    for (yaml, key, detail) in [
        ("tracing_service: {enabled: true}", "tracing_service.exporter_url", "required"),
        ("tracing_service: {enabled: true, exporter_url: 'ftp://x:1'}", "tracing_service.exporter_url", "ftp"),
        (
            "tracing_service: {enabled: true, exporter_url: 'file://relative'}",
            "tracing_service.exporter_url",
            "absolute",
        ),
        (
            "tracing_service: {enabled: true, exporter_url: 'file:///tmp/t?limit=lots'}",
            "tracing_service.exporter_url",
            "limit",
        ),
        ("tracing_service: {enabled: true, exporter_url: 'nohostport'}", "tracing_service.exporter_url", "host:port"),
        (
            "tracing_service: {enabled: true, exporter_url: 'c:1', sampling_rate_per_million: 1000001}",
            "tracing_service.sampling_rate_per_million",
            "1000000",
        ),
        (
            "tracing_service: {enabled: true, exporter_url: 'http://c:1', ca_certs: [/x.pem]}",
            "tracing_service.ca_certs",
            "https://",
        ),
        (
            "tracing_service: {enabled: true, exporter_url: 'https://c:1', ca_certs: [/nonexistent/ca.pem]}",
            "tracing_service.ca_certs[0]",
            "/nonexistent/ca.pem",
        ),
        (
            "tracing_service: {enabled: true, exporter_url: 'https://c:1', https_keypairs: [{key_file: /nonexistent/k.pem, cert_file: /nonexistent/c.pem}]}",
            "tracing_service.https_keypairs[0].cert_file",
            "/nonexistent/c.pem",
        ),
        ("tracing_service: {enabled: true, exporter_url: 'c:1', colour: red}", "tracing_service", "colour"),
    ] {
        let stderr = start_with(yaml);
        assert!(
            stderr.contains(key) && stderr.contains(detail),
            "{yaml}: expected {key:?} and {detail:?} in:\n{stderr}"
        );
    }
}
