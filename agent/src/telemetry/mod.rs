//! Distributed tracing (docs/tracing.md): the spans of request handling (made by the core's
//! server glue) and of heartbeat checks, exported by OTLP over gRPC, HTTP or HTTPS, or to
//! rotating files, through `tracing-opentelemetry`.
//!
//! Export runs on the SDK's batch thread (and, for gRPC, a one-thread tokio runtime of its
//! own): a collector that is down or slow delays only that thread; spans that do not fit its
//! queue or fail to export are counted in `diag_tracing_spans_dropped_total`.

mod dropped;
mod exporter;
mod file;
mod http_client;
mod parent;
mod resource;
mod sampler;
mod tls;
mod url;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

pub(crate) use dropped::metrics;
pub(crate) use url::ExporterUrl;

use crate::config::TracingService;

/// How often the batch processor exports.
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// Longest the final flush waits at exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// The running tracing pipeline; [`shutdown`](Self::shutdown) flushes it.
#[derive(Debug)]
pub(crate) struct Tracing {
    provider: SdkTracerProvider,
    #[cfg(feature = "tokio")]
    runtime: Option<tokio::runtime::Runtime>,
}

/// A boxed layer for the agent's subscriber.
pub(crate) type BoxLayer<S> = Box<dyn Layer<S> + Send + Sync>;

/// Sets up tracing when `config.enabled`: the layer to add to the subscriber (spans of the
/// `diagd` and `diag_core` targets, linked to incoming `traceparent`s) and the pipeline.
/// Call it outside any async runtime.
///
/// # Errors
/// A bad exporter URL or TLS file (naming the key). Never a collector that is down.
pub(crate) fn start<S>(config: &TracingService) -> anyhow::Result<Option<(BoxLayer<S>, Tracing)>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if !config.enabled {
        return Ok(None);
    }
    let Some(url) = config.exporter_url.as_deref() else {
        anyhow::bail!("tracing_service.exporter_url: required when tracing_service.enabled is true");
    };
    let url = ExporterUrl::parse(url).map_err(|e| anyhow::anyhow!("tracing_service.exporter_url: {e:#}"))?;
    #[cfg(feature = "tokio")]
    let runtime = match url {
        ExporterUrl::Grpc(_) => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("diagd-otlp")
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
        .with_resource(resource::resource())
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("diagd"));
    // The core's request span is at debug level (free when only logging at info).
    let targets = Targets::new().with_target("diagd", Level::INFO).with_target("diag_core", Level::DEBUG);
    let layer = parent::Link.and_then(otel).with_filter(targets).boxed();
    tracing::debug!(exporter = ?url, "tracing enabled");
    Ok(Some((
        layer,
        Tracing {
            provider,
            #[cfg(feature = "tokio")]
            runtime,
        },
    )))
}

impl Tracing {
    /// Exports what is queued, waiting at most a few seconds.
    pub(crate) fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(error = %e, "tracing did not shut down cleanly");
        }
        #[cfg(feature = "tokio")]
        if let Some(rt) = self.runtime {
            rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
        }
    }
}
