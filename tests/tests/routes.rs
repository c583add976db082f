//! Every route of docs/endpoints.md, with its status, headers and body, against diagd's default
//! configuration (one self-heartbeating `agent` component).

use std::time::Duration;

use diag_tests::{Diagd, RUNTIMES, request, wait_for};

fn assert_common_headers(r: &diag_tests::Response, what: &str) {
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
}

fn ready(diagd: &Diagd) {
    wait_for("readyz 200", Duration::from_secs(10), || {
        let r = diagd.get("/readyz");
        if r.status == 200 { Ok(()) } else { Err(r.text()) }
    });
}

#[test]
fn health_and_readiness_routes() {
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, None);
        ready(&diagd);
        let pid = diagd.pid();

        for path in ["/healthz", "/livez"] {
            let r = diagd.get(path);
            assert_eq!((r.status, r.text().as_str()), (200, r#"{"status":"ok"}"#), "{runtime} {path}");
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_common_headers(&r, path);
        }

        let r = diagd.get("/readyz");
        assert_eq!(r.text(), format!(r#"{{"status":"ok","pid":{pid}}}"#), "{runtime}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert_common_headers(&r, "/readyz");

        let r = diagd.get("/readyz?verbose");
        assert_eq!((r.status, r.text().as_str()), (200, "[+]agent ok\nreadyz check passed\n"), "{runtime}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

        let r = diagd.get("/readyz/agent");
        assert_eq!((r.status, r.text()), (200, format!(r#"{{"status":"ok","pid":{pid}}}"#)));
        let r = diagd.get("/readyz/nope");
        assert_eq!(r.status, 404, "{runtime}: unknown component");
        assert_common_headers(&r, "/readyz/nope");
    }
}

#[test]
fn metrics_negotiation_and_gzip() {
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, None);
        ready(&diagd);

        let r = diagd.get("/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"), "{runtime}");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "streamed");
        assert_common_headers(&r, "/metrics");
        let text = r.text();
        for family in [
            "process_state 0\n",
            "diag_build_info{version=\"",
            "promhttp_metric_handler_requests_total{code=\"200\"} ",
            "promhttp_metric_handler_requests_in_flight 1\n",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_virtual_memory_max_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(family), "{runtime}: {family:?} missing from\n{text}");
        }
        // Runtime gauges: tokio exposes them; smol and async-std expose none, so none are made up.
        for family in ["tokio_runtime_workers ", "tokio_runtime_alive_tasks ", "tokio_runtime_global_queue_depth "] {
            assert_eq!(text.contains(family), *runtime == "tokio", "{runtime}: {family:?} in\n{text}");
        }
        assert!(!text.contains("# EOF"));

        let om = request(
            diagd.addr,
            "GET",
            "/metrics",
            &[("Accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")],
        );
        assert_eq!(om.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
        assert!(om.text().ends_with("# EOF\n"));
        let text_preferred = request(
            diagd.addr,
            "GET",
            "/metrics",
            &[("Accept", "application/openmetrics-text;q=0.4,text/plain;q=0.9")],
        );
        assert_eq!(text_preferred.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));

        let gz = request(diagd.addr, "GET", "/metrics", &[("Accept-Encoding", "gzip")]);
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{runtime}");
        assert!(gz.gunzip().contains("process_state 0\n"));
        let identity = request(diagd.addr, "GET", "/metrics", &[("Accept-Encoding", "gzip;q=0, identity")]);
        assert_eq!(identity.header("content-encoding"), None);
    }
}

#[test]
fn head_404_and_405() {
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, None);
        ready(&diagd);
        for path in ["/healthz", "/readyz", "/metrics"] {
            let get = diagd.get(path);
            let head = request(diagd.addr, "HEAD", path, &[]);
            assert_eq!(head.status, get.status, "{runtime} HEAD {path}");
            assert_eq!(head.header("content-type"), get.header("content-type"));
            assert!(head.body.is_empty(), "HEAD {path} has no body");
            assert_common_headers(&head, path);
        }
        assert_eq!(request(diagd.addr, "HEAD", "/healthz", &[]).header("content-length"), Some("15"));

        for path in ["/", "/nope", "/metrics/", "/debug/pprof/heap"] {
            let r = diagd.get(path);
            assert_eq!(r.status, 404, "{runtime} {path}");
            assert_common_headers(&r, path);
        }
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            let r = request(diagd.addr, method, "/healthz", &[("Content-Length", "0")]);
            assert_eq!(r.status, 405, "{runtime} {method}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"));
            assert_common_headers(&r, method);
        }
    }
}
