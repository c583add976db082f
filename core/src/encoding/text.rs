//! Prometheus text format 0.0.4: what differs from OpenMetrics.
//!
//! HELP escapes `\` and newline only; TYPE names are `counter`, `gauge`, `histogram`,
//! `untyped`; there is no end marker; counters keep their name as given.

use super::{Desc, Encoder, FAST, Full, MetricType};

/// `Content-Type` of the 0.0.4 text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn header(e: &mut Encoder<'_>, desc: &Desc<'_>) -> Result<(), Full> {
    // Servers: the usual family in one piece (compiled out on bare metal).
    if FAST && e.plain_header(desc, desc.name, type_line(desc), false)? {
        return Ok(());
    }
    if !desc.help.is_empty() {
        e.put(b"# HELP ")?;
        e.put_family_name(desc.name, desc.name)?;
        e.put(b" ")?;
        e.put_escaped(desc.help, false)?;
        e.put(b"\n")?;
    }
    e.put(b"# TYPE ")?;
    e.put_family_name(desc.name, desc.name)?;
    e.put(type_line(desc))
}

/// The end of the `# TYPE` line.
fn type_line(desc: &Desc<'_>) -> &'static [u8] {
    match desc.metric_type {
        MetricType::Counter => b" counter\n",
        MetricType::Gauge => b" gauge\n",
        MetricType::Histogram => b" histogram\n",
        MetricType::Unknown => b" untyped\n",
    }
}
