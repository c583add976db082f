//! The core's HTTP request handling on arbitrary input: `Route::parse`, `negotiate_format`,
//! `accepts_gzip`, `Service::respond` with the body filled in arbitrary chunk sizes, and the
//! `Connection` handler over arbitrary wire bytes delivered in arbitrary read sizes.
//!
//! Beyond "never panics, never hangs": every response carries the always-present headers, a
//! fixed body has exactly its `Content-Length`, HEAD has no body, status codes follow the
//! route and the state table, `/metrics` bodies pass the strict exposition parser in the
//! negotiated format, and the connection's first answer is a well-formed HTTP/1.x head.
#![no_main]

use std::convert::Infallible;

use arbitrary::{Arbitrary, Unstructured};
use diag_core::encoding::parse::validate;
use diag_core::http::{Connection, Request, Route, Service, accepts_gzip, negotiate_format};
use diag_core::{Collect, State, StateTable};
use diag_fuzz::{FamilyDesc, Source, drain};
use libfuzzer_sys::fuzz_target;

const TARGETS: [&str; 16] = [
    "/healthz",
    "/livez",
    "/readyz",
    "/readyz?verbose",
    "/readyz/",
    "/readyz/a%2Fb",
    "/readyz/a/b",
    "/readyz/my%20db",
    "/readyz/caf%C3%A9",
    "/readyz/caf%C3",
    "/readyz/%zz",
    "/metrics",
    "/debug/pprof",
    "/readyz?verbose=false&x",
    "*",
    "",
];
const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "get", ""];
const ACCEPTS: [&str; 5] = [
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "application/openmetrics-text",
    "text/plain;q=0.9, application/openmetrics-text;q=0.8",
    "*/*",
    "gzip;q=0, *",
];
const COMPONENTS: [&str; 6] = ["auth", "db", "a\"b", "a/b", "my db", "café"];

fn pick(u: &mut Unstructured<'_>, known: &[&'static str]) -> arbitrary::Result<String> {
    Ok(match u.int_in_range(0..=2u8)? {
        0 => (*u.choose(known)?).to_owned(),
        // A known value with arbitrary text after it.
        1 => format!("{}{}", u.choose(known)?, u.arbitrary::<&str>()?),
        _ => u.arbitrary()?,
    })
}

#[derive(Debug)]
struct Case {
    method: String,
    target: String,
    accept: Option<String>,
    accept_encoding: Option<String>,
    heartbeats: Vec<(u8, bool)>,
    shutdown: bool,
    families: Vec<FamilyDesc>,
    sizes: Vec<u16>,
    wire: Vec<u8>,
    reads: Vec<u8>,
    head_len: u16,
    chunk_len: u16,
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let method = pick(u, &METHODS)?;
        let target = pick(u, &TARGETS)?;
        let accept = if u.arbitrary()? { Some(pick(u, &ACCEPTS)?) } else { None };
        let accept_encoding = if u.arbitrary()? { Some(pick(u, &ACCEPTS)?) } else { None };
        let heartbeats = u.arbitrary()?;
        let shutdown = u.arbitrary()?;
        let families = u.arbitrary::<diag_fuzz::MetricSet>()?.families;
        let sizes = u.arbitrary()?;
        let reads = u.arbitrary()?;
        let head_len = u.int_in_range(1..=9000)?;
        let chunk_len = u.int_in_range(1..=4096)?;
        // The wire: a well-formed request around the fields above, or raw bytes.
        let mut wire = Vec::new();
        if u.arbitrary()? {
            wire.extend_from_slice(format!("{method} {target} HTTP/1.1\r\nHost: x\r\n").as_bytes());
            if let Some(a) = &accept {
                wire.extend_from_slice(format!("Accept: {a}\r\n").as_bytes());
            }
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(u.arbitrary::<&[u8]>()?);
        Ok(Self {
            method,
            target,
            accept,
            accept_encoding,
            heartbeats,
            shutdown,
            families,
            sizes,
            wire,
            reads,
            head_len,
            chunk_len,
        })
    }
}

/// An in-memory transport: reads `input` in the given sizes, collects what is written.
struct Pipe<'a> {
    input: &'a [u8],
    reads: std::iter::Cycle<std::vec::IntoIter<usize>>,
    output: Vec<u8>,
}

impl embedded_io_async::ErrorType for Pipe<'_> {
    type Error = Infallible;
}

impl embedded_io_async::Read for Pipe<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = self.reads.next().unwrap_or(usize::MAX).min(buf.len()).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl embedded_io_async::Write for Pipe<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

