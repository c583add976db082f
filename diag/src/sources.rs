//! [`Scraped`]: what `/metrics` of a [`Diagnostics`](crate::Diagnostics) collects after the
//! core's own families: the Linux process metrics, the serving runtime's gauges, the servers'
//! request durations, the tracing exporter's counts, the remote write sender's, then the
//! service's own sources, in that order.

#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
use std::sync::OnceLock;

use diag_core::process::ProcessCollector;
use diag_core::{Collect, Sources};

/// A service's metrics source, owned or borrowed for `'static`.
pub(crate) type Source = Box<dyn Collect + Send + Sync>;

/// A `'static` collector (such as a `static` [`Registry`](diag_core::Registry)), owned as a
/// reference.
pub(crate) struct Static(pub(crate) &'static (dyn Collect + Sync));

impl Collect for Static {
    fn collect(&self, enc: &mut diag_core::Encoder<'_>) -> Result<(), diag_core::Stop> {
        self.0.collect(enc)
    }
}

/// Every source of one [`Diagnostics`](crate::Diagnostics); see the [module docs](self).
pub(crate) struct Scraped {
    pub(crate) process: Option<ProcessCollector>,
    #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
    pub(crate) runtime: OnceLock<crate::runtime::RuntimeMetrics>,
    /// The servers' request durations (`diag_http_request_duration_seconds`).
    pub(crate) http: std::sync::Arc<diag_core::server::RequestDurations>,
    pub(crate) tracing: bool,
    pub(crate) push: Option<std::sync::Arc<crate::push::Metrics>>,
    pub(crate) user: Vec<Source>,
}

impl std::fmt::Debug for Scraped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraped")
            .field("process", &self.process.is_some())
            .field("tracing", &self.tracing)
            .field("user_sources", &self.user.len())
            .finish()
    }
}

impl Sources for Scraped {
    fn source(&self, index: usize) -> Option<&dyn Collect> {
        let process = self.process.as_ref().map(|p| p as &dyn Collect);
        #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
        let runtime = self.runtime.get().map(|r| r as &dyn Collect);
        #[cfg(not(any(feature = "tokio", feature = "smol", feature = "async-std")))]
        let runtime: Option<&dyn Collect> = None;
        #[cfg(feature = "otlp")]
        let tracing = self.tracing.then(crate::telemetry::dropped_metrics);
        #[cfg(not(feature = "otlp"))]
        let tracing: Option<&dyn Collect> = None;
        let http = Some(&*self.http as &dyn Collect);
        let push = self.push.as_deref().map(|p| p as &dyn Collect);
        let user = self.user.iter().map(|s| Some(&**s as &dyn Collect));
        [process, runtime, http, tracing, push].into_iter().chain(user).flatten().nth(index)
    }
}
