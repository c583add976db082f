//! diag-tokio served on 127.0.0.1 and spoken to with raw sockets: limits, timeouts, the
//! connection cap, extra routes, streaming, and the drain at shutdown.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use diag_core::http::{Limits, Service};
use diag_core::{Collect, Counter, Family, Registry, StateTable};
use diag_tests::fixtures::tight_limits;
use diag_tokio::RouteBody;
use diag_tokio::{DiagBody, RouteFuture, Routes, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

static PATHS: Family<Counter, [&'static str; 1], 2048> = Family::new(["path"], ());
static REGISTRY: Registry<'static, 4> = Registry::new();
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

struct Running {
    addr: SocketAddr,
    /// A clone of the server serving, for `begin_shutdown`.
    server: Server,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Extra routes: `/hello` at once, `/slow` after 1.5 s.
struct Hello;

impl Routes for Hello {
    fn claims(&self, request: &hyper::Request<RouteBody>) -> bool {
        matches!(request.uri().path(), "/hello" | "/slow")
    }

    fn serve(&self, request: hyper::Request<RouteBody>) -> RouteFuture {
        let slow = request.uri().path() == "/slow";
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                return hyper::Response::new(DiagBody::full("slow\n"));
            }
            hyper::Response::new(DiagBody::full("hello\n"))
        })
    }
}

async fn start() -> Running {
    start_with(tight_limits()).await
}