fn check_respond(case: &Case, service: &Service<'_>, table: &StateTable<8>) {
    let route = Route::parse(&case.target);
    let format = negotiate_format(case.accept.as_deref());
    let gzip = accepts_gzip(case.accept_encoding.as_deref());
    let req = Request {
        method: &case.method,
        target: &case.target,
        accept: case.accept.as_deref(),
        accept_encoding: case.accept_encoding.as_deref(),
    };
    let response = service.respond(&req);
    let status = response.status();
    assert!(!response.reason().is_empty(), "status {status} without a reason phrase");
    let headers: Vec<_> = response.headers().collect();
    assert!(headers.contains(&("Cache-Control", "no-store")));
    assert!(headers.contains(&("X-Content-Type-Options", "nosniff")));
    let head = case.method == "HEAD";
    let method = case.method.as_str();
    let known = !matches!(route, Route::NotFound | Route::Debug(_));
    let method_ok = matches!(method, "GET" | "HEAD");
    let readiness_code = |s: State| match (table.is_shutting_down(), s) {
        (true, _) => 503,
        (_, State::Ok) => 200,
        (_, State::Recovering | State::Starting) => 400,
        (_, State::Degraded) => 503,
    };
    let want = match route {
        _ if !known => 404,
        Route::BadComponent(_) => 400,
        _ if !method_ok => 405,
        Route::Healthz | Route::Metrics => 200,
        Route::Readyz { .. } => readiness_code(table.state()),
        Route::Component(name) => {
            let mut buf = [0u8; 64];
            let decoded = name.decode_into(&mut buf);
            decoded.and_then(|n| table.component(n)).map_or(404, readiness_code)
        }
        _ => unreachable!("every known route is listed"),
    };
    assert_eq!(status, want, "{req:?}");
    if status == 405 {
        assert!(headers.contains(&("Allow", "GET, HEAD")));
    }
    let is_metrics = known && method_ok && matches!(route, Route::Metrics);
    if is_metrics {
        assert_eq!(response.content_type(), format.content_type());
        assert_eq!(response.gzip(), gzip);
    }
    let content_length = response.content_length();
    let mut body = response.into_body();
    let body = drain(&case.sizes, |buf| body.fill(buf)).concat();
    if head {
        assert!(body.is_empty(), "HEAD with a body");
    } else if let Some(n) = content_length {
        assert_eq!(body.len(), n, "Content-Length differs from the body");
    }
    if is_metrics && !head {
        let text = std::str::from_utf8(&body).expect("metrics are UTF-8");
        if let Err(e) = validate(format, text) {
            panic!("{format:?} /metrics body rejected by the strict parser: {e}\n{text}");
        }
    }
    if matches!(route, Route::Healthz) && status == 200 && !head {
        assert_eq!(body, br#"{"status":"ok"}"#);
    }
}

/// The first response on the wire: status, and the body when its framing delimits it (none
/// for a HEAD request).
fn first_response(output: &[u8], head_request: bool) -> (u16, Option<Vec<u8>>) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(output) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("the connection wrote no valid response head ({other:?}): {output:?}"),
    };
    let code = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).unwrap())
    };
    let rest = &output[head_len..];
    let body = if head_request {
        None
    } else if let Some(n) = header("content-length") {
        let n: usize = n.parse().expect("a numeric Content-Length");
        rest.get(..n).map(<[u8]>::to_vec)
    } else if header("transfer-encoding") == Some("chunked") {
        dechunk(rest)
    } else {
        None
    };
    (code, body)
}

/// The data of a complete chunked body, or `None` if it is cut off.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?, 16).expect("a hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            assert!(rest.starts_with(b"\r\n"), "chunked body without its final CRLF");
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        assert_eq!(rest.get(size..size + 2), Some(&b"\r\n"[..]), "chunk data without CRLF");
        rest = &rest[size + 2..];
    }
}

fn check_connection(case: &Case, service: &Service<'_>) {
    let mut head = vec![0u8; usize::from(case.head_len)];
    let mut chunk = vec![0u8; usize::from(case.chunk_len)];
    let mut connection = Connection::new(service, &mut head, &mut chunk);
    let limit = connection.max_head_bytes();
    let reads: Vec<usize> = case.reads.iter().map(|r| usize::from(*r).max(1)).collect();
    let reads = if reads.is_empty() { vec![usize::MAX] } else { reads };
    let mut pipe = Pipe { input: &case.wire, reads: reads.into_iter().cycle(), output: Vec::new() };
    let result = embassy_futures::block_on(connection.serve(&mut pipe));
    let output = pipe.output;
    if output.is_empty() {
        return;
    }
    // The first request head as the connection reads it, if complete within the limit.
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let wire = &case.wire[..case.wire.len().min(limit)];
    let complete = matches!(request.parse(wire), Ok(httparse::Status::Complete(_)));
    let (code, body) = first_response(&output, complete && request.method == Some("HEAD"));
    assert!(matches!(code, 200 | 400 | 404 | 405 | 431 | 503), "status {code} on the wire");

    // Differential: a complete first request head gets what `respond` gives.
    let (true, Some(method), Some(target)) = (complete, request.method, request.path) else { return };
    let accept = request
        .headers
        .iter()
        .rev()
        .find(|h| h.name.eq_ignore_ascii_case("accept"))
        .and_then(|h| std::str::from_utf8(h.value).ok().map(str::trim));
    let want = service.respond(&Request { method, target, accept, accept_encoding: None });
    assert_eq!(code, want.status(), "the connection and respond disagree on {method} {target} ({result:?})");
    if let Some(body) =
        body.filter(|_| method == "GET" && code == 200 && matches!(Route::parse(target), Route::Metrics))
    {
        let format = negotiate_format(accept);
        let text = std::str::from_utf8(&body).expect("metrics are UTF-8");
        if let Err(e) = validate(format, text) {
            panic!("{format:?} /metrics over the connection rejected by the strict parser: {e}\n{text}");
        }
    }
}

fuzz_target!(|case: Case| {
    let table: StateTable<8> = StateTable::new();
    for (i, (c, ok)) in case.heartbeats.iter().take(16).enumerate() {
        let name = COMPONENTS[usize::from(*c) % COMPONENTS.len()];
        let now = i as u64 * 7_000;
        let _ = if *ok { table.heartbeat_ok(name, now) } else { table.heartbeat_failed(name, now) };
    }
    if case.shutdown {
        table.begin_shutdown();
    }
    let source = Source { families: &case.families };
    let sources: [&dyn Collect; 1] = [&source];
    let service = Service::new(&table, &sources, 4242);
    check_respond(&case, &service, &table);
    check_connection(&case, &service);
});
