//! `--runtime`: which async runtime serves the endpoints and runs the heartbeat tasks.
//!
//! Everything else in the agent is runtime-independent (the checks and timers use async-io,
//! signals async-signal), so this file is the only place that names a runtime. Each runtime
//! is a cargo feature (`tokio`, `smol`, `async-std`, all on by default); a build has at least
//! one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use diag_core::Collect;
use diag_core::http::Service;
use diag_core::server::Routes;

#[cfg(not(any(feature = "tokio", feature = "smol", feature = "async-std")))]
compile_error!("diagd needs at least one runtime feature: tokio, smol or async-std");

/// A runtime diagd can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Runtime {
    /// tokio's multi-threaded runtime, serving with diag-tokio.
    #[cfg(feature = "tokio")]
    Tokio,
    /// smol, serving with diag-smol.
    #[cfg(feature = "smol")]
    Smol,
    /// async-std, serving with diag-smol.
    #[cfg(feature = "async-std")]
    #[value(name = "async-std")]
    AsyncStd,
}

/// The runtime used when `--runtime` is not given: the first one built in.
#[cfg(feature = "tokio")]
pub(crate) const DEFAULT: &str = "tokio";
/// The runtime used when `--runtime` is not given: the first one built in.
#[cfg(all(not(feature = "tokio"), feature = "smol"))]
pub(crate) const DEFAULT: &str = "smol";
/// The runtime used when `--runtime` is not given: the first one built in.
#[cfg(all(not(feature = "tokio"), not(feature = "smol")))]
pub(crate) const DEFAULT: &str = "async-std";

/// A bound listener of the runtime's own type.
pub(crate) enum Listener {
    #[cfg(feature = "tokio")]
    Tokio(tokio::net::TcpListener),
    #[cfg(any(feature = "smol", feature = "async-std"))]
    Smol(diag_smol::TcpListener),
}

impl Listener {
    /// Serves `service` on this listener, with `routes` ahead of the core routes, until
    /// `shutdown` completes, then drains.
    ///
    /// # Errors
    /// When accepting fails for good.
    pub(crate) async fn serve(
        self,
        service: Service<'static>,
        routes: impl Routes,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio(l) => diag_tokio::Server::new(service).with_routes(routes).serve(l, shutdown).await,
            #[cfg(any(feature = "smol", feature = "async-std"))]
            Self::Smol(l) => diag_smol::Server::new(service).with_routes(routes).serve(l, shutdown).await,
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
    /// Runs `main` to completion on this runtime.
    ///
    /// # Errors
    /// When the runtime cannot start.
    pub(crate) fn block_on<T>(self, main: impl Future<Output = T>) -> anyhow::Result<T> {
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

    /// This runtime's gauges, if it exposes any (tokio does; smol and async-std do not).
    pub(crate) fn metrics(self) -> Option<&'static dyn Collect> {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => Some(Box::leak(Box::new(diag_tokio::TokioMetrics::current()))),
            #[cfg(feature = "smol")]
            Self::Smol => None,
            #[cfg(feature = "async-std")]
            Self::AsyncStd => None,
        }
    }
}
