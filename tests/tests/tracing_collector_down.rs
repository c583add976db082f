//! A collector that is down at start or killed mid-run never blocks serving or fails
//! start-up; the lost spans are counted in `/metrics`.

use std::time::{Duration, Instant};

use diag_tests::otlp::{Collector, hex, new_ids, spans_dropped, traceparent};
use diag_tests::{Diagd, free_port, request, wait_for};

fn readyz_answers(diagd: &Diagd) {
    for _ in 0..20 {
        let (trace_id, parent) = new_ids();
        let start = Instant::now();
        let status = request(diagd.addr, "GET", "/readyz", &[("traceparent", &traceparent(&trace_id, &parent))]).status;
        assert_eq!(status, 200, "{}", diagd.stderr());
        // Not a speed check: a request that waited on the export would take at least the
        // exporter's 5 s timeout (or hang); 4 s leaves a debug build under load ample room.
        assert!(start.elapsed() < Duration::from_secs(4), "/readyz took {:?}", start.elapsed());
    }
}

#[test]
fn a_collector_killed_mid_run_leaves_readyz_answering() {
    for kind in ["http", "grpc"] {
        let mut collector = if kind == "http" { Collector::http() } else { Collector::grpc() };
        let config = format!(
            "tracing_service: {{enabled: true, exporter_url: '{kind}://{}', sampling_rate_per_million: 1000000}}\n",
            collector.addr
        );
        let diagd = Diagd::start("tokio", Some(&config));
        wait_for("ready", Duration::from_secs(20), || match diagd.get("/readyz").status {
            200 => Ok(()),
            s => Err(s.to_string()),
        });
        let (trace_id, parent) = new_ids();
        request(diagd.addr, "GET", "/healthz", &[("traceparent", &traceparent(&trace_id, &parent))]);
        collector.wait_for_span("a span before the kill", |s| hex(&s.trace_id) == trace_id);
        assert_eq!(spans_dropped(&diagd), 0);

        collector.kill();
        readyz_answers(&diagd);
        wait_for(&format!("{kind}: dropped spans counted"), Duration::from_secs(30), || match spans_dropped(&diagd) {
            0 => Err(format!("0; log:\n{}", diagd.stderr())),
            n => Ok(n),
        });
        readyz_answers(&diagd);
        assert!(diagd.stderr().contains("cannot export spans"), "{}", diagd.stderr());
    }
}

#[test]
fn no_collector_at_start_is_not_an_error() {
    for scheme in ["http://", "grpc://", ""] {
        let config = format!(
            "tracing_service: {{enabled: true, exporter_url: '{scheme}127.0.0.1:{}', sampling_rate_per_million: 1000000}}\n",
            free_port()
        );
        let diagd = Diagd::start("tokio", Some(&config));
        wait_for("ready", Duration::from_secs(20), || match diagd.get("/readyz").status {
            200 => Ok(()),
            s => Err(s.to_string()),
        });
        readyz_answers(&diagd);
        wait_for(&format!("{scheme}: dropped spans counted"), Duration::from_secs(30), || {
            match spans_dropped(&diagd) {
                0 => Err("0".into()),
                n => Ok(n),
            }
        });
    }
}

#[test]
fn a_collector_that_never_answers_does_not_slow_requests() {
    // Accepts connections and reads nothing, answers nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let config = format!(
        "tracing_service: {{enabled: true, exporter_url: 'http://{addr}', sampling_rate_per_million: 1000000}}\n"
    );
    let diagd = Diagd::start("tokio", Some(&config));
    wait_for("ready", Duration::from_secs(20), || match diagd.get("/readyz").status {
        200 => Ok(()),
        s => Err(s.to_string()),
    });
    readyz_answers(&diagd);
    // The export times out after 5 s; its spans are then counted.
    wait_for("timed-out spans counted", Duration::from_secs(30), || match spans_dropped(&diagd) {
        0 => Err("0".into()),
        n => Ok(n),
    });
    readyz_answers(&diagd);
    let log = diagd.stderr();
    assert!(log.contains("cannot export spans") && log.contains("timed out"), "{log}");
}
