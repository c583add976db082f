//! Prometheus text 0.0.4 and OpenMetrics 1.0 encoding into fixed buffers.
//!
//! The [`Encoder`] writes *items* — a family header, or one series with all its lines — into
//! a byte slice. An item that does not fit is rolled back whole and the encoder stops; the
//! [`Scrape`](crate::Scrape) driving it remembers where, so the next chunk resumes at that
//! item. Memory per scrape is therefore bounded by the chunk, not by the number of series.
//! Format differences live in [`text`], [`openmetrics`] and `protobuf` (feature `protobuf`).

mod created;
mod line;
use line::{Earlier, Int};
mod names;
pub mod openmetrics;
pub mod parse;
#[cfg(feature = "protobuf")]
pub mod protobuf;
pub mod text;

use core::fmt;

pub use names::{Escaping, is_legacy_label_name, is_legacy_metric_name, is_valid_label_name, is_valid_metric_name};

use crate::decimal;
// On bare metal, floats are written by a smaller formatter with ryu's interface.
use crate::exemplar::{ExemplarCopy, ExemplarView};
#[cfg(target_os = "none")]
use crate::float as ryu;
use crate::histogram::Snapshot;
use crate::native_histogram::{HybridSnapshot, NativeBucket, NativeSnapshot};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text format.
    OpenMetrics,
    /// Delimited `io.prometheus.client.MetricFamily` protobuf messages (see [`protobuf`]).
    #[cfg(feature = "protobuf")]
    Protobuf,
}

impl Format {
    /// The `Content-Type` of this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => text::CONTENT_TYPE,
            Self::OpenMetrics => openmetrics::CONTENT_TYPE,
            #[cfg(feature = "protobuf")]
            Self::Protobuf => protobuf::CONTENT_TYPE,
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
/// `name` must be a name [`is_valid_metric_name`] accepts (the [`Registry`](crate::Registry)
/// checks it; collectors that emit families directly are responsible for it); one that is not
/// legacy (`[a-zA-Z_:][a-zA-Z0-9_:]*`) is written per the scrape's [`Escaping`], as are label
/// names. A counter's name may end in `_total`: 0.0.4 uses the name as given, OpenMetrics
/// strips `_total` from the family name and puts it on the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc<'a> {
    /// The family name.
    pub name: &'a str,
    /// Help text, escaped by the encoder; empty to omit the `# HELP` line.
    pub help: &'a str,
    /// The type.
    pub metric_type: MetricType,
}

/// The labels of one series: label names and values as two parallel slices (escaped as they
/// are written), or a family's label text rendered and escaped once, at series creation
/// (copied as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels<'a> {
    names: &'a [&'a str],
    values: &'a [&'a str],
    rendered: &'a [u8],
}

impl<'a> Labels<'a> {
    /// No labels.
    pub const EMPTY: Labels<'static> = Labels { names: &[], values: &[], rendered: &[] };

    /// Pairs `names[i]` with `values[i]`; extra entries of the longer slice are ignored.
    pub const fn new(names: &'a [&'a str], values: &'a [&'a str]) -> Self {
        Self { names, values, rendered: &[] }
    }

    /// Label text already rendered and escaped, `name="value",…` (a family's stored text),
    /// every label name legacy.
    pub(crate) const fn rendered(text: &'a [u8]) -> Self {
        Self { names: &[], values: &[], rendered: text }
    }

    /// Rendered label text with label names `names`, not all legacy: each name is written
    /// per the scrape's [`Escaping`] (the text holds them raw).
    pub(crate) const fn rendered_with_names(text: &'a [u8], names: &'a [&'a str]) -> Self {
        Self { names, values: &[], rendered: text }
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

impl<'a> HistogramView<'a> {
    /// Every bucket in order, `+Inf` last, as `(upper bound, cumulative count)`: what every
    /// format writes. A bucket's place in the iteration is its index in `bounds` (`bounds.len()`
    /// for `+Inf`), the index exemplars are kept by.
    pub fn cumulative(&self) -> Cumulative<'a> {
        Cumulative { view: *self, at: 0, total: 0 }
    }

    /// Every observation: the `+Inf` bucket's cumulative count.
    pub fn count(&self) -> u64 {
        self.buckets.iter().take(self.bounds.len()).fold(self.inf, |a, b| a.wrapping_add(*b))
    }
}

/// The buckets of a [`HistogramView`] with cumulative counts; see
/// [`HistogramView::cumulative`].
#[derive(Debug, Clone)]
pub struct Cumulative<'a> {
    view: HistogramView<'a>,
    at: usize,
    total: u64,
}

impl Iterator for Cumulative<'_> {
    type Item = (f64, u64);

    #[inline]
    fn next(&mut self) -> Option<(f64, u64)> {
        let (bound, n) = match self.view.bounds.get(self.at) {
            Some(b) => (*b, self.view.buckets.get(self.at).copied().unwrap_or(0)),
            None if self.at == self.view.bounds.len() => (f64::INFINITY, self.view.inf),
            None => return None,
        };
        self.at += 1;
        self.total = self.total.wrapping_add(n);
        Some((bound, self.total))
    }
}

/// Borrowed native histogram data to encode (see [`NativeHistogram`](crate::NativeHistogram)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeHistogramView<'a> {
    /// The schema of every key: `2^schema` buckets per power of two.
    pub schema: i8,
    /// Observations with an absolute value up to this are in the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// All observations (the zero bucket, every bucket, and NaN observations).
    pub count: u64,
    /// Sum of the observations.
    pub sum: f64,
    /// Negative buckets (keys of absolute values), ascending by key.
    pub negative: &'a [NativeBucket],
    /// Positive buckets, ascending by key.
    pub positive: &'a [NativeBucket],
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

/// Levels of nested entries a [`Position`] records: a source's entries, the entries of a
/// collector registered in one of them, and so on. Deeper entries are not skipped whole but
/// item by item, which is slower and as correct.
const DEPTH: usize = 4;

/// Where a scrape stopped: the entry at each nesting level, and the item after the last entry
/// started.
///
/// `entries[d]` is the index plus one of the entry open at level `d` (0: none yet, so a
/// collector's own items before its first entry have a place too). Positions grow
/// lexicographically as a scrape proceeds, which is what skipping compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    pub(crate) entries: [usize; DEPTH],
    pub(crate) item: u32,
}

impl Position {
    /// Whether `self` comes before `other` in the scrape.
    fn before(&self, other: &Self) -> bool {
        (self.entries, self.item) < (other.entries, other.item)
    }
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
    /// Whether `at` has reached `resume`: from then on nothing is skipped (positions only grow).
    past: bool,
    /// Entries open (nesting level of the next [`entry`](Self::entry)).
    depth: usize,
    le: LeCache,
    /// The family message open in this chunk, for `Format::Protobuf`.
    #[cfg(feature = "protobuf")]
    proto: protobuf::State,
    /// Start time of the family being written (Unix milliseconds), see [`Self::set_created`].
    created: Option<u64>,
    /// How names that are not legacy are written.
    escaping: Escaping,
    /// The metric name last checked (address and length) and whether it is legacy: every
    /// line of a family checks the same `&str`, so only its header (or first line) scans it.
    name_key: (usize, usize),
    name_legacy: bool,
    /// `name_key` was set by a registry from what it found at registration (its names are
    /// borrowed for its lifetime, so cannot change).
    name_vouched: bool,
}

/// The `le` label text of the last histogram bounds written, so that every series of a
/// family (and every family sharing the bounds) formats its bounds once per chunk.
#[derive(Debug)]
struct LeCache {
    /// The bounds cached (bit patterns compared, so any slice with equal values hits).
    bounds: [f64; LE_CACHE_BOUNDS],
    len: usize,
    /// `,le="<bound>"} ` for each bound and then for `+Inf`, back to back; `ends[i]` is where
    /// entry `i` ends.
    text: [u8; LE_CACHE_TEXT],
    ends: [u16; LE_CACHE_BOUNDS + 1],
}

