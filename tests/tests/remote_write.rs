//! Remote write requests built by the core (`diag_core::remote_write::Push`, compressed with
//! `diag_core::snappy`) are accepted by a real Prometheus (`--web.enable-remote-write-receiver`),
//! and every value comes back through its query API: counters, gauges, a labelled family with
//! escaped values, a histogram's `_bucket`/`_sum`/`_count`, external labels, and a push split
//! over many requests.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diag_core::remote_write::Push;
use diag_core::snappy::{Compressor, max_compressed_len};
use diag_core::{Collect, Counter, Family, GaugeF64, Histogram, Registry};
use diag_tests::prometheus::Prometheus;
use diag_tests::{exchange, parse_response, wait_for};
use serde_json::Value;

/// POSTs one snappy-compressed `WriteRequest` with remote write 1.0's headers; returns the
/// status and body.
fn post(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let mut raw = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nUser-Agent: diag-tests\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let response = parse_response(&exchange(addr, &raw), false).expect("an HTTP response");
    (response.status, response.text())
}

fn value(result: &[Value]) -> f64 {
    result.first().expect("a series")["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_accepts_pushed_series_and_returns_every_value() {
    static BOUNDS: [f64; 3] = [0.01, 0.1, 1.0];
    let sent = Counter::new();
    let temperature = GaugeF64::new();
    let requests: Family<Counter, (&str, u16), 64> = Family::new(["path", "code"], ());
    let latency: Histogram<3> = Histogram::new(&BOUNDS);
    let registry: Registry<'_, 8> = Registry::new();
    registry.register("rw_sent_total", "Packets sent.", &sent).unwrap();
    registry.register("rw_temperature_celsius", "Board temperature.", &temperature).unwrap();
    registry.register("rw_requests_total", "Requests.", &requests).unwrap();
    registry.register("rw_latency_seconds", "Latency.", &latency).unwrap();
    sent.inc_by(42);
    temperature.set(-12.25);
    for i in 0..40u16 {
        requests.get_or_create((&format!("/item/{i}"), 200)).unwrap().inc_by(u64::from(i) + 1);
    }
    requests.get_or_create(("/a\"b\\c\nd", 500)).unwrap().inc_by(3);
    for v in [0.005, 0.05, 0.05, 0.5, 5.0] {
        latency.observe(v);
    }

    let prometheus = Prometheus::start("global: {}\n", &["--web.enable-remote-write-receiver"]);
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let sources: [&dyn Collect; 1] = [&registry];
    let external = [("job", "rw-test"), ("instance", "mcu-7")];
    let (mut text, mut request) = ([0u8; 2048], [0u8; 512]);
    let mut wire = vec![0u8; max_compressed_len(request.len())];
    let mut snappy = Compressor::<256>::new();
    let mut push = Push::new(&sources, &external, now_ms, &mut text);
    let mut sent_requests = 0;
    while let Some(len) = push.next_request(&mut request).expect("push") {
        let n = snappy.compress(&request[..len], &mut wire).expect("room");
        let (status, body) = post(prometheus.addr, &wire[..n]);
        assert_eq!(status, 204, "request {sent_requests}: {body}");
        sent_requests += 1;
    }
    assert!(sent_requests > 3, "a 512-byte buffer splits the push: {sent_requests} requests");

    let at = Some(now_ms as f64 / 1000.0);
    let q = |expr: &str| {
        wait_for(expr, Duration::from_secs(20), || {
            let r = prometheus.query_at(expr, at)?;
            (!r.is_empty()).then_some(r).ok_or_else(|| "no series yet".to_owned())
        })
    };
    let counter = q("rw_sent_total");
    assert_eq!(value(&counter), 42.0);
    assert_eq!(counter[0]["metric"]["job"], "rw-test");
    assert_eq!(counter[0]["metric"]["instance"], "mcu-7");
    assert_eq!(value(&q("rw_temperature_celsius")), -12.25);

    let family = q("rw_requests_total");
    assert_eq!(family.len(), 41, "every series of the family, across requests");
    for series in &family {
        let path = series["metric"]["path"].as_str().unwrap();
        let v: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
        match path.strip_prefix("/item/") {
            Some(i) => {
                assert_eq!(v, i.parse::<f64>().unwrap() + 1.0, "{path}");
                assert_eq!(series["metric"]["code"], "200");
            }
            None => {
                assert_eq!(path, "/a\"b\\c\nd", "unescaped in the request");
                assert_eq!((v, series["metric"]["code"].as_str()), (3.0, Some("500")));
            }
        }
    }

    assert_eq!(value(&q("rw_latency_seconds_count")), 5.0);
    assert_eq!(value(&q("rw_latency_seconds_sum")), 0.005 + 0.05 + 0.05 + 0.5 + 5.0);
    let buckets = q("rw_latency_seconds_bucket");
    let by_le = |le: &str| {
        let s = buckets.iter().find(|s| s["metric"]["le"] == le).unwrap_or_else(|| panic!("le {le}: {buckets:?}"));
        s["value"][1].as_str().unwrap().parse::<f64>().unwrap()
    };
    assert_eq!([by_le("0.01"), by_le("0.1"), by_le("1.0"), by_le("+Inf")], [1.0, 3.0, 4.0, 5.0]);
}
