//! [`Handler`]: what a frontend answers every request with: the extra routes first, then the
//! core [`Service`], converted between hyper's types and the core's.

use core::fmt;
use core::future::Future;
use std::sync::Arc;
use std::vec;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};

use crate::http::{Limits, Request, Response, Service};
use crate::server::admission::ConnectionStats;
use crate::server::pool::{ChunkPool, POOL_CHUNK_BYTES};
use crate::server::request_durations::RequestDurations;
use crate::server::shared::Shared;
use crate::server::watchdog::Busy;
use crate::server::{BoxError, DiagBody, RouteBody, Routes};

/// Smallest read buffer hyper accepts; a smaller `max_head_bytes` is raised to it.
pub(crate) const HYPER_MIN_BUF: usize = 8192;

/// A [`Service`] (owned, with whatever it borrows from), the [`Limits`] to apply and optional
/// extra [`Routes`]: everything a frontend's server is configured with. Cheap to clone; clones
/// share the service, one pool of larger chunks ([`Limits::chunk_pool_bytes`]) and one
/// [`ConnectionStats`]. Nothing is leaked: the service is dropped with the last clone (or
/// the last response body still streaming from it).
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
    shared: Arc<Shared>,
    limits: Limits,
    routes: Option<Arc<dyn Routes>>,
    pool: Option<Arc<ChunkPool>>,
    stats: Arc<ConnectionStats>,
    durations: Option<Arc<RequestDurations>>,
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("service", &self.shared)
            .field("limits", &self.limits)
            .field("routes", &self.routes.is_some())
            .finish()
    }
}

impl Handler {
    /// A handler for `service`, which it owns: `service` borrows only `'static` data (statics,
    /// constants). For a service over collectors made at run time, see
    /// [`owning`](Self::owning).
    pub fn new(service: Service<'static>) -> Self {
        Self::with_shared(Shared::new(service))
    }

    /// A handler owning `owner` and the service `service` builds from it: the way to serve
    /// collectors made at run time (a runtime's gauges, a registry chosen by configuration)
    /// without leaking them or making them `'static`. `owner` is dropped with the last clone of
    /// the handler (and the last response body streaming from it).
    ///
    /// # Examples
    /// ```
    /// use diag_core::http::Service;
    /// use diag_core::server::Handler;
    /// use diag_core::{Collect, Counter, Registry, StateTable};
    ///
    /// /// What the service borrows from, made at run time.
    /// struct App {
    ///     states: StateTable<8>,
    ///     registry: Registry<'static, 8>,
    /// }
    ///
    /// let app = App { states: StateTable::new(), registry: Registry::new() };
    /// app.states.expect("db").unwrap();
    /// let handler = Handler::owning(app, |app| Service::from_sources(&app.states, &app.registry, 1));
    /// # let _ = handler;
    /// ```
    pub fn owning<O: Send + Sync + 'static>(owner: O, service: impl for<'a> FnOnce(&'a O) -> Service<'a>) -> Self {
        Self::with_shared(Shared::owning(owner, service))
    }

    fn with_shared(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
            limits: Limits::DEFAULT,
            routes: None,
            pool: pool(&Limits::DEFAULT),
            stats: Arc::new(ConnectionStats::default()),
            durations: None,
        }
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

