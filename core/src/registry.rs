//! The fixed-capacity registry of metrics and collectors, and the [`Scrape`] that encodes a
//! set of sources chunk by chunk.

use core::fmt;

use crate::encoding::{
    Desc, Encoder, Escaping, Format, Labels, MetricType, Position, Stop, Value, is_legacy_metric_name,
    is_valid_label_name, is_valid_metric_name,
};
use crate::error::{CapacityError, EncodeError, RegisterError};
use crate::family::Series;
use crate::slots::Slots;

/// Anything that can be registered under a name: [`Counter`](crate::Counter),
/// [`Gauge`](crate::Gauge), [`GaugeF64`](crate::GaugeF64), [`Histogram`](crate::Histogram)
/// and [`Family`](crate::Family) of those.
pub trait Metric: Sync {
    /// The family type.
    fn metric_type(&self) -> MetricType;

    /// Label names, checked at registration.
    fn label_names(&self) -> &[&str] {
        &[]
    }

    /// New label sets that found a family full.
    fn overflow(&self) -> u64 {
        0
    }

    /// Label sets refused for their text (too long, or the probe limit).
    fn refused(&self) -> u64 {
        0
    }

    /// Hints the CPU that the metric is about to be encoded (a scrape calls it on the next
    /// entry while it writes the current one): a family hints its first series' memory.
    fn prefetch(&self) {}

    /// Encodes the family: header, then one item per series.
    ///
    /// # Errors
    /// [`Stop`] when the encoder's buffer is full; return it unchanged.
    fn encode(&self, desc: &Desc<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop>;
}

impl<S: Series> Metric for S {
    fn metric_type(&self) -> MetricType {
        S::TYPE
    }

    fn encode(&self, desc: &Desc<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.header(desc)?;
        self.encode_series(desc, &Labels::EMPTY, enc)
    }
}

/// Emits families whose values are computed at scrape time (process metrics, runtime gauges,
/// a whole registry).
///
/// An implementation must emit the same sequence of items (headers and series) for every
/// chunk of one scrape, so that the scrape can resume by item number; values may change.
pub trait Collect: Sync {
    /// Emits families through `enc` ([`Encoder::header`], [`Encoder::sample`], …).
    ///
    /// # Errors
    /// [`Stop`] when the encoder's buffer is full; return it unchanged.
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop>;
}

enum Entry<'a> {
    /// `legacy`: whether `name` is a legacy name, found at registration.
    Metric {
        name: &'a str,
        help: &'a str,
        metric: &'a dyn Metric,
        created: Option<u64>,
        legacy: bool,
    },
    Collector(&'a dyn Collect),
}

/// Up to `N` registered metrics and collectors, encoded in registration order.
///
/// # Examples
/// ```
/// use diag_core::{Counter, Format, Registry, Scrape};
/// static HITS: Counter = Counter::new();
/// static REGISTRY: Registry<'static, 8> = Registry::new();
///
/// REGISTRY.register("app_hits_total", "Cache hits.", &HITS).unwrap();
/// HITS.inc();
///
/// let mut buf = [0u8; 256];
/// let n = Scrape::new(Format::Prometheus, &REGISTRY).fill(&mut buf).unwrap();
/// assert_eq!(
///     core::str::from_utf8(&buf[..n]).unwrap(),
///     "# HELP app_hits_total Cache hits.\n# TYPE app_hits_total counter\napp_hits_total 1\n"
/// );
/// ```
pub struct Registry<'a, const N: usize> {
    entries: Slots<Entry<'a>, N>,
    clock: Option<fn() -> u64>,
}

impl<'a, const N: usize> Registry<'a, N> {
    crate::atomic::loom_const_fn! {
        /// An empty registry.
        pub fn new() -> Self {
            Self { entries: Slots::new(), clock: None }
        }
    }

