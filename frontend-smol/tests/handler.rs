//! diag's routes answered by [`Server::respond`] from HTTP servers of the application's own:
//! hyper on smol and hyper on async-std (through smol-hyper's `FuturesIo`), on 127.0.0.1 and
//! spoken to with raw sockets. Both the application's routes and diag's answer, with the
//! built-in server's negotiation, gzip, `HEAD`, limits and streaming.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpStream};

use diag_core::http::Service;
use diag_smol::{DiagBody, Server};
use diag_tests::{ask, exchange, fixtures, parse_response, promtool_check, python_parse, request};
use hyper::body::Incoming;
use smol_hyper::rt::FuturesIo;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

/// A diag server whose readiness is ok, with 300 labelled series and 1 KiB chunks (no pool).
fn diag() -> Server {
    Server::owning(fixtures::ready_states(), |states| Service::new(states, fixtures::labelled_sources(), 55))
        .with_limits(fixtures::small_chunks())
}

/// The application's handler: diag's paths to diag, `/hello` and everything else its own.
async fn route(diag: Server, request: hyper::Request<Incoming>) -> Result<hyper::Response<DiagBody>, Infallible> {
    if diag.serves_path(request.uri().path()) {
        return Ok(diag.respond(request).await);
    }
    let (status, body) = match request.uri().path() {
        "/hello" => (200, "hello from the app\n"),
        _ => (418, "the app's fallback\n"),
    };
    let mut response = hyper::Response::new(DiagBody::full(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(response)
}

/// Serves one accepted stream with hyper and [`route`].
async fn connection<S>(diag: Server, stream: S)
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| route(diag.clone(), request));
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(FuturesIo::new(stream), service).await;
}

/// The application served on smol, on a thread of its own.
fn smol_app() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let diag = diag();
    std::thread::spawn(move || {
        smol::block_on(async move {
            let listener = smol::net::TcpListener::try_from(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                smol::spawn(connection(diag.clone(), stream)).detach();
            }
        })
    });
    addr
}

/// The application served on async-std, on a thread of its own.
fn async_std_app() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let diag = diag();
    std::thread::spawn(move || {
        async_std::task::block_on(async move {
            let listener = async_std::net::TcpListener::from(listener);
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                drop(async_std::task::spawn(connection(diag.clone(), stream)));
            }
        })
    });
    addr
}

/// Every check, against the application at `addr`.
fn check(addr: SocketAddr) {
    let hello = request(addr, "GET", "/hello", &[]);
    assert_eq!((hello.status, hello.text().as_str()), (200, "hello from the app\n"));
    assert_eq!(request(addr, "GET", "/elsewhere", &[]).status, 418, "the app's own answer");

    let readyz = request(addr, "GET", "/readyz", &[]);
    assert_eq!((readyz.status, readyz.text().as_str()), (200, r#"{"status":"ok","pid":55}"#));
    assert_eq!(readyz.header("cache-control"), Some("no-store"));
    assert_eq!(request(addr, "GET", "/readyz/nobody", &[]).status, 404);
    let post = request(addr, "POST", "/healthz", &[("Content-Length", "0")]);
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));

    let plain = request(addr, "GET", "/metrics", &[]);
    assert_eq!(plain.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert!(plain.chunks.len() > 10 && plain.chunks.iter().all(|&c| c <= 1024), "{:?}", plain.chunks);
    let families = python_parse("prometheus", &plain.text());
    assert_eq!(families["paths"]["samples"].as_array().unwrap().len(), fixtures::PATH_SERIES);
    promtool_check(&plain.text());
    let om = request(addr, "GET", "/metrics", &[("Accept", OPENMETRICS)]);
    python_parse("openmetrics", &om.text());
    promtool_check(&om.text());
    let gzip = request(addr, "GET", "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    python_parse("prometheus", &gzip.gunzip());

    let bytes =
        exchange(addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&bytes[end..], b"", "HEAD: no body");
    let head = parse_response(&bytes, true).unwrap();
    assert_eq!((head.status, head.header("content-encoding")), (200, Some("gzip")));

    let mut c = TcpStream::connect(addr).unwrap();
    let big = "x".repeat(12 * 1024);
    let (head, body) = ask(&mut c, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"));
    assert!(head.starts_with("http/1.1 431"), "{head}");
    assert_eq!(body, "431 request header fields too large\n");
    assert_eq!(request(addr, "GET", "/healthz", &[]).status, 200, "still serving");
}

#[test]
fn a_hyper_server_on_smol_serves_diags_routes_through_respond() {
    check(smol_app());
}

#[test]
fn a_hyper_server_on_async_std_serves_diags_routes_through_respond() {
    check(async_std_app());
}
