//! Prometheus text 0.0.4 and OpenMetrics 1.0 encoding into fixed buffers.
//!
//! The [`Encoder`] writes *items* — a family header, or one series with all its lines — into
//! a byte slice. An item that does not fit is rolled back whole and the encoder stops; the
//! [`Scrape`](crate::Scrape) driving it remembers where, so the next chunk resumes at that
//! item. Memory per scrape is therefore bounded by the chunk, not by the number of series.
//! Format differences live in [`text`] and [`openmetrics`].

pub mod openmetrics;
pub mod parse;
pub mod text;

use core::fmt;

use crate::histogram::Snapshot;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text format.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => text::CONTENT_TYPE,
            Self::OpenMetrics => openmetrics::CONTENT_TYPE,
        }
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricType {
    /// A monotonically increasing count.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Bucketed observations with a sum and a count.
    Histogram,
    /// No type information (`untyped` in 0.0.4, `unknown` in OpenMetrics).
    Unknown,
}

/// What names and describes a family.
///
/// `name` must match `[a-zA-Z_:][a-zA-Z0-9_:]*` (the [`Registry`](crate::Registry) checks it;
/// collectors that emit families directly are responsible for it). A counter's name may end
/// in `_total`: 0.0.4 uses the name as given, OpenMetrics strips `_total` from the family name
/// and puts it on the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc<'a> {
    /// The family name.
    pub name: &'a str,
    /// Help text, escaped by the encoder; empty to omit the `# HELP` line.
    pub help: &'a str,
    /// The type.
    pub metric_type: MetricType,
}

/// The label names and values of one series, as two parallel slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels<'a> {
    names: &'a [&'a str],
    values: &'a [&'a str],
}

impl<'a> Labels<'a> {
    /// No labels.
    pub const EMPTY: Labels<'static> = Labels { names: &[], values: &[] };

    /// Pairs `names[i]` with `values[i]`; extra entries of the longer slice are ignored.
    pub const fn new(names: &'a [&'a str], values: &'a [&'a str]) -> Self {
        Self { names, values }
    }

    /// The `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.names.iter().copied().zip(self.values.iter().copied())
    }
}

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An unsigned integer (counters).
    U64(u64),
    /// A signed integer (gauges).
    I64(i64),
    /// A float; infinities and NaN print as `+Inf`, `-Inf`, `NaN`.
    F64(f64),
}

/// Borrowed histogram data to encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramView<'a> {
    /// Finite upper bounds, ascending.
    pub bounds: &'a [f64],
    /// Per-bucket (non-cumulative) counts, one per bound; missing entries count as zero.
    pub buckets: &'a [u64],
    /// Observations above every bound.
    pub inf: u64,
    /// Sum of observations.
    pub sum: f64,
}

/// The encoder's buffer is full: return this from a [`Collect`](crate::Collect) or
/// [`Series`](crate::Series) implementation unchanged, and the scrape resumes at that item in
/// the next chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop(pub(crate) ());

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("encoder buffer full")
    }
}

/// Raised internally when the rest of the buffer cannot hold the bytes being written.
struct Full;

/// Where a scrape stopped: entry and item within the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    pub(crate) entry: usize,
    pub(crate) item: u32,
}

/// Writes items into a byte slice; see the module documentation.
#[derive(Debug)]
pub struct Encoder<'b> {
    format: Format,
    buf: &'b mut [u8],
    pos: usize,
    resume: Position,
    at: Position,
    stopped: Option<Position>,
}

impl<'b> Encoder<'b> {
    pub(crate) fn new(format: Format, buf: &'b mut [u8], resume: Position) -> Self {
        Self { format, buf, pos: 0, resume, at: Position::default(), stopped: None }
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Starts the next source: same buffer, new resume point.
    pub(crate) fn restart(&mut self, resume: Position) {
        self.resume = resume;
        self.at = Position::default();
        self.stopped = None;
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> usize {
        self.pos
    }

    /// Where the encoder stopped, if it did.
    pub(crate) fn stopped(&self) -> Option<Position> {
        self.stopped
    }

    /// Runs `f` as entry number `index` (entries must be visited in increasing order); entries
    /// before the resume point are skipped without calling `f`.
    ///
    /// # Errors
    /// [`Stop`] from `f`.
    pub fn entry(&mut self, index: usize, f: impl FnOnce(&mut Self) -> Result<(), Stop>) -> Result<(), Stop> {
        if index < self.resume.entry {
            return Ok(());
        }
        self.at = Position { entry: index, item: 0 };
        f(self)
    }

    /// Whether the next item was already written by an earlier chunk; if so it is counted as
    /// done and the caller skips it (without computing it).
    pub fn skip_item(&mut self) -> bool {
        let skip = self.at.entry == self.resume.entry && self.at.item < self.resume.item;
        if skip {
            self.at.item += 1;
        }
        skip
    }

    /// Counts an item that writes nothing (keeps item numbers stable).
    pub fn empty_item(&mut self) {
        self.at.item += 1;
    }

    /// Writes one item with `f` unless an earlier chunk already did.
    fn item(&mut self, f: impl FnOnce(&mut Self) -> Result<(), Full>) -> Result<(), Stop> {
        if self.skip_item() {
            return Ok(());
        }
        self.write_item(f)
    }

    /// Writes one item with `f`, atomically: all of it or, if it does not fit, none of it.
    fn write_item(&mut self, f: impl FnOnce(&mut Self) -> Result<(), Full>) -> Result<(), Stop> {
        let mark = self.pos;
        match f(self) {
            Ok(()) => {
                self.at.item += 1;
                Ok(())
            }
            Err(Full) => {
                self.pos = mark;
                self.stopped = Some(self.at);
                Err(Stop(()))
            }
        }
    }

    /// Writes the `# HELP` and `# TYPE` lines of a family.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn header(&mut self, desc: &Desc<'_>) -> Result<(), Stop> {
        self.item(|e| match e.format {
            Format::Prometheus => text::header(e, desc),
            Format::OpenMetrics => openmetrics::header(e, desc),
        })
    }

    /// Writes one sample line.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn sample(&mut self, desc: &Desc<'_>, labels: &Labels<'_>, value: Value) -> Result<(), Stop> {
        self.item(|e| {
            let (family, suffix) = e.sample_name(desc);
            e.line(family, suffix, labels, None, value)
        })
    }

