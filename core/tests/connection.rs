//! `http::Connection` driven over an in-memory duplex: the codes, headers and bodies of
//! docs/endpoints.md, keep-alive, pipelining, HEAD, limits and timeouts.

use core::future::Future;
use core::task::Poll;
use std::cell::RefCell;
use std::rc::Rc;

use diag_core::http::{Closed, Connection, ConnectionError, Limits, Request, Service, Timer};
use diag_core::{Counter, EncodeError, Format, Histogram, Registry, StateTable};
use embassy_futures::block_on;

/// The server's end of a connection: reads `input` in pieces of at most `piece` bytes, then
/// sees the peer close (or, with `hang`, waits forever); everything written lands in `output`.
struct Duplex<'a> {
    input: &'a [u8],
    piece: usize,
    hang: bool,
    output: Vec<u8>,
    fail_writes: bool,
}

impl<'a> Duplex<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self { input, piece: usize::MAX, hang: false, output: Vec::new(), fail_writes: false }
    }
}

impl embedded_io_async::ErrorType for Duplex<'_> {
    type Error = embedded_io_async::ErrorKind;
}

impl embedded_io_async::Read for Duplex<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.input.is_empty() && self.hang {
            core::future::pending::<()>().await;
        }
        let n = buf.len().min(self.input.len()).min(self.piece);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl embedded_io_async::Write for Duplex<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if self.fail_writes {
            return Err(embedded_io_async::ErrorKind::BrokenPipe);
        }
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A timer whose sleeps end at once, recording the durations asked for.
#[derive(Default, Clone)]
struct InstantTimer(Rc<RefCell<Vec<u64>>>);

impl Timer for InstantTimer {
    fn sleep_ms(&mut self, ms: u64) -> impl Future<Output = ()> {
        self.0.borrow_mut().push(ms);
        // Pending once, so that a transport which is ready wins the race.
        let mut polled = false;
        core::future::poll_fn(move |_| {
            if polled {
                Poll::Ready(())
            } else {
                polled = true;
                Poll::Pending
            }
        })
    }
}

/// One parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    /// The body's bytes (`body` is empty when they are not UTF-8, e.g. protobuf).
    raw: Vec<u8>,
    chunks: usize,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits `output` into responses, one per request method in `methods` (HEAD has no body),
/// and checks nothing is left over.
fn replies(mut output: &[u8], methods: &[&str]) -> Vec<Reply> {
    let mut out = Vec::new();
    for method in methods {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let len = match parsed.parse(output).expect("valid response head") {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => panic!("incomplete response head in {:?}", String::from_utf8_lossy(output)),
        };
        let headers: Vec<(String, String)> =
            parsed.headers.iter().map(|h| (h.name.to_owned(), String::from_utf8(h.value.to_vec()).unwrap())).collect();
        let mut reply =
            Reply { status: parsed.code.unwrap(), headers, body: String::new(), raw: Vec::new(), chunks: 0 };
        output = &output[len..];
        if *method == "HEAD" {
            out.push(reply);
            continue;
        }
        let mut body = Vec::new();
        if let Some(n) = reply.header("content-length") {
            let n: usize = n.parse().unwrap();
            body.extend_from_slice(&output[..n]);
            output = &output[n..];
        } else if reply.header("transfer-encoding") == Some("chunked") {
            loop {
                let line_end = output.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
                let size = usize::from_str_radix(std::str::from_utf8(&output[..line_end]).unwrap(), 16).unwrap();
                output = &output[line_end + 2..];
                assert_eq!(&output[size..size + 2], b"\r\n", "chunk data ends in CRLF");
                body.extend_from_slice(&output[..size]);
                output = &output[size + 2..];
                if size == 0 {
                    break;
                }
                reply.chunks += 1;
            }
        } else {
            assert_eq!(reply.header("connection"), Some("close"), "a body without length is close-delimited");
            body.extend_from_slice(output);
            output = &[];
        }
        reply.body = String::from_utf8(body.clone()).unwrap_or_default();
        reply.raw = body;
        out.push(reply);
    }
    assert!(output.is_empty(), "left over: {:?}", String::from_utf8_lossy(output));
    out
}

const CHUNK: usize = 1024;

