//! [`Handler`]: what a frontend answers every request with: the extra routes first, then the
//! core [`Service`], converted between hyper's types and the core's.

use core::fmt;
use std::boxed::Box;
use std::sync::Arc;
use std::vec;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};

use crate::http::{Limits, Request, Response, Service};
use crate::server::pool::{ChunkPool, POOL_CHUNK_BYTES};
use crate::server::watchdog::Busy;
use crate::server::{DiagBody, Routes};

/// Smallest read buffer hyper accepts; a smaller `max_head_bytes` is raised to it.
pub(crate) const HYPER_MIN_BUF: usize = 8192;

/// A `'static` [`Service`], the [`Limits`] to apply and optional extra [`Routes`]: everything
/// a frontend's server is configured with. Cheap to clone; clones share one pool of larger
/// chunks ([`Limits::chunk_pool_bytes`]).
///
/// # Examples
/// ```
/// use diag_core::http::{Limits, Service};
/// use diag_core::server::Handler;
/// use diag_core::StateTable;
/// static STATES: StateTable<4> = StateTable::new();
/// let mut limits = Limits::DEFAULT;
/// limits.max_connections = 16;
/// let handler = Handler::new(Service::new(&STATES, &[], 1)).with_limits(limits);
/// assert_eq!(handler.limits().max_connections, 16);
/// ```
#[derive(Clone)]
pub struct Handler {
    service: &'static Service<'static>,
    limits: Limits,
    routes: Option<Arc<dyn Routes>>,
    pool: Option<Arc<ChunkPool>>,
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("service", self.service)
            .field("limits", &self.limits)
            .field("routes", &self.routes.is_some())
            .finish()
    }
}

impl Handler {
    /// A handler for `service`, which is moved to the heap and leaked: a diag server lives as
    /// long as the process (use [`from_static`](Self::from_static) to keep ownership).
    pub fn new(service: Service<'static>) -> Self {
        Self::from_static(Box::leak(Box::new(service)))
    }

    /// A handler for a service that already lives for the whole program.
    pub fn from_static(service: &'static Service<'static>) -> Self {
        Self { service, limits: Limits::DEFAULT, routes: None, pool: pool(&Limits::DEFAULT) }
    }

    /// Replaces the [`Limits`] (default [`Limits::DEFAULT`]). `max_head_bytes` below 8 KiB is
    /// raised to 8 KiB, hyper's smallest buffer.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.pool = pool(&limits);
        self
    }

    /// Serves `routes` before the core routes (see [`Routes`]).
    pub fn with_routes(mut self, routes: impl Routes) -> Self {
        self.routes = Some(Arc::new(routes));
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The largest request head accepted, in bytes: `max_head_bytes`, at least hyper's 8 KiB.
    pub fn max_head_bytes(&self) -> usize {
        self.limits.max_head_bytes.max(HYPER_MIN_BUF)
    }

    /// Answers `request`: an extra route if one claims it (with the common headers added),
    /// else the core routes. `busy` ends when the response body is done.
    ///
    /// Runs inside a `debug` span `http.request` (target `diag_core::server::handler`; debug so
    /// that a subscriber logging at info pays nothing for it) that records the method, path,
    /// status and the W3C `traceparent` header, so a subscriber such as `tracing-opentelemetry`
    /// can link it to the caller's trace.
    pub(crate) async fn handle(&self, request: hyper::Request<Incoming>, busy: Busy) -> hyper::Response<DiagBody> {
        use tracing::Instrument as _;
        let span = request_span(&request);
        let response = self.answer(request, busy).instrument(span.clone()).await;
        span.record("http.response.status_code", i64::from(response.status().as_u16()));
        response
    }

    async fn answer(&self, request: hyper::Request<Incoming>, busy: Busy) -> hyper::Response<DiagBody> {
        if let Some(routes) = self.routes.as_ref().filter(|r| r.claims(&request)) {
            let mut response = routes.serve(request).await;
            let headers = response.headers_mut();
            for (name, value) in [("cache-control", "no-store"), ("x-content-type-options", "nosniff")] {
                headers.entry(name).or_insert(HeaderValue::from_static(value));
            }
            let (parts, body) = response.into_parts();
            return hyper::Response::from_parts(parts, body.with_busy(busy));
        }
        let response = self.service.respond(&core_request(&request));
        to_hyper(response, self.limits.chunk_bytes, self.pool.clone()).map(|body| body.with_busy(busy))
    }
}

