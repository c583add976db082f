//! diag-smol served on 127.0.0.1 and spoken to with raw blocking sockets: every route, status
//! and header, limits, timeouts, the connection cap, extra routes, streaming, gzip, the drain
//! at shutdown and the runtime gauges. Every test runs four times: `serve` driven by `smol::block_on` and by
//! `async_std::task::block_on`, and `serve_spawning` with connections on an executor run by two
//! threads and on async-std's global executor.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use diag_core::http::Limits;
use diag_tests::ask;
use diag_tests::fixtures::tight_limits;
use support::{Runtime, chunk_sizes, connect, exchange, get, split, start, start_with, status_line};

/// Runs each listed test under both runtimes, serving on one thread and spawning.
macro_rules! under_both_runtimes {
    ($($test:ident),* $(,)?) => {
        mod smol {
            $(#[test] fn $test() { super::$test(super::Runtime::Smol) })*
        }
        mod async_std {
            $(#[test] fn $test() { super::$test(super::Runtime::AsyncStd) })*
        }
        mod smol_threads {
            $(#[test] fn $test() { super::$test(super::Runtime::SmolThreads) })*
        }
        mod async_std_spawn {
            $(#[test] fn $test() { super::$test(super::Runtime::AsyncStdSpawn) })*
        }
    };
}

under_both_runtimes!(
    every_route_answers_with_its_status_headers_and_body,
    oversized_and_malformed_heads_get_4xx_while_others_are_served,
    an_error_answer_reaches_a_client_that_reads_late,
    a_slow_head_is_closed_after_the_header_timeout_and_others_are_served_meanwhile,
    an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout,
    idle_timeout_applies_after_a_request_that_outlived_the_header_timeout,
    at_the_cap_the_longest_idle_connection_gives_way_to_a_new_one,
    when_every_connection_is_busy_a_new_one_gets_a_quick_503,
    extra_routes_come_first_and_get_the_common_headers,
    metrics_stream_in_chunks_and_gzip_decodes_to_the_same_series,
    head_has_no_body_and_shutdown_drains,
    shutdown_lets_the_request_in_flight_finish,
    during_the_shutdown_delay_readyz_is_503_healthz_200_then_the_server_drains,
    a_readiness_shutting_down_by_itself_starts_the_drain,
    the_gauges_count_tasks_connections_and_threads,
);

fn every_route_answers_with_its_status_headers_and_body(rt: Runtime) {
    let s = start(rt);
    let common = |head: &str| {
        assert!(head.contains("cache-control: no-store\r\n"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff\r\n"), "{head}");
    };
    // Fixed bodies carry their length; the verbose readiness text is streamed.
    let cases: [(&str, &str, &str, &[u8], bool); 7] = [
        ("/healthz", "200 ok", "application/json", br#"{"status":"ok"}"#, true),
        ("/livez", "200 ok", "application/json", br#"{"status":"ok"}"#, true),
        ("/readyz", "200 ok", "application/json", br#"{"status":"ok","pid":99}"#, true),
        ("/readyz?verbose", "200 ok", "text/plain; charset=utf-8", b"[+]app ok\nreadyz check passed\n", false),
        ("/readyz/app", "200 ok", "application/json", br#"{"status":"ok","pid":99}"#, true),
        ("/readyz/nobody", "404 not found", "application/json", br#"{"status":"unknown component","pid":99}"#, true),
        ("/nope", "404 not found", "text/plain; charset=utf-8", b"404 page not found\n", true),
    ];
    for (path, status, content_type, expected, fixed) in cases {
        let (head, body) = split(&exchange(s.addr, &get(path)));
        assert!(head.starts_with(&format!("http/1.1 {status}\r\n")), "{path}: {head}");
        assert!(head.contains(&format!("content-type: {content_type}\r\n")), "{path}: {head}");
        let framing = if fixed {
            format!("content-length: {}\r\n", expected.len())
        } else {
            "transfer-encoding: chunked\r\n".into()
        };
        assert!(head.contains(&framing), "{path}: {head}");
        common(&head);
        assert_eq!(body, expected, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let (head, body) = split(&exchange(s.addr, &get("/debug/pprof/heap")));
    assert!(head.starts_with("http/1.1 404"), "no debug routes unless served by a hook: {head}");
    common(&head);
    assert!(!body.is_empty());

    let post = b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (head, body) = split(&exchange(s.addr, post));
    assert!(head.starts_with("http/1.1 405 method not allowed\r\n") && head.contains("allow: get, head\r\n"), "{head}");
    common(&head);
    assert_eq!(body, b"405 method not allowed\n");

    let (head, body) = split(&exchange(s.addr, &get("/metrics")));
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{head}");
    assert!(head.contains("vary: accept, accept-encoding\r\n"), "{head}");
    common(&head);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("\nprocess_state 0\n"), "{}", &text[..200]);
    assert!(text.contains("promhttp_metric_handler_requests_in_flight 1\n"));
}

/// An error answer in the same form as every other response: common headers, plain-text
/// body, and the connection closed.
fn assert_error(response: &[u8], status: &str, expected: &[u8]) {
    let (head, body) = split(response);
    assert!(head.starts_with(&format!("http/1.1 {status}\r\n")), "{head}");
    for header in ["cache-control: no-store", "x-content-type-options: nosniff", "connection: close"] {
        assert!(head.contains(&format!("{header}\r\n")), "{header}: {head}");
    }
    assert!(head.contains("content-type: text/plain; charset=utf-8\r\n"), "{head}");
    assert_eq!(body, expected, "{}", String::from_utf8_lossy(&body));
}

fn oversized_and_malformed_heads_get_4xx_while_others_are_served(rt: Runtime) {
    let s = start(rt);
    let too_large: (&str, &[u8]) = ("431 request header fields too large", b"431 request header fields too large\n");
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(9 * 1024));
    assert_error(&exchange(s.addr, big.as_bytes()), too_large.0, too_large.1);
    let many = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_error(&exchange(s.addr, many.as_bytes()), too_large.0, too_large.1);
    let fits =
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n", "a".repeat(7 * 1024));
    assert_eq!(status_line(&exchange(s.addr, fits.as_bytes())), "HTTP/1.1 200 OK");
    for garbage in [&b"GARBAGE\r\n\r\n"[..], b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"\x00\x01\x02\r\n\r\n"] {
        assert_error(&exchange(s.addr, garbage), "400 bad request", b"400 bad request\n");
    }
    // Pipelined after a good request: the good one is answered, then the 400.
    let pipelined = exchange(s.addr, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n");
    let at = pipelined.windows(15).position(|w| w == br#"{"status":"ok"}"#).expect("the good one answered") + 15;
    assert!(pipelined.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_error(&pipelined[at..], "400 bad request", b"400 bad request\n");
    assert_eq!(status_line(&exchange(s.addr, &get("/readyz"))), "HTTP/1.1 200 OK");
}

fn an_error_answer_reaches_a_client_that_reads_late(rt: Runtime) {
    let s = start(rt);
    // Part of the oversized head stays unread by the server; closing at once would reset the
    // connection and could erase the 431 before the client reads it.
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let mut c = connect(s.addr);
    let _ = c.write_all(big.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    let mut out = Vec::new();
    c.read_to_end(&mut out).expect("the answer, then the end of the stream, and no reset");
    assert_error(&out, "431 request header fields too large", b"431 request header fields too large\n");
}

fn a_slow_head_is_closed_after_the_header_timeout_and_others_are_served_meanwhile(rt: Runtime) {
    let s = start(rt);
    let started = Instant::now();
    let mut slow = connect(s.addr);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz"))), "HTTP/1.1 200 OK");
    let mut out = Vec::new();
    let read = slow.read_to_end(&mut out);
    assert!(matches!(read, Ok(0)), "closed without an answer: {read:?} {out:?}");
    assert!(started.elapsed() >= Duration::from_millis(400), "not before the timeout");
}

/// Reads one response of at most 1 KiB from a keep-alive connection.
fn read_one(c: &mut TcpStream) -> String {
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout(rt: Runtime) {
    let s = start(rt);
    let mut c = connect(s.addr);
    // Requests 550 ms apart, longer than the header timeout (400 ms) but within the idle one
    // (1 s): each new head arrives within the idle window, so the connection stays.
    for request in 0..4 {
        if request > 0 {
            std::thread::sleep(Duration::from_millis(550));
        }
        c.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let response = read_one(&mut c);
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    }
    // Then closed by the idle timeout, counted from the last response: the server's timer
    // started before this read returned, so the time measured here is at most 1 s, and at
    // least 1 s less however long this thread waited to be scheduled; a header timeout would
    // close it within 400 ms.
    let idle_since = Instant::now();
    let mut buf = [0u8; 16];
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(c.read(&mut buf).expect("closed by the idle timeout, not left open"), 0);
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(650), "idle timeout, not header timeout: {idle:?}");
}

fn idle_timeout_applies_after_a_request_that_outlived_the_header_timeout(rt: Runtime) {
    let s = start(rt);
    let mut c = connect(s.addr);
    // /slow is in flight when the first header deadline (400 ms) passes; the idle timeout
    // (1 s) must still start when it ends.
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let response = read_one(&mut c);
    assert!(response.starts_with("HTTP/1.1 200 OK") && response.ends_with("slow\n"), "{response}");
    let idle_since = Instant::now();
    let mut buf = [0u8; 16];
    c.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    assert_eq!(c.read(&mut buf).expect("closed by the idle timeout, not left open"), 0);
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(900), "idle timeout, not header timeout: {idle:?}");
}

/// Whether the server has closed `stream` (read returns 0 within 5 s).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(0))
}

/// Whether `stream` is still open: nothing to read, no end of stream.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let open = matches!((&*stream).read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// Polls `f` every 10 ms for up to 5 s.
fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

fn at_the_cap_the_longest_idle_connection_gives_way_to_a_new_one(rt: Runtime) {
    let mut limits = tight_limits();
    limits.header_timeout_ms = 10_000;
    limits.idle_timeout_ms = 10_000;
    let s = start_with(rt, limits);
    let stats = std::sync::Arc::clone(s.server.connection_stats());
    // A silent connection, then an idle keep-alive one, then another silent one: the cap.
    let mut silent = connect(s.addr);
    let mut idle = connect(s.addr);
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_one(&mut idle).starts_with("HTTP/1.1 200 OK"));
    let silent2 = connect(s.addr);
    wait_until("three connections", || stats.open() == 3);

    // A probe is answered at once: the idle connection gives way (before the silent ones, which
    // have waited longer but are still sending their first head).
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz"))), "HTTP/1.1 200 OK");
    assert!(closed_by_server(&mut idle), "the idle keep-alive connection was closed");
    assert!(still_open(&silent) && still_open(&silent2), "the silent ones stay");
    // At the cap again, the next probe: the silent connection waiting longest gives way.
    wait_until("the probe's connection to close", || stats.open() == 2);
    let silent3 = connect(s.addr);
    wait_until("three connections", || stats.open() == 3);
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz"))), "HTTP/1.1 200 OK");
    assert!(closed_by_server(&mut silent), "the longest-waiting connection was closed");
    assert!(still_open(&silent2) && still_open(&silent3));
    assert_eq!(stats.evicted(), 2);
}

fn when_every_connection_is_busy_a_new_one_gets_a_quick_503(rt: Runtime) {
    let s = start(rt);
    let busy: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = connect(s.addr);
            c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (head, body) = split(&exchange(s.addr, &get("/healthz")));
    assert!(head.starts_with("http/1.1 503 service unavailable\r\n"), "{head}");
    assert!(head.contains("connection: close") && head.contains("cache-control: no-store"), "{head}");
    assert_eq!(body, b"503 too many connections: every connection has a request in flight\n");
    assert_eq!(s.server.connection_stats().rejected(), 1);
    // The requests in flight are not disturbed, and once they are done probes are served.
    for mut c in busy {
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    }
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz"))), "HTTP/1.1 200 OK");
}

fn extra_routes_come_first_and_get_the_common_headers(rt: Runtime) {
    let s = start(rt);
    let (head, body) = split(&exchange(s.addr, &get("/hello")));
    assert!(head.starts_with("http/1.1 200 ok"));
    assert!(head.contains("cache-control: no-store") && head.contains("x-content-type-options: nosniff"), "{head}");
    assert_eq!(body, b"hello\n");
    let (head, _) = split(&exchange(s.addr, &get("/nope")));
    assert!(head.starts_with("http/1.1 404"), "{head}");
}

fn metrics_stream_in_chunks_and_gzip_decodes_to_the_same_series(rt: Runtime) {
    let s = start(rt);
    let response = exchange(s.addr, &get("/metrics"));
    let sizes = chunk_sizes(&response);
    let (head, plain) = split(&response);
    assert!(head.contains("transfer-encoding: chunked") && !head.contains("content-length"), "{head}");
    assert!(head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"));
    let plain = String::from_utf8(plain).unwrap();
    assert_eq!(plain.lines().filter(|l| l.starts_with("paths_total{")).count(), 2000);
    assert!(plain.len() > 100 * 1024, "larger than many chunks: {}", plain.len());
    // The pool's one 2 MiB buffer takes the whole exposition.
    assert!(sizes.len() == 1 && sizes[0] > 100 * 1024, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), plain.len());

    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\
                   Accept: application/openmetrics-text; version=1.0.0\r\n\r\n";
    let (head, gz) = split(&exchange(s.addr, request.as_bytes()));
    assert!(head.contains("content-encoding: gzip") && head.contains("application/openmetrics-text"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(text.lines().filter(|l| l.starts_with("paths_total{")).count(), 2000);
}

fn head_has_no_body_and_shutdown_drains(rt: Runtime) {
    let s = start(rt);
    let (head, body) = split(&exchange(s.addr, b"HEAD /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    assert!(head.starts_with("http/1.1 200 ok") && head.contains("content-length: 24"), "{head}");
    assert!(body.is_empty());

    // A keep-alive connection with a request served is open when shutdown begins.
    let mut c = connect(s.addr);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_one(&mut c).starts_with("HTTP/1.1 200 OK"));
    let addr = s.addr;
    let started = Instant::now();
    let served = s.stop().join().expect("the server thread does not panic");
    assert!(served.is_ok(), "{served:?}");
    assert!(started.elapsed() < Duration::from_millis(900), "idle connection closed at once, not by idle timeout");
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "idle connection closed by the drain");
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
}

fn shutdown_lets_the_request_in_flight_finish(rt: Runtime) {
    let s = start(rt);
    let mut c = connect(s.addr);
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let server = s.stop();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let (head, body) = split(&out);
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert_eq!(body, b"slow\n", "the response in flight is whole");
    assert!(server.join().unwrap().is_ok());
}

/// The same requests, in the same order, to a server under each runtime: the answers are
/// byte for byte the same but for the `Date` header.
#[test]
fn smol_and_async_std_answer_byte_for_byte_alike() {
    let requests: [&[u8]; 9] = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /readyz?verbose HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /readyz/nobody HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\nAccept-Encoding: gzip\r\n\
          Connection: close\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"BAD\r\n\r\n",
    ];
    let without_date = |response: Vec<u8>| -> Vec<u8> {
        let text = String::from_utf8_lossy(&response).into_owned();
        text.split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("date: "))
            .collect::<Vec<_>>()
            .join("\r\n")
            .into()
    };
    let answers = |rt: Runtime| -> Vec<Vec<u8>> {
        let s = start(rt);
        let answers = requests.iter().map(|r| without_date(exchange(s.addr, r))).collect();
        assert!(s.stop().join().unwrap().is_ok());
        answers
    };
    let (smol, async_std) = (answers(Runtime::Smol), answers(Runtime::AsyncStd));
    for ((request, a), b) in requests.iter().zip(&smol).zip(&async_std) {
        assert!(
            a == b,
            "{}:\n{}\n---\n{}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
}

fn during_the_shutdown_delay_readyz_is_503_healthz_200_then_the_server_drains(rt: Runtime) {
    let mut limits: Limits = tight_limits();
    limits.shutdown_delay_ms = 1_500;
    let s = start_with(rt, limits);
    let addr = s.addr;
    let mut keep_alive = connect(addr);
    let (head, _) = ask(&mut keep_alive, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("http/1.1 200"), "{head}");

    let server = s.stop();
    std::thread::sleep(Duration::from_millis(200));
    // The keep-alive connection and a new one are both served, readiness 503, health 200.
    let (head, body) = ask(&mut keep_alive, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert_eq!(body, r#"{"status":"process is shutting down","pid":99}"#);
    let (head, _) = ask(&mut keep_alive, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(status_line(&exchange(addr, &get("/readyz"))), "HTTP/1.1 503 Service Unavailable");
    assert_eq!(status_line(&exchange(addr, &get("/healthz"))), "HTTP/1.1 200 OK");
    assert!(!server.is_finished(), "still serving during the delay");

    // Then it stops accepting, closes the idle connection and returns.
    assert!(server.join().unwrap().is_ok());
    assert!(closed_by_server(&mut keep_alive), "the idle keep-alive connection is closed");
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
}

fn a_readiness_shutting_down_by_itself_starts_the_drain(rt: Runtime) {
    let s = start(rt);
    let addr = s.addr;
    assert_eq!(status_line(&exchange(addr, &get("/readyz"))), "HTTP/1.1 200 OK");
    s.states.begin_shutdown();
    // The server sees it within its 250 ms check, serves for the (zero) delay and drains,
    // without its `shutdown` future completing.
    assert!(s.thread().join().unwrap().is_ok());
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
}

fn the_gauges_count_tasks_connections_and_threads(rt: Runtime) {
    use diag_core::{Format, Scrape};
    let s = start(rt);
    let metrics = s.metrics.clone();
    let scrape = || {
        let mut buf = [0u8; 2048];
        let n = Scrape::new(Format::Prometheus, &metrics).fill(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut open: Vec<TcpStream> = (0..2).map(|_| connect(s.addr)).collect();
    for c in &mut open {
        c.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(read_one(c).starts_with("HTTP/1.1 200 OK"));
    }
    let text = scrape();
    assert!(text.contains("# TYPE diag_smol_alive_tasks gauge\ndiag_smol_alive_tasks 2\n"), "{text}");
    assert!(text.contains("# TYPE diag_smol_open_connections gauge\ndiag_smol_open_connections 2\n"), "{text}");
    match rt {
        // `serve` runs its connections on the one thread polling it.
        Runtime::Smol | Runtime::AsyncStd => assert!(text.contains("\ndiag_smol_executor_threads 1\n"), "{text}"),
        // `serve_spawning` puts them wherever the caller's spawn does: unknown.
        Runtime::SmolThreads | Runtime::AsyncStdSpawn => assert!(!text.contains("executor_threads"), "{text}"),
    }
    drop(open);
    let stats = std::sync::Arc::clone(s.server.connection_stats());
    wait_until("the connections to close", || stats.open() == 0 && stats.tasks() == 0);
    let text = scrape();
    assert!(text.contains("diag_smol_alive_tasks 0\n") && text.contains("diag_smol_open_connections 0\n"), "{text}");
    assert!(s.stop().join().unwrap().is_ok());
    assert!(!scrape().contains("executor_threads"), "no server running");
}
