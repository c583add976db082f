//! [`Server`]: accepts connections, applies the limits, and answers with the core service.

use std::cmp::max;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use diag_core::gzip::Chunks;
use diag_core::http::{Limits, Request, Response, Service};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::body::DiagBody;
use crate::io::Watched;
use crate::routes::Routes;
use crate::watchdog::{Activity, Busy, Expired};

/// Smallest read buffer hyper accepts; a smaller `max_head_bytes` is raised to it.
const HYPER_MIN_BUF: usize = 8192;

/// Serves a `'static` [`Service`] over HTTP/1.1 on tokio; see the [crate docs](crate).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    service: &'static Service<'static>,
    limits: Limits,
    routes: Option<Box<dyn Routes>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("service", self.inner.service)
            .field("limits", &self.inner.limits)
            .field("routes", &self.inner.routes.is_some())
            .finish()
    }
}

impl Server {
    /// A server for `service`, which is moved to the heap and leaked: a diag server lives as
    /// long as the process (use [`from_static`](Self::from_static) to keep ownership).
    pub fn new(service: Service<'static>) -> Self {
        Self::from_static(Box::leak(Box::new(service)))
    }

    /// A server for a service that already lives for the whole program.
    pub fn from_static(service: &'static Service<'static>) -> Self {
        Self { inner: Arc::new(Inner { service, limits: Limits::DEFAULT, routes: None }) }
    }

    /// Replaces the [`Limits`] (default [`Limits::DEFAULT`]). `max_head_bytes` below 8 KiB is
    /// raised to 8 KiB, hyper's smallest buffer.
    pub fn with_limits(self, limits: Limits) -> Self {
        self.rebuild(|inner| inner.limits = limits)
    }

    /// Serves `routes` before the core routes (see [`Routes`]).
    pub fn with_routes(self, routes: impl Routes) -> Self {
        self.rebuild(|inner| inner.routes = Some(Box::new(routes)))
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> Self {
        let Inner { service, limits, routes } = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            // A clone was taken before configuring: configure a copy without its routes.
            Err(shared) => Inner { service: shared.service, limits: shared.limits, routes: None },
        };
        let mut inner = Inner { service, limits, routes };
        f(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Binds `addr` and serves until `shutdown` completes; see [`serve`](Self::serve).
    ///
    /// # Errors
    /// When `addr` cannot be bound (in use, not local, …).
    pub async fn bind_and_serve(self, addr: impl ToSocketAddrs, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener, shutdown).await
    }

    /// Serves connections from `listener` until `shutdown` completes, then drains: stops
    /// accepting, lets in-flight requests finish (closing their connections after them),
    /// closes idle connections, and returns once every connection is closed.
    ///
    /// At most `max_connections` connections are served at once; further clients wait in
    /// the listen backlog. Failed accepts (e.g. out of file descriptors) are logged and
    /// retried after a short pause, never fatal.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for listener errors that must end serving.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let limit = self.inner.limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let permits = Arc::new(Semaphore::new(limit));
        let (stop, stopped) = watch::channel(());
        let mut shutdown = pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let inner = Arc::clone(&self.inner);
            tokio::spawn(connection(inner, stream, stopped.clone(), permit));
        }
        drop(listener);
        tracing::debug!("draining connections");
        stop.send_replace(());
        let all = u32::try_from(limit).unwrap_or(u32::MAX);
        // Every connection holds a permit until it closes.
        let _drained = permits.acquire_many(all).await;
        Ok(())
    }
}

/// Serves one connection: hyper's HTTP/1 state machine, plus the header and idle timeouts
/// and graceful close on shutdown.
async fn connection(
    inner: Arc<Inner>,
    stream: TcpStream,
    mut stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new(&inner.limits);
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
    let service = {
        let activity = Arc::clone(&activity);
        let inner = Arc::clone(&inner);
        service_fn(move |request| {
            let busy = activity.begin();
            let inner = Arc::clone(&inner);
            async move { Ok::<_, Infallible>(inner.handle(request, busy).await) }
        })
    };
    let mut builder = http1::Builder::new();
    builder.max_buf_size(max(inner.limits.max_head_bytes, HYPER_MIN_BUF)).keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    stop.mark_unchanged();
    let mut closing = false;
    loop {
        let deadline = activity.deadline();
        let sleep = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = sleep => match activity.expired(Instant::now()) {
                Some(Expired::Head) => {
                    tracing::debug!("closing a connection: request head not received in time");
                    return;
                }
                Some(Expired::Idle) if closing => return,
                Some(Expired::Idle) => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                None => {}
            },
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

impl Inner {
    async fn handle(&self, request: hyper::Request<Incoming>, busy: Busy) -> hyper::Response<DiagBody> {
        if let Some(routes) = self.routes.as_ref().filter(|r| r.claims(&request)) {
            let mut response = routes.serve(request).await;
            let headers = response.headers_mut();
            for (name, value) in [("cache-control", "no-store"), ("x-content-type-options", "nosniff")] {
                headers.entry(name).or_insert(HeaderValue::from_static(value));
            }
            let (parts, body) = response.into_parts();
            return hyper::Response::from_parts(parts, body.with_busy(busy));
        }
        let header = |name| request.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        let uri = request.uri();
        let core_request = Request {
            method: request.method().as_str(),
            target: uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()),
            accept: header(header::ACCEPT),
            accept_encoding: header(header::ACCEPT_ENCODING),
        };
        to_hyper(self.service.respond(&core_request), self.limits.chunk_bytes).map(|body| body.with_busy(busy))
    }
}

/// Turns a core response into a hyper one: status, headers, `Content-Length` when known, and
/// the body (fixed bodies copied once, streamed bodies through [`Chunks`]).
fn to_hyper(response: Response<'static>, chunk_bytes: usize) -> hyper::Response<DiagBody> {
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
        _ => DiagBody::stream(Chunks::from_response(response, chunk_bytes)),
    };
    builder.body(body).unwrap_or_else(|e| {
        // Only reachable if the core produced an invalid header, which its tests rule out.
        tracing::error!(error = %e, "invalid response head");
        let mut r = hyper::Response::new(DiagBody::empty());
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