/// The pool `limits` ask for: none when it would hold no buffer or its buffers would be no
/// larger than the first chunk.
fn pool(limits: &Limits) -> Option<Arc<ChunkPool>> {
    if limits.chunk_bytes >= POOL_CHUNK_BYTES {
        return None;
    }
    ChunkPool::new(limits.chunk_pool_bytes, POOL_CHUNK_BYTES)
}

/// The span of one request, with OpenTelemetry's conventional names (`otel.name`,
/// `otel.kind`, `http.request.method`, `url.path`) and the incoming `traceparent`, if any.
fn request_span<B>(request: &hyper::Request<B>) -> tracing::Span {
    let method = request.method().as_str();
    let path = request.uri().path();
    let traceparent = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
    tracing::debug_span!(
        "http.request",
        otel.name = %format_args!("{method} {path}"),
        otel.kind = "server",
        http.request.method = method,
        url.path = path,
        traceparent,
        http.response.status_code = tracing::field::Empty,
    )
}

/// The parts of a hyper request head the core routes read. A header that is not visible
/// ASCII counts as absent.
fn core_request<B>(request: &hyper::Request<B>) -> Request<'_> {
    let header = |name| request.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let uri = request.uri();
    Request {
        method: request.method().as_str(),
        target: uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()),
        accept: header(header::ACCEPT),
        accept_encoding: header(header::ACCEPT_ENCODING),
    }
}

/// Turns a core response into a hyper one: status, headers, `Content-Length` when known, and
/// the body (fixed bodies copied once, others streamed by [`DiagBody::stream`]).
fn to_hyper(
    response: Response<'static>,
    chunk_bytes: usize,
    pool: Option<Arc<ChunkPool>>,
) -> hyper::Response<DiagBody> {
    let mut builder = hyper::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let length = response.content_length();
    if let Some(len) = length {
        builder = builder.header(header::CONTENT_LENGTH, len);
    }
    let body = match length {
        Some(len) if len <= chunk_bytes && !response.gzip() => {
            let mut buf = vec![0; len];
            let mut body = response.into_body();
            let mut filled = 0;
            // Fixed bodies never fail to fill and end at their length.
            while let Ok(n @ 1..) = body.fill(&mut buf[filled..]) {
                filled += n;
            }
            buf.truncate(filled);
            DiagBody::full(buf)
        }
        _ => DiagBody::stream_pooled(response, chunk_bytes, pool),
    };
    builder.body(body).unwrap_or_else(|e| {
        // Only reachable if the core produced an invalid header, which its tests rule out.
        tracing::error!(error = %e, "invalid response head");
        let mut r = hyper::Response::new(DiagBody::empty());
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::StateTable;

    #[test]
    fn request_heads_convert_with_the_query_and_negotiation_headers() {
        let request = hyper::Request::builder()
            .method("HEAD")
            .uri("/readyz?verbose")
            .header("accept", "application/openmetrics-text")
            .header("accept-encoding", b"\xffgzip".as_slice())
            .body(())
            .unwrap();
        let core = core_request(&request);
        assert_eq!(core.method, "HEAD");
        assert_eq!(core.target, "/readyz?verbose");
        assert_eq!(core.accept, Some("application/openmetrics-text"));
        assert_eq!(core.accept_encoding, None, "non-ASCII header value counts as absent");
    }

    #[test]
    fn responses_keep_status_headers_and_length() {
        static STATES: StateTable<2> = StateTable::new();
        let service = Box::leak(Box::new(Service::new(&STATES, &[], 7)));
        let response = to_hyper(service.respond(&Request { method: "POST", ..Request::get("/healthz") }), 1024, None);
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["content-length"], "23");
        let response = to_hyper(service.respond(&Request::get("/metrics")), 1024, None);
        assert!(response.headers().get("content-length").is_none(), "metrics stream");
    }
}