    /// Counts this handler's connections in `stats` (for a frontend's gauges) instead of its own.
    pub fn with_connection_stats(mut self, stats: Arc<ConnectionStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Records how long every request took in `durations` (see [`RequestDurations`]), which
    /// the program serves by adding it to its metrics sources.
    pub fn with_request_durations(mut self, durations: Arc<RequestDurations>) -> Self {
        self.durations = Some(durations);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counts of the connections served with this handler (by [`serve`](crate::server::serve)).
    pub fn connection_stats(&self) -> &Arc<ConnectionStats> {
        &self.stats
    }

    /// The largest request head accepted, in bytes: `max_head_bytes`, at least hyper's 8 KiB.
    pub fn max_head_bytes(&self) -> usize {
        self.limits.max_head_bytes.max(HYPER_MIN_BUF)
    }

    /// Begins shutdown: `/readyz` answers 503 "process is shutting down" from now on (the
    /// service's [`Readiness::begin_shutdown`](crate::http::Readiness::begin_shutdown)), and
    /// every [`serve`](crate::server::serve) loop with this readiness starts its drain: it
    /// serves for `shutdown_delay_ms` more, then stops accepting and closes.
    pub fn begin_shutdown(&self) {
        self.shared.service().readiness().begin_shutdown();
    }

    /// Whether shutdown has begun (by [`begin_shutdown`](Self::begin_shutdown) or on the
    /// readiness itself, e.g. [`StateTable::begin_shutdown`](crate::StateTable::begin_shutdown)).
    pub fn is_shutting_down(&self) -> bool {
        self.shared.service().readiness().is_shutting_down()
    }

    /// The extra routes, if any (for routers that mount them by [`Routes::paths`]).
    pub fn routes(&self) -> Option<&dyn Routes> {
        self.routes.as_deref()
    }

    /// Whether `path` (without the query) is one of diag's: a core route (`/healthz`, `/livez`,
    /// `/readyz`, `/readyz/<component>`, `/metrics`) or one the extra routes name in
    /// [`Routes::paths`]. An application's own server sends these to [`call`](Self::call) and
    /// answers the rest itself.
    ///
    /// # Examples
    /// ```
    /// use diag_core::http::Service;
    /// use diag_core::server::Handler;
    /// use diag_core::StateTable;
    /// static STATES: StateTable<4> = StateTable::new();
    /// let handler = Handler::new(Service::new(&STATES, &[], 1));
    /// assert!(handler.serves_path("/readyz/db") && handler.serves_path("/metrics"));
    /// assert!(!handler.serves_path("/api/users") && !handler.serves_path("/debug/pprof/heap"));
    /// ```
    pub fn serves_path(&self, path: &str) -> bool {
        let core =
            !matches!(crate::http::Route::parse(path), crate::http::Route::NotFound | crate::http::Route::Debug(_));
        core || self.routes.as_ref().is_some_and(|r| {
            r.paths().iter().any(|p| match p.strip_suffix('/') {
                Some(base) if !base.is_empty() => path == base || path.starts_with(p),
                _ => path == *p,
            })
        })
    }

    /// Answers a request received by a server of the application's own (a tower or axum
    /// router, hyper on smol or async-std): what the built-in servers answer on a connection,
    /// with the same routes (the extra [`Routes`] first), negotiation, gzip, `HEAD` handling
    /// and `/metrics` streamed in `chunk_bytes` chunks. A request head (request line and
    /// headers, as sent) larger than [`max_head_bytes`](Self::max_head_bytes) gets `431` and
    /// `Connection: close`, as on the built-in servers. The core routes never read the request
    /// body (it is dropped with the request); an extra route bounds what it reads. Paths the
    /// routes do not serve get the core's `404`.
    ///
    /// What belongs to connections (timeouts, the connection cap, the drain) is the
    /// application's server's business.
    ///
    /// The future owns a clone of the handler (a few reference counts): it is `'static`.
    ///
    /// # Examples
    /// ```
    /// # fn main() {
    /// use diag_core::http::Service;
    /// use diag_core::server::Handler;
    /// use diag_core::StateTable;
    /// use http_body::Body as _;
    ///
    /// static STATES: StateTable<4> = StateTable::new();
    /// let handler = Handler::new(Service::new(&STATES, &[], 1));
    /// let request = hyper::Request::get("/healthz").body(String::new()).unwrap();
    /// let response = futures_block_on(handler.call(request));
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.body().size_hint().exact(), Some(15));
    /// # }
    /// # fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// ```
    pub fn call<B>(
        &self,
        request: hyper::Request<B>,
    ) -> impl Future<Output = hyper::Response<DiagBody>> + Send + 'static
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let handler = self.clone();
        async move {
            if head_bytes(&request) > handler.max_head_bytes() {
                let start = std::time::Instant::now();
                let response = Response::plain(431, "request header fields too large");
                let mut response = to_hyper(response, handler.limits.chunk_bytes, None, |_, _, _| DiagBody::empty());
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                handler.observe(
                    RequestDurations::route(request.uri().path(), false),
                    response.status().as_u16(),
                    start,
                );
                return response;
            }
            handler.handle_any(request.map(RouteBody::new), None).await
        }
    }