/// Whether the encoder trades code size and stack for speed: a text cache ([`LeCache`]) and inlined short copies. Not on bare-metal targets, where every line is
/// written piece by piece: on the Cortex-M example this saves 2.4 KiB of flash and 0.6 KiB of
/// stack (the forced inlining of `put` and friends, left out there by the same condition, would
/// cost 7.8 KiB more). Both ways write the same bytes (tested).
const FAST: bool = cfg!(not(target_os = "none"));

/// Bounds and bytes the cache holds; longer bound lists are formatted on every line.
const LE_CACHE_BOUNDS: usize = if FAST { 16 } else { 0 };
const LE_CACHE_TEXT: usize = if FAST { 400 } else { 0 };
/// What the cache adds around each bound.
const LE_OPEN: &[u8] = b",le=\"";
const LE_CLOSE: &[u8] = b"\"} ";

impl LeCache {
    const EMPTY: Self = Self {
        bounds: [0.0; LE_CACHE_BOUNDS],
        len: usize::MAX,
        text: [0; LE_CACHE_TEXT],
        ends: [0; LE_CACHE_BOUNDS + 1],
    };

    /// Makes the cache hold `bounds`; `false` if they do not fit.
    fn load(&mut self, bounds: &[f64]) -> bool {
        if bounds.len() == self.len && bounds.iter().zip(&self.bounds).all(|(a, b)| a.to_bits() == b.to_bits()) {
            return true;
        }
        self.len = usize::MAX;
        if bounds.len() > LE_CACHE_BOUNDS {
            return false;
        }
        let mut end = 0;
        for (i, b) in bounds.iter().chain([&f64::INFINITY]).enumerate() {
            let mut ryu = ryu::Buffer::new();
            let digits = f64_text(&mut ryu, *b);
            let n = LE_OPEN.len() + digits.len() + LE_CLOSE.len();
            let Some(dst) = self.text.get_mut(end..end + n) else {
                return false;
            };
            let (open, rest) = dst.split_at_mut(LE_OPEN.len());
            let (mid, close) = rest.split_at_mut(digits.len());
            open.copy_from_slice(LE_OPEN);
            mid.copy_from_slice(digits);
            close.copy_from_slice(LE_CLOSE);
            end += n;
            self.ends[i] = end as u16;
        }
        self.bounds[..bounds.len()].copy_from_slice(bounds);
        self.len = bounds.len();
        true
    }

    /// The cached text of bound `i`; `i == len` is `+Inf`.
    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { usize::from(self.ends[i - 1]) };
        &self.text[start..usize::from(self.ends[i])]
    }
}

/// `v` as `+Inf`, `-Inf`, `NaN`, or the shortest decimal that reads back exactly.
fn f64_text(ryu: &mut ryu::Buffer, v: f64) -> &[u8] {
    if v.is_nan() {
        b"NaN"
    } else if v.is_infinite() {
        if v > 0.0 { b"+Inf" } else { b"-Inf" }
    } else {
        ryu.format_finite(v).as_bytes()
    }
}

impl<'b> Encoder<'b> {
    pub(crate) fn new(format: Format, buf: &'b mut [u8], resume: Position) -> Self {
        Self {
            format,
            buf,
            pos: 0,
            resume,
            at: Position::default(),
            stopped: None,
            past: resume == Position::default(),
            depth: 0,
            le: LeCache::EMPTY,
            #[cfg(feature = "protobuf")]
            proto: protobuf::State::default(),
            created: None,
            escaping: Escaping::Underscores,
            name_key: (0, 0),
            name_legacy: false,
            name_vouched: false,
        }
    }

    /// The same encoder writing names that are not legacy per `escaping`.
    pub(crate) fn with_escaping(mut self, escaping: Escaping) -> Self {
        self.escaping = escaping;
        self
    }

    /// How names that are not legacy Prometheus names are written (see [`Escaping`]).
    pub fn escaping(&self) -> Escaping {
        self.escaping
    }

    /// Records whether metric name `name` is legacy, as a registry found at registration,
    /// so that encoding its family does not scan it again.
    pub(crate) fn know_name(&mut self, name: &str, legacy: bool) {
        self.name_key = (name.as_ptr() as usize, name.len());
        self.name_legacy = legacy;
        self.name_vouched = true;
    }

