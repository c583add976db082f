//! The sampler: parent-based, root spans kept by trace-id ratio `rate / 1_000_000`. A span
//! whose (remote) parent is sampled is always kept, so a sampled incoming `traceparent` is
//! honoured even at rate 0.

use opentelemetry_sdk::trace::Sampler;

/// The sampler for `sampling_rate_per_million` (at most 1 000 000, checked at config load).
pub(crate) fn sampler(rate_per_million: u32) -> Sampler {
    let ratio = f64::from(rate_per_million.min(1_000_000)) / 1_000_000.0;
    Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
}

#[cfg(test)]
mod tests {
    use opentelemetry::Context;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

    use super::*;

    fn decide(s: &Sampler, parent: Option<&Context>, id: u128) -> SamplingDecision {
        s.should_sample(parent, TraceId::from(id), "x", &SpanKind::Server, &[], &[]).decision
    }

    #[test]
    fn roots_by_ratio_children_by_parent() {
        let (never, always) = (sampler(0), sampler(1_000_000));
        assert_eq!(decide(&never, None, 7), SamplingDecision::Drop);
        assert_eq!(decide(&always, None, 7), SamplingDecision::RecordAndSample);
        let remote = |flags| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(42u128),
                SpanId::from(1u64),
                flags,
                true,
                TraceState::default(),
            ))
        };
        assert_eq!(decide(&never, Some(&remote(TraceFlags::SAMPLED)), 42), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&always, Some(&remote(TraceFlags::default())), 42), SamplingDecision::Drop);
    }
}
