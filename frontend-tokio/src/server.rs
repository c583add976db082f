//! [`Server`]: accepts connections on tokio, caps them, and hands each to the core's
//! connection driver ([`diag_core::server::serve_connection`]); drains on shutdown.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;

use diag_core::http::{Limits, Service};
use diag_core::server::{Handler, Routes, serve_connection};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Serves a `'static` [`Service`] over HTTP/1.1 on tokio; see the [crate docs](crate).
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
        let handler = Arc::new(self.handler);
        let limit = handler.limits().max_connections.clamp(1, Semaphore::MAX_PERMITS);
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
            let mut stopped = stopped.clone();
            stopped.mark_unchanged();
            let stop = async move {
                // Resolves when shutdown is signalled (or the server is gone).
                let _ = stopped.changed().await;
            };
            tokio::spawn(connection(Arc::clone(&handler), stream, stop, permit));
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

async fn connection(
    handler: Arc<Handler>,
    stream: TcpStream,
    stop: impl Future<Output = ()>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    serve_connection(handler, TokioIo::new(stream), TokioTimer::new(), stop).await;
}