    /// Answers `request` received on one of the connections [`serve`](crate::server::serve)
    /// drives; `busy` ends when the response body is done.
    pub(crate) async fn handle(&self, request: hyper::Request<Incoming>, busy: Busy) -> hyper::Response<DiagBody> {
        self.handle_any(request.map(RouteBody::from), Some(busy)).await
    }

    /// Answers `request`: an extra route if one claims it (with the common headers added),
    /// else the core routes. `busy`, if any, ends when the response body is done.
    ///
    /// Runs inside a `debug` span `http.request` (target `diag_core::server::handler`; debug so
    /// that a subscriber logging at info pays nothing for it) that records the method, path,
    /// status and the W3C `traceparent` header, so a subscriber such as `tracing-opentelemetry`
    /// can link it to the caller's trace.
    async fn handle_any(&self, request: hyper::Request<RouteBody>, busy: Option<Busy>) -> hyper::Response<DiagBody> {
        use tracing::Instrument as _;
        let start = std::time::Instant::now();
        let span = request_span(&request);
        let route = self.durations.is_some().then(|| {
            let extra = self.routes.as_ref().is_some_and(|r| r.claims(&request));
            RequestDurations::route(request.uri().path(), extra)
        });
        let response = self.answer(request, busy).instrument(span.clone()).await;
        let status = response.status().as_u16();
        span.record("http.response.status_code", i64::from(status));
        if let Some(route) = route {
            // In the span: an exemplar source reading the current trace links the bucket to it.
            span.in_scope(|| self.observe(route, status, start));
        }
        response
    }

    /// Records a request's duration, if this handler keeps [`RequestDurations`].
    fn observe(&self, route: &'static str, status: u16, start: std::time::Instant) {
        if let Some(d) = &self.durations {
            d.observe(route, status, start.elapsed().as_secs_f64());
        }
    }

    async fn answer(&self, request: hyper::Request<RouteBody>, busy: Option<Busy>) -> hyper::Response<DiagBody> {
        let with_busy = |body: DiagBody| match busy {
            Some(busy) => body.with_busy(busy),
            None => body,
        };
        if let Some(routes) = self.routes.as_ref().filter(|r| r.claims(&request)) {
            let mut response = routes.serve(request).await;
            let headers = response.headers_mut();
            for (name, value) in [("cache-control", "no-store"), ("x-content-type-options", "nosniff")] {
                headers.entry(name).or_insert(HeaderValue::from_static(value));
            }
            return response.map(with_busy);
        }
        let response = self.shared.service().respond(&core_request(&request));
        // SAFETY: the response comes from `self.shared`'s own service.
        let stream = |response, chunk_bytes, pool| unsafe { Shared::stream(&self.shared, response, chunk_bytes, pool) };
        to_hyper(response, self.limits.chunk_bytes, self.pool.clone(), stream).map(with_busy)
    }
}

/// The size of `request`'s head as sent over HTTP/1.1: request line, headers and the blank line.
fn head_bytes<B>(request: &hyper::Request<B>) -> usize {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(uri.path().len(), |pq| pq.as_str().len());
    let line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let headers: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + 2 + value.len() + 2).sum();
    line + headers + 2
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
/// the body (fixed bodies copied once, others streamed by `stream`).
fn to_hyper<'r>(
    response: Response<'r>,
    chunk_bytes: usize,
    pool: Option<Arc<ChunkPool>>,
    stream: impl FnOnce(Response<'r>, usize, Option<Arc<ChunkPool>>) -> DiagBody,
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
        _ => stream(response, chunk_bytes, pool),
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
        let service = Service::new(&STATES, &[], 7);
        let unused = |_, _, _| unreachable!("a fixed body is not streamed");
        let response =
            to_hyper(service.respond(&Request { method: "POST", ..Request::get("/healthz") }), 1024, None, unused);
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["content-length"], "23");
        let streamed = |_, _, _| DiagBody::full("streamed");
        let response = to_hyper(service.respond(&Request::get("/metrics")), 1024, None, streamed);
        assert!(response.headers().get("content-length").is_none(), "metrics stream");
    }
}
