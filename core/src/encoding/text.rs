//! Prometheus text format 0.0.4: what differs from OpenMetrics.
//!
//! HELP escapes `\` and newline only; TYPE names are `counter`, `gauge`, `histogram`,
//! `untyped`; there is no end marker; counters keep their name as given.

use super::{Desc, Encoder, Full, MetricType};

/// `Content-Type` of the 0.0.4 text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn header(e: &mut Encoder<'_>, desc: &Desc<'_>) -> Result<(), Full> {
    if !desc.help.is_empty() {
        e.put(b"# HELP ")?;
        e.put_family_name(desc.name, desc.name)?;
        e.put(b" ")?;
        e.put_escaped(desc.help, false)?;
        e.put(b"\n")?;
    }
    e.put(b"# TYPE ")?;
    e.put_family_name(desc.name, desc.name)?;
    e.put_str(match desc.metric_type {
        MetricType::Counter => " counter\n",
        MetricType::Gauge => " gauge\n",
        MetricType::Histogram => " histogram\n",
        MetricType::Unknown => " untyped\n",
    })
}
