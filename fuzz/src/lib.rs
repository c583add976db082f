//! Shared code of the diag fuzz targets: an arbitrary metric set, a [`Collect`] source that
//! emits it, a scrape driven in arbitrary chunk sizes, and the exact comparison of the output,
//! parsed back by the core's strict parser, with what was emitted.
#![deny(missing_docs)]

pub mod protobuf;

use arbitrary::{Arbitrary, Unstructured};
use diag_core::encoding::parse::{Escaped, Event, FamilyType, Parser};
use diag_core::encoding::{Escaping, HistogramView};
use diag_core::{
    Collect, Counter, DEFAULT_BUCKETS, Desc, EncodeError, Encoder, Format, Gauge, GaugeF64, Histogram, Labels, Metric,
    MetricType, Registry, Scrape, Sources, Stop, Value,
};

/// Most families, series per family and labels per series generated.
const MAX_FAMILIES: usize = 12;
const MAX_SERIES: usize = 8;
const MAX_LABELS: usize = 4;
/// Past the encoder's 16-bound `le` cache.
const MAX_BOUNDS: usize = 20;
const MAX_REGISTERED: usize = 8;

/// What a family holds.
#[derive(Debug, Clone)]
pub enum Kind {
    /// `Value::U64` samples.
    Counter,
    /// `Value::I64` samples.
    Gauge,
    /// `Value::F64` samples.
    GaugeF64,
    /// `Value::F64` samples of an untyped family.
    Unknown,
    /// Histogram series over these finite, strictly ascending bounds.
    Histogram(Vec<f64>),
}

/// One series: label values (one per family label name) and its data.
#[derive(Debug, Clone)]
pub struct SeriesDesc {
    /// Label values, parallel to [`FamilyDesc::label_names`].
    pub values: Vec<String>,
    /// The sample value (unused by histograms).
    pub value: Value,
    /// Non-cumulative bucket counts, one per bound (histograms).
    pub buckets: Vec<u64>,
    /// Observations above every bound (histograms).
    pub inf: u64,
    /// Sum of observations (histograms).
    pub sum: f64,
}

/// One family.
#[derive(Debug, Clone)]
pub struct FamilyDesc {
    /// A valid metric name, unique with all its sample names across the set.
    pub name: String,
    /// Help text (anything).
    pub help: String,
    /// The kind.
    pub kind: Kind,
    /// Valid, distinct label names.
    pub label_names: Vec<String>,
    /// Series with distinct label values.
    pub series: Vec<SeriesDesc>,
}

impl FamilyDesc {
    fn metric_type(&self) -> MetricType {
        match self.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge | Kind::GaugeF64 => MetricType::Gauge,
            Kind::Unknown => MetricType::Unknown,
            Kind::Histogram(_) => MetricType::Histogram,
        }
    }
}

/// A metric set emitted by one or more [`Collect`] sources.
#[derive(Debug, Clone)]
pub struct MetricSet {
    /// The families, in emission order.
    pub families: Vec<FamilyDesc>,
}

fn name_chars(u: &mut Unstructured<'_>, alphabet: &[u8], max: usize) -> arbitrary::Result<String> {
    let len = u.int_in_range(0..=max)?;
    (0..len).map(|_| u.choose(alphabet).map(|b| *b as char)).collect()
}

/// Legacy name characters, and some that make a UTF-8 name (Prometheus 3): `.`, `-`, a space,
/// `é` (byte 0xE9 read as a `char`) and `µ` (0xB5); the scrapes here ask for
/// `escaping=allow-utf-8`, so such names are written quoted and read back as they are.
const NAME_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.- \xe9\xb5";
const LABEL_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.- \xe9\xb5";

/// A float biased towards the interesting ones.
fn float(u: &mut Unstructured<'_>) -> arbitrary::Result<f64> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => *u.choose(&[0.0, -0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, f64::MIN, 1e21, 1e-7, 0.1])?,
        4 => f64::from(u.arbitrary::<i32>()?) / 8.0,
        _ => f64::from_bits(u.arbitrary()?),
    })
}

