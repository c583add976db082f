//! [`Server`]: tokio's listener, timer and spawn around the core's accept loop
//! ([`diag_core::server::serve`]), which caps the connections and drains on shutdown.

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use diag_core::http::{Limits, Service};
use diag_core::server::{Accept, BoxError, ConnectionStats, DiagBody, Handler, RequestDurations, Routes};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

/// Serves a [`Service`] over HTTP/1.1 on tokio; see the [crate docs](crate).
///
/// Cheap to clone: clones share the service, so [`begin_shutdown`](Self::begin_shutdown) on
/// one starts the drain of the others' [`serve`](Self::serve).
#[derive(Debug, Clone)]
pub struct Server {
    handler: Handler,
}

impl Server {
    /// A server owning `service`, which borrows only `'static` data (statics, constants); for
    /// collectors made at run time, see [`owning`](Self::owning).
    pub fn new(service: Service<'static>) -> Self {
        Self { handler: Handler::new(service) }
    }

    /// A server owning `owner` and the service `service` builds from it, so that collectors
    /// made at run time (such as [`TokioMetrics`](crate::TokioMetrics)) are served without
    /// being leaked; see [`Handler::owning`].
    pub fn owning<O: Send + Sync + 'static>(owner: O, service: impl for<'a> FnOnce(&'a O) -> Service<'a>) -> Self {
        Self { handler: Handler::owning(owner, service) }
    }

    /// Replaces the [`Limits`] (default [`Limits::DEFAULT`]). `max_head_bytes` below 8 KiB is
    /// raised to 8 KiB, hyper's smallest buffer.
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { handler: self.handler.with_limits(limits) }
    }

    /// Serves `routes` before the core routes (see [`Routes`]).
    pub fn with_routes(self, routes: impl Routes) -> Self {
        Self { handler: self.handler.with_routes(routes) }
    }

    /// Records how long every request took in `durations` (the family
    /// `diag_http_request_duration_seconds`; see [`RequestDurations`]); serve it by adding it
    /// to the metrics sources. The `diag` crate does both.
    pub fn with_request_durations(self, durations: Arc<RequestDurations>) -> Self {
        Self { handler: self.handler.with_request_durations(durations) }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.handler.limits()
    }

    /// The counts of this server's connections (open, tasks, evicted at the cap, rejected).
    pub fn connection_stats(&self) -> &Arc<ConnectionStats> {
        self.handler.connection_stats()
    }

    /// Begins shutdown, as the `shutdown` future of [`serve`](Self::serve) completing would:
    /// `/readyz` answers 503 at once, serving goes on for `shutdown_delay_ms`, then the
    /// server drains. Call it on a clone kept before `serve`.
    pub fn begin_shutdown(&self) {
        self.handler.begin_shutdown();
    }

    /// Answers a request received by a server of the application's own (a tower or axum
    /// stack, a hyper service of its own): the answers of the built-in server, extra routes
    /// first, with the same negotiation, gzip, `HEAD` handling, `431` for a head over
    /// `max_head_bytes` and `/metrics` streamed in `chunk_bytes` chunks; `404` for any path
    /// diag does not serve. See [`Handler::call`]. With the feature `tower`, `Server` is a
    /// `tower::Service` doing this; with `axum`, [`into_router`](Self::into_router) mounts it.
    pub fn respond<B>(
        &self,
        request: hyper::Request<B>,
    ) -> impl Future<Output = hyper::Response<DiagBody>> + Send + 'static
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.handler.call(request)
    }

    #[cfg_attr(not(feature = "axum"), allow(dead_code, reason = "read by `into_router` only"))]
    pub(crate) fn handler(&self) -> &Handler {
        &self.handler
    }

    /// Whether `path` is one of diag's (a core route, or one the extra routes name in
    /// [`Routes::paths`]): the requests to hand to [`respond`](Self::respond); see
    /// [`Handler::serves_path`].
    pub fn serves_path(&self, path: &str) -> bool {
        self.handler.serves_path(path)
    }

    /// Binds `addr` and serves until shutdown; see [`serve`](Self::serve).
    ///
    /// # Errors
    /// When `addr` cannot be bound (in use, not local, …).
    pub async fn bind_and_serve(self, addr: impl ToSocketAddrs, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener, shutdown).await
    }

    /// Serves connections from `listener`, each in a task of its own, until shutdown, then
    /// drains; see [`diag_core::server::serve`] for the connection cap and the drain.
    ///
    /// Shutdown begins when `shutdown` completes, when [`begin_shutdown`](Self::begin_shutdown)
    /// is called on a clone, or when the readiness begins shutting down by itself (e.g.
    /// `StateTable::begin_shutdown`). `/readyz` then answers 503 while the server keeps
    /// serving for `shutdown_delay_ms` (5 s by default); then it stops accepting, lets requests
    /// in flight finish within `drain_timeout_ms` (10 s), and returns.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for listener errors that must end serving.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let spawn = |task| drop(tokio::spawn(task));
        diag_core::server::serve(self.handler, Tcp(listener), TokioTimer::new(), spawn, shutdown).await
    }
}

/// tokio's listener for the core's accept loop.
struct Tcp(TcpListener);

impl Accept for Tcp {
    type Io = TokioIo<TcpStream>;

    async fn accept(&mut self) -> io::Result<Self::Io> {
        let (stream, _) = self.0.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(TokioIo::new(stream))
    }
}
