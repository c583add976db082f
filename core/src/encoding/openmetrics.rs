//! OpenMetrics 1.0 text format: what differs from 0.0.4.
//!
//! HELP escapes `\`, newline and `"`; TYPE names are `counter`, `gauge`, `histogram`,
//! `unknown`; a counter's family name has no `_total` while its sample has; the exposition
//! ends with `# EOF`. A histogram's `_sum` is a counter, so it is written (with `_count`)
//! only when it is neither negative nor NaN and no bucket bound is negative. Exemplars follow
//! their sample: `… # {trace_id="…"} 0.73 1700000000.123`.

use super::{Desc, Encoder, Full, HistogramView, MetricType};
use crate::exemplar::ExemplarView;

/// `Content-Type` of OpenMetrics 1.0.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The end-of-exposition line.
pub(super) const EOF: &[u8] = b"# EOF\n";

/// The family name: a counter's name without a trailing `_total`.
pub(super) fn family_name<'d>(desc: &Desc<'d>) -> &'d str {
    match desc.metric_type {
        MetricType::Counter => desc.name.strip_suffix("_total").unwrap_or(desc.name),
        _ => desc.name,
    }
}

pub(super) fn header(e: &mut Encoder<'_>, desc: &Desc<'_>) -> Result<(), Full> {
    e.family_header(desc, family_name(desc), true, b" unknown\n")
}

/// Whether a histogram series may carry `_sum` and `_count`: OpenMetrics treats the sum as a
/// counter (never negative, never NaN) and forbids it with negative buckets; `_count` only
/// comes with `_sum`.
pub(super) fn sum_allowed(view: &HistogramView<'_>) -> bool {
    !(view.sum.is_nan() || view.sum < 0.0) && view.bounds.iter().all(|b| *b >= 0.0)
}

/// Turns the sample line just written (ending in a newline) into one with `ex` appended:
/// ` # {labels} value[ timestamp]`.
pub(super) fn exemplar(e: &mut Encoder<'_>, ex: &ExemplarView<'_>) -> Result<(), Full> {
    e.pos -= 1; // the sample line's newline
    e.put(b" # {")?;
    e.put(ex.labels)?;
    e.put(b"} ")?;
    e.put_f64(ex.value)?;
    if let Some(unix_ms) = ex.timestamp_ms {
        e.put(b" ")?;
        e.put_unix_seconds(unix_ms)?;
    }
    e.put(b"\n")
}
