//! Load: 10,000 scrapes over keep-alive connections while two threads increment a counter and
//! observe a histogram. Every scrape must be consistent (buckets cumulative, `_count` equal to
//! the `+Inf` bucket, values never going back) and, once the writers stop, the totals exact:
//! no increment or observation is lost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use diag_core::http::Service;
use diag_core::{Collect, Counter, DEFAULT_BUCKETS, Histogram, Registry, StateTable};
use diag_tokio::Server;

static STATES: StateTable<2> = StateTable::new();
static OPS: Counter = Counter::new();
static LATENCY: Histogram<11> = Histogram::new(&DEFAULT_BUCKETS);
static REGISTRY: Registry<'static, 4> = Registry::new();
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

const SCRAPES: usize = 10_000;
const PER_CONNECTION: usize = 500;

/// Reads one HTTP/1.1 response with a chunked or sized body from a keep-alive connection.
fn read_response(reader: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {line:?}"));
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        chunked |= header == "transfer-encoding: chunked";
        if let Some(n) = header.strip_prefix("content-length: ") {
            length = Some(n.parse::<usize>().unwrap());
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length.expect("a sized or chunked body"), 0);
        reader.read_exact(&mut body).unwrap();
    }
    (status, String::from_utf8(body).unwrap())
}

/// One scrape's values: (ops, cumulative buckets, count, sum).
fn parse(text: &str) -> (u64, Vec<u64>, u64, f64) {
    let value = |line: &str| line.rsplit(' ').next().unwrap().to_owned();
    let mut ops = None;
    let (mut buckets, mut count, mut sum) = (Vec::new(), None, None);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with("load_ops_total ") {
            ops = Some(value(line).parse().unwrap());
        } else if line.starts_with("load_latency_seconds_bucket{") {
            buckets.push(value(line).parse().unwrap());
        } else if line.starts_with("load_latency_seconds_count ") {
            count = Some(value(line).parse().unwrap());
        } else if line.starts_with("load_latency_seconds_sum ") {
            sum = Some(value(line).parse().unwrap());
        }
    }
    (ops.expect("ops"), buckets, count.expect("count"), sum.expect("sum"))
}

#[test]
fn ten_thousand_scrapes_while_writers_run_lose_nothing() {
    REGISTRY.register("load_ops_total", "Operations.", &OPS).unwrap();
    REGISTRY.register("load_latency_seconds", "Latency.", &LATENCY).unwrap();
    STATES.heartbeat_ok("load", 0).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut limits = diag_core::http::Limits::DEFAULT;
    limits.shutdown_delay_ms = 0;
    let server = Server::new(Service::new(&STATES, &SOURCES, 1)).with_limits(limits);
    let server = runtime.spawn(server.serve(listener, async {
        stopped.await.ok();
    }));

    static RUNNING: AtomicBool = AtomicBool::new(true);
    let writers: Vec<_> = (0..2)
        .map(|t| {
            thread::spawn(move || {
                let mut n = 0u64;
                while RUNNING.load(Ordering::Relaxed) {
                    OPS.inc();
                    // 0.5 and 0.03125 are exact in binary, so every sum is computable exactly.
                    LATENCY.observe(if (n + t).is_multiple_of(2) { 0.5 } else { 0.03125 });
                    n += 1;
                }
                n
            })
        })
        .collect();

    let (mut last_ops, mut last_count, mut grew) = (0, 0, 0);
    for _ in 0..SCRAPES / PER_CONNECTION {
        let stream = TcpStream::connect(addr).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..PER_CONNECTION {
            writer.write_all(b"GET /metrics HTTP/1.1\r\nHost: load\r\n\r\n").unwrap();
            let (status, text) = read_response(&mut reader);
            assert_eq!(status, 200);
            let (ops, buckets, count, sum) = parse(&text);
            assert_eq!(buckets.len(), 12, "11 bounds and +Inf");
            assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "buckets cumulative: {buckets:?}");
            assert_eq!(*buckets.last().unwrap(), count, "_count equals the +Inf bucket");
            let (small, half) = (buckets[3] - buckets[2], buckets[6] - buckets[5]);
            assert_eq!(small + half, count, "only the two values were observed");
            assert_eq!(sum, small as f64 * 0.03125 + half as f64 * 0.5, "_sum is that of the counted observations");
            assert!(ops >= last_ops && count >= last_count, "values never go back");
            grew += usize::from(count > last_count);
            (last_ops, last_count) = (ops, count);
        }
    }

    RUNNING.store(false, Ordering::Relaxed);
    let done: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let total: u64 = done.iter().sum();
    let halves: u64 = done.iter().enumerate().map(|(t, n)| (n + 1 - t as u64 % 2) / 2).sum();
    let expected_sum = halves as f64 * 0.5 + (total - halves) as f64 * 0.03125;

    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n").unwrap();
    let (status, text) = read_response(&mut BufReader::new(stream));
    assert_eq!(status, 200);
    let (ops, buckets, count, sum) = parse(&text);
    assert_eq!(ops, total, "every increment is counted");
    assert_eq!(count, total, "every observation is counted");
    assert_eq!(buckets[1], 0, "le=0.01 holds nothing");
    assert_eq!(buckets[3] - buckets[2], total - halves, "0.03125 lands in le=0.05");
    assert_eq!(buckets[6] - buckets[5], halves, "0.5 lands in le=0.5");
    assert_eq!(sum, expected_sum);
    assert!(grew >= SCRAPES / 100, "the writers ran during the scrapes: only {grew} scrapes saw new observations");

    stop_server.send(()).unwrap();
    runtime.block_on(server).unwrap().unwrap();
}
