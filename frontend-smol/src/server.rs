//! [`Server`]: accepts connections on async-io, caps them, and hands each to the core's
//! connection driver; drains on shutdown.

use std::future::Future;
use std::io;
use std::net::ToSocketAddrs;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use async_executor::Executor;
use async_io::Timer;
use async_lock::{Semaphore, SemaphoreGuardArc};
use async_net::{TcpListener, TcpStream};
use diag_core::http::{Limits, Service};
use diag_core::server::{Handler, Routes, serve_connection};
use futures_lite::future;
use smol_hyper::rt::SmolTimer;

use crate::io::Socket;

/// The largest connection cap honoured (far above any file-descriptor limit); the drain takes
/// every permit back one by one.
const MAX_CONNECTIONS: usize = 1 << 20;

/// Serves a `'static` [`Service`] over HTTP/1.1 on async-io, under smol or async-std; see the
/// [crate docs](crate).
#[derive(Debug, Clone)]
pub struct Server {
    handler: Handler,
}

impl Server {
    /// A server for `service`, which is moved to the heap and leaked: a diag server lives as
    /// long as the process (use [`from_static`](Self::from_static) to keep ownership).
    pub fn new(service: Service<'static>) -> Self {
        Self { handler: Handler::new(service) }
    }

    /// A server for a service that already lives for the whole program.
    pub fn from_static(service: &'static Service<'static>) -> Self {
        Self { handler: Handler::from_static(service) }
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

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.handler.limits()
    }

    /// Binds `addr` and serves until `shutdown` completes; see [`serve`](Self::serve). A host
    /// name is resolved with the blocking system resolver: pass an address to avoid it.
    ///
    /// # Errors
    /// When `addr` cannot be bound (in use, not local, …).
    pub async fn bind_and_serve(self, addr: impl ToSocketAddrs, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let listener = TcpListener::try_from(std::net::TcpListener::bind(addr)?)?;
        self.serve(listener, shutdown).await
    }

    /// Serves connections from `listener` until `shutdown` completes, then drains: stops
    /// accepting, lets in-flight requests finish (closing their connections after them),
    /// closes idle connections, and returns once every connection is closed.
    ///
    /// Connections are tasks of an executor inside the returned future, so serving needs no
    /// particular runtime: run the future with `smol::block_on`, `smol::spawn`,
    /// `async_std::task::block_on`, `async_std::task::spawn`, or any executor; async-io drives
    /// the sockets and timers. All connections progress on the thread that polls it; to spread
    /// them over threads, use [`serve_spawning`](Self::serve_spawning).
    ///
    /// At most `max_connections` connections (capped at 2^20) are served at once; further
    /// clients wait in the listen backlog. Failed accepts (e.g. out of file descriptors) are
    /// logged and retried after a short pause, never fatal.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for listener errors that must end serving.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let executor = Executor::new();
        executor.run(self.serve_spawning(listener, shutdown, |c| executor.spawn(c).detach())).await
    }

    /// Like [`serve`](Self::serve), but every connection is handed to `spawn` as a task, so
    /// connections run wherever `spawn` puts them: on smol's or async-std's multi-threaded
    /// executors, or an `async_executor::Executor` run on several threads. The returned future
    /// runs the accept loop and the drain; it returns once every connection has closed,
    /// wherever it ran.
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
        let handler = Arc::new(self.handler);
        let limit = handler.limits().max_connections.clamp(1, MAX_CONNECTIONS);
        let permits = Arc::new(Semaphore::new(limit));
        // Every connection holds a receiver; closing the channel tells them all to stop.
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let mut shutdown = pin!(shutdown);
        loop {
            let Some(permit) = until(shutdown.as_mut(), permits.acquire_arc()).await else { break };
            let Some(accepted) = until(shutdown.as_mut(), listener.accept()).await else { break };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    Timer::after(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let stopped = stopped.clone();
            let stop = async move {
                // Resolves when the channel closes: nothing is ever sent.
                let _ = stopped.recv().await;
            };
            spawn(Box::pin(connection(Arc::clone(&handler), stream, stop, permit)));
        }
        drop(listener);
        tracing::debug!("draining connections");
        stop.close();
        // Every connection holds a permit until it closes.
        let mut drained = Vec::new();
        for _ in 0..limit {
            drained.push(permits.acquire_arc().await);
        }
        Ok(())
    }
}

/// One accepted connection, served to its end: the task [`Server::serve_spawning`] hands to
/// its `spawn`.
pub type ConnectionTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// `work`'s output, or `None` once `shutdown` has completed (checked first).
async fn until<T>(shutdown: std::pin::Pin<&mut impl Future<Output = ()>>, work: impl Future<Output = T>) -> Option<T> {
    future::or(
        async {
            shutdown.await;
            None
        },
        async { Some(work.await) },
    )
    .await
}

/// Serves one connection with the core driver over async-net's socket (whose close shuts the
/// write side down, so a client sees the end of the last response; written with `writev`) and
/// async-io's timer.
async fn connection(
    handler: Arc<Handler>,
    stream: TcpStream,
    stop: impl Future<Output = ()>,
    _permit: SemaphoreGuardArc,
) {
    let _ = stream.set_nodelay(true);
    serve_connection(handler, Socket::new(stream), SmolTimer::new(), stop).await;
}
