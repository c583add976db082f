//! Prometheus text format 0.0.4: what differs from OpenMetrics.
//!
//! HELP escapes `\` and newline only; TYPE names are `counter`, `gauge`, `histogram`,
//! `untyped`; there is no end marker; counters keep their name as given.

use super::{Desc, Encoder, FAST, Full, MetricType, line, needs_escape};

/// `Content-Type` of the 0.0.4 text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn header(e: &mut Encoder<'_>, desc: &Desc<'_>) -> Result<(), Full> {
    // Servers: the usual family (a legacy name, help without `\` or newline) in one piece.
    if FAST && !desc.help.is_empty() && e.name_is_legacy(desc.name) && !needs_escape(desc.help.as_bytes(), false) {
        let name = desc.name.as_bytes();
        let pieces = (&b"# HELP "[..], name, b' ', desc.help.as_bytes(), &b"\n# TYPE "[..], name, type_line(desc));
        e.pos = line::write_line(e.buf, e.pos, pieces).ok_or(Full)?;
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
