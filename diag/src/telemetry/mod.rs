//! Distributed tracing (docs/tracing.md): the spans of request handling (made by the core's
//! server glue) and of heartbeat checks, exported by OTLP over gRPC, HTTP or HTTPS, or to
//! rotating files, through `tracing-opentelemetry`.
//!
//! Export runs on the SDK's batch thread (and, for gRPC, a one-thread tokio runtime of its
//! own): a collector that is down or slow delays only that thread; spans that do not fit its
//! queue or fail to export are counted in `diag_tracing_spans_dropped_total`.

#[cfg(feature = "otlp")]
mod dropped;
#[cfg(feature = "otlp")]
mod exemplars;
#[cfg(feature = "otlp")]
mod exporter;
#[cfg(feature = "otlp")]
mod file;
#[cfg(feature = "otlp")]
mod http_client;
#[cfg(feature = "otlp")]
mod parent;
#[cfg(feature = "otlp")]
mod resource;
#[cfg(feature = "otlp")]
mod sampler;
#[cfg(feature = "tls")]
pub(crate) mod tls;
mod url;

#[cfg(feature = "otlp")]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "otlp")]
use opentelemetry::trace::TracerProvider as _;
#[cfg(feature = "otlp")]
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Subscriber;
#[cfg(feature = "otlp")]
use tracing_subscriber::Layer;
#[cfg(feature = "otlp")]
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

#[cfg(feature = "otlp")]
pub(crate) use dropped::metrics;
#[cfg(feature = "otlp")]
pub use exemplars::exemplars_from_traces;
pub use url::ExporterUrl;

use crate::config::{Config, TracingService};

/// How often the batch processor exports.
#[cfg(feature = "otlp")]
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// Longest the final flush waits at exit.
#[cfg_attr(not(feature = "otlp"), allow(dead_code, reason = "used by the OTLP pipeline only"))]
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// The running tracing pipeline; [`shutdown`](Self::shutdown) flushes it.
#[derive(Debug)]
pub struct Tracing {
    #[cfg(feature = "otlp")]
    provider: SdkTracerProvider,
    #[cfg(all(feature = "otlp", feature = "tokio"))]
    runtime: Option<tokio::runtime::Runtime>,
}

/// A boxed layer for a subscriber.
pub type BoxLayer<S> = Box<dyn tracing_subscriber::Layer<S> + Send + Sync>;

/// Sets up tracing when `config.enabled`: the layer to add to the subscriber (spans of the
/// `diag`, `diagd` and `diag_core` targets and of `targets`, linked to incoming `traceparent`s)
/// and the pipeline, whose spans carry `service_name`. Call it outside any async runtime.
///
/// # Errors
/// A bad exporter URL or TLS file (naming the key); `tracing_service.enabled` in a build
/// without the `otlp` feature. Never a collector that is down.
pub fn start<S>(
    config: &TracingService,
    service_name: &str,
    targets: &[(String, tracing::Level)],
) -> anyhow::Result<Option<(BoxLayer<S>, Tracing)>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if !config.enabled {
        return Ok(None);
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = (service_name, targets);
        anyhow::bail!("tracing_service.enabled: this program was built without diag's `otlp` feature");
    }
    #[cfg(feature = "otlp")]
    start_otlp(config, service_name, targets).map(Some)
}

#[cfg(feature = "otlp")]
fn start_otlp<S>(
    config: &TracingService,
    service_name: &str,
    targets: &[(String, tracing::Level)],
) -> anyhow::Result<(BoxLayer<S>, Tracing)>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    use tracing::Level;
    let Some(url) = config.exporter_url.as_deref() else {
        anyhow::bail!("tracing_service.exporter_url: required when tracing_service.enabled is true");
    };
    let url = ExporterUrl::parse(url).map_err(|e| anyhow::anyhow!("tracing_service.exporter_url: {e:#}"))?;
    #[cfg(feature = "tokio")]
    let runtime = match url {
        ExporterUrl::Grpc(_) => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("diag-otlp")
                .enable_all()
                .build()
                .map_err(|e| anyhow::anyhow!("cannot start the gRPC exporter's runtime: {e}"))?,
        ),
        _ => None,
    };
    let cause = http_client::Cause::default();
    let exporter = {
        #[cfg(feature = "tokio")]
        let _entered = runtime.as_ref().map(tokio::runtime::Runtime::enter);
        exporter::build(config, &url, &cause)?
    };
    let queue = Arc::new(dropped::Queue::default());
    let target = config.exporter_url.clone().unwrap_or_default();
    #[allow(unused_mut, reason = "only set in builds with tokio")]
    let mut counted = dropped::Counted::new(exporter, Arc::clone(&queue), target, cause);
    #[cfg(feature = "tokio")]
    {
        counted.runtime = runtime.as_ref().map(|rt| rt.handle().clone());
    }
    let batch = BatchSpanProcessor::builder(counted)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(dropped::QUEUE)
                .with_scheduled_delay(EXPORT_EVERY)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(dropped::Admit { inner: batch, queue })
        .with_sampler(sampler::sampler(config.sampling_rate_per_million.unwrap_or(0)))
        .with_resource(resource::resource(service_name))
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name.to_owned()));
    // The core's request span is at debug level (free when only logging at info).
    let mut filter = Targets::new()
        .with_target("diag", Level::INFO)
        .with_target("diagd", Level::INFO)
        .with_target("diag_core", Level::DEBUG);
    for (target, level) in targets {
        filter = filter.with_target(target.clone(), *level);
    }
    let targets = filter;
    let layer = parent::Link.and_then(otel).with_filter(targets).boxed();
    tracing::debug!(exporter = ?url, "tracing enabled");
    Ok((
        layer,
        Tracing {
            provider,
            #[cfg(feature = "tokio")]
            runtime,
        },
    ))
}

impl Tracing {
    /// Exports what is queued, waiting at most a few seconds.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(error = %e, "tracing did not shut down cleanly");
        }
        #[cfg(all(feature = "otlp", feature = "tokio"))]
        if let Some(rt) = self.runtime {
            rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
    }
}

/// Installs the process's tracing subscriber as diagd has it: logs to stderr at `log.severity`
/// (or the `DIAGD_LOG` directive), with a level the debug service's `/log-level` changes, and,
/// when `tracing_service` is enabled, span export (see [`start`]).
///
/// # Errors
/// As [`start`]; also when the process already has a global subscriber.
pub fn init(
    config: &Config,
    service_name: &str,
    targets: &[(String, tracing::Level)],
) -> anyhow::Result<Option<Tracing>> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIAGD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.log.severity.as_filter()));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(crate::debug::log_level::reloadable(filter));
    let (spans, tracing) = start(&config.tracing_service, service_name, targets)?.unzip();
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install diag's log subscriber: {e}"))?;
    Ok(tracing)
}

/// Spans dropped by the exporter, for `/metrics` (`diag_tracing_spans_dropped_total`).
#[cfg(feature = "otlp")]
pub(crate) fn dropped_metrics() -> &'static dyn diag_core::Collect {
    metrics()
}