    /// Whether metric name `name` is legacy (`[a-zA-Z_:][a-zA-Z0-9_:]*`), cached by address
    /// for the lines of one family.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn name_is_legacy(&mut self, name: &str) -> bool {
        if !cfg!(feature = "utf8-names") {
            return true; // registration took legacy names only; a collector's are trusted
        }
        if (name.as_ptr() as usize, name.len()) != self.name_key {
            self.name_key = (name.as_ptr() as usize, name.len());
            self.name_legacy = is_legacy_metric_name(name);
            self.name_vouched = false;
        }
        self.name_legacy
    }

    /// Writes a family's name in a `# HELP` or `# TYPE` line (see [`Self::put_sample_name`]).
    fn put_family_name(&mut self, name: &str, family: &str) -> Result<(), Full> {
        if self.name_is_legacy(name) {
            return self.put_str(family);
        }
        self.put_unusual_name(name, family.len(), "", false).map(|_| ())
    }

    /// Writes a sample's name: `family` (`name`, or `name` without the `_total` an
    /// OpenMetrics counter family drops) then `suffix`. A legacy name is written as it is;
    /// another is escaped (as a whole, before `_total` is dropped, as client_golang does), or
    /// under `allow-utf-8` written inside the braces, quoted: `{"family suffix"`; then this
    /// returns `true` (the braces are open, and a label needs a `,` before it).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put_sample_name(&mut self, name: &str, family: &str, suffix: &str) -> Result<bool, Full> {
        if self.name_is_legacy(name) {
            self.put_str(family)?;
            self.put_str(suffix)?;
            return Ok(false);
        }
        self.put_unusual_name(name, family.len(), suffix, true)
    }

    /// `family_len`: the length of the family part of `name` (its prefix).
    #[cold]
    fn put_unusual_name(&mut self, name: &str, family_len: usize, suffix: &str, in_braces: bool) -> Result<bool, Full> {
        let family = name.get(..family_len).unwrap_or(name);
        if cfg!(feature = "utf8-names") && self.escaping == Escaping::AllowUtf8 {
            if in_braces {
                self.put(b"{")?;
            }
            self.put(b"\"")?;
            self.put_escaped(family, true)?;
            self.put_escaped(suffix, true)?;
            self.put(b"\"")?;
            return Ok(in_braces);
        }
        names::escape(name, self.escaping, false, &mut |piece| self.put(piece))?;
        // The dropped part is `_total`, which every scheme ends as `_total`.
        self.pos -= name.len() - family.len();
        self.put_str(suffix)?;
        Ok(false)
    }

    /// Writes a label name: as it is when legacy; else quoted (`allow-utf-8`) or escaped.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put_label_name(&mut self, name: &str) -> Result<(), Full> {
        if !cfg!(feature = "utf8-names") || is_legacy_label_name(name) {
            return self.put_str(name);
        }
        self.put_unusual_label_name(name)
    }

    #[cold]
    fn put_unusual_label_name(&mut self, name: &str) -> Result<(), Full> {
        if cfg!(feature = "utf8-names") && self.escaping == Escaping::AllowUtf8 {
            self.put(b"\"")?;
            self.put_escaped(name, true)?;
            return self.put(b"\"");
        }
        names::escape(name, self.escaping, true, &mut |piece| self.put(piece))
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Sets the start time of the counters and histograms encoded next, in milliseconds since
    /// the Unix epoch (`None`: unknown, the default): OpenMetrics writes it as `_created`
    /// samples, protobuf as `created_timestamp`, Prometheus 0.0.4 has no place for it. The
    /// core has no clock: a [`Registry`](crate::Registry) sets the time its caller gave at
    /// registration around each family; a [`Collect`](crate::Collect) may set its own.
    pub fn set_created(&mut self, unix_ms: Option<u64>) {
        self.created = unix_ms;
    }

    /// Starts the next source: same buffer, new resume point.
    pub(crate) fn restart(&mut self, resume: Position) {
        self.resume = resume;
        self.at = Position::default();
        self.stopped = None;
        self.past = resume == Position::default();
        self.depth = 0;
    }

    /// The first entry index at the current nesting level not done by earlier chunks.
    pub(crate) fn resume_entry(&self) -> usize {
        let d = self.depth;
        if d < DEPTH && self.at.entries[..d] == self.resume.entries[..d] {
            self.resume.entries[d].saturating_sub(1)
        } else {
            0
        }
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
    /// before the resume point are skipped without calling `f`. Entries nest: a collector
    /// registered in a [`Registry`](crate::Registry) numbers its own entries from 0.
    ///
    /// # Errors
    /// [`Stop`] from `f`.
    pub fn entry(&mut self, index: usize, f: impl FnOnce(&mut Self) -> Result<(), Stop>) -> Result<(), Stop> {
        let d = self.depth;
        if d >= DEPTH {
            return f(self);
        }
        let mut at = self.at.entries;
        at[d] = index.saturating_add(1);
        at[d + 1..].fill(0);
        if !self.past && at[..=d] < self.resume.entries[..=d] {
            return Ok(()); // wholly written by earlier chunks
        }
        self.at = Position { entries: at, item: 0 };
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Whether the next item was already written by an earlier chunk; if so it is counted as
    /// done and the caller skips it (without computing it).
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn skip_item(&mut self) -> bool {
        if self.past {
            return false;
        }
        let skip = self.at.before(&self.resume);
        if skip {
            self.at.item += 1;
        } else {
            self.past = true;
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
                #[cfg(feature = "protobuf")]
                if self.format == Format::Protobuf {
                    protobuf::stop(self, mark);
                    self.stopped = Some(self.at);
                    return Err(Stop(()));
                }
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
        // A new family: its name is checked again unless the registry vouched for it (a
        // collector may reuse one buffer for several names, at the same address).
        let key = (desc.name.as_ptr() as usize, desc.name.len());
        if !(self.name_vouched && key == self.name_key) {
            self.name_key = key;
            self.name_legacy = is_legacy_metric_name(desc.name);
        }
        self.name_vouched = false;
        self.item(|e| match e.format {
            Format::Prometheus => text::header(e, desc),
            Format::OpenMetrics => openmetrics::header(e, desc),
            // Written with the family's first series (an empty family writes nothing).
            #[cfg(feature = "protobuf")]
            Format::Protobuf => Ok(()),
        })
    }

    /// A family's `# HELP` line (if it has help) and `# TYPE` line, as both text formats write
    /// them: `family` is the name they show, `quote` whether help escapes `"` too, `unknown`
    /// the end of the `# TYPE` line for [`MetricType::Unknown`]. On servers the usual family (a
    /// legacy name, help with nothing to escape) is written in one piece.
    fn family_header(
        &mut self,
        desc: &Desc<'_>,
        family: &str,
        quote: bool,
        unknown: &'static [u8],
    ) -> Result<(), Full> {
        let kind = |desc: &Desc<'_>| -> &'static [u8] {
            match desc.metric_type {
                MetricType::Counter => b" counter\n",
                MetricType::Gauge => b" gauge\n",
                MetricType::Histogram => b" histogram\n",
                MetricType::Unknown => unknown,
            }
        };
        if FAST && !desc.help.is_empty() && self.name_is_legacy(desc.name) && !needs_escape(desc.help.as_bytes(), quote)
        {
            let name = family.as_bytes();
            let pieces = (&b"# HELP "[..], name, b' ', desc.help.as_bytes(), &b"\n# TYPE "[..], name, kind(desc));
            self.pos = line::write_line(self.buf, self.pos, pieces).ok_or(Full)?;
            return Ok(());
        }
        if !desc.help.is_empty() {
            self.put(b"# HELP ")?;
            self.put_family_name(desc.name, family)?;
            self.put(b" ")?;
            self.put_escaped(desc.help, quote)?;
            self.put(b"\n")?;
        }
        self.put(b"# TYPE ")?;
        self.put_family_name(desc.name, family)?;
        self.put(kind(desc))
    }

    /// Writes one sample line.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn sample(&mut self, desc: &Desc<'_>, labels: &Labels<'_>, value: Value) -> Result<(), Stop> {
        self.sample_with_exemplar(desc, labels, value, None)
    }

    /// Writes one sample line with an exemplar: OpenMetrics appends it (`# {labels} value
    /// timestamp`; only counters may carry one), protobuf sets the counter's `exemplar`,
    /// Prometheus 0.0.4 leaves it out.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn sample_with_exemplar(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        value: Value,
        exemplar: Option<&ExemplarView<'_>>,
    ) -> Result<(), Stop> {
        if self.skip_item() {
            return Ok(());
        }
        // The common line, `name{labels} integer`, written with one bounds check (no exemplar
        // to write, no `_created` line, no name suffix, the label text as rendered).
        if !labels.rendered.is_empty()
            && (!cfg!(feature = "utf8-names") || labels.names.is_empty())
            && (exemplar.is_none() || self.format == Format::Prometheus)
            && self.writes_plain_lines(desc)
        {
            return self.plain_sample(desc, labels.rendered, value);
        }
        self.sample_line(desc, labels, value, exemplar)
    }

    /// Whether [`plain_sample`](Self::plain_sample) may write `desc`'s samples (those without
    /// an exemplar): a target where speed counts more than code size, a legacy name, and a
    /// line that is nothing but `name{labels} value`: the Prometheus text format (no
    /// exemplar, `_created` line or name suffix there), or OpenMetrics for a gauge, and for a
    /// counter whose name ends in `_total` (the sample's name is then the family's) with no
    /// start time to write after it.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn writes_plain_lines(&mut self, desc: &Desc<'_>) -> bool {
        if !FAST {
            return false;
        }
        let plain = match self.format {
            Format::Prometheus => true,
            Format::OpenMetrics => match desc.metric_type {
                MetricType::Gauge => true,
                MetricType::Counter => self.created.is_none() && desc.name.ends_with("_total"),
                MetricType::Histogram | MetricType::Unknown => false,
            },
            #[cfg(feature = "protobuf")]
            Format::Protobuf => false,
        };
        plain && self.name_is_legacy(desc.name)
    }

    /// One sample item `name{text} value`, for a family whose label text is `text` as
    /// rendered (not empty, legacy label names) when
    /// [`writes_plain_lines`](Self::writes_plain_lines) holds. The item is not skipped. An
    /// integer takes one bounds check; a float the general path.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn plain_sample(&mut self, desc: &Desc<'_>, text: &[u8], value: Value) -> Result<(), Stop> {
        match value {
            Value::U64(v) => self.plain_line(desc.name.as_bytes(), text, false, v),
            Value::I64(v) => self.plain_line(desc.name.as_bytes(), text, v < 0, v.unsigned_abs()),
            Value::F64(_) => self.sample_line(desc, &Labels::rendered(text), value, None),
        }
    }

    /// A sample line in any format, as one item (already known not to be skipped).
    #[cfg_attr(not(target_os = "none"), inline(never))]
    fn sample_line(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        value: Value,
        exemplar: Option<&ExemplarView<'_>>,
    ) -> Result<(), Stop> {
        self.write_item(|e| {
            #[cfg(feature = "protobuf")]
            if e.format == Format::Protobuf {
                return protobuf::sample(e, desc, labels, value, exemplar);
            }
            let (family, suffix) = e.sample_name(desc);
            if !labels.rendered.is_empty() {
                let quoted = e.put_sample_name(desc.name, family, suffix)?;
                e.put(if quoted { b"," } else { b"{" })?;
                e.labels_text(labels)?;
                e.put(b"} ")?;
                e.put_value_line(value)?;
            } else {
                e.line(desc.name, family, suffix, labels, None, value)?;
            }
            match exemplar {
                Some(ex) if e.format == Format::OpenMetrics && desc.metric_type == MetricType::Counter => {
                    openmetrics::exemplar(e, ex)?;
                }
                _ => {}
            }
            e.created_line(desc, labels)
        })
    }

    /// `name{labels} [-]v\n` as one item, written by [`line::write_line`] (one bounds check).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn plain_line(&mut self, name: &[u8], labels: &[u8], negative: bool, v: u64) -> Result<(), Stop> {
        let pieces = (name, b'{', labels, &b"} "[..], Int::signed(v, negative), b'\n');
        let Some(end) = line::write_line(self.buf, self.pos, pieces) else {
            self.stopped = Some(self.at);
            return Err(Stop(()));
        };
        self.pos = end;
        self.at.item += 1;
        Ok(())
    }

    /// Writes a classic histogram series with an exemplar per bucket (`exemplar(i)`, `i == N`
    /// for `+Inf`), from a snapshot taken only if the item is not skipped. OpenMetrics appends
    /// each to its `_bucket` line, protobuf sets each bucket's `exemplar` (writing the `+Inf`
    /// bucket when it has one), Prometheus 0.0.4 leaves them out.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn histogram_with_exemplars<const N: usize>(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        snapshot: impl FnOnce() -> Snapshot<N>,
        exemplar: impl Fn(usize) -> Option<ExemplarCopy>,
    ) -> Result<(), Stop> {
        if self.skip_item() {
            return Ok(());
        }
        let snap = snapshot();
        self.write_item(|e| {
            match e.format {
                Format::OpenMetrics => e.histogram_exemplar_lines(desc, labels, &snap.view(), &exemplar)?,
                #[cfg(feature = "protobuf")]
                Format::Protobuf => protobuf::histogram_with_exemplars(e, desc, labels, &snap.view(), &exemplar)?,
                _ => e.histogram_lines(desc, labels, &snap.view())?,
            }
            e.created_line(desc, labels)
        })
    }

    /// Writes a [`HybridHistogram`](crate::HybridHistogram) series (native and classic buckets
    /// on one series, an exemplar per classic bucket: `exemplar(i)`, `i == N` for `+Inf`) from a
    /// snapshot taken only if the item is not skipped. Protobuf carries both bucket kinds and
    /// the exemplars (on their classic buckets and in the histogram's `exemplars`); the text
    /// formats show the classic buckets, OpenMetrics with their exemplars.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn hybrid_histogram_with<const B: usize, const N: usize>(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        snapshot: impl FnOnce() -> HybridSnapshot<B, N>,
        exemplar: impl Fn(usize) -> Option<ExemplarCopy>,
    ) -> Result<(), Stop> {
        if self.skip_item() {
            return Ok(());
        }
        let snap = snapshot();
        self.write_item(|e| {
            match e.format {
                Format::OpenMetrics => e.histogram_exemplar_lines(desc, labels, &snap.classic().view(), &exemplar)?,
                #[cfg(feature = "protobuf")]
                Format::Protobuf => protobuf::hybrid_histogram(
                    e,
                    desc,
                    labels,
                    &snap.native().view(),
                    &snap.classic().view(),
                    &exemplar,
                )?,
                _ => e.histogram_lines(desc, labels, &snap.classic().view())?,
            }
            e.created_line(desc, labels)
        })
    }

    /// OpenMetrics histogram lines, each bucket line with its exemplar (line by line).
    fn histogram_exemplar_lines(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        view: &HistogramView<'_>,
        exemplar: &dyn Fn(usize) -> Option<ExemplarCopy>,
    ) -> Result<(), Full> {
        for (i, (bound, cumulative)) in view.cumulative().enumerate() {
            self.line(desc.name, desc.name, "_bucket", labels, Some(bound), Value::U64(cumulative))?;
            if let Some(ex) = exemplar(i) {
                openmetrics::exemplar(self, &ex.view())?;
            }
        }
        if openmetrics::sum_allowed(view) {
            self.line(desc.name, desc.name, "_sum", labels, None, Value::F64(view.sum))?;
            self.line(desc.name, desc.name, "_count", labels, None, Value::U64(view.count()))?;
        }
        Ok(())
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
        self.write_item(|e| {
            e.histogram_lines(desc, labels, &snap.view())?;
            e.created_line(desc, labels)
        })
    }

    /// Writes a histogram series: cumulative `_bucket` lines ending in `le="+Inf"`, `_sum`,
    /// `_count` (which always equals the `+Inf` bucket). OpenMetrics omits `_sum` and `_count`
    /// when the sum is negative or NaN or a bound is negative (see [`openmetrics`]).
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn histogram(&mut self, desc: &Desc<'_>, labels: &Labels<'_>, view: &HistogramView<'_>) -> Result<(), Stop> {
        self.item(|e| {
            e.histogram_lines(desc, labels, view)?;
            e.created_line(desc, labels)
        })
    }

    /// Writes a native histogram series from a snapshot taken only if the item is not skipped.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn native_histogram_with<const N: usize>(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        snapshot: impl FnOnce() -> NativeSnapshot<N>,
    ) -> Result<(), Stop> {
        if self.skip_item() {
            return Ok(());
        }
        let snap = snapshot();
        self.write_item(|e| {
            e.native_histogram_lines(desc, labels, &snap.view())?;
            e.created_line(desc, labels)
        })
    }

    /// Writes a native histogram series. Protobuf carries the schema, zero bucket, spans and
    /// deltas; the text formats have no place for them and write what client_golang writes
    /// for a histogram without classic buckets: the `+Inf` bucket, `_sum` and `_count`.
    ///
    /// # Errors
    /// [`Stop`] when the buffer is full.
    pub fn native_histogram(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        view: &NativeHistogramView<'_>,
    ) -> Result<(), Stop> {
        self.item(|e| {
            e.native_histogram_lines(desc, labels, view)?;
            e.created_line(desc, labels)
        })
    }

    fn native_histogram_lines(
        &mut self,
        desc: &Desc<'_>,
        labels: &Labels<'_>,
        view: &NativeHistogramView<'_>,
    ) -> Result<(), Full> {
        #[cfg(feature = "protobuf")]
        if self.format == Format::Protobuf {
            return protobuf::native_histogram(self, desc, labels, view);
        }
        let classic = HistogramView { bounds: &[], buckets: &[], inf: view.count, sum: view.sum };
        self.histogram_lines(desc, labels, &classic)
    }

    fn histogram_lines(&mut self, desc: &Desc<'_>, labels: &Labels<'_>, view: &HistogramView<'_>) -> Result<(), Full> {
        #[cfg(feature = "protobuf")]
        if self.format == Format::Protobuf {
            return protobuf::histogram(self, desc, labels, view);
        }
        let sum_lines = self.format == Format::Prometheus || openmetrics::sum_allowed(view);
        if !FAST || view.bounds.is_empty() || !self.name_is_legacy(desc.name) || !self.le.load(view.bounds) {
            for (bound, cumulative) in view.cumulative() {
                self.line(desc.name, desc.name, "_bucket", labels, Some(bound), Value::U64(cumulative))?;
            }
            if sum_lines {
                self.line(desc.name, desc.name, "_sum", labels, None, Value::F64(view.sum))?;
                self.line(desc.name, desc.name, "_count", labels, None, Value::U64(view.count()))?;
            }
            return Ok(());
        }
        // Fast path: `name_bucket{labels` is written once; every bucket line is a copy of it,
        // the cached `,le="<bound>"} ` text and the count; `_sum` and `_count` copy the labels.
        let start = self.pos;
        self.put_str(desc.name)?;
        self.put(b"_bucket{")?;
        let labels_at = self.pos;
        self.labels_text(labels)?;
        let labels_text = (labels_at, self.pos - labels_at);
        let prefix = (start, self.pos - start);
        let labelled = labels_text.1 > 0;
        let mut count = 0;
        for (i, (_, cumulative)) in view.cumulative().enumerate() {
            count = cumulative;
            // One bounds check per line: the prefix (written already for the first line), the
            // cached bound text, the count and a newline.
            let le = self.le.get(i);
            let le = if labelled { le } else { &le[1..] }; // `{` written
            let repeat = if i > 0 { prefix.1 } else { 0 };
            let pieces = (Earlier(prefix.0, repeat), le, Int::new(cumulative), b'\n');
            self.pos = line::write_line(self.buf, self.pos, pieces).ok_or(Full)?;
        }
        if !sum_lines {
            return Ok(());
        }
        // `name_sum{labels} sum` and `name_count{labels} count`, each line in one piece (`{` and
        // ` ` open the label text or the value alike: one length for both).
        let name = desc.name.as_bytes();
        let labels = Earlier(labels_text.0, labels_text.1);
        let close: &[u8] = if labelled { b"} " } else { b"" };
        let mut floats = ryu::Buffer::new();
        let sum = f64_text(&mut floats, view.sum);
        let open: &[u8; 5] = if labelled { b"_sum{" } else { b"_sum " };
        self.pos = line::write_line(self.buf, self.pos, (name, &open[..], labels, close, sum, b'\n')).ok_or(Full)?;
        let open: &[u8; 7] = if labelled { b"_count{" } else { b"_count " };
        let pieces = (name, &open[..], labels, close, Int::new(count), b'\n');
        self.pos = line::write_line(self.buf, self.pos, pieces).ok_or(Full)?;
        Ok(())
    }

    /// `k1="v1",k2="v2"` (values escaped), without braces.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn labels_text(&mut self, labels: &Labels<'_>) -> Result<(), Full> {
        if !labels.rendered.is_empty() {
            // Names are kept only for a family with a label name that is not legacy.
            if !cfg!(feature = "utf8-names") || labels.names.is_empty() {
                return self.put(labels.rendered);
            }
            return self.unusual_rendered_labels(labels);
        }
        self.label_pairs(labels.iter(), false)
    }

    /// A family's rendered label text whose label names are not all legacy: each name
    /// written per the scheme, each value copied as rendered (escaped).
    #[cold]
    fn unusual_rendered_labels(&mut self, labels: &Labels<'_>) -> Result<(), Full> {
        for (i, (name, value)) in rendered_pairs(labels.names, labels.rendered).enumerate() {
            if i > 0 {
                self.put(b",")?;
            }
            self.put_label_name(name)?;
            self.put(b"=\"")?;
            self.put(value)?;
            self.put(b"\"")?;
        }
        Ok(())
    }

    /// `k="v"` for each pair (value escaped), separated by commas; one comma before the first
    /// too if `comma`.
    fn label_pairs<'l>(
        &mut self,
        pairs: impl Iterator<Item = (&'l str, &'l str)>,
        mut comma: bool,
    ) -> Result<(), Full> {
        for (k, v) in pairs {
            if comma {
                self.put(b",")?;
            }
            comma = true;
            self.put_label_name(k)?;
            self.put(b"=\"")?;
            self.put_escaped(v, true)?;
            self.put(b"\"")?;
        }
        Ok(())
    }

    /// `value\n`
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put_value_line(&mut self, value: Value) -> Result<(), Full> {
        match value {
            Value::U64(v) => self.put_u64(v)?,
            Value::I64(v) => {
                if v < 0 {
                    self.put(b"-")?;
                }
                self.put_u64(v.unsigned_abs())?;
            }
            Value::F64(v) => self.put_f64(v)?,
        }
        self.put(b"\n")
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put_u64(&mut self, v: u64) -> Result<(), Full> {
        let end = self.pos + decimal::len(v);
        decimal::write(self.buf.get_mut(self.pos..end).ok_or(Full)?, v);
        self.pos = end;
        Ok(())
    }

    /// Writes the end-of-exposition marker, if the format has one.
    pub(crate) fn finish(&mut self) -> Result<(), Stop> {
        match self.format {
            Format::Prometheus => Ok(()),
            Format::OpenMetrics => self.item(|e| e.put(openmetrics::EOF)),
            #[cfg(feature = "protobuf")]
            Format::Protobuf => {
                protobuf::close(self);
                Ok(())
            }
        }
    }

    /// `(name part, suffix)` of a plain sample's name in this format.
    fn sample_name<'d>(&self, desc: &Desc<'d>) -> (&'d str, &'static str) {
        match (self.format, desc.metric_type) {
            (Format::OpenMetrics, MetricType::Counter) if !desc.name.ends_with("_total") => (desc.name, "_total"),
            _ => (desc.name, ""),
        }
    }

    /// `family suffix {labels[,le="bound"]} value\n` (`family`: `name` or a prefix of it, see
    /// [`Self::put_sample_name`])
    #[allow(clippy::too_many_arguments)] // one per part of the line; a struct would only rename them
    fn line(
        &mut self,
        name: &str,
        family: &str,
        suffix: &str,
        labels: &Labels<'_>,
        le: Option<f64>,
        value: Value,
    ) -> Result<(), Full> {
        let open = self.series_head(name, family, suffix, labels)?;
        if let Some(bound) = le {
            self.put(if open { b",le=\"" } else { b"{le=\"" })?;
            self.put_f64(bound)?;
            self.put(b"\"} ")?;
        } else {
            self.put(if open { b"} " } else { b" " })?;
        }
        self.put_value_line(value)
    }

    /// `name suffix{labels` (`{"name suffix",labels` for a quoted name), or the name alone
    /// without labels; `true` if a `{` was written (and a `}` must close it).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn series_head(&mut self, name: &str, family: &str, suffix: &str, labels: &Labels<'_>) -> Result<bool, Full> {
        let quoted = self.put_sample_name(name, family, suffix)?;
        let labelled = !labels.rendered.is_empty() || labels.iter().next().is_some();
        if labelled {
            self.put(if quoted { b"," } else { b"{" })?;
            self.labels_text(labels)?;
        }
        Ok(labelled || quoted)
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.pos = put_at(self.buf, self.pos, bytes)?;
        Ok(())
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put_str(&mut self, s: &str) -> Result<(), Full> {
        self.put(s.as_bytes())
    }

    /// Writes `v` as `+Inf`, `-Inf`, `NaN`, or the shortest decimal that reads back exactly.
    fn put_f64(&mut self, v: f64) -> Result<(), Full> {
        self.put(f64_text(&mut ryu::Buffer::new(), v))
    }

    /// Writes `s` escaping `\` and newline, and `"` if `quote`.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put_escaped(&mut self, s: &str, quote: bool) -> Result<(), Full> {
        let bytes = s.as_bytes();
        if !needs_escape(bytes, quote) {
            return self.put(bytes);
        }
        self.put_escaping(bytes, quote)
    }

    #[cold]
    fn put_escaping(&mut self, bytes: &[u8], quote: bool) -> Result<(), Full> {
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

/// The `(name, escaped value)` pairs of rendered label text `name="value",…` whose names
/// are `names`, in order (names may hold `=`, `"` or `,`: they are matched, not searched).
pub(crate) fn rendered_pairs<'a>(
    names: &'a [&'a str],
    text: &'a [u8],
) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
    let mut rest = text;
    names.iter().map_while(move |name| {
        let after = rest.strip_prefix(b",").unwrap_or(rest);
        let body = after.strip_prefix(name.as_bytes())?.strip_prefix(b"=\"")?;
        let mut end = 0;
        while end < body.len() && body[end] != b'"' {
            end += if body[end] == b'\\' { 2 } else { 1 };
        }
        let value = body.get(..end)?;
        rest = body.get(end + 1..)?;
        Some((*name, value))
    })
}