async fn start_with(limits: Limits) -> Running {
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| {
        REGISTRY.register("paths_total", "Requests by path.", &PATHS).unwrap();
        for i in 0..2000 {
            let path = format!("/a/fairly/long/request/path/{i}");
            PATHS.get_or_create([&path]).unwrap().inc();
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Each server owns its state table: shutting one down leaves the others ready.
    let states = StateTable::<4>::new();
    states.heartbeat_ok("app", 0).unwrap();
    let server =
        Server::owning(states, |states| Service::new(states, &SOURCES, 99)).with_limits(limits).with_routes(Hello);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(server.clone().serve(listener, async {
        stopped.await.ok();
    }));
    Running { addr, server, stop, task }
}

/// Sends `raw` and reads until the server closes the connection.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.expect("server closes").unwrap();
    out
}

fn status_line(response: &[u8]) -> String {
    String::from_utf8_lossy(response).lines().next().unwrap_or("").to_owned()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Splits a response into head and (de-chunked) body.
fn split(response: &[u8]) -> (String, Vec<u8>) {
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8(response[..at].to_vec()).unwrap().to_ascii_lowercase();
    let mut body = response[at..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let (mut out, mut rest) = (Vec::new(), &body[..]);
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    (head, body)
}

#[tokio::test]
async fn oversized_and_malformed_heads_get_4xx_while_others_are_served() {
    let s = start().await;
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(9 * 1024));
    let (head, body) = split(&exchange(s.addr, big.as_bytes()).await);
    assert!(head.starts_with("http/1.1 431 request header fields too large\r\n"), "{head}");
    assert!(head.contains("cache-control: no-store") && head.contains("connection: close"), "{head}");
    assert_eq!(body, b"431 request header fields too large\n");
    let fits =
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n", "a".repeat(7 * 1024));
    assert_eq!(status_line(&exchange(s.addr, fits.as_bytes()).await), "HTTP/1.1 200 OK");
    assert_eq!(status_line(&exchange(s.addr, b"GARBAGE\r\n\r\n").await), "HTTP/1.1 400 Bad Request");
    assert_eq!(
        status_line(&exchange(s.addr, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(status_line(&exchange(s.addr, &get("/readyz")).await), "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_slow_head_is_closed_after_the_header_timeout_and_others_are_served_meanwhile() {
    let s = start().await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost:").await.unwrap();
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz")).await), "HTTP/1.1 200 OK");
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut out)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed without an answer: {read:?} {out:?}");
    assert!(started.elapsed() >= Duration::from_millis(400), "not before the timeout");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let s = start().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    // Requests 550 ms apart, longer than the header timeout (400 ms) but within the idle one
    // (1 s): each new head arrives within the idle window, so the connection stays.
    for request in 0..4 {
        if request > 0 {
            tokio::time::sleep(Duration::from_millis(550)).await;
        }
        c.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    }
    // Then closed by the idle timeout, counted from the last response (see the smol twin of
    // this test): at most 1 s from here, never within the 400 ms a header timeout would take.
    let idle_since = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(read, 0, "closed");
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(650), "idle timeout, not header timeout: {idle:?}");
}

/// Whether the server has closed `stream` (read returns 0 within 5 s).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await, Ok(Ok(0)))
}

/// Whether `stream` is still open: nothing to read, no end of stream.
fn still_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(stream.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn at_the_cap_the_longest_idle_connection_gives_way_to_a_new_one() {
    let mut limits = tight_limits();
    limits.header_timeout_ms = 10_000;
    limits.idle_timeout_ms = 10_000;
    let s = start_with(limits).await;
    // A silent connection, then an idle keep-alive one, then another silent one: the cap.
    let silent = TcpStream::connect(s.addr).await.unwrap();
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).await.unwrap() > 0);
    let silent2 = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.server.connection_stats().open(), 3);

    // A probe is answered at once: the idle connection gives way (before the silent ones, which
    // have waited longer but are still sending their first head).
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz")).await), "HTTP/1.1 200 OK");
    assert!(closed_by_server(&mut idle).await, "the idle keep-alive connection was closed");
    assert!(still_open(&silent) && still_open(&silent2), "the silent ones stay");
    // At the cap again, the next probe: the silent connection waiting longest gives way.
    wait_until("the probe's connection to close", || s.server.connection_stats().open() == 2).await;
    let silent3 = TcpStream::connect(s.addr).await.unwrap();
    wait_until("three connections", || s.server.connection_stats().open() == 3).await;
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz")).await), "HTTP/1.1 200 OK");
    let mut silent = silent;
    assert!(closed_by_server(&mut silent).await, "the longest-waiting connection was closed");
    assert!(still_open(&silent2) && still_open(&silent3));
    assert_eq!(s.server.connection_stats().evicted(), 2);
}

/// Polls `f` every 10 ms for up to 5 s.
async fn wait_until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn when_every_connection_is_busy_a_new_one_gets_a_quick_503() {
    let s = start().await;
    let mut busy = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        busy.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (head, body) = split(&exchange(s.addr, &get("/healthz")).await);
    assert!(head.starts_with("http/1.1 503 service unavailable\r\n"), "{head}");
    assert!(head.contains("connection: close") && head.contains("cache-control: no-store"), "{head}");
    assert_eq!(body, b"503 too many connections: every connection has a request in flight\n");
    assert_eq!(s.server.connection_stats().rejected(), 1);
    // The requests in flight are not disturbed, and once they are done probes are served.
    for mut c in busy {
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.unwrap();
        assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    }
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz")).await), "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn extra_routes_come_first_and_get_the_common_headers() {
    let s = start().await;
    let (head, body) = split(&exchange(s.addr, &get("/hello")).await);
    assert!(head.starts_with("http/1.1 200 ok"));
    assert!(head.contains("cache-control: no-store") && head.contains("x-content-type-options: nosniff"), "{head}");
    assert_eq!(body, b"hello\n");
    let (head, _) = split(&exchange(s.addr, &get("/nope")).await);
    assert!(head.starts_with("http/1.1 404"), "{head}");
}

#[tokio::test]
async fn metrics_stream_in_chunks_and_gzip_decodes_to_the_same_series() {
    let s = start().await;
    let response = exchange(s.addr, &get("/metrics")).await;
    let (head, plain) = split(&response);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    // The pool's one 2 MiB buffer takes the whole exposition.
    let sizes = diag_tests::parse_response(&response, false).expect("a response").chunks;
    assert!(sizes.len() == 1 && sizes[0] > 100 * 1024, "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), plain.len());
    // Without the pool, the same exposition streams in the server's own 1 KiB chunks.
    let mut no_pool = tight_limits();
    no_pool.chunk_pool_bytes = 0;
    let small = start_with(no_pool).await;
    let response = exchange(small.addr, &get("/metrics")).await;
    let sizes = diag_tests::parse_response(&response, false).expect("a response").chunks;
    assert!(sizes.len() > 100 && sizes.iter().all(|n| *n <= 1024), "{} chunks", sizes.len());
    let lines =
        |r: &[u8]| String::from_utf8_lossy(&split(r).1).lines().filter(|l| l.starts_with("paths_total{")).count();
    assert_eq!(lines(&response), 2000);
    assert!(head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"));
    let plain = String::from_utf8(plain).unwrap();
    assert_eq!(plain.lines().filter(|l| l.starts_with("paths_total{")).count(), 2000);
    assert!(plain.len() > 100 * 1024, "larger than many chunks: {}", plain.len());

    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\
                   Accept: application/openmetrics-text; version=1.0.0\r\n\r\n";
    let (head, gz) = split(&exchange(s.addr, request.as_bytes()).await);
    assert!(head.contains("content-encoding: gzip") && head.contains("application/openmetrics-text"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(text.lines().filter(|l| l.starts_with("paths_total{")).count(), 2000);
}

#[tokio::test]
async fn head_has_no_body_and_shutdown_drains() {
    let s = start().await;
    let (head, body) = split(&exchange(s.addr, b"HEAD /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await);
    assert!(head.starts_with("http/1.1 200 ok") && head.contains("content-length: 24"), "{head}");
    assert!(body.is_empty());

    // A keep-alive connection with a request served is open when shutdown begins.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    assert!(c.read(&mut buf).await.unwrap() > 0);
    s.stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), s.task).await.expect("drains in time").unwrap();
    assert!(served.is_ok());
    assert_eq!(c.read(&mut buf).await.unwrap(), 0, "idle connection closed by the drain");
    assert!(TcpStream::connect(s.addr).await.is_err(), "listener closed");
}

// Multi-threaded: the blocking client (`ask`) runs in place while the server's tasks go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_shutdown_delay_readyz_is_503_healthz_200_then_the_server_drains() {
    let mut limits = tight_limits();
    limits.shutdown_delay_ms = 1_500;
    let s = start_with(limits).await;
    let mut blocking = std::net::TcpStream::connect(s.addr).unwrap();
    let mut ask = |request| tokio::task::block_in_place(|| diag_tests::ask(&mut blocking, request));
    let (head, _) = ask("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("http/1.1 200"), "{head}");

    s.stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The keep-alive connection and a new one are both served, readiness 503, health 200.
    let (head, body) = ask("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert_eq!(body, r#"{"status":"process is shutting down","pid":99}"#);
    let (head, _) = ask("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    blocking.set_nonblocking(true).unwrap();
    let mut keep_alive = TcpStream::from_std(blocking).unwrap();
    assert_eq!(status_line(&exchange(s.addr, &get("/readyz")).await), "HTTP/1.1 503 Service Unavailable");
    assert_eq!(status_line(&exchange(s.addr, &get("/healthz")).await), "HTTP/1.1 200 OK");
    assert!(!s.task.is_finished(), "still serving during the delay");

    // Then it stops accepting, closes the idle connection and returns.
    let served = tokio::time::timeout(Duration::from_secs(10), s.task).await.expect("drains after the delay").unwrap();
    assert!(served.is_ok());
    assert!(closed_by_server(&mut keep_alive).await, "the idle keep-alive connection is closed");
    assert!(TcpStream::connect(s.addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn begin_shutdown_on_a_clone_drains_and_a_request_in_flight_finishes() {
    let s = start().await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.server.begin_shutdown();
    let served = tokio::time::timeout(Duration::from_secs(10), s.task).await.expect("drains").unwrap();
    assert!(served.is_ok());
    let mut out = Vec::new();
    slow.read_to_end(&mut out).await.unwrap();
    let (head, body) = split(&out);
    assert!(head.starts_with("http/1.1 200") && head.contains("connection: close"), "{head}");
    assert_eq!(body, b"slow\n", "the request in flight finished before the connection closed");
}

#[tokio::test]
async fn a_request_longer_than_the_drain_timeout_is_cut_off() {
    let mut limits = tight_limits();
    limits.drain_timeout_ms = 200;
    let s = start_with(limits).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), s.task).await.expect("returns after the bound").unwrap();
    assert!(served.is_ok());
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut out)).await.expect("closed");
    assert!(read.is_ok() && out.is_empty(), "closed without an answer: {read:?} {out:?}");
}