/// A label value or help text biased towards what needs escaping.
fn text(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    if u.ratio(1, 3)? {
        let parts =
            ["\\", "\"", "\n", "\\n", "\\\\", "\"\"", " ", "\t", "ü", "日本", "#", "{", "}", ",", "=", "\r", "\0"];
        let n = u.int_in_range(0..=8)?;
        (0..n).map(|_| u.choose(&parts).copied()).collect()
    } else {
        u.arbitrary()
    }
}

impl<'a> Arbitrary<'a> for MetricSet {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(0..=MAX_FAMILIES)?;
        let mut families = Vec::with_capacity(n);
        for i in 0..n {
            // `f<i>_` keeps every family name and sample name distinct from the others'.
            let mut name = format!("f{i}_{}", name_chars(u, NAME_ALPHABET, 12)?);
            let kind = match u.int_in_range(0..=4u8)? {
                0 => {
                    if u.arbitrary()? {
                        name.push_str("_total");
                    }
                    Kind::Counter
                }
                1 => Kind::Gauge,
                2 => Kind::GaugeF64,
                3 => Kind::Unknown,
                _ => {
                    let n = u.int_in_range(0..=MAX_BOUNDS)?;
                    let mut bounds: Vec<f64> = (0..n)
                        .map(|_| float(u))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .filter(|b| b.is_finite())
                        .collect();
                    bounds.sort_by(f64::total_cmp);
                    bounds.dedup_by(|a, b| a == b);
                    Kind::Histogram(bounds)
                }
            };
            let label_count = u.int_in_range(0..=MAX_LABELS)?;
            let label_names = (0..label_count)
                .map(|j| Ok(format!("l{j}_{}", name_chars(u, LABEL_ALPHABET, 8)?)))
                .collect::<arbitrary::Result<Vec<_>>>()?;
            let mut series: Vec<SeriesDesc> = Vec::new();
            for _ in 0..u.int_in_range(0..=MAX_SERIES)? {
                let values = (0..label_count).map(|_| text(u)).collect::<arbitrary::Result<Vec<_>>>()?;
                if series.iter().any(|s| s.values == values) {
                    continue; // a label set appears once per family
                }
                let value = match kind {
                    Kind::Counter => Value::U64(u.arbitrary()?),
                    Kind::Gauge => Value::I64(u.arbitrary()?),
                    _ => Value::F64(float(u)?),
                };
                let bounds = if let Kind::Histogram(b) = &kind { b.len() } else { 0 };
                // u32 counts: a real histogram cannot overflow its u64 cumulative count.
                let buckets = (0..bounds).map(|_| u.arbitrary::<u32>().map(u64::from)).collect::<Result<_, _>>()?;
                let inf = u64::from(u.arbitrary::<u32>()?);
                let sum = float(u)?;
                series.push(SeriesDesc { values, value, buckets, inf, sum });
            }
            let help = text(u)?;
            families.push(FamilyDesc { name, help, kind, label_names, series });
        }
        Ok(Self { families })
    }
}

/// A [`Collect`] source emitting `families[range]` of a set.
#[derive(Debug)]
pub struct Source<'a> {
    /// The families this source emits.
    pub families: &'a [FamilyDesc],
}

