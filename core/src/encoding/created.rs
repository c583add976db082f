//! Start timestamps in the text formats: OpenMetrics' `_created` samples.
//!
//! The core has no clock: a family's start time comes from whoever registers it
//! ([`Registry::with_clock`](crate::Registry::with_clock)) or from a collector
//! ([`Encoder::set_created`]). Every series of a family carries the family's time: a series
//! created later reports an earlier start, which is harmless (it counted nothing before it
//! existed), and a series removed and created again keeps it.

use super::{Desc, Encoder, Format, Full, Labels, MetricType, openmetrics};

impl Encoder<'_> {
    /// The `_created` sample after a counter's or histogram's series lines, in the series'
    /// item (one item per series, which is what a family skips when a scrape resumes), when
    /// a start time is set and the format is OpenMetrics (protobuf writes it inside the
    /// series; 0.0.4 has no place for it).
    pub(super) fn created_line(&mut self, desc: &Desc<'_>, labels: &Labels<'_>) -> Result<(), Full> {
        let Some(unix_ms) = self.created else {
            return Ok(());
        };
        if self.format != Format::OpenMetrics
            || !matches!(desc.metric_type, MetricType::Counter | MetricType::Histogram)
        {
            return Ok(());
        }
        // `family_created{labels} <seconds>.<milliseconds>`
        let open = self.series_head(desc.name, openmetrics::family_name(desc), "_created", labels)?;
        self.put(if open { b"} " } else { b" " })?;
        self.put_unix_seconds(unix_ms)?;
        self.put(b"\n")
    }
}

impl Encoder<'_> {
    /// `unix_ms` as OpenMetrics writes a timestamp: seconds with three decimals
    /// (`1700000000.123`), for `_created` samples and exemplars.
    pub(super) fn put_unix_seconds(&mut self, unix_ms: u64) -> Result<(), Full> {
        // On bare metal without linking a 64-bit division routine (see `float::div_rem_u16`).
        let (seconds, ms) = if cfg!(target_os = "none") {
            crate::float::div_rem_u16(unix_ms, 1000)
        } else {
            (unix_ms / 1000, (unix_ms % 1000) as u32)
        };
        self.put_u64(seconds)?;
        self.put(&[b'.', b'0' + (ms / 100) as u8, b'0' + (ms / 10 % 10) as u8, b'0' + (ms % 10) as u8])
    }
}