    /// Writes a histogram series from a snapshot taken only if the item is not skipped.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn histogram_with<const N: usize>(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        snapshot: impl FnOnce() -> Snapshot<N>,
    ) -> Result<(), Stop> {
        if self.skip_item() {
            return Ok(());
        }
        let snap = snapshot();
        self.write_item(|e| e.histogram_lines(desc, labels, &snap.view()))
    }

    /// Writes a histogram series: cumulative `_bucket` lines ending in `le="+Inf"`, `_sum`,
    /// `_count` (which always equals the `+Inf` bucket). OpenMetrics omits `_sum` and `_count`
    /// when the sum is negative or NaN or a bound is negative (see [`openmetrics`]).
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn histogram(&mut self, desc: &Desc<'_>, labels: &Labels<'_>, view: &HistogramView<'_>) -> Result<(), Stop> {
        self.item(|e| e.histogram_lines(desc, labels, view))
    }

    fn histogram_lines(&mut self, desc: &Desc<'_>, labels: &Labels<'_>, view: &HistogramView<'_>) -> Result<(), Full> {
        let mut cumulative = 0u64;
        for (i, bound) in view.bounds.iter().enumerate() {
            cumulative = cumulative.wrapping_add(view.buckets.get(i).copied().unwrap_or(0));
            self.line(desc.name, "_bucket", labels, Some(*bound), Value::U64(cumulative))?;
        }
        cumulative = cumulative.wrapping_add(view.inf);
        self.line(desc.name, "_bucket", labels, Some(f64::INFINITY), Value::U64(cumulative))?;
        if self.format == Format::OpenMetrics && !openmetrics::sum_allowed(view) {
            return Ok(());
        }
        self.line(desc.name, "_sum", labels, None, Value::F64(view.sum))?;
        self.line(desc.name, "_count", labels, None, Value::U64(cumulative))
    }

    /// Writes the end-of-exposition marker, if the format has one.
    pub(crate) fn finish(&mut self) -> Result<(), Stop> {
        match self.format {
            Format::Prometheus => Ok(()),
            Format::OpenMetrics => self.item(|e| e.put(openmetrics::EOF)),
        }
    }

    /// `(family part, suffix)` of a plain sample's name in this format.
    fn sample_name<'d>(&self, desc: &Desc<'d>) -> (&'d str, &'static str) {
        match (self.format, desc.metric_type) {
            (Format::OpenMetrics, MetricType::Counter) => (openmetrics::family_name(desc), "_total"),
            _ => (desc.name, ""),
        }
    }

    /// `name suffix {labels[,le="bound"]} value\n`
    fn line(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &Labels<'_>,
        le: Option<f64>,
        value: Value,
    ) -> Result<(), Full> {
        self.put_str(name)?;
        self.put_str(suffix)?;
        let mut first = true;
        for (k, v) in labels.iter() {
            self.put(if first { b"{" } else { b"," })?;
            first = false;
            self.put_str(k)?;
            self.put(b"=\"")?;
            self.put_escaped(v, true)?;
            self.put(b"\"")?;
        }
        if let Some(bound) = le {
            self.put(if first { b"{le=\"" } else { b",le=\"" })?;
            self.put_f64(bound)?;
            self.put(b"\"}")?;
        } else if !first {
            self.put(b"}")?;
        }
        self.put(b" ")?;
        match value {
            Value::U64(v) => self.put_str(itoa::Buffer::new().format(v))?,
            Value::I64(v) => self.put_str(itoa::Buffer::new().format(v))?,
            Value::F64(v) => self.put_f64(v)?,
        }
        self.put(b"\n")
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.pos + bytes.len();
        let dst = self.buf.get_mut(self.pos..end).ok_or(Full)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    #[inline]
    fn put_str(&mut self, s: &str) -> Result<(), Full> {
        self.put(s.as_bytes())
    }

    /// Writes `v` as `+Inf`, `-Inf`, `NaN`, or the shortest decimal that reads back exactly.
    fn put_f64(&mut self, v: f64) -> Result<(), Full> {
        if v.is_nan() {
            self.put(b"NaN")
        } else if v.is_infinite() {
            self.put(if v > 0.0 { b"+Inf" } else { b"-Inf" })
        } else {
            self.put_str(ryu::Buffer::new().format_finite(v))
        }
    }

    /// Writes `s` escaping `\` and newline, and `"` if `quote`.
    fn put_escaped(&mut self, s: &str, quote: bool) -> Result<(), Full> {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let esc: &[u8] = match b {
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'"' if quote => b"\\\"",
                _ => continue,
            };
            self.put(&bytes[start..i])?;
            self.put(esc)?;
            start = i + 1;
        }
        self.put(&bytes[start..])
    }
}

/// `true` if `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':'))
}

/// `true` if `name` is a valid label name that a user may set: `[a-zA-Z_][a-zA-Z0-9_]*`,
/// not `le` and not starting with `__`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_'))
        && name != "le"
        && !name.starts_with("__")
}
