//! Embedding diag in an application that serves HTTP itself: diag's routes on the
//! application's router (axum, or any tower stack on tokio), a shutdown future for the
//! application's server that holds the drain, and the `metrics` crate's macros recorded into
//! diag's storage.

use std::future::Future;
#[cfg(feature = "tokio")]
use std::sync::Arc;

#[cfg(feature = "tokio")]
use super::millis;
use super::{Builder, Diagnostics};

impl Diagnostics {
    /// diag's endpoints as a diag-tokio [`Server`](diag_tokio::Server) owning what it serves:
    /// a `tower::Service` (diag-tokio's feature `tower`) answering as the built-in server,
    /// for an application's own tower stack. Call from within a tokio runtime (its gauges are
    /// served).
    #[cfg(feature = "tokio")]
    pub fn tokio_server(&self) -> diag_tokio::Server {
        let runtime = crate::runtime::Runtime::Tokio;
        let _ = self.shared.sources.runtime.set(runtime.metrics());
        let mut limits = diag_core::http::Limits::DEFAULT;
        limits.shutdown_delay_ms = millis(self.shared.shutdown_delay);
        limits.drain_timeout_ms = millis(self.shared.drain_timeout);
        let routes = crate::debug::DebugRoutes::diag_addr(self.shared.profiles_on_diag_addr);
        diag_tokio::Server::owning(Arc::clone(&self.shared), |s| s.service())
            .with_routes(routes)
            .with_limits(limits)
            .with_request_durations(Arc::clone(&self.shared.sources.http))
    }

    /// diag's routes (`/healthz`, `/livez`, `/readyz`, `/readyz/<component>`, `/metrics`, and
    /// `/debug/pprof/…` when [`profiles_on_diag_addr`](Builder::profiles_on_diag_addr) is on)
    /// as an axum `Router` to `.merge()` into the application's: the application's routes and
    /// fallback answer everything else, and its server owns the connections. Pair it with
    /// [`drain_on_signal`](Self::drain_on_signal) as the server's graceful shutdown.
    #[cfg(feature = "axum")]
    pub fn router(&self) -> axum::Router {
        self.tokio_server().into_router()
    }

    /// Waits for SIGTERM or SIGINT, then turns `/readyz` to 503 "process is shutting down"
    /// and keeps waiting for the shutdown delay (load balancers see the process leave while it
    /// still answers), then completes: the future an application's server takes as its
    /// graceful shutdown (`axum::serve(..).with_graceful_shutdown(diag.drain_on_signal())`),
    /// after which that server finishes the requests in flight. Runs on any runtime.
    ///
    /// The signals are watched from this call on (see [`shutdown_signal`](crate::shutdown_signal)).
    /// If they cannot be, shutdown begins at once (and the failure is logged), rather than
    /// never.
    pub fn drain_on_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let diag = self.clone();
        let signal = crate::shutdown_signal();
        async move {
            if let Err(e) = signal.await {
                tracing::error!(error = %e, "cannot wait for SIGTERM/SIGINT: shutting down");
            }
            diag.begin_shutdown();
            let delay = diag.shared.shutdown_delay;
            tracing::info!(delay = %humantime::format_duration(delay), "shutting down: /readyz now answers 503");
            async_io::Timer::after(delay).await;
        }
    }
}

impl Builder {
    /// Records the `metrics` crate's macros (`counter!`, `gauge!`, `histogram!`, with labels
    /// known at run time) into diag's storage and serves them on `/metrics` in every format:
    /// installs diag's [`Recorder`](diag_recorder::Recorder) as the process's global recorder
    /// and adds it to the sources. The recorder is one per process; if another recorder was
    /// installed first, the macros keep going to it (and a warning says so).
    #[cfg(feature = "metrics")]
    pub fn metrics_recorder(self) -> Self {
        static RECORDER: diag_recorder::Recorder = diag_recorder::Recorder::new();
        if metrics::set_global_recorder(&RECORDER).is_err() {
            tracing::warn!("a metrics recorder was installed before diag's: metrics macros go to it");
        }
        self.registry(&RECORDER)
    }
}
