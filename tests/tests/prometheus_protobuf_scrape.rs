//! A real Prometheus (the Debian package, 2.42) with `--enable-feature=native-histograms`
//! asks for the protobuf exposition first; it scrapes a diag-tokio server holding a counter
//! family (with escaped label values), a gauge and a classic histogram, and the values come
//! back through its query API. A proxy between the two records what was negotiated, so the
//! test knows the scrapes were protobuf.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diag_core::{Collect, Counter, Family, Gauge, Histogram, Registry, unix_time_ms};
use diag_tests::fixtures;
use diag_tests::{TempDir, free_port, request, require_tool, wait_for, wait_timeout};
use serde_json::Value;

const PROTOBUF: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

static BOUNDS: [f64; 4] = [0.1, 0.5, 1.0, 5.0];
static JOBS: Family<Counter, (&'static str,), 4> = Family::new(["queue"], ());
static LATENCY: Histogram<4> = Histogram::new(&BOUNDS);
static DEPTH: Gauge = Gauge::new();
static REGISTRY: Registry<'static, 4> = Registry::new().with_clock(unix_time_ms);
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

struct Prometheus {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
    }
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let binary = require_tool("prometheus", "apt-get install prometheus (Debian package)");
    let dir = TempDir::new("prometheus-pb");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: diag\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--enable-feature=native-histograms")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    Prometheus { child, port, _dir: dir }
}

fn query(prometheus: &Prometheus, expr: &str) -> Result<Vec<Value>, String> {
    let addr = format!("127.0.0.1:{}", prometheus.port).parse().unwrap();
    let path = format!("/api/v1/query?query={expr}");
    let r =
        std::panic::catch_unwind(|| request(addr, "GET", &path, &[])).map_err(|_| "not listening yet".to_owned())?;
    let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))?;
    if body["status"] != "success" {
        return Err(r.text());
    }
    Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// The value of the single series `expr` selects, once it equals `want`.
fn wait_value(prometheus: &Prometheus, expr: &str, want: f64) {
    wait_for(expr, Duration::from_secs(60), || {
        let result = query(prometheus, expr)?;
        let v = result.first().ok_or("no series yet")?;
        let got: f64 = v["value"][1].as_str().ok_or("no value")?.parse().map_err(|e| format!("{e}"))?;
        if (got - want).abs() < 1e-9 { Ok(()) } else { Err(format!("{expr} = {got}, want {want}")) }
    });
}

/// A one-connection-at-a-time proxy to `target` that records each request's `Accept` and
/// each response's `Content-Type`.
fn proxy(target: SocketAddr, seen: Arc<Mutex<Vec<(String, String)>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                // One request per connection: the proxy closes after the response.
                let head = head.replace("Connection: keep-alive", "Connection: close");
                let header = |text: &str, name: &str| {
                    text.lines()
                        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)))
                        .map(|(_, v)| v.trim().to_owned())
                        .unwrap_or_default()
                };
                let accept = header(&head, "accept");
                let Ok(mut server) = TcpStream::connect(target) else { return };
                let request = if head.to_ascii_lowercase().contains("connection:") {
                    head
                } else {
                    head.replacen("\r\n", "\r\nConnection: close\r\n", 1)
                };
                if server.write_all(request.as_bytes()).is_err() {
                    return;
                }
                let mut response = Vec::new();
                let _ = server.read_to_end(&mut response);
                let at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
                let content_type = header(&String::from_utf8_lossy(&response[..at]), "content-type");
                seen.lock().unwrap().push((accept, content_type));
                let _ = client.write_all(&response);
            });
        }
    });
    addr
}

#[test]
fn prometheus_with_native_histograms_scrapes_protobuf() {
    REGISTRY.register("jobs_total", "Jobs done.", &JOBS).unwrap();
    REGISTRY.register("latency_seconds", "Latency.", &LATENCY).unwrap();
    REGISTRY.register("queue_depth", "Queue depth.", &DEPTH).unwrap();
    JOBS.get_or_create(("mail",)).unwrap().inc_by(7);
    JOBS.get_or_create(("a \"quoted\\\" queue",)).unwrap().inc_by(11);
    for v in [0.05, 0.3, 0.3, 0.7, 2.0, 9.0] {
        LATENCY.observe(v);
    }
    DEPTH.set(-4);

    let served = fixtures::serve(&SOURCES, Some(256));
    let addr = served.addr;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let target = proxy(addr, Arc::clone(&seen));

    {
        let prometheus = start_prometheus(target);
        wait_value(&prometheus, "up", 1.0);
        wait_value(&prometheus, "jobs_total%7Bqueue%3D%22mail%22%7D", 7.0);
        // The label value as written: a "quoted\" queue (URL-encoded selector).
        wait_value(&prometheus, "jobs_total%7Bqueue%3D%22a%20%5C%22quoted%5C%5C%5C%22%20queue%22%7D", 11.0);
        wait_value(&prometheus, "queue_depth", -4.0);
        wait_value(&prometheus, "latency_seconds_count", 6.0);
        wait_value(&prometheus, "latency_seconds_sum", 12.35);
        wait_value(&prometheus, "latency_seconds_bucket%7Ble%3D%220.5%22%7D", 3.0);
        wait_value(&prometheus, "latency_seconds_bucket%7Ble%3D%22%2BInf%22%7D", 6.0);
        // The median of the classic buckets: rank 3 of 6 ends the (0.1, 0.5] bucket.
        wait_value(&prometheus, "histogram_quantile(0.5%2C%20latency_seconds_bucket)", 0.5);
        let seen = seen.lock().unwrap();
        let scrapes: Vec<&(String, String)> = seen.iter().filter(|(accept, _)| !accept.is_empty()).collect();
        assert!(!scrapes.is_empty());
        for (accept, content_type) in scrapes {
            assert!(accept.starts_with("application/vnd.google.protobuf;"), "Prometheus asked for {accept}");
            assert_eq!(content_type, PROTOBUF);
        }
    }
    drop(served);
}