/// Serves `input` on a fresh connection with default limits; returns how it ended and the
/// responses to `methods`.
fn exchange(service: &Service<'_>, input: &[u8], methods: &[&str]) -> (Closed, Vec<Reply>) {
    let (mut head, mut chunk) = (vec![0u8; 8192], vec![0u8; CHUNK]);
    let mut connection = Connection::new(service, &mut head, &mut chunk);
    let mut io = Duplex::new(input);
    let closed = block_on(connection.serve(&mut io)).unwrap();
    (closed, replies(&io.output, methods))
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: diag\r\n\r\n")
}

fn assert_common(reply: &Reply) {
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn healthz_and_livez() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let input = format!("{}{}", get("/healthz"), get("/livez"));
    let (closed, replies) = exchange(&service, input.as_bytes(), &["GET", "GET"]);
    assert_eq!(closed, Closed::ByPeer);
    for reply in &replies {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("content-length"), Some("15"));
        assert_eq!(reply.body, r#"{"status":"ok"}"#);
        assert_common(reply);
    }
}

fn readyz(states: &StateTable<4>) -> Reply {
    let service = Service::new(states, &[], 4242);
    exchange(&service, get("/readyz").as_bytes(), &["GET"]).1.remove(0)
}

#[test]
fn readyz_in_each_state() {
    let states = StateTable::<4>::new();
    let reply = readyz(&states);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, r#"{"status":"process is starting and hasn't joined the cluster yet","pid":4242}"#)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_common(&reply);

    states.expect("auth").unwrap();
    states.heartbeat_ok("node", 0).unwrap();
    assert_eq!(readyz(&states).status, 400, "one component still starting");

    states.heartbeat_ok("auth", 0).unwrap();
    let reply = readyz(&states);
    assert_eq!((reply.status, reply.body.as_str()), (200, r#"{"status":"ok","pid":4242}"#));

    states.heartbeat_failed("auth", 1_000).unwrap();
    let reply = readyz(&states);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, r#"{"status":"process is in a degraded state, check logs for details","pid":4242}"#)
    );

    states.heartbeat_ok("auth", 2_000).unwrap();
    let reply = readyz(&states);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, r#"{"status":"process is recovering from a degraded state, check logs for details","pid":4242}"#)
    );

    states.heartbeat_ok("auth", 12_001).unwrap();
    assert_eq!(readyz(&states).status, 200);

    states.begin_shutdown();
    let reply = readyz(&states);
    assert_eq!((reply.status, reply.body.as_str()), (503, r#"{"status":"process is shutting down","pid":4242}"#));
    let service = Service::new(&states, &[], 4242);
    assert_eq!(exchange(&service, get("/healthz").as_bytes(), &["GET"]).1[0].status, 200, "healthz stays up");
}

#[test]
fn readyz_verbose_and_component() {
    let states = StateTable::<4>::new();
    states.heartbeat_ok("auth", 0).unwrap();
    states.heartbeat_failed("upstream-db", 0).unwrap();
    let service = Service::new(&states, &[], 9);
    let input = [get("/readyz?verbose"), get("/readyz/auth"), get("/readyz/upstream-db"), get("/readyz/nope")].concat();
    let (_, replies) = exchange(&service, input.as_bytes(), &["GET"; 4]);

    assert_eq!(replies[0].status, 503);
    assert_eq!(replies[0].header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(replies[0].header("transfer-encoding"), Some("chunked"));
    assert_eq!(replies[0].body, "[+]auth ok\n[-]upstream-db degraded\nreadyz check failed\n");
    assert_common(&replies[0]);

    assert_eq!((replies[1].status, replies[1].body.as_str()), (200, r#"{"status":"ok","pid":9}"#));
    assert_eq!(
        (replies[2].status, replies[2].body.as_str()),
        (503, r#"{"status":"process is in a degraded state, check logs for details","pid":9}"#)
    );
    assert_eq!((replies[3].status, replies[3].body.as_str()), (404, r#"{"status":"unknown component","pid":9}"#));
}

static HITS: Counter = Counter::new();
static BOUNDS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];
static LATENCY: Histogram<4> = Histogram::new(&BOUNDS);
static REGISTRY: Registry<'static, 4> = Registry::new();

fn registry() -> &'static Registry<'static, 4> {
    // Registering the same metric again is a no-op, so every test may call this.
    REGISTRY.register("app_hits_total", "Cache hits.", &HITS).unwrap();
    REGISTRY.register("app_latency_seconds", "Request latency.", &LATENCY).unwrap();
    &REGISTRY
}

/// The whole exposition of a fresh service over the same sources, encoded in one buffer.
fn expected_exposition(states: &StateTable<4>, format: Format) -> String {
    let sources: [&dyn diag_core::Collect; 1] = [registry()];
    let service = Service::new(states, &sources, 1);
    let accept = (format == Format::OpenMetrics).then_some("application/openmetrics-text");
    let mut body = service.respond(&Request { accept, ..Request::get("/metrics") }).into_body();
    let mut buf = vec![0u8; 64 * 1024];
    let n = body.fill(&mut buf).unwrap();
    assert_eq!(body.fill(&mut buf[n..]).unwrap(), 0, "fits in one buffer");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn metrics_in_both_formats_streamed_in_chunks() {
    let states = StateTable::<4>::new();
    states.heartbeat_ok("auth", 0).unwrap();
    HITS.inc_by(3);
    LATENCY.observe(0.05);
    let sources: [&dyn diag_core::Collect; 1] = [registry()];
    let service = Service::new(&states, &sources, 1);
    let input = [
        get("/metrics"),
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0;q=0.9,text/plain;q=0.5\r\nAccept-Encoding: gzip\r\n\r\n".into(),
    ]
    .concat();
    // A chunk buffer far smaller than the exposition: many HTTP chunks.
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 300]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    let mut io = Duplex::new(input.as_bytes());
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::ByPeer);
    let replies = replies(&io.output, &["GET", "GET"]);

    let text = &replies[0];
    assert_eq!(text.status, 200);
    assert_eq!(text.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(text.header("transfer-encoding"), Some("chunked"));
    assert_eq!(text.header("content-encoding"), None, "never gzipped");
    assert_eq!(text.header("vary"), Some("Accept, Accept-Encoding"));
    assert_common(text);
    assert!(text.chunks > 3, "streamed in {} chunks", text.chunks);
    assert_eq!(text.body, expected_exposition(&states, Format::Prometheus));
    assert!(text.body.contains("# TYPE process_state gauge\nprocess_state 0\n"), "{}", text.body);
    assert!(text.body.contains("app_hits_total 3\n"));
    assert!(text.body.contains("app_latency_seconds_bucket{le=\"0.1\"} 1\n"));

    let om = &replies[1];
    assert_eq!(om.status, 200);
    assert_eq!(om.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert_eq!(om.header("content-encoding"), None);
    assert!(om.body.ends_with("# EOF\n"));
    // The second scrape of this service counts the first one.
    let expected = expected_exposition(&states, Format::OpenMetrics).replace(
        "promhttp_metric_handler_requests_total{code=\"200\"} 1",
        "promhttp_metric_handler_requests_total{code=\"200\"} 2",
    );
    assert_eq!(om.body, expected);
}

/// The protobuf exposition through the embedded connection handler: negotiated from what
/// Prometheus sends with native histograms on, streamed in chunks smaller than a family,
/// byte for byte what the service writes in one buffer, and a well-formed delimited stream.
#[cfg(feature = "protobuf")]
#[test]
fn metrics_as_protobuf_streamed_in_chunks() {
    const ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,\
                          application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,\
                          text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let states = StateTable::<4>::new();
    states.heartbeat_ok("auth", 0).unwrap();
    LATENCY.observe(0.5);
    let sources: [&dyn diag_core::Collect; 1] = [registry()];
    let service = Service::new(&states, &sources, 1);
    let input = format!("GET /metrics HTTP/1.1\r\nAccept: {ACCEPT}\r\n\r\n");
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 300]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    let mut io = Duplex::new(input.as_bytes());
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::ByPeer);
    let reply = &replies(&io.output, &["GET"])[0];
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
    );
    assert!(reply.chunks > 2, "streamed in {} chunks", reply.chunks);
    // The same scrape in one buffer, from a fresh service (which has counted no scrape yet).
    let fresh = Service::new(&states, &sources, 1);
    let mut body = fresh.respond(&Request { accept: Some(ACCEPT), ..Request::get("/metrics") }).into_body();
    let mut whole = vec![0u8; 64 * 1024];
    let n = body.fill(&mut whole).unwrap();
    // Delimited messages, back to back; a family's name is its first field.
    let names = |mut b: &[u8]| {
        let mut names = Vec::new();
        while !b.is_empty() {
            let (len, k) = diag_core::proto::varint::read(b).expect("length");
            let msg = &b[k..k + len as usize];
            assert_eq!(msg[0], 0x0a, "name first");
            names.push(String::from_utf8(msg[2..2 + usize::from(msg[1])].to_vec()).unwrap());
            b = &b[k + len as usize..];
        }
        names
    };
    let (streamed, whole) = (names(&reply.raw), names(&whole[..n]));
    let mut merged = streamed.clone();
    merged.dedup();
    assert_eq!(merged, whole, "chunked messages continue the same families");
    assert!(streamed.len() > whole.len(), "a 300-byte chunk splits families");
    assert!(whole.iter().any(|n| n == "app_latency_seconds") && whole.iter().any(|n| n == "process_state"));
}

#[test]
fn not_found_and_method_not_allowed() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let input = [get("/nope"), "DELETE /healthz HTTP/1.1\r\n\r\n".into(), get("/healthz")].concat();
    let (closed, replies) = exchange(&service, input.as_bytes(), &["GET", "DELETE", "GET"]);
    assert_eq!(closed, Closed::ByPeer, "4xx answers keep the connection");
    assert_eq!((replies[0].status, replies[0].body.as_str()), (404, "404 page not found\n"));
    assert_eq!(replies[1].status, 405);
    assert_eq!(replies[1].header("allow"), Some("GET, HEAD"));
    assert_eq!(replies[1].body, "405 method not allowed\n");
    assert_common(&replies[1]);
    assert_eq!(replies[2].status, 200);
}

#[test]
fn request_with_body_is_answered_then_closed() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let input = ["POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".into(), get("/healthz")].concat();
    let (closed, replies) = exchange(&service, input.as_bytes(), &["POST"]);
    assert_eq!(closed, Closed::ByServer);
    assert_eq!(replies[0].status, 405);
    assert_eq!(replies[0].header("connection"), Some("close"));
}

#[test]
fn head_over_8_kib_gets_431() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let big = format!("GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    // A head buffer larger than the limit: the limit decides.
    let (mut head, mut chunk) = (vec![0u8; 16 * 1024], vec![0u8; CHUNK]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    assert_eq!(connection.max_head_bytes(), Limits::DEFAULT.max_head_bytes);
    let mut io = Duplex::new(big.as_bytes());
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::ByServer);
    let reply = &replies(&io.output, &["GET"])[0];
    assert_eq!((reply.status, reply.body.as_str()), (431, "431 request header fields too large\n"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert_common(reply);

    // The same connection object serves the next client normally.
    let mut io = Duplex::new(b"GET /healthz HTTP/1.1\r\n\r\n");
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::ByPeer);
    assert_eq!(replies(&io.output, &["GET"])[0].status, 200);

    // A head just under the limit is served.
    let fits = format!("GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(8000));
    let mut io = Duplex::new(fits.as_bytes());
    block_on(connection.serve(&mut io)).unwrap();
    assert_eq!(replies(&io.output, &["GET"])[0].status, 200);
}

#[test]
fn small_head_buffer_and_too_many_headers_get_431() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let (mut head, mut chunk) = ([0u8; 128], [0u8; 512]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    assert_eq!(connection.max_head_bytes(), 128);
    let long = format!("GET /healthz HTTP/1.1\r\nX-Long: {}\r\n\r\n", "b".repeat(200));
    let mut io = Duplex::new(long.as_bytes());
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::ByServer);
    assert_eq!(replies(&io.output, &["GET"])[0].status, 431);

    let many: String = (0..40).map(|i| format!("X-{i}: 1\r\n")).collect();
    let input = format!("GET /healthz HTTP/1.1\r\n{many}\r\n");
    let (closed, replies) = exchange(&service, input.as_bytes(), &["GET"]);
    assert_eq!((closed, replies[0].status), (Closed::ByServer, 431));
}

#[test]
fn malformed_head_gets_400() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    for input in ["GARBAGE\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n", "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"] {
        let (closed, replies) = exchange(&service, input.as_bytes(), &["GET"]);
        assert_eq!(closed, Closed::ByServer, "{input:?}");
        assert_eq!((replies[0].status, replies[0].body.as_str()), (400, "400 bad request\n"), "{input:?}");
        assert_eq!(replies[0].header("connection"), Some("close"));
    }
}

#[test]
fn head_requests_have_no_body() {
    let states = StateTable::<4>::new();
    states.heartbeat_ok("auth", 0).unwrap();
    let service = Service::new(&states, &[], 1);
    let input =
        ["HEAD /healthz HTTP/1.1\r\n\r\n", "HEAD /metrics HTTP/1.1\r\n\r\n", "HEAD /readyz HTTP/1.1\r\n\r\n"].concat();
    let input = input + &get("/healthz");
    let (closed, replies) = exchange(&service, input.as_bytes(), &["HEAD", "HEAD", "HEAD", "GET"]);
    assert_eq!(closed, Closed::ByPeer);
    assert_eq!(replies[0].status, 200);
    assert_eq!(replies[0].header("content-length"), Some("15"));
    assert_eq!(replies[1].header("transfer-encoding"), Some("chunked"));
    assert_eq!(replies[1].header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(replies[2].header("content-length"), Some(r#"{"status":"ok","pid":1}"#.len().to_string().as_str()));
    assert_eq!(replies[3].body, r#"{"status":"ok"}"#, "the next request is intact");
}

#[test]
fn two_requests_on_one_connection_read_byte_by_byte() {
    let states = StateTable::<4>::new();
    states.heartbeat_ok("auth", 0).unwrap();
    let service = Service::new(&states, &[], 5);
    let input = [get("/readyz"), get("/metrics")].concat();
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 512]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    let mut io = Duplex::new(input.as_bytes());
    io.piece = 1;
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::ByPeer);
    let replies = replies(&io.output, &["GET", "GET"]);
    assert_eq!((replies[0].status, replies[0].body.as_str()), (200, r#"{"status":"ok","pid":5}"#));
    assert_eq!(replies[1].status, 200);
    assert!(replies[1].body.contains("process_state 0\n"));
}

#[test]
fn connection_close_ends_after_the_response() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let input = ["GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".into(), get("/healthz")].concat();
    let (closed, replies) = exchange(&service, input.as_bytes(), &["GET"]);
    assert_eq!(closed, Closed::ByServer);
    assert_eq!(replies[0].header("connection"), Some("close"));
}

#[test]
fn http10_streams_until_close_and_keeps_alive_on_request() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let input = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n";
    let (closed, replies) = exchange(&service, input.as_bytes(), &["GET", "GET"]);
    assert_eq!(closed, Closed::ByServer);
    assert_eq!(replies[0].header("connection"), Some("keep-alive"));
    assert_eq!(replies[0].body, r#"{"status":"ok"}"#);
    assert_eq!(replies[1].header("transfer-encoding"), None, "no chunked encoding for HTTP/1.0");
    assert_eq!(replies[1].header("connection"), Some("close"));
    assert!(replies[1].body.contains("# TYPE process_state gauge\n"));
}

#[test]
fn timeouts_use_the_limits() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 512]);
    let timer = InstantTimer::default();
    let mut connection = Connection::new(&service, &mut head, &mut chunk).with_timer(timer.clone());

    // A peer that never sends: closed once the header timeout passes.
    let mut io = Duplex::new(b"");
    io.hang = true;
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::Timeout);
    assert!(io.output.is_empty());
    assert_eq!(*timer.0.borrow(), [10_000]);

    // A slow head: the header timeout.
    timer.0.borrow_mut().clear();
    let mut io = Duplex::new(b"GET /healthz HTTP/1.1\r\n");
    io.hang = true;
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::Timeout);
    assert!(io.output.is_empty());

    // One request, then idle: the idle timeout, after the answer went out.
    timer.0.borrow_mut().clear();
    let input = get("/healthz");
    let mut io = Duplex::new(input.as_bytes());
    io.hang = true;
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::Timeout);
    assert_eq!(replies(&io.output, &["GET"])[0].status, 200);
    assert_eq!(*timer.0.borrow(), [10_000, 30_000]);

    // Custom limits are honoured.
    let mut limits = Limits::DEFAULT;
    limits.header_timeout_ms = 250;
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 512]);
    let timer = InstantTimer::default();
    let mut connection = Connection::new(&service, &mut head, &mut chunk).with_limits(limits).with_timer(timer.clone());
    let mut io = Duplex::new(b"");
    io.hang = true;
    assert_eq!(block_on(connection.serve(&mut io)).unwrap(), Closed::Timeout);
    assert_eq!(*timer.0.borrow(), [250]);
}