    /// The same registry stamping each metric with `clock()` (milliseconds since the Unix
    /// epoch) when it is registered: its start time, written as `_created` samples in
    /// OpenMetrics and as `created_timestamp` in protobuf for counters and histograms. The
    /// core has no clock; with `std`, [`unix_time_ms`](crate::unix_time_ms) is one.
    ///
    /// # Examples
    /// ```
    /// use diag_core::{Counter, Format, Registry, Scrape};
    /// static HITS: Counter = Counter::new();
    /// static REGISTRY: Registry<'static, 4> = Registry::new().with_clock(|| 1_700_000_000_250);
    ///
    /// REGISTRY.register("hits_total", "", &HITS).unwrap();
    /// let mut buf = [0u8; 256];
    /// let n = Scrape::new(Format::OpenMetrics, &REGISTRY).fill(&mut buf).unwrap();
    /// assert_eq!(
    ///     core::str::from_utf8(&buf[..n]).unwrap(),
    ///     "# TYPE hits counter\nhits_total 0\nhits_created 1700000000.250\n# EOF\n"
    /// );
    /// ```
    pub const fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Registers `metric` as family `name` with `help`.
    ///
    /// Names are UTF-8 (Prometheus 3): any non-empty metric name and label names without
    /// control characters, except the label name `le` and label names starting with `__`
    /// (see [`is_valid_metric_name`] and [`is_valid_label_name`]). Names that are not legacy
    /// Prometheus names (`my.metric`, `café_total`) are written as each scrape negotiated
    /// ([`Escaping`]): quoted, or escaped.
    ///
    /// # Errors
    /// [`RegisterError`] for an invalid metric or label name, a name already registered, or
    /// a full registry.
    pub fn register(&self, name: &'a str, help: &'a str, metric: &'a dyn Metric) -> Result<(), RegisterError> {
        if !is_valid_metric_name(name) {
            return Err(RegisterError::InvalidName);
        }
        if !metric.label_names().iter().all(|l| is_valid_label_name(l)) {
            return Err(RegisterError::InvalidLabelName);
        }
        let (_, entry) = self
            .entries
            .get_or_insert_with(
                |e| matches!(e, Entry::Metric { name: n, .. } if *n == name),
                || Entry::Metric {
                    name,
                    help,
                    metric,
                    created: self.clock.map(|clock| clock()),
                    legacy: is_legacy_metric_name(name),
                },
            )
            .map_err(|_| CapacityError { capacity: N })?;
        match entry {
            Entry::Metric { metric: m, .. } if core::ptr::addr_eq(*m, metric) => Ok(()),
            _ => Err(RegisterError::DuplicateName),
        }
    }

    /// Registers a collector.
    ///
    /// # Errors
    /// [`RegisterError::Full`] when the registry is full.
    pub fn register_collector(&self, collector: &'a dyn Collect) -> Result<(), RegisterError> {
        self.entries
            .push(Entry::Collector(collector))
            .map(|_| ())
            .map_err(|_| RegisterError::Full(CapacityError { capacity: N }))
    }
}

