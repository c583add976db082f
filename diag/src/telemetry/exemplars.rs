//! Exemplars from traces: the `trace_id` and `span_id` of the current `tracing` span (through
//! its OpenTelemetry context) attached to every update of an
//! [`ExemplarCounter`](diag_core::ExemplarCounter) or
//! [`ExemplarHistogram`](diag_core::ExemplarHistogram), with the wall-clock time, once the
//! program opts in with [`Builder::trace_exemplars`](crate::Builder::trace_exemplars) or
//! [`exemplars_from_traces`].
//!
//! Only sampled spans give exemplars: an exemplar points at a trace the collector received.
//! Outside a span, or in one that is not sampled, an update carries no exemplar and the
//! series keeps its last one.

use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes every exemplar counter and histogram of the program take its exemplars from the
/// current trace (see the [module docs](self)). Needs the OpenTelemetry layer in the
/// subscriber: diag's own (`tracing_service`), or the program's `tracing-opentelemetry` layer.
pub fn exemplars_from_traces() {
    diag_core::set_exemplar_source(current_trace);
}

/// The exemplar source: the current span's ids, if it is sampled.
fn current_trace(f: &mut diag_core::ExemplarSink<'_>) {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let ids = span.span_context();
    if !ids.is_valid() || !ids.is_sampled() {
        return;
    }
    // Lower-case hex, as traces are shown and searched by (and as the W3C header writes them).
    let (trace_id, span_id) = (ids.trace_id().to_string(), ids.span_id().to_string());
    f(&[("trace_id", &trace_id), ("span_id", &span_id)], Some(diag_core::unix_time_ms()));
}

#[cfg(test)]
mod tests {
    use diag_core::ExemplarCounter;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// In a sampled span the exemplar names its trace and span; outside any span the counter
    /// counts and keeps the exemplar it had.
    #[test]
    fn sampled_spans_give_exemplars() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let counter = ExemplarCounter::new();
        exemplars_from_traces();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("checkout");
            let ids = span.in_scope(|| {
                counter.inc();
                let cx = tracing::Span::current().context();
                let ids = cx.span().span_context().clone();
                (ids.trace_id().to_string(), ids.span_id().to_string())
            });
            counter.inc();
            let exemplar = counter.exemplar().expect("an exemplar from the span");
            let text = std::str::from_utf8(exemplar.view().labels).unwrap().to_owned();
            assert_eq!(text, format!(r#"trace_id="{}",span_id="{}""#, ids.0, ids.1));
            assert_eq!(ids.0.len(), 32);
        });
        diag_core::clear_exemplar_source();
        assert_eq!(counter.get(), 2);
    }
}