#[test]
fn series_larger_than_the_chunk_buffer_is_an_error_not_a_truncation() {
    let states = StateTable::<4>::new();
    let sources: [&dyn diag_core::Collect; 1] = [registry()];
    let service = Service::new(&states, &sources, 1);
    // Fits a response head, not the histogram series.
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 260]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    let input = get("/metrics");
    let mut io = Duplex::new(input.as_bytes());
    let err = block_on(connection.serve(&mut io)).unwrap_err();
    assert_eq!(err, ConnectionError::Encode(EncodeError::BufferTooSmall));
    let output = String::from_utf8(io.output).unwrap();
    assert!(output.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(!output.ends_with("0\r\n\r\n"), "no last chunk: the client sees an incomplete body");
}

#[test]
fn chunk_buffer_too_small_for_a_head() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 64]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    let input = get("/healthz");
    let mut io = Duplex::new(input.as_bytes());
    assert_eq!(block_on(connection.serve(&mut io)).unwrap_err(), ConnectionError::BufferTooSmall);
    assert!(io.output.is_empty());
}

#[test]
fn write_errors_are_reported() {
    let states = StateTable::<4>::new();
    let service = Service::new(&states, &[], 1);
    let (mut head, mut chunk) = ([0u8; 1024], [0u8; 512]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    let input = get("/healthz");
    let mut io = Duplex::new(input.as_bytes());
    io.fail_writes = true;
    let err = block_on(connection.serve(&mut io)).unwrap_err();
    assert_eq!(err, ConnectionError::Io(embedded_io_async::ErrorKind::BrokenPipe));
}

#[test]
fn mangled_requests_get_answers_never_panics() {
    let states = StateTable::<4>::new();
    states.heartbeat_ok("auth", 0).unwrap();
    let sources: [&dyn diag_core::Collect; 1] = [registry()];
    let service = Service::new(&states, &sources, 1);
    let valid = [get("/readyz?verbose"), get("/metrics"), "HEAD /healthz HTTP/1.1\r\n\r\n".into(), get("/readyz/auth")]
        .concat()
        .into_bytes();
    let (mut head, mut chunk) = ([0u8; 256], [0u8; 512]);
    let mut connection = Connection::new(&service, &mut head, &mut chunk);
    // A fixed linear congruential generator: the same mangled inputs on every run.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    let alphabet = b"\r\n :/?HTTP1.0GETX\x00\xff";
    for round in 0..3000 {
        let mut input = valid.clone();
        for _ in 0..1 + next(4) {
            let at = next(input.len());
            match next(3) {
                0 => input[at] = alphabet[next(alphabet.len())],
                1 => input.insert(at, alphabet[next(alphabet.len())]),
                _ => {
                    input.remove(at);
                }
            }
        }
        let mut io = Duplex::new(&input);
        io.piece = 1 + next(40);
        let closed = block_on(connection.serve(&mut io)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Every answer is a well-formed response head; after 400/431 the server closed.
        let mut rest = &io.output[..];
        while !rest.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            let len = match parsed.parse(rest) {
                Ok(httparse::Status::Complete(len)) => len,
                other => panic!("round {round}: bad response head {other:?} in {:?}", String::from_utf8_lossy(rest)),
            };
            let code = parsed.code.unwrap();
            assert!(matches!(code, 200 | 400 | 404 | 405 | 431 | 503), "round {round}: {code}");
            if matches!(code, 400 | 431) {
                assert_eq!(closed, Closed::ByServer, "round {round}");
            }
            // Skip to the next response head (bodies never start with "HTTP/1.1 ").
            rest = &rest[len..];
            rest = rest.windows(9).position(|w| w == b"HTTP/1.1 ").map_or(&[][..], |i| &rest[i..]);
        }
    }
}
