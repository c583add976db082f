//! Counting the spans that never reach the collector, for `/metrics`
//! (`diag_tracing_spans_dropped_total`), and the bound that keeps a slow or dead collector
//! from holding memory or time on the serving path.
//!
//! [`Admit`] sits in front of the SDK's batch processor and admits a finished span only while
//! fewer than [`QUEUE`] spans wait for export; any further span is dropped and counted at
//! once, so ending a span never waits. [`Counted`] wraps the exporter: it releases the queue
//! slots of every batch it is handed and counts a batch that fails to export as dropped,
//! logging the first failure after a success (and the recovery) rather than every batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use diag_core::{Counter, Registry};
use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

use crate::telemetry::http_client::Cause;

/// Most spans waiting for export; the batch processor's queue is this size too.
pub(crate) const QUEUE: usize = 2048;

/// Spans dropped: refused by a full queue or in a batch the exporter failed to send.
pub(crate) static DROPPED: Counter = Counter::new();

/// The `/metrics` source holding [`DROPPED`].
pub(crate) fn metrics() -> &'static Registry<'static, 1> {
    static REGISTRY: Registry<'static, 1> = Registry::new().with_clock(diag_core::unix_time_ms);
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = REGISTRY.register(
            "diag_tracing_spans_dropped_total",
            "Spans not exported: refused by a full export queue or lost in a failed export.",
            &DROPPED,
        ) {
            tracing::error!(error = ?e, "cannot register diag_tracing_spans_dropped_total");
        }
    });
    &REGISTRY
}

/// Spans admitted and not yet handed to the exporter.
#[derive(Debug, Default)]
pub(crate) struct Queue(AtomicUsize);

/// A span processor that admits spans into `inner` only while its queue has room.
#[derive(Debug)]
pub(crate) struct Admit<P> {
    pub(crate) inner: P,
    pub(crate) queue: Arc<Queue>,
}

impl<P: SpanProcessor> SpanProcessor for Admit<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let admitted = self.queue.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < QUEUE).then_some(n + 1));
        match admitted {
            Ok(_) => self.inner.on_end(span),
            Err(_) => DROPPED.inc(),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// An exporter that releases queue slots and counts failed batches.
#[derive(Debug)]
pub(crate) struct Counted<E> {
    pub(crate) inner: E,
    pub(crate) queue: Arc<Queue>,
    /// Where the spans go, for the log.
    pub(crate) target: String,
    /// Runs the export on this runtime (the gRPC client needs tokio's).
    #[cfg(feature = "tokio")]
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    /// The detailed cause of a failed HTTP send.
    cause: Cause,
    failing: AtomicBool,
}

impl<E> Counted<E> {
    pub(crate) fn new(inner: E, queue: Arc<Queue>, target: String, cause: Cause) -> Self {
        Self {
            inner,
            queue,
            target,
            #[cfg(feature = "tokio")]
            runtime: None,
            cause,
            failing: AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let _ = self.queue.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| Some(q.saturating_sub(n)));
        #[cfg(feature = "tokio")]
        let result = match &self.runtime {
            Some(rt) => rt.block_on(self.inner.export(batch)),
            None => self.inner.export(batch).await,
        };
        #[cfg(not(feature = "tokio"))]
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(exporter = %self.target, "exporting spans again");
                }
            }
            Err(e) => {
                DROPPED.inc_by(n as u64);
                let cause = self.cause.take();
                if !self.failing.swap(true, Ordering::AcqRel) {
                    let cause = cause.as_deref().unwrap_or("");
                    tracing::warn!(exporter = %self.target, spans = n, error = %e, cause, "cannot export spans; dropping them (further failures are counted in diag_tracing_spans_dropped_total, not logged)");
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::SystemTime;

    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
    use opentelemetry_sdk::error::OTelSdkError;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    fn span() -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: "s".into(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::default(),
        }
    }

    /// A processor that keeps spans, as the batch processor's queue does while its export hangs.
    #[derive(Debug, Default)]
    struct Hold(Mutex<Vec<SpanData>>);

    impl SpanProcessor for Hold {
        fn on_start(&self, _: &mut Span, _: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    /// An exporter that always fails.
    #[derive(Debug)]
    struct Down;

    impl SpanExporter for Down {
        async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
            Err(OTelSdkError::InternalFailure("collector down".into()))
        }
    }

    // One test: DROPPED is process-wide.
    #[test]
    fn a_full_queue_and_failed_exports_count_as_dropped() {
        let queue = Arc::new(Queue::default());
        let admit = Admit { inner: Hold::default(), queue: Arc::clone(&queue) };
        let before = DROPPED.get();
        for _ in 0..QUEUE + 3 {
            admit.on_end(span());
        }
        assert_eq!(admit.inner.0.lock().unwrap().len(), QUEUE, "the queue holds at most QUEUE spans");
        assert_eq!(DROPPED.get() - before, 3, "the rest are dropped and counted at once");

        // Handing a batch to the exporter frees its slots; a failed export counts the batch.
        let exporter = Counted::new(Down, Arc::clone(&queue), "test".into(), Cause::default());
        let batch: Vec<_> = admit.inner.0.lock().unwrap().drain(..10).collect();
        assert!(futures_lite::future::block_on(exporter.export(batch)).is_err());
        assert_eq!(DROPPED.get() - before, 13);
        admit.on_end(span());
        assert_eq!(admit.inner.0.lock().unwrap().len(), QUEUE - 9, "a freed slot admits a span");
        assert_eq!(DROPPED.get() - before, 13);
    }
}
