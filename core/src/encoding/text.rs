//! Prometheus text format 0.0.4: what differs from OpenMetrics.
//!
//! HELP escapes `\` and newline only; TYPE names are `counter`, `gauge`, `histogram`,
//! `untyped`; there is no end marker; counters keep their name as given.

use super::{Desc, Encoder, Full};

/// `Content-Type` of the 0.0.4 text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn header(e: &mut Encoder<'_>, desc: &Desc<'_>) -> Result<(), Full> {
    e.family_header(desc, desc.name, false, b" untyped\n")
}
