//! diag's routes merged into an axum application's router, and [`Server`] as a tower
//! service, served on 127.0.0.1 and spoken to with raw sockets: both the application's and
//! diag's routes answer, with the built-in server's negotiation, gzip, `HEAD`, limits and
//! streaming.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use axum::routing::get;
use diag_core::http::Service;
use diag_tests::{Response, ask, exchange, fixtures, parse_response, promtool_check, python_parse, request};
use diag_tokio::{DiagBody, RouteBody, RouteFuture, Routes, Server};
use tokio::runtime::Runtime;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

/// An extra route, `/diag-extra/…`, named in `paths` so that the axum router mounts it.
struct Extra;

impl Routes for Extra {
    fn claims(&self, request: &hyper::Request<RouteBody>) -> bool {
        request.uri().path().starts_with("/diag-extra/")
    }

    fn serve(&self, request: hyper::Request<RouteBody>) -> RouteFuture {
        let path = request.uri().path().to_owned();
        Box::pin(async move { hyper::Response::new(DiagBody::full(format!("extra {path}\n"))) })
    }

    fn paths(&self) -> &[&str] {
        &["/diag-extra/"]
    }
}

/// A diag server whose readiness is ok, with 300 labelled series and 1 KiB chunks (no pool).
fn diag() -> Server {
    Server::owning(fixtures::ready_states(), |states| Service::new(states, fixtures::labelled_sources(), 77))
        .with_limits(fixtures::small_chunks())
        .with_routes(Extra)
}

/// An axum application with its own routes and fallback, diag's router merged in, served by
/// `axum::serve` on a runtime of its own.
fn app(rt: &Runtime) -> SocketAddr {
    let app = axum::Router::new()
        .route("/hello", get(|| async { "hello from the app\n" }))
        .merge(diag().into_router())
        .fallback(|| async { (axum::http::StatusCode::IM_A_TEAPOT, "the app's fallback\n") });
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    addr
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn an_axum_app_answers_its_own_routes_and_diags_merged_ones() {
    let rt = runtime();
    let addr = app(&rt);

    let hello = request(addr, "GET", "/hello", &[]);
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello from the app\n"));
    let other = request(addr, "GET", "/not-diag", &[]);
    assert_eq!((other.status, other.text().as_str()), (418, "the app's fallback\n"));

    let healthz = request(addr, "GET", "/healthz", &[]);
    assert_eq!((healthz.status, healthz.text().as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(healthz.header("cache-control"), Some("no-store"));
    assert_eq!(healthz.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(request(addr, "GET", "/livez", &[]).status, 200);
    let readyz = request(addr, "GET", "/readyz", &[]);
    assert_eq!((readyz.status, readyz.text().as_str()), (200, r#"{"status":"ok","pid":77}"#));
    let verbose = request(addr, "GET", "/readyz?verbose", &[]);
    assert!(verbose.text().contains("[+]app ok"), "{}", verbose.text());
    assert_eq!(request(addr, "GET", "/readyz/app", &[]).status, 200);
    let unknown = request(addr, "GET", "/readyz/nobody", &[]);
    assert_eq!((unknown.status, unknown.text().as_str()), (404, r#"{"status":"unknown component","pid":77}"#));

    let post = request(addr, "POST", "/metrics", &[("Content-Length", "0")]);
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));

    let extra = request(addr, "GET", "/diag-extra/x/y", &[]);
    assert_eq!((extra.status, extra.text().as_str()), (200, "extra /diag-extra/x/y\n"));
    assert_eq!(extra.header("cache-control"), Some("no-store"), "common headers on extra routes");
}

#[test]
fn metrics_through_axum_negotiate_parse_stream_in_chunks_and_gzip() {
    let rt = runtime();
    let addr = app(&rt);

    let plain = request(addr, "GET", "/metrics", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert!(plain.chunks.len() > 10 && plain.chunks.iter().all(|&c| c <= 1024), "{:?}", plain.chunks);
    let text = plain.text();
    let families = python_parse("prometheus", &text);
    assert_eq!(families["paths"]["samples"].as_array().unwrap().len(), fixtures::PATH_SERIES, "every series");
    promtool_check(&text);

    let om = request(addr, "GET", "/metrics", &[("Accept", OPENMETRICS)]);
    assert_eq!(om.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert!(om.text().ends_with("# EOF\n"));
    python_parse("openmetrics", &om.text());
    promtool_check(&om.text());

    let gzip = request(addr, "GET", "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!((gzip.status, gzip.header("content-encoding")), (200, Some("gzip")));
    let unzipped = gzip.gunzip();
    assert!(unzipped.contains("paths_total{path=\"/a/fairly/long/request/path/299\"} 1\n"), "{unzipped}");
    python_parse("prometheus", &unzipped);
}

#[test]
fn head_through_axum_has_the_get_head_and_no_body() {
    let rt = runtime();
    let addr = app(&rt);
    for (path, headers) in
        [("/metrics", &[][..]), ("/metrics", &[("Accept-Encoding", "gzip")][..]), ("/readyz", &[][..])]
    {
        let mut raw = format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        let bytes = exchange(addr, format!("{raw}\r\n").as_bytes());
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(&bytes[end..], b"", "HEAD {path} {headers:?}: no body");
        let head = parse_response(&bytes, true).unwrap();
        let get = request(addr, "GET", path, headers);
        assert_eq!(head.status, get.status);
        assert_eq!(head.header("content-type"), get.header("content-type"), "{path}");
        assert_eq!(head.header("content-encoding"), get.header("content-encoding"), "{path}");
    }
}

#[test]
fn an_oversize_head_gets_431_and_the_app_keeps_serving() {
    let rt = runtime();
    let addr = app(&rt);
    let mut c = TcpStream::connect(addr).unwrap();
    let big = "x".repeat(12 * 1024);
    let (head, body) = ask(&mut c, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"));
    assert!(head.starts_with("http/1.1 431"), "{head}");
    assert_eq!(body, "431 request header fields too large\n");
    assert!(head.contains("connection: close"), "{head}");
    // The app's own routes are the app's business: no limit of diag's applies to them.
    let mut c = TcpStream::connect(addr).unwrap();
    let (head, _) = ask(&mut c, &format!("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"));
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // Far over what the app's own server takes: its own 4xx, and it stays up.
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let huge = "x".repeat(1024 * 1024);
    let _ = c.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n").as_bytes());
    let mut first = [0u8; 12];
    if std::io::Read::read_exact(&mut c, &mut first).is_ok() {
        assert!(first.starts_with(b"HTTP/1.1 4"), "{:?}", String::from_utf8_lossy(&first));
    }
    let after: Response = request(addr, "GET", "/healthz", &[]);
    assert_eq!(after.status, 200, "still serving");
    assert_eq!(request(addr, "GET", "/hello", &[]).status, 200);
}

#[test]
fn the_tower_service_answers_404_for_paths_diag_does_not_serve() {
    use tower_service::Service as _;
    let rt = runtime();
    let mut service = diag();
    rt.block_on(async {
        std::future::poll_fn(|cx| tower_service::Service::<hyper::Request<String>>::poll_ready(&mut service, cx))
            .await
            .unwrap();
        let response = service.call(hyper::Request::get("/elsewhere").body(String::new()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 404);
        let response = service.call(hyper::Request::get("/readyz/app").body(String::new()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        let response = service.call(hyper::Request::get("/diag-extra/z").body(String::new()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200, "extra routes through tower too");
    });
}