impl Collect for Source<'_> {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        for (i, f) in self.families.iter().enumerate() {
            let desc = Desc { name: &f.name, help: &f.help, metric_type: f.metric_type() };
            let names: Vec<&str> = f.label_names.iter().map(String::as_str).collect();
            enc.entry(i, |enc| {
                enc.header(&desc)?;
                for s in &f.series {
                    let values: Vec<&str> = s.values.iter().map(String::as_str).collect();
                    let labels = Labels::new(&names, &values);
                    match &f.kind {
                        Kind::Histogram(bounds) => {
                            let view = HistogramView { bounds, buckets: &s.buckets, inf: s.inf, sum: s.sum };
                            enc.histogram(&desc, &labels, &view)?;
                        }
                        _ => enc.sample(&desc, &labels, s.value)?,
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// Encodes `sources` whole with one fill of a buffer large enough (grown until it is).
///
/// # Panics
/// If the encoder fails, or needs more than a megabyte.
pub fn encode_whole(format: Format, sources: &dyn Sources) -> Vec<u8> {
    let mut size = 16 * 1024;
    loop {
        let mut buf = vec![0u8; size];
        let mut scrape = Scrape::new(format, sources).with_escaping(Escaping::AllowUtf8);
        let n = scrape.fill(&mut buf).expect("the buffer holds the first item");
        if scrape.is_done() {
            buf.truncate(n);
            return buf;
        }
        assert!(size < 1 << 20, "a generated set larger than a megabyte");
        size *= 4;
    }
}

/// Calls `fill` with buffers of the given sizes (cycled) until it returns `Ok(0)`; a buffer
/// too small for the next item is retried doubled, as the `fill` contracts allow. Returns the
/// chunks.
///
/// # Panics
/// On an error other than a buffer too small, or an item larger than a megabyte.
pub fn drain(sizes: &[u16], mut fill: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut sizes = sizes.iter().map(|s| usize::from(*s).max(1)).chain(core::iter::repeat(64)).cycle();
    let mut size = sizes.next().unwrap_or(64);
    loop {
        let mut buf = vec![0u8; size];
        match fill(&mut buf) {
            Ok(0) => return chunks,
            Ok(n) => {
                assert!(n <= size);
                buf.truncate(n);
                chunks.push(buf);
                size = sizes.next().unwrap_or(64);
            }
            Err(EncodeError::BufferTooSmall) => {
                assert!(size < 1 << 20, "an item larger than a megabyte");
                size *= 2;
            }
            Err(e) => panic!("unexpected fill error {e:?}"),
        }
    }
}

/// Encodes `sources` chunk by chunk with the given buffer sizes (see [`drain`]).
///
/// # Panics
/// On a chunk that does not end at a line boundary, or any error other than a buffer too small.
pub fn encode_chunked(format: Format, sources: &dyn Sources, sizes: &[u16]) -> Vec<u8> {
    let mut scrape = Scrape::new(format, sources).with_escaping(Escaping::AllowUtf8);
    let chunks = drain(sizes, |buf| scrape.fill(buf));
    assert!(scrape.is_done());
    assert!(chunks.iter().all(|c| c.ends_with(b"\n")), "a chunk ends inside a line");
    chunks.concat()
}

/// An `embedded_io` writer that takes at most `step` bytes per call (partial writes).
struct Trickle {
    out: Vec<u8>,
    step: usize,
}

impl embedded_io::ErrorType for Trickle {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.step);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Encodes `sources` with [`Scrape::write_to`] through a scratch buffer of `scratch` bytes
/// into a writer taking `step` bytes per call; `None` when one item does not fit the scratch.
///
/// # Panics
/// On any other error.
pub fn encode_write_to(format: Format, sources: &dyn Sources, scratch: usize, step: usize) -> Option<Vec<u8>> {
    let mut w = Trickle { out: Vec::new(), step: step.max(1) };
    let mut buf = vec![0u8; scratch];
    match Scrape::new(format, sources).with_escaping(Escaping::AllowUtf8).write_to(&mut w, &mut buf) {
        Ok(()) => Some(w.out),
        Err(EncodeError::BufferTooSmall) => None,
        Err(e) => panic!("write_to failed: {e:?}"),
    }
}

/// An expected label value.
#[derive(Debug, Clone)]
enum LabelExp {
    Text(String),
    /// `le`: a float that must read back bit for bit.
    Float(f64),
}

/// What the parser must yield, event by event.
#[derive(Debug, Clone)]
enum Expected {
    Help { family: String, help: String },
    Type { family: String, family_type: FamilyType },
    Sample { family: String, suffix: &'static str, labels: Vec<(String, LabelExp)>, value: Value },
    Eof,
}

/// Whether OpenMetrics allows `_sum` (and so `_count`) on this histogram series: a sum is a
/// counter there, so it may be neither negative nor NaN, nor present with negative buckets.
fn openmetrics_sum_allowed(bounds: &[f64], sum: f64) -> bool {
    !(sum.is_nan() || sum < 0.0 || bounds.iter().any(|b| *b < 0.0))
}

fn expected(format: Format, set: &MetricSet) -> Vec<Expected> {
    let om = format == Format::OpenMetrics;
    let mut out = Vec::new();
    for f in &set.families {
        let family = match f.kind {
            Kind::Counter if om => f.name.strip_suffix("_total").unwrap_or(&f.name).to_owned(),
            _ => f.name.clone(),
        };
        if !f.help.is_empty() {
            // 0.0.4 separates the name from the text by blanks, so leading blanks are lost.
            let help = if om { f.help.clone() } else { f.help.trim_start_matches([' ', '\t']).to_owned() };
            out.push(Expected::Help { family: family.clone(), help });
        }
        let family_type = FamilyType::from_metric_type(f.metric_type());
        out.push(Expected::Type { family: family.clone(), family_type });
        for s in &f.series {
            let labels: Vec<(String, LabelExp)> =
                f.label_names.iter().cloned().zip(s.values.iter().map(|v| LabelExp::Text(v.clone()))).collect();
            let sample = |suffix, labels, value| Expected::Sample { family: family.clone(), suffix, labels, value };
            match &f.kind {
                Kind::Histogram(bounds) => {
                    let mut cumulative = 0u64;
                    for (i, b) in bounds.iter().chain([f64::INFINITY].iter()).enumerate() {
                        cumulative += s.buckets.get(i).copied().unwrap_or(if i == bounds.len() { s.inf } else { 0 });
                        let mut labels = labels.clone();
                        labels.push(("le".to_owned(), LabelExp::Float(*b)));
                        out.push(sample("_bucket", labels, Value::U64(cumulative)));
                    }
                    if !om || openmetrics_sum_allowed(bounds, s.sum) {
                        out.push(sample("_sum", labels.clone(), Value::F64(s.sum)));
                        out.push(sample("_count", labels, Value::U64(cumulative)));
                    }
                }
                Kind::Counter if om => out.push(sample("_total", labels, s.value)),
                _ => out.push(sample("", labels, s.value)),
            }
        }
    }
    if om {
        out.push(Expected::Eof);
    }
    out
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_text(escaped: &Escaped<'_>, want: &str) -> bool {
    escaped.eq_str(want)
}

/// Parses `text` with the strict parser and compares every event with what `set` emitted:
/// every family name, help, type, sample name, label and value (NaN equal to NaN, `-0.0` not
/// equal to `0.0`, integers exactly).
///
/// # Panics
/// On any parse error or difference, with the text in the message.
pub fn check_round_trip(format: Format, set: &MetricSet, text: &[u8]) {
    let text = core::str::from_utf8(text).expect("the encoders write UTF-8");
    let want = expected(format, set);
    let mut got = Parser::new(format, text);
    for (i, want) in want.iter().enumerate() {
        let event = match got.next() {
            Some(Ok(e)) => e,
            Some(Err(e)) => panic!("{format:?}: strict parser rejected the output: {e}\n{text}"),
            None => panic!("{format:?}: output ends before event {i} {want:?}\n{text}"),
        };
        let ok = match (want, &event) {
            (Expected::Help { family, help }, Event::Help { family: f, help: h }) => f == family && same_text(h, help),
            (Expected::Type { family, family_type }, Event::Type { family: f, family_type: t }) => {
                f == family && t == family_type
            }
            (
                Expected::Sample { family, suffix, labels, value },
                Event::Sample { family: f, suffix: s, sample, .. },
            ) => {
                let labels_ok = sample.labels.len() == labels.len()
                    && sample.labels.iter().zip(labels).all(|((n, v), (wn, wv))| {
                        n == wn
                            && match wv {
                                LabelExp::Text(t) => same_text(&v, t),
                                LabelExp::Float(b) => v.raw().parse::<f64>().is_ok_and(|x| same_f64(x, *b)),
                            }
                    });
                let value_ok = match value {
                    Value::U64(v) => sample.value.as_u64() == Some(*v),
                    Value::I64(v) => sample.value.as_i64() == Some(*v),
                    Value::F64(v) => same_f64(sample.value.as_f64(), *v),
                };
                f == family && s == suffix && labels_ok && value_ok && sample.timestamp.is_none()
            }
            (Expected::Eof, Event::Eof) => true,
            _ => false,
        };
        assert!(ok, "{format:?}: event {i}: expected {want:?}, got {event:?}\n{text}");
    }
    match got.next() {
        None => {}
        Some(Ok(e)) => panic!("{format:?}: unexpected extra event {e:?}\n{text}"),
        Some(Err(e)) => panic!("{format:?}: strict parser rejected the output: {e}\n{text}"),
    }
}

/// A metric registered in a [`Registry`] (unlabelled: family label values must be `'static`).
#[derive(Debug, Clone)]
pub enum Registered {
    /// A counter incremented by this much.
    Counter(u64),
    /// A gauge set to this.
    Gauge(i64),
    /// A float gauge set to this.
    GaugeF64(f64),
    /// A histogram over [`DEFAULT_BUCKETS`] observing these values.
    Histogram(Vec<f64>),
}

/// A registered metric with its name and help.
#[derive(Debug, Clone)]
pub struct RegisteredDesc {
    /// A valid name, distinct from every other in the case.
    pub name: String,
    /// Help text.
    pub help: String,
    /// The metric.
    pub metric: Registered,
}

impl RegisteredDesc {
    /// The metric itself, with its value set.
    fn build(&self) -> Box<dyn Metric> {
        match &self.metric {
            Registered::Counter(n) => {
                let c = Counter::new();
                c.inc_by(*n);
                Box::new(c)
            }
            Registered::Gauge(v) => {
                let g = Gauge::new();
                g.set(*v);
                Box::new(g)
            }
            Registered::GaugeF64(v) => {
                let g = GaugeF64::new();
                g.set(*v);
                Box::new(g)
            }
            Registered::Histogram(values) => {
                let h = Histogram::new(&DEFAULT_BUCKETS);
                values.iter().for_each(|v| h.observe(*v));
                Box::new(h)
            }
        }
    }

    /// The family it must encode as (the plain model of the metric).
    fn family(&self) -> FamilyDesc {
        let (kind, value, buckets, inf, sum) = match &self.metric {
            Registered::Counter(n) => (Kind::Counter, Value::U64(*n), vec![], 0, 0.0),
            Registered::Gauge(v) => (Kind::Gauge, Value::I64(*v), vec![], 0, 0.0),
            Registered::GaugeF64(v) => (Kind::GaugeF64, Value::F64(*v), vec![], 0, 0.0),
            Registered::Histogram(values) => {
                let mut buckets = vec![0u64; DEFAULT_BUCKETS.len()];
                // One thread observing from one place records in one stripe, whose sum adds
                // the values in observation order (float addition is not associative, so the
                // order decides the exact result).
                let mut sum = 0.0f64;
                let mut inf = 0;
                for v in values {
                    // `v <= bound` picks the bucket; above every bound, and NaN, is `+Inf`.
                    match DEFAULT_BUCKETS.iter().position(|b| *v <= *b) {
                        Some(i) => buckets[i] += 1,
                        None => inf += 1,
                    }
                    sum += v;
                }
                (Kind::Histogram(DEFAULT_BUCKETS.to_vec()), Value::U64(0), buckets, inf, sum)
            }
        };
        let series = vec![SeriesDesc { values: vec![], value, buckets, inf, sum }];
        FamilyDesc { name: self.name.clone(), help: self.help.clone(), kind, label_names: vec![], series }
    }
}

impl<'a> Arbitrary<'a> for RegisteredDesc {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut name = format!("r_{}", name_chars(u, NAME_ALPHABET, 10)?);
        let metric = match u.int_in_range(0..=3u8)? {
            0 => {
                if u.arbitrary()? {
                    name.push_str("_total");
                }
                Registered::Counter(u.arbitrary()?)
            }
            1 => Registered::Gauge(u.arbitrary()?),
            2 => Registered::GaugeF64(float(u)?),
            _ => {
                let n = u.int_in_range(0..=16)?;
                Registered::Histogram((0..n).map(|_| float(u)).collect::<arbitrary::Result<_>>()?)
            }
        };
        Ok(Self { name, help: text(u)?, metric })
    }
}

/// One fuzz case of an encoder: registered metrics, a metric set split over two collectors
/// (the first registered after the metrics, the second a source of its own), chunk sizes.
#[derive(Debug)]
pub struct EncodeCase {
    /// Metrics in a [`Registry`], encoded first.
    pub registered: Vec<RegisteredDesc>,
    /// The set.
    pub set: MetricSet,
    /// Where the families are split between the two sources.
    pub split: usize,
    /// Chunk buffer sizes, cycled.
    pub sizes: Vec<u16>,
}

impl<'a> Arbitrary<'a> for EncodeCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut registered: Vec<RegisteredDesc> = Vec::new();
        for i in 0..u.int_in_range(0..=MAX_REGISTERED)? {
            let mut r: RegisteredDesc = u.arbitrary()?;
            // `r<i>_`: distinct from each other and from the set's `f<i>_` families.
            r.name.insert_str(1, &i.to_string());
            registered.push(r);
        }
        let set: MetricSet = u.arbitrary()?;
        let split = u.int_in_range(0..=set.families.len())?;
        let n = u.int_in_range(1..=8)?;
        let sizes = (0..n).map(|_| u.int_in_range(1..=600u16)).collect::<arbitrary::Result<_>>()?;
        Ok(Self { registered, set, split, sizes })
    }
}

/// The whole check of one encoder case in `format`: whole and chunked encodes are identical,
/// and the output round-trips exactly through the strict parser.
pub fn run_encode_case(format: Format, case: &EncodeCase) {
    let (a, b) = case.set.families.split_at(case.split);
    let (a, b) = (Source { families: a }, Source { families: b });
    let metrics: Vec<Box<dyn Metric>> = case.registered.iter().map(RegisteredDesc::build).collect();
    let registry: Registry<'_, { MAX_REGISTERED + 1 }> = Registry::new();
    for (r, m) in case.registered.iter().zip(&metrics) {
        registry.register(&r.name, &r.help, &**m).expect("valid, distinct names in a registry large enough");
    }
    registry.register_collector(&a).expect("room for the collector");
    let sources: [&dyn Collect; 2] = [&registry, &b];
    let whole = encode_whole(format, &sources);
    let chunked = encode_chunked(format, &sources, &case.sizes);
    let scratch = usize::from(case.sizes[0]) * 4;
    if let Some(written) = encode_write_to(format, &sources, scratch, usize::from(case.sizes[case.sizes.len() - 1])) {
        assert!(written == whole, "write_to output differs from the whole encode");
    }
    if whole != chunked {
        let at = whole.iter().zip(&chunked).take_while(|(a, b)| a == b).count();
        panic!(
            "chunked output differs from the whole encode at byte {at}\n--- whole:\n{}\n--- chunked:\n{}",
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&chunked)
        );
    }
    let families =
        case.registered.iter().map(RegisteredDesc::family).chain(case.set.families.iter().cloned()).collect();
    check_round_trip(format, &MetricSet { families }, &whole);
}

/// The protobuf encoder over an arbitrary case: whole and chunked encodes decode (strictly,
/// with [`protobuf::decode`]) to the same families, series and values, which are exactly
/// what was emitted; a chunked encode only splits families into more messages.
pub fn run_protobuf_case(case: &EncodeCase) {
    let (a, b) = case.set.families.split_at(case.split);
    let (a, b) = (Source { families: a }, Source { families: b });
    let metrics: Vec<Box<dyn Metric>> = case.registered.iter().map(RegisteredDesc::build).collect();
    let registry: Registry<'_, { MAX_REGISTERED + 1 }> = Registry::new();
    for (r, m) in case.registered.iter().zip(&metrics) {
        registry.register(&r.name, &r.help, &**m).expect("valid, distinct names in a registry large enough");
    }
    registry.register_collector(&a).expect("room for the collector");
    let sources: [&dyn Collect; 2] = [&registry, &b];
    let whole = encode_whole(Format::Protobuf, &sources);
    // Every chunk is whole messages: it decodes on its own.
    let mut scrape = Scrape::new(Format::Protobuf, &sources).with_escaping(Escaping::AllowUtf8);
    let chunks = drain(&case.sizes, |buf| scrape.fill(buf));
    assert!(scrape.is_done());
    for (i, chunk) in chunks.iter().enumerate() {
        protobuf::decode(chunk).unwrap_or_else(|e| panic!("chunk {i} alone: {e}"));
    }
    let chunked = chunks.concat();
    let (decoded, messages) = protobuf::decode(&whole).unwrap_or_else(|e| panic!("whole encode: {e}"));
    assert_eq!(messages, decoded.len(), "one message per family when nothing splits");
    let (decoded_chunked, _) = protobuf::decode(&chunked).unwrap_or_else(|e| panic!("chunked encode: {e}"));
    assert_eq!(decoded_chunked, decoded, "chunked encode decodes differently");
    let families =
        case.registered.iter().map(RegisteredDesc::family).chain(case.set.families.iter().cloned()).collect();
    assert_eq!(decoded, protobuf::expected(&MetricSet { families }));
}
