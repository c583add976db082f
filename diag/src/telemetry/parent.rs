//! Linking request spans to the caller's trace. The core's request span records the W3C
//! `traceparent` header as a field; this layer reads it when the span is created and, when
//! the span is first entered (before the OpenTelemetry layer starts it), makes the remote
//! span its parent. The parent-based sampler then sees the caller's sampled flag.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The span field holding the incoming header.
pub(crate) const FIELD: &str = "traceparent";

/// The layer; it must sit below (run before) the OpenTelemetry layer.
#[derive(Debug, Default)]
pub(crate) struct Link;

/// The remote parent found on a span, until the span is first entered.
struct Remote(opentelemetry::Context);

#[derive(Default)]
struct Find(Option<String>);

impl Visit for Find {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == FIELD {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The context of a valid `traceparent`, or `None`.
pub(crate) fn extract(traceparent: &str) -> Option<opentelemetry::Context> {
    let carrier = HashMap::from([(FIELD.to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Link {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().fields().field(FIELD).is_none() {
            return;
        }
        let mut find = Find::default();
        attrs.record(&mut find);
        if let (Some(cx), Some(span)) = (find.0.as_deref().and_then(extract), ctx.span(id)) {
            span.extensions_mut().insert(Remote(cx));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(remote) = ctx.span(id).and_then(|s| s.extensions_mut().remove::<Remote>()) else { return };
        // The registry has already made `id` the current span.
        let current = Span::current();
        if current.id().as_ref() == Some(id) {
            if let Err(e) = current.set_parent(remote.0) {
                tracing::debug!(error = %e, "cannot link a request span to its traceparent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parses() {
        let cx = extract("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(cx.span().span_context().trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert!(cx.span().span_context().is_sampled());
        assert!(extract("garbage").is_none());
        assert!(extract("00-00000000000000000000000000000000-b7ad6b7169203331-01").is_none());
    }
}
