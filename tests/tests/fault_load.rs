//! Faults and load against a running diagd, under every runtime, on 127.0.0.1 only and
//! bounded in time: many idle and slow connections, a heartbeat check that hangs, a soak of
//! scrapes watching the resident memory — and no panic anywhere.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use diag_tests::{Diagd, RUNTIMES, each_runtime, request, wait_for};

/// Resident memory of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn assert_no_panic(diagd: &Diagd, runtime: &str) {
    let stderr = diagd.stderr();
    assert!(!stderr.contains("panicked"), "{runtime}: diagd panicked:\n{stderr}");
}

/// 500 idle connections and 20 clients sending a header byte by byte, slowly: `/healthz` still
/// answers at once (the median of 20 requests under 100 ms; every one under 1 s).
#[test]
fn healthz_answers_with_500_idle_and_slow_header_clients_open() {
    each_runtime(|runtime| {
        let diagd = Diagd::start(runtime, None);
        let idle: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(diagd.addr).expect("connect")).collect();
        let mut slow: Vec<TcpStream> = (0..20)
            .map(|_| {
                let mut s = TcpStream::connect(diagd.addr).expect("connect");
                s.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
                s
            })
            .collect();
        let mut latencies = Vec::new();
        for i in 0..20 {
            // Keep the slow clients dribbling so the server holds them open.
            for s in &mut slow {
                let _ = s.write_all(&[b'x' + (i % 2) as u8]);
            }
            let started = Instant::now();
            let r = request(diagd.addr, "GET", "/healthz", &[]);
            latencies.push(started.elapsed());
            assert_eq!((r.status, r.text()), (200, r#"{"status":"ok"}"#.to_string()), "{runtime}");
        }
        latencies.sort();
        assert!(latencies[10] < Duration::from_millis(100), "{runtime}: median {:?}", latencies[10]);
        assert!(latencies[19] < Duration::from_secs(1), "{runtime}: slowest {:?}", latencies[19]);
        drop((idle, slow));
        assert_no_panic(&diagd, runtime);
    });
}

/// A check that hangs (exec `sleep 1000`) is cut off at its period and marks only its own
/// component degraded; the other component keeps heartbeating on time, as closing its
/// listener shows within a few periods.
#[test]
fn a_hanging_check_does_not_stall_other_components() {
    each_runtime(|runtime| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = format!(
            "components:\n  - name: stuck\n    exec: [sleep, \"1000\"]\n    heartbeat_period: 1s\n  - name: live\n    tcp: 127.0.0.1:{port}\n    heartbeat_period: 200ms\n    recovery_window: 100ms\n"
        );
        let diagd = Diagd::start(runtime, Some(&config));
        wait_for("live ok, stuck degraded", Duration::from_secs(10), || {
            let (live, stuck) = (diagd.get("/readyz/live"), diagd.get("/readyz/stuck"));
            match (live.status, stuck.status) {
                (200, 503) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        // While `stuck` hangs in every period, `live` still notices its listener going away.
        drop(listener);
        let closed = Instant::now();
        wait_for("live degraded", Duration::from_secs(5), || match diagd.get("/readyz/live").status {
            503 => Ok(()),
            s => Err(format!("{s}")),
        });
        assert!(closed.elapsed() < Duration::from_secs(2), "{runtime}: live noticed after {:?}", closed.elapsed());
        assert_eq!(diagd.get("/readyz").status, 503, "{runtime}: the process is degraded");
        assert_no_panic(&diagd, runtime);
    });
}

/// Scrapes in a loop for `DIAG_SOAK_SECONDS` (default 15; longer soaks set it) against every runtime at once; the
/// resident memory after the soak stays within 4 MiB of what it was after a warm-up.
#[test]
fn rss_stays_flat_across_a_soak_of_scrapes() {
    let seconds: u64 = std::env::var("DIAG_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let soaks: Vec<_> = RUNTIMES
        .iter()
        .map(|runtime| {
            std::thread::spawn(move || {
                let diagd = Diagd::start(runtime, None);
                let scrape = |accept: &str| {
                    let r = request(diagd.addr, "GET", "/metrics", &[("Accept", accept), ("Accept-Encoding", "gzip")]);
                    assert_eq!(r.status, 200, "{runtime}");
                };
                for _ in 0..500 {
                    scrape("text/plain");
                }
                let before = rss_kib(diagd.pid());
                let (deadline, mut scrapes) = (Instant::now() + Duration::from_secs(seconds), 0u64);
                while Instant::now() < deadline {
                    scrape(if scrapes % 2 == 0 { "text/plain" } else { "application/openmetrics-text" });
                    scrapes += 1;
                }
                let after = rss_kib(diagd.pid());
                assert_no_panic(&diagd, runtime);
                (runtime, before, after, scrapes)
            })
        })
        .collect();
    for soak in soaks {
        let (runtime, before, after, scrapes) = soak.join().unwrap();
        println!("{runtime}: {scrapes} scrapes in {seconds} s, RSS {before} KiB -> {after} KiB");
        assert!(scrapes > 100, "{runtime}: only {scrapes} scrapes");
        assert!(after <= before + 4096, "{runtime}: RSS grew from {before} KiB to {after} KiB over {scrapes} scrapes");
    }
}