/// Whether `bytes` holds `\\`, a newline, or (if `quote`) `"`: eight bytes at a time.
#[inline]
pub(crate) fn needs_escape(bytes: &[u8], quote: bool) -> bool {
    if !FAST {
        return bytes.iter().any(|&b| b == b'\\' || b == b'\n' || (quote && b == b'"'));
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact test for a zero byte in `w ^ (c * ONES)`, i.e. for a byte equal to `c`.
    let has = |w: u64, c: u8| {
        let x = w ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGH != 0
    };
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        if has(w, b'\\') || has(w, b'\n') || (quote && has(w, b'"')) {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b == b'\\' || b == b'\n' || (quote && b == b'"'))
}

/// Writes `bytes` into `buf` at `pos`; returns the position after them. (What
/// [`Encoder::put`] does, for bytes borrowed from another field of the encoder.)
#[cfg_attr(not(target_os = "none"), inline(always))]
fn put_at(buf: &mut [u8], pos: usize, bytes: &[u8]) -> Result<usize, Full> {
    let end = pos + bytes.len();
    copy_short(buf.get_mut(pos..end).ok_or(Full)?, bytes);
    Ok(end)
}

/// `dst.copy_from_slice(src)` without a call to `memcpy` for the short pieces (names, label
/// values, numbers) that make up an exposition: two overlapping fixed-size copies.
#[cfg_attr(not(target_os = "none"), inline(always))]
pub(crate) fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if !FAST || dst.len() != n {
        return dst.copy_from_slice(src); // panics like copy_from_slice; callers size `dst` exactly
    }
    // Each size's head and tail go through integer loads and stores: written as two
    // `copy_from_slice` calls, the arms differ only in their constants and LLVM merges them
    // into one call to `memcpy` with a variable size, the call this function exists to avoid.
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => copy_ends::<4>(dst, src),
        8..=16 => copy_ends::<8>(dst, src),
        17..=32 => copy_ends::<16>(dst, src),
        33..=64 => {
            copy_ends::<16>(&mut dst[..32], &src[..32]);
            copy_ends::<16>(&mut dst[n - 32..], &src[n - 32..]);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// The first and the last `W` bytes of `src` (`W <= src.len() <= 2 * W`) into `dst`, which
/// has the same length: both loaded (into registers) before either is stored.
#[cfg_attr(not(target_os = "none"), inline(always))]
fn copy_ends<const W: usize>(dst: &mut [u8], src: &[u8]) {
    let (Some(&head), Some(&tail)) = (src.first_chunk::<W>(), src.last_chunk::<W>()) else {
        return dst.copy_from_slice(src);
    };
    if let Some(first) = dst.first_chunk_mut::<W>() {
        *first = head;
    }
    if let Some(last) = dst.last_chunk_mut::<W>() {
        *last = tail;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn histogram_text(bounds: &[f64], labels: &Labels<'_>, format: Format) -> String {
        let buckets: std::vec::Vec<u64> = (1..=bounds.len() as u64).collect();
        let view = HistogramView { bounds, buckets: &buckets, inf: 2, sum: 7.5 };
        let desc = Desc { name: "h", help: "", metric_type: MetricType::Histogram };
        let mut buf = [0u8; 4096];
        let mut enc = Encoder::new(format, &mut buf, Position::default());
        enc.histogram(&desc, labels, &view).unwrap();
        enc.histogram(&desc, labels, &view).unwrap(); // second series: served from the le cache
        let n = enc.written();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// Both text formats' family headers, in one piece (plain help) and piece by piece (help
    /// to escape, no help): the name each shows, the escapes each makes (OpenMetrics escapes
    /// `"` too) and each one's word for an unknown type.
    #[test]
    fn family_headers_in_both_text_formats() {
        let header = |format, name, help, metric_type| {
            let mut buf = [0u8; 256];
            let mut enc = Encoder::new(format, &mut buf, Position::default());
            enc.header(&Desc { name, help, metric_type }).unwrap();
            let n = enc.written();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        use Format::{OpenMetrics, Prometheus};
        use MetricType::{Counter, Unknown};
        for (format, name, help, metric_type, want) in [
            (Prometheus, "r_total", "Requests.", Counter, "# HELP r_total Requests.\n# TYPE r_total counter\n"),
            (OpenMetrics, "r_total", "Requests.", Counter, "# HELP r Requests.\n# TYPE r counter\n"),
            (Prometheus, "x", "A \"b\" c\\d\ne", Unknown, "# HELP x A \"b\" c\\\\d\\ne\n# TYPE x untyped\n"),
            (OpenMetrics, "x", "A \"b\" c\\d\ne", Unknown, "# HELP x A \\\"b\\\" c\\\\d\\ne\n# TYPE x unknown\n"),
            (Prometheus, "x", "", Unknown, "# TYPE x untyped\n"),
            (OpenMetrics, "r_total", "", Counter, "# TYPE r counter\n"),
        ] {
            assert_eq!(header(format, name, help, metric_type), want, "{format:?} {name} {help:?}");
        }
    }

    /// A family's sample lines, written from the label text rendered at series creation, are
    /// exactly what the line-by-line path writes from the raw values: several labels, escapes,
    /// no labels, OpenMetrics counter names, a long name.
    #[test]
    fn family_label_text_matches_line_by_line() {
        use crate::{Counter, Family, Gauge, Metric};
        let long = "n".repeat(120);
        let raw = [["x", "y"], ["q\"uote", "back\\slash"], ["new\nline", ""]];
        let two: Family<Counter, [&str; 2], 4> = Family::new(["a", "b"], ());
        for (i, values) in raw.into_iter().enumerate() {
            two.get_or_create(values).unwrap().inc_by(i as u64 * 1000 + 7);
        }
        let none: Family<Gauge, (), 1> = Family::new([], ());
        none.get_or_create(()).unwrap().set(-42);
        let families: [(&str, MetricType, &dyn Metric); 4] = [
            ("two_total", MetricType::Counter, &two),
            ("two", MetricType::Counter, &two),
            ("none", MetricType::Gauge, &none),
            (&long, MetricType::Counter, &two),
        ];
        for format in [Format::Prometheus, Format::OpenMetrics] {
            for (name, metric_type, metric) in families {
                let desc = Desc { name, help: "h", metric_type };
                let mut rendered = [0u8; 2048];
                let mut enc = Encoder::new(format, &mut rendered, Position::default());
                metric.encode(&desc, &mut enc).unwrap();
                let n = enc.written();
                // The reference: the same samples from the raw values, line by line.
                let mut reference = [0u8; 2048];
                let mut enc = Encoder::new(format, &mut reference, Position::default());
                enc.header(&desc).unwrap();
                if metric_type == MetricType::Gauge {
                    enc.sample(&desc, &Labels::EMPTY, Value::I64(-42)).unwrap();
                } else {
                    for values in &raw {
                        let c = two.get(*values).unwrap().get();
                        enc.sample(&desc, &Labels::new(&["a", "b"], values), Value::U64(c)).unwrap();
                    }
                }
                let m = enc.written();
                assert_eq!(core::str::from_utf8(&rendered[..n]), core::str::from_utf8(&reference[..m]), "{name}");
                assert!(m > 0);
            }
        }
    }

    /// The `le` cache and prefix copy write exactly what the line-by-line path writes.
    #[test]
    fn cached_bucket_lines_match_uncached() {
        // 17 bounds do not fit the cache; their first two lines are the reference.
        let long: std::vec::Vec<f64> = (1..=17).map(|i| i as f64 * 0.25).collect();
        for labels in [Labels::EMPTY, Labels::new(&["a", "b"], &["x,{le=\"", "\\\n"])] {
            for format in [Format::Prometheus, Format::OpenMetrics] {
                let cached = histogram_text(&long[..2], &labels, format);
                let uncached = histogram_text(&long, &labels, format);
                let first_two: std::vec::Vec<&str> = uncached.lines().take(2).collect();
                assert_eq!(cached.lines().take(2).collect::<std::vec::Vec<_>>(), first_two);
                assert_eq!(cached.lines().count(), 2 * (2 + 3));
            }
        }
        let text = histogram_text(&[0.5, 1.0], &Labels::new(&["k"], &["v"]), Format::Prometheus);
        assert_eq!(
            text.lines().take(5).collect::<std::vec::Vec<_>>(),
            [
                "h_bucket{k=\"v\",le=\"0.5\"} 1",
                "h_bucket{k=\"v\",le=\"1.0\"} 3",
                "h_bucket{k=\"v\",le=\"+Inf\"} 5",
                "h_sum{k=\"v\"} 7.5",
                "h_count{k=\"v\"} 5"
            ]
        );
    }

    /// A scrape in chunks of any size writes exactly the single-buffer exposition, including
    /// the overflow family after the last entry (the registry resumes at the chunk's entry)
    /// and every OpenMetrics `_created` line (once a separate item, which a family resuming
    /// mid-way skipped, losing lines).
    #[test]
    fn chunked_registry_scrape_equals_whole() {
        use crate::{Counter, Family, Histogram, Registry, Scrape};
        static BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
        let requests: Family<Counter, (&str,), 2> = Family::new(["code"], ()).with_overflow(crate::Overflow::Error);
        let latency: Family<Histogram<3>, (&str,), 4> = Family::new(["route"], &BOUNDS);
        let up = Counter::new();
        let registry: Registry<'_, 8> = Registry::new().with_clock(|| 1_700_000_000_000);
        registry.register("requests_total", "Requests.", &requests).unwrap();
        registry.register("latency_seconds", "Latency.", &latency).unwrap();
        registry.register("up_total", "", &up).unwrap();
        for code in ["200", "404", "500"] {
            let _ = requests.get_or_create((code,)).map(|c| c.inc_by(3));
        }
        for (i, route) in ["/a", "/b", "/c"].into_iter().enumerate() {
            latency.get_or_create((route,)).unwrap().observe(i as f64 * 0.7);
        }
        up.inc();
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let mut whole = [0u8; 8192];
            let n = Scrape::new(format, &registry).fill(&mut whole).unwrap();
            let whole = &whole[..n];
            assert!(
                core::str::from_utf8(whole)
                    .unwrap()
                    .contains("diag_series_overflow_total{family=\"requests_total\"} 1")
            );
            for chunk in [400, 433, 512, 1000] {
                let mut scrape = Scrape::new(format, &registry);
                let mut out = std::vec::Vec::new();
                let mut buf = std::vec![0u8; chunk];
                loop {
                    match scrape.fill(&mut buf).unwrap() {
                        0 => break,
                        n => out.extend_from_slice(&buf[..n]),
                    }
                }
                assert_eq!(String::from_utf8(out).unwrap(), core::str::from_utf8(whole).unwrap(), "chunk {chunk}");
            }
        }
    }

    /// OpenMetrics takes the plain sample lines only where they are the whole series: a
    /// counter with a start time still gets its `_created` line, a counter's exemplar is still
    /// written, and a gauge or an exemplar-less counter is the same line as in 0.0.4.
    #[test]
    fn openmetrics_plain_lines_keep_created_lines_and_exemplars() {
        use crate::{Counter, ExemplarCounter, Family, Gauge, Registry, Scrape};
        let requests: Family<Counter, (&str,), 2> = Family::new(["code"], ());
        let inflight: Family<Gauge, (&str,), 2> = Family::new(["code"], ());
        requests.get_or_create(("200",)).unwrap().inc_by(3);
        inflight.get_or_create(("200",)).unwrap().set(-4);
        let scrape = |registry: &Registry<'_, 4>| {
            let mut buf = [0u8; 2048];
            let n = Scrape::new(Format::OpenMetrics, registry).fill(&mut buf).unwrap();
            String::from(core::str::from_utf8(&buf[..n]).unwrap())
        };

        let clocked: Registry<'_, 4> = Registry::new().with_clock(|| 1_700_000_000_250);
        clocked.register("requests_total", "", &requests).unwrap();
        clocked.register("inflight", "", &inflight).unwrap();
        let text = scrape(&clocked);
        assert!(
            text.contains("requests_total{code=\"200\"} 3\nrequests_created{code=\"200\"} 1700000000.250\n"),
            "{text}"
        );
        assert!(text.contains("inflight{code=\"200\"} -4\n"), "{text}");
        assert!(!text.contains("inflight_created"), "{text}");

        let traced: Family<ExemplarCounter, (&str,), 2> = Family::new(["code"], ());
        traced.get_or_create(("200",)).unwrap().inc_by_with_exemplar(2, &[("trace_id", "t1")], None).unwrap();
        traced.get_or_create(("500",)).unwrap().inc();
        let plain: Registry<'_, 4> = Registry::new();
        plain.register("requests_total", "", &requests).unwrap();
        plain.register("traced_total", "", &traced).unwrap();
        let text = scrape(&plain);
        assert!(text.contains("requests_total{code=\"200\"} 3\n"), "{text}");
        assert!(!text.contains("_created"), "{text}");
        assert!(text.contains("traced_total{code=\"200\"} 2 # {trace_id=\"t1\"} 2.0\n"), "{text}");
        assert!(text.contains("traced_total{code=\"500\"} 1\n"), "{text}");
        crate::encoding::parse::validate(Format::OpenMetrics, &text).unwrap();
    }

    #[test]
    fn escape_check_finds_every_special_byte_at_every_position() {
        for len in 0..20 {
            assert!(!needs_escape(&std::vec![b'a'; len], true));
            for at in 0..len {
                for (special, quote_only) in [(b'\\', false), (b'\n', false), (b'"', true)] {
                    let mut v = std::vec![b'a'; len];
                    v[at] = special;
                    assert!(needs_escape(&v, true));
                    assert_eq!(needs_escape(&v, false), !quote_only);
                }
            }
        }
        // Bytes next to the special ones (borrow/carry edge cases) are not mistaken for them.
        assert!(!needs_escape(&[0x5b, 0x5d, 0x0b, 0x09, 0x21, 0x23, 0xdc, 0x8a, 0xa2, 0x80, 0xff, 0x00], true));
    }

    #[test]
    fn short_copies_copy_every_length() {
        let src: std::vec::Vec<u8> = (0..80).collect();
        for n in 0..=80 {
            let mut dst = [0xffu8; 80];
            copy_short(&mut dst[..n], &src[..n]);
            assert_eq!(&dst[..n], &src[..n]);
            assert!(dst[n..].iter().all(|b| *b == 0xff));
        }
    }
}

/// UTF-8 names per format and escaping scheme, expected text written out by hand from
/// prometheus/common's rules (`EscapeName`, `EscapeMetricFamily`, `text_create.go`,
/// `openmetrics_create.go`).
#[cfg(all(test, not(loom), feature = "utf8-names"))]
mod utf8_names {
    extern crate std;
    use super::*;
    use crate::{Counter, Family, Histogram, Registry, Scrape};
    use std::string::String;

    static BOUNDS: [f64; 1] = [0.5];

    fn exposition(format: Format, escaping: Escaping) -> String {
        let cafe = Counter::new();
        cafe.inc_by(3);
        let duration: Family<Histogram<1>, (&str,), 4> = Family::new(["http.method"], &BOUNDS);
        duration.get_or_create(("GET",)).unwrap().observe(0.25);
        let mixed: Family<Counter, (&str, &str), 4> = Family::new(["code", "région"], ());
        mixed.get_or_create(("200", "e\"u")).unwrap().inc();
        let registry: Registry<'_, 4> = Registry::new().with_clock(|| 1_700_000_000_000);
        registry.register("café_total", "Café visits.", &cafe).unwrap();
        registry.register("http.server.duration", "", &duration).unwrap();
        registry.register("requests_total", "", &mixed).unwrap();
        let mut buf = [0u8; 4096];
        let n = Scrape::new(format, &registry).with_escaping(escaping).fill(&mut buf).unwrap();
        let text = String::from_utf8(buf[..n].to_vec()).unwrap();
        // Chunked, the same bytes (the slow paths resume like the fast ones).
        let mut scrape = Scrape::new(format, &registry).with_escaping(escaping);
        let (mut out, mut chunk) = (std::vec::Vec::new(), [0u8; 400]);
        loop {
            match scrape.fill(&mut chunk).unwrap() {
                0 => break,
                k => out.extend_from_slice(&chunk[..k]),
            }
        }
        assert_eq!(String::from_utf8(out).unwrap(), text);
        text
    }

    #[test]
    fn text_format_per_scheme() {
        let p = Format::Prometheus;
        assert_eq!(
            exposition(p, Escaping::AllowUtf8),
            "# HELP \"café_total\" Café visits.\n# TYPE \"café_total\" counter\n{\"café_total\"} 3\n\
             # TYPE \"http.server.duration\" histogram\n\
             {\"http.server.duration_bucket\",\"http.method\"=\"GET\",le=\"0.5\"} 1\n\
             {\"http.server.duration_bucket\",\"http.method\"=\"GET\",le=\"+Inf\"} 1\n\
             {\"http.server.duration_sum\",\"http.method\"=\"GET\"} 0.25\n\
             {\"http.server.duration_count\",\"http.method\"=\"GET\"} 1\n\
             # TYPE requests_total counter\nrequests_total{code=\"200\",\"région\"=\"e\\\"u\"} 1\n"
        );
        assert_eq!(
            exposition(p, Escaping::Underscores),
            "# HELP caf__total Café visits.\n# TYPE caf__total counter\ncaf__total 3\n\
             # TYPE http_server_duration histogram\n\
             http_server_duration_bucket{http_method=\"GET\",le=\"0.5\"} 1\n\
             http_server_duration_bucket{http_method=\"GET\",le=\"+Inf\"} 1\n\
             http_server_duration_sum{http_method=\"GET\"} 0.25\n\
             http_server_duration_count{http_method=\"GET\"} 1\n\
             # TYPE requests_total counter\nrequests_total{code=\"200\",r_gion=\"e\\\"u\"} 1\n"
        );
        // Legacy names (`requests_total`, `code`) are kept under every scheme, `dots` included.
        assert_eq!(
            exposition(p, Escaping::Dots),
            "# HELP caf____total Café visits.\n# TYPE caf____total counter\ncaf____total 3\n\
             # TYPE http_dot_server_dot_duration histogram\n\
             http_dot_server_dot_duration_bucket{http_dot_method=\"GET\",le=\"0.5\"} 1\n\
             http_dot_server_dot_duration_bucket{http_dot_method=\"GET\",le=\"+Inf\"} 1\n\
             http_dot_server_dot_duration_sum{http_dot_method=\"GET\"} 0.25\n\
             http_dot_server_dot_duration_count{http_dot_method=\"GET\"} 1\n\
             # TYPE requests_total counter\nrequests_total{code=\"200\",r__gion=\"e\\\"u\"} 1\n"
        );
        assert_eq!(
            exposition(p, Escaping::Values),
            "# HELP U__caf_e9___total Café visits.\n# TYPE U__caf_e9___total counter\nU__caf_e9___total 3\n\
             # TYPE U__http_2e_server_2e_duration histogram\n\
             U__http_2e_server_2e_duration_bucket{U__http_2e_method=\"GET\",le=\"0.5\"} 1\n\
             U__http_2e_server_2e_duration_bucket{U__http_2e_method=\"GET\",le=\"+Inf\"} 1\n\
             U__http_2e_server_2e_duration_sum{U__http_2e_method=\"GET\"} 0.25\n\
             U__http_2e_server_2e_duration_count{U__http_2e_method=\"GET\"} 1\n\
             # TYPE requests_total counter\nrequests_total{code=\"200\",U__r_e9_gion=\"e\\\"u\"} 1\n"
        );
    }

    /// OpenMetrics: a counter's family drops `_total` after escaping (client_golang escapes
    /// the family, then writes it), `_created` follows the family name.
    #[test]
    fn openmetrics_per_scheme() {
        let om = Format::OpenMetrics;
        assert_eq!(
            exposition(om, Escaping::AllowUtf8),
            "# HELP \"café\" Café visits.\n# TYPE \"café\" counter\n{\"café_total\"} 3\n{\"café_created\"} 1700000000.000\n\
             # TYPE \"http.server.duration\" histogram\n\
             {\"http.server.duration_bucket\",\"http.method\"=\"GET\",le=\"0.5\"} 1\n\
             {\"http.server.duration_bucket\",\"http.method\"=\"GET\",le=\"+Inf\"} 1\n\
             {\"http.server.duration_sum\",\"http.method\"=\"GET\"} 0.25\n\
             {\"http.server.duration_count\",\"http.method\"=\"GET\"} 1\n\
             {\"http.server.duration_created\",\"http.method\"=\"GET\"} 1700000000.000\n\
             # TYPE requests counter\nrequests_total{code=\"200\",\"région\"=\"e\\\"u\"} 1\n\
             requests_created{code=\"200\",\"région\"=\"e\\\"u\"} 1700000000.000\n# EOF\n"
        );
        let dots = exposition(om, Escaping::Dots);
        assert!(dots.starts_with(
            "# HELP caf___ Café visits.\n# TYPE caf___ counter\ncaf____total 3\ncaf____created 1700000000.000\n"
        ));
        assert!(dots.contains("http_dot_server_dot_duration_created{http_dot_method=\"GET\"} 1700000000.000\n"));
        let values = exposition(om, Escaping::Values);
        assert!(values.starts_with(
            "# HELP U__caf_e9__ Café visits.\n# TYPE U__caf_e9__ counter\nU__caf_e9___total 3\nU__caf_e9___created 1700000000.000\n"
        ));
        let underscores = exposition(om, Escaping::Underscores);
        assert!(underscores.starts_with("# HELP caf_ Café visits.\n# TYPE caf_ counter\ncaf__total 3\n"));
        for (text, scheme) in [(dots, "dots"), (values, "values"), (underscores, "underscores")] {
            assert!(text.contains("# TYPE requests counter\nrequests_total{code=\"200\","), "{scheme}");
        }
    }

    /// A collector writing two families from one reused buffer (same address and length,
    /// other text) gets each name checked: the second is not taken for legacy.
    #[test]
    fn names_from_a_reused_buffer_are_checked_per_family() {
        let mut out = [0u8; 256];
        let mut enc =
            Encoder::new(Format::Prometheus, &mut out, Position::default()).with_escaping(Escaping::AllowUtf8);
        let mut name = *b"abc_d";
        for text in [b"abc_d", b"abc.d"] {
            name.copy_from_slice(text);
            let desc = Desc { name: core::str::from_utf8(&name).unwrap(), help: "", metric_type: MetricType::Gauge };
            enc.header(&desc).unwrap();
            enc.sample(&desc, &Labels::EMPTY, Value::I64(1)).unwrap();
        }
        let n = enc.written();
        assert_eq!(
            core::str::from_utf8(&out[..n]).unwrap(),
            "# TYPE abc_d gauge\nabc_d 1\n# TYPE \"abc.d\" gauge\n{\"abc.d\"} 1\n"
        );
    }

    /// What the encoder writes, the strict parser reads (quoted names included).
    #[test]
    fn every_scheme_parses() {
        for format in [Format::Prometheus, Format::OpenMetrics] {
            for escaping in [Escaping::AllowUtf8, Escaping::Underscores, Escaping::Dots, Escaping::Values] {
                let text = exposition(format, escaping);
                let summary =
                    parse::validate(format, &text).unwrap_or_else(|e| panic!("{format:?} {escaping:?}: {e}\n{text}"));
                assert_eq!(summary.families, 3);
            }
        }
    }
}