#[cfg(not(loom))]
impl<const N: usize> Default for Registry<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Collect for Registry<'_, N> {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        // Entries before the resume point were written by earlier chunks: start at it, so a
        // scrape in many chunks does not walk the whole registry for each.
        for i in enc.resume_entry()..self.entries.len_hint() {
            // The next family's descriptor and first series, while this one is written.
            if crate::prefetch::HINTS {
                if let Some(Entry::Metric { name, help, metric, .. }) = self.entries.get(i + 1) {
                    crate::prefetch::read_bytes::<1>(name.as_ptr(), name.len());
                    crate::prefetch::read_bytes::<2>(help.as_ptr(), help.len());
                    metric.prefetch();
                }
            }
            match self.entries.get(i) {
                Some(Entry::Metric { name, help, metric, created, legacy }) => enc.entry(i, |enc| {
                    enc.know_name(name, *legacy);
                    enc.set_created(*created);
                    let result = metric.encode(&Desc { name, help, metric_type: metric.metric_type() }, enc);
                    enc.set_created(None);
                    result
                })?,
                Some(Entry::Collector(c)) => enc.entry(i, |enc| c.collect(enc))?,
                None => {}
            }
        }
        type Count = fn(&dyn Metric) -> u64;
        let counts: [(&Desc<'_>, Count); 2] = [(&OVERFLOW, |m| m.overflow()), (&REFUSED, |m| m.refused())];
        for (k, (desc, count)) in counts.into_iter().enumerate() {
            let any = self.entries.iter().any(|(_, e)| matches!(e, Entry::Metric { metric, .. } if count(*metric) > 0));
            if any {
                enc.entry(N + k, |enc| {
                    enc.header(desc)?;
                    for (_, entry) in self.entries.iter() {
                        if let Entry::Metric { name, metric, .. } = entry {
                            let n = count(*metric);
                            if n > 0 {
                                enc.sample(desc, &Labels::new(&["family"], &[name]), Value::U64(n))?;
                            }
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}

/// The family reporting new label sets that found their family full.
const OVERFLOW: Desc<'static> = Desc {
    name: "diag_series_overflow_total",
    help: "New label sets that found their family full (sent to its otel_metric_overflow series, or refused).",
    metric_type: MetricType::Counter,
};

/// The family reporting label sets refused for their text.
const REFUSED: Desc<'static> = Desc {
    name: "diag_label_sets_refused_total",
    help: "Label sets refused: label text longer than the family allows, or too many colliding sets.",
    metric_type: MetricType::Counter,
};

impl<const N: usize> fmt::Debug for Registry<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("capacity", &N).field("entries", &self.entries.iter().count()).finish()
    }
}

/// An ordered set of [`Collect`] sources that one scrape walks.
///
/// `Sync` like [`Collect`], so a [`Scrape`] (and a response body streaming one) can move to
/// another thread or task.
pub trait Sources: Sync {
    /// Source number `index`, or `None` past the last.
    fn source(&self, index: usize) -> Option<&dyn Collect>;
}

impl<C: Collect> Sources for C {
    fn source(&self, index: usize) -> Option<&dyn Collect> {
        (index == 0).then_some(self as &dyn Collect)
    }
}

impl Sources for [&dyn Collect] {
    fn source(&self, index: usize) -> Option<&dyn Collect> {
        self.get(index).copied()
    }
}

impl<const K: usize> Sources for [&dyn Collect; K] {
    fn source(&self, index: usize) -> Option<&dyn Collect> {
        self.get(index).copied()
    }
}

/// One scrape of a set of sources, encoded chunk by chunk into caller buffers.
///
/// Each [`fill`](Self::fill) writes whole items (a family header, or a series with all its
/// lines) and resumes where the previous one stopped, so a frontend streams any number of
/// series with one fixed buffer. A histogram series is snapshotted when its item is written,
/// so every series is internally consistent.
pub struct Scrape<'a> {
    sources: &'a dyn Sources,
    format: Format,
    escaping: Escaping,
    source: usize,
    at: Position,
    done: bool,
}

impl<'a> Scrape<'a> {
    /// A scrape of `sources` in `format`, names that are not legacy escaped with
    /// underscores (client_golang's default, for clients that name no scheme).
    pub fn new(format: Format, sources: &'a dyn Sources) -> Self {
        Self { sources, format, escaping: Escaping::Underscores, source: 0, at: Position::default(), done: false }
    }

    /// The same scrape writing names that are not legacy per `escaping` (what the request
    /// negotiated, see [`Negotiated::name_escaping`](crate::http::Negotiated::name_escaping)).
    ///
    /// # Examples
    /// (With the `utf8-names` feature, which `std` brings: without it, a name that is not
    /// legacy is refused at registration.)
    #[cfg_attr(feature = "utf8-names", doc = "```")]
    #[cfg_attr(not(feature = "utf8-names"), doc = "```ignore")]
    /// use diag_core::{Counter, Format, Registry, Scrape, encoding::Escaping};
    /// let hits = Counter::new();
    /// let registry: Registry<'_, 4> = Registry::new();
    /// registry.register("cache.hits_total", "", &hits).unwrap();
    /// let text = |escaping| {
    ///     let mut buf = [0u8; 128];
    ///     let n = Scrape::new(Format::Prometheus, &registry).with_escaping(escaping).fill(&mut buf).unwrap();
    ///     String::from_utf8(buf[..n].to_vec()).unwrap()
    /// };
    /// assert_eq!(text(Escaping::AllowUtf8), "# TYPE \"cache.hits_total\" counter\n{\"cache.hits_total\"} 0\n");
    /// assert_eq!(text(Escaping::Underscores), "# TYPE cache_hits_total counter\ncache_hits_total 0\n");
    /// assert_eq!(text(Escaping::Dots), "# TYPE cache_dot_hits__total counter\ncache_dot_hits__total 0\n");
    /// ```
    pub fn with_escaping(mut self, escaping: Escaping) -> Self {
        self.escaping = escaping;
        self
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the whole exposition has been written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Writes the next chunk into `buf` and returns its length; `Ok(0)` means the scrape is
    /// complete.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when the next item alone does not fit in `buf`; the
    /// scrape stays at that item, so a larger buffer may continue it.
    pub fn fill(&mut self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if self.done {
            return Ok(0);
        }
        let mut enc = Encoder::new(self.format, buf, self.at).with_escaping(self.escaping);
        loop {
            let source = self.sources.source(self.source);
            let step = match source {
                Some(source) => source.collect(&mut enc),
                None => enc.finish(),
            };
            match step {
                Ok(()) if source.is_none() => {
                    self.done = true;
                    return Ok(enc.written());
                }
                Ok(()) => {
                    self.source += 1;
                    self.at = Position::default();
                    enc.restart(self.at);
                }
                Err(Stop(..)) => {
                    self.at = enc.stopped().unwrap_or(self.at);
                    return match enc.written() {
                        0 => Err(EncodeError::BufferTooSmall),
                        n => Ok(n),
                    };
                }
            }
        }
    }
}

impl Scrape<'_> {
    /// Writes the rest of the scrape to `w`, one chunk of at most `scratch.len()` bytes at a
    /// time.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when one item does not fit in `scratch`;
    /// [`EncodeError::Write`] when `w` fails.
    pub fn write_to<W: embedded_io::Write>(&mut self, w: &mut W, scratch: &mut [u8]) -> Result<(), EncodeError> {
        use embedded_io::Error as _;
        loop {
            let n = self.fill(scratch)?;
            if n == 0 {
                return w.flush().map_err(|e| EncodeError::Write(e.kind()));
            }
            w.write_all(&scratch[..n]).map_err(|e| EncodeError::Write(e.kind()))?;
        }
    }
}

impl fmt::Debug for Scrape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrape")
            .field("format", &self.format)
            .field("escaping", &self.escaping)
            .field("source", &self.source)
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use crate::{Counter, Family};

    fn scrape(registry: &Registry<'_, 8>) -> std::string::String {
        let mut buf = [0u8; 4096];
        let n = crate::Scrape::new(Format::Prometheus, registry).fill(&mut buf).unwrap();
        std::string::String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn overflow_and_refusal_families_name_only_the_families_they_count() {
        let full: Family<Counter, (&str,), 1> = Family::new(["k"], ());
        let short: Family<Counter, (&str,), 4, 8> = Family::new(["k"], ());
        let quiet: Family<Counter, (&str,), 4> = Family::new(["k"], ());
        let registry: Registry<'_, 8> = Registry::new();
        registry.register("full_total", "", &full).unwrap();
        registry.register("short_total", "", &short).unwrap();
        registry.register("quiet_total", "", &quiet).unwrap();
        quiet.get_or_create(("a",)).unwrap().inc();
        let text = scrape(&registry);
        assert!(!text.contains("diag_"), "{text}");

        full.get_or_create(("a",)).unwrap().inc();
        let _ = full.get_or_create(("b",)).map(|c| c.inc());
        let text = scrape(&registry);
        assert!(text.contains("diag_series_overflow_total{family=\"full_total\"} 1\n"), "{text}");
        assert!(!text.contains("diag_label_sets_refused_total"), "{text}");

        assert!(short.get_or_create(("a value longer than eight bytes",)).is_err());
        let text = scrape(&registry);
        let overflow = text.find("# TYPE diag_series_overflow_total").unwrap();
        let refused = text.find("# TYPE diag_label_sets_refused_total").unwrap();
        assert!(overflow < refused, "{text}");
        assert!(text.contains("diag_label_sets_refused_total{family=\"short_total\"} 1\n"), "{text}");
        assert_eq!(text.matches("{family=").count(), 2, "{text}");
    }
}
