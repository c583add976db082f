//! [`Runtime`]: which async runtime serves the endpoints (features `tokio`, `smol`,
//! `async-std`).
//!
//! Everything else in diag is runtime-independent (the checks and timers use async-io,
//! signals async-signal, the debug socket a thread of its own), so this file is the only place
//! that names a runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use diag_core::http::{Limits, Service};
use diag_core::server::Routes;
use diag_core::{Collect, Encoder, Stop};

/// A runtime diag can serve on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// tokio's multi-threaded runtime, serving with diag-tokio.
    #[cfg(feature = "tokio")]
    Tokio,
    /// smol, serving with diag-smol.
    #[cfg(feature = "smol")]
    Smol,
    /// async-std, serving with diag-smol.
    #[cfg(feature = "async-std")]
    AsyncStd,
}

/// The runtime used when `--runtime` is not given: the first one built in.
#[cfg(feature = "tokio")]
pub const DEFAULT: Runtime = Runtime::Tokio;
/// The runtime used when `--runtime` is not given: the first one built in.
#[cfg(all(not(feature = "tokio"), feature = "smol"))]
pub const DEFAULT: Runtime = Runtime::Smol;
/// The runtime used when `--runtime` is not given: the first one built in.
#[cfg(all(not(feature = "tokio"), not(feature = "smol")))]
pub const DEFAULT: Runtime = Runtime::AsyncStd;

/// A bound listener of the runtime's own type.
#[derive(Debug)]
pub(crate) enum Listener {
    #[cfg(feature = "tokio")]
    Tokio(tokio::net::TcpListener),
    #[cfg(any(feature = "smol", feature = "async-std"))]
    Smol(diag_smol::TcpListener),
}

/// Where a server counts what it does: the runtime's gauges (connections, where the runtime
/// has them) and the request durations.
#[derive(Debug)]
pub(crate) struct Counted<'m> {
    pub(crate) metrics: Option<&'m RuntimeMetrics>,
    pub(crate) durations: std::sync::Arc<diag_core::server::RequestDurations>,
}

impl Listener {
    /// Serves the service `service` builds from `owner` on this listener, with `routes` ahead
    /// of the core routes and `limits`, until shutdown begins (`shutdown` completes), then
    /// keeps serving for the shutdown delay and drains; `counted` counts the server's
    /// connections (where the runtime's gauges can) and its requests.
    ///
    /// # Errors
    /// When accepting fails for good.
    pub(crate) async fn serve<O: Send + Sync + 'static>(
        self,
        owner: O,
        service: impl for<'a> FnOnce(&'a O) -> Service<'a>,
        counted: Counted<'_>,
        routes: impl Routes,
        limits: Limits,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let Counted { metrics, durations } = counted;
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio(l) => {
                let _ = metrics;
                let server = diag_tokio::Server::owning(owner, service)
                    .with_routes(routes)
                    .with_limits(limits)
                    .with_request_durations(durations);
                server.serve(l, shutdown).await
            }
            #[cfg(any(feature = "smol", feature = "async-std"))]
            Self::Smol(l) => {
                let mut server = diag_smol::Server::owning(owner, service)
                    .with_routes(routes)
                    .with_limits(limits)
                    .with_request_durations(durations);
                if let Some(RuntimeMetrics::Smol(m)) = metrics {
                    server = server.with_metrics(m);
                }
                server.serve(l, shutdown).await
            }
        }
    }

    /// The bound address (port 0 resolved).
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio(l) => l.local_addr(),
            #[cfg(any(feature = "smol", feature = "async-std"))]
            Self::Smol(l) => l.local_addr(),
        }
    }
}

impl Runtime {
    /// The runtime's name: `tokio`, `smol` or `async-std`.
    pub const fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => "tokio",
            #[cfg(feature = "smol")]
            Self::Smol => "smol",
            #[cfg(feature = "async-std")]
            Self::AsyncStd => "async-std",
        }
    }

    /// Runs `main` to completion on this runtime.
    ///
    /// # Errors
    /// When the runtime cannot start.
    pub fn block_on<T>(self, main: impl Future<Output = T>) -> Result<T, crate::Error> {
        Ok(match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => anyhow::Context::context(
                tokio::runtime::Builder::new_multi_thread().enable_all().build(),
                "cannot start the tokio runtime",
            )?
            .block_on(main),
            #[cfg(feature = "smol")]
            Self::Smol => smol::block_on(main),
            #[cfg(feature = "async-std")]
            Self::AsyncStd => async_std::task::block_on(main),
        })
    }

    /// Runs `task` in the background until the process exits. Call from within `block_on`.
    pub(crate) fn spawn(self, task: impl Future<Output = ()> + Send + 'static) {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => drop(tokio::spawn(task)),
            #[cfg(feature = "smol")]
            Self::Smol => smol::spawn(task).detach(),
            #[cfg(feature = "async-std")]
            Self::AsyncStd => drop(async_std::task::spawn(task)),
        }
    }

    /// Binds the diagnostic address.
    ///
    /// # Errors
    /// When the address cannot be bound (in use, not local, no permission).
    pub(crate) async fn bind(self, addr: SocketAddr) -> io::Result<Listener> {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => tokio::net::TcpListener::bind(addr).await.map(Listener::Tokio),
            #[cfg(feature = "smol")]
            Self::Smol => diag_smol::TcpListener::bind(addr).await.map(Listener::Smol),
            #[cfg(feature = "async-std")]
            Self::AsyncStd => diag_smol::TcpListener::bind(addr).await.map(Listener::Smol),
        }
    }

    /// This runtime's gauges: tokio's runtime metrics, or diag-smol's server gauges. Call
    /// from within `block_on`.
    pub(crate) fn metrics(self) -> RuntimeMetrics {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => RuntimeMetrics::Tokio(diag_tokio::TokioMetrics::current()),
            #[cfg(feature = "smol")]
            Self::Smol => RuntimeMetrics::Smol(diag_smol::SmolMetrics::new()),
            #[cfg(feature = "async-std")]
            Self::AsyncStd => RuntimeMetrics::Smol(diag_smol::SmolMetrics::new()),
        }
    }
}

/// The gauges of the runtime in use, owned by the service that scrapes them.
#[derive(Debug)]
pub(crate) enum RuntimeMetrics {
    /// `tokio_runtime_*`.
    #[cfg(feature = "tokio")]
    Tokio(diag_tokio::TokioMetrics),
    /// `diag_smol_*`, of the diag-smol server (smol and async-std expose no counts).
    #[cfg(any(feature = "smol", feature = "async-std"))]
    Smol(diag_smol::SmolMetrics),
}

impl Collect for RuntimeMetrics {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio(m) => m.collect(enc),
            #[cfg(any(feature = "smol", feature = "async-std"))]
            Self::Smol(m) => m.collect(enc),
        }
    }
}
