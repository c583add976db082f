//! [`Server`]: async-net's listener, async-io's timer and the caller's spawn around the core's
//! accept loop ([`diag_core::server::serve`]), which caps the connections and drains on shutdown.

use std::future::Future;
use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;

use async_executor::Executor;
use async_net::{TcpListener, TcpStream};
use bytes::Bytes;
use diag_core::http::{Limits, Service};
use diag_core::server::{
    Accept, BoxError, ConnectionStats, ConnectionTask, DiagBody, Handler, RequestDurations, Routes,
};
use smol_hyper::rt::SmolTimer;

use crate::SmolMetrics;
use crate::io::Socket;

/// Serves a [`Service`] over HTTP/1.1 on async-io, under smol or async-std; see the
/// [crate docs](crate).
///
/// Cheap to clone: clones share the service, so [`begin_shutdown`](Self::begin_shutdown) on
/// one starts the drain of the others' `serve`.
#[derive(Debug, Clone)]
pub struct Server {
    handler: Handler,
    metrics: Option<SmolMetrics>,
}

impl Server {
    /// A server owning `service`, which borrows only `'static` data (statics, constants); for
    /// collectors made at run time, see [`owning`](Self::owning).
    pub fn new(service: Service<'static>) -> Self {
        Self { handler: Handler::new(service), metrics: None }
    }

    /// A server owning `owner` and the service `service` builds from it, so that collectors
    /// made at run time (such as [`SmolMetrics`]) are served without being leaked; see
    /// [`Handler::owning`].
    pub fn owning<O: Send + Sync + 'static>(owner: O, service: impl for<'a> FnOnce(&'a O) -> Service<'a>) -> Self {
        Self { handler: Handler::owning(owner, service), metrics: None }
    }

    /// Replaces the [`Limits`] (default [`Limits::DEFAULT`]). `max_head_bytes` below 8 KiB is
    /// raised to 8 KiB, hyper's smallest buffer.
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { handler: self.handler.with_limits(limits), ..self }
    }

    /// Serves `routes` before the core routes (see [`Routes`]).
    pub fn with_routes(self, routes: impl Routes) -> Self {
        Self { handler: self.handler.with_routes(routes), ..self }
    }

    /// Reports this server's tasks, connections and executor threads in `metrics` (see
    /// [`SmolMetrics`]).
    pub fn with_metrics(self, metrics: &SmolMetrics) -> Self {
        let handler = self.handler.with_connection_stats(Arc::clone(metrics.stats()));
        Self { handler, metrics: Some(metrics.clone()) }
    }

    /// Records how long every request took in `durations` (the family
    /// `diag_http_request_duration_seconds`; see [`RequestDurations`]); serve it by adding it
    /// to the metrics sources. The `diag` crate does both.
    pub fn with_request_durations(self, durations: Arc<RequestDurations>) -> Self {
        Self { handler: self.handler.with_request_durations(durations), ..self }
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

    /// Answers a request received by an HTTP server of the application's own (hyper on smol
    /// or async-std through `smol-hyper`, or any server speaking the `http` crate's types):
    /// the answers of the built-in server, extra routes first, with the same negotiation,
    /// gzip, `HEAD` handling, `431` for a head over `max_head_bytes` and `/metrics` streamed
    /// in `chunk_bytes` chunks ([`DiagBody`] is an `http_body::Body`); `404` for any path
    /// diag does not serve, so call it for diag's paths and answer the others yourself. See
    /// [`Handler::call`]; the crate docs have an example.
    ///
    /// The future is `Send + 'static` and needs no runtime of its own.
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

    /// Whether `path` is one of diag's (a core route, or one the extra routes name in
    /// [`Routes::paths`]): the requests to hand to [`respond`](Self::respond); see
    /// [`Handler::serves_path`].
    pub fn serves_path(&self, path: &str) -> bool {
        self.handler.serves_path(path)
    }

    /// Binds `addr` and serves until shutdown; see [`serve`](Self::serve). A host name is
    /// resolved with the blocking system resolver: pass an address to avoid it.
    ///
    /// # Errors
    /// When `addr` cannot be bound (in use, not local, …).
    pub async fn bind_and_serve(self, addr: impl ToSocketAddrs, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let listener = TcpListener::try_from(std::net::TcpListener::bind(addr)?)?;
        self.serve(listener, shutdown).await
    }

    /// Serves connections from `listener` until shutdown, then drains; see
    /// [`diag_core::server::serve`] for the connection cap and the drain.
    ///
    /// Shutdown begins when `shutdown` completes, when [`begin_shutdown`](Self::begin_shutdown)
    /// is called on a clone, or when the readiness begins shutting down by itself (e.g.
    /// `StateTable::begin_shutdown`). `/readyz` then answers 503 while the server keeps
    /// serving for `shutdown_delay_ms` (5 s by default); then it stops accepting, lets requests
    /// in flight finish within `drain_timeout_ms` (10 s), and returns.
    ///
    /// Connections are tasks of an executor inside the returned future, so serving needs no
    /// particular runtime: run the future with `smol::block_on`, `smol::spawn`,
    /// `async_std::task::block_on`, `async_std::task::spawn`, or any executor; async-io drives
    /// the sockets and timers. All connections progress on the thread that polls it (the
    /// `diag_smol_executor_threads` gauge says 1); to spread them over threads, use
    /// [`serve_spawning`](Self::serve_spawning).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for listener errors that must end serving.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let executor = Executor::new();
        let _threads = self.metrics.as_ref().map(|m| m.running_on_one_thread());
        executor.run(self.serve_spawning(listener, shutdown, |c| executor.spawn(c).detach())).await
    }

    /// Like [`serve`](Self::serve), but every connection is handed to `spawn` as a task, so
    /// connections run wherever `spawn` puts them: on smol's or async-std's multi-threaded
    /// executors, or an `async_executor::Executor` run on several threads. The returned future
    /// runs the accept loop and the drain; it returns once every connection has closed,
    /// wherever it ran (or the drain timed out).
    ///
    /// # Examples
    /// ```no_run
    /// # use diag_smol::{Server, TcpListener};
    /// # async fn run(server: Server, listener: TcpListener) -> std::io::Result<()> {
    /// // async-std: connections on its global, multi-threaded executor.
    /// server.serve_spawning(listener, std::future::pending(), |c| drop(async_std::task::spawn(c))).await
    /// # }
    /// ```
    ///
    /// # Errors
    /// None today; the `Result` leaves room for listener errors that must end serving.
    pub async fn serve_spawning(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        spawn: impl Fn(ConnectionTask),
    ) -> io::Result<()> {
        diag_core::server::serve(self.handler, Tcp(listener), SmolTimer::new(), spawn, shutdown).await
    }
}

/// async-net's listener for the core's accept loop: accepted sockets take vectored writes
/// ([`Socket`]), and closing one shuts its write side down, so a client sees the end of the
/// last response.
struct Tcp(TcpListener);

impl Accept for Tcp {
    type Io = Socket;

    async fn accept(&mut self) -> io::Result<Socket> {
        let (stream, _): (TcpStream, _) = self.0.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(Socket::new(stream))
    }
}
