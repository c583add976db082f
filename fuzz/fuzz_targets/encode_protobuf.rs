//! The protobuf exposition encoder over arbitrary metric sets, label values and floats: whole
//! and chunked encodes must decode strictly to exactly the families, series and values emitted.
//! Native histograms too: arbitrary observations (few slots, so the zero bucket widens and the
//! resolution drops) and configurations; every scrape is consistent, and the schema, zero
//! bucket, spans and deltas decode back to the snapshot's buckets, whole and in chunks.
//! Exemplars with arbitrary labels, values and timestamps: refused or kept whole, and the
//! OpenMetrics text carrying them passes the strict parser with one exemplar per kept one.
#![no_main]

use arbitrary::Arbitrary;
use diag_core::encoding::parse::{Event, Parser, validate};
use diag_core::proto::{WireType, varint};
use diag_core::{
    DEFAULT_BUCKETS, ExemplarCounter, ExemplarHistogram, Family, Format, NativeBucket, NativeConfig, NativeHistogram,
    NativeSnapshot, Registry, Scrape,
};
use diag_fuzz::{EncodeCase, run_protobuf_case};
use libfuzzer_sys::fuzz_target;

/// Observations into a family of native histograms with few slots.
#[derive(Debug, Arbitrary)]
struct NativeCase {
    schema: i8,
    zero_threshold: f64,
    max_zero_threshold: f64,
    /// `(series, value)`: the series is one of two label values.
    values: Vec<(bool, f64)>,
    /// Chunk size of the chunked encode (at least 64 bytes).
    chunk: u16,
    /// `(label name, label value, observation, timestamp)`: a counter increment (the
    /// observation's integer part) and a histogram observation, each with this exemplar.
    exemplars: Vec<(String, String, f64, Option<u64>)>,
}

const SLOTS: usize = 6;

fuzz_target!(|input: (EncodeCase, NativeCase)| {
    run_protobuf_case(&input.0);
    run_native_case(&input.1);
    run_exemplar_case(&input.1);
});

fn run_exemplar_case(case: &NativeCase) {
    let counter = ExemplarCounter::new();
    let histogram: ExemplarHistogram<11> = ExemplarHistogram::new(&DEFAULT_BUCKETS);
    let mut kept = 0;
    for (name, value, v, ts) in &case.exemplars {
        let labels = [(name.as_str(), value.as_str())];
        let n = if v.is_finite() { v.abs().min(1e6) as u64 } else { 1 };
        let counted = counter.inc_by_with_exemplar(n, &labels, *ts);
        let observed = histogram.observe_with_exemplar(*v, &labels, *ts);
        assert_eq!(counted.is_ok(), observed.is_ok(), "the same labels, the same verdict");
        if counted.is_ok() {
            let copy = counter.exemplar().expect("a single writer always lands");
            assert_eq!((copy.view().value, copy.view().timestamp_ms), (n as f64, ts.map(|t| t.min(u64::MAX - 1))));
            kept += 1;
        }
    }
    let registry: Registry<'_, 2> = Registry::new();
    registry.register("traced_total", "", &counter).unwrap();
    registry.register("traced_seconds", "", &histogram).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = Scrape::new(Format::OpenMetrics, &registry).fill(&mut buf).unwrap();
    let text = core::str::from_utf8(&buf[..n]).unwrap();
    validate(Format::OpenMetrics, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let exemplars = Parser::new(Format::OpenMetrics, text)
        .filter(|e| matches!(e, Ok(Event::Sample { sample, .. }) if sample.exemplar.is_some()))
        .count();
    // The counter's exemplar, and at least one bucket's, once any was kept.
    assert_eq!(exemplars > 0, kept > 0, "{text}");
    assert!(exemplars <= 1 + 12);
    // Protobuf takes the same exemplars without failing.
    Scrape::new(Format::Protobuf, &registry).fill(&mut buf).unwrap();
}

fn run_native_case(case: &NativeCase) {
    let config = NativeConfig::new(case.schema)
        .with_zero_threshold(case.zero_threshold)
        .with_max_zero_threshold(case.max_zero_threshold);
    let family: Family<NativeHistogram<SLOTS>, (&str,), 2> = Family::new(["s"], config);
    for &(series, v) in &case.values {
        family.get_or_create((if series { "b" } else { "a" },)).unwrap().observe(v);
        let s = family.get((if series { "b" } else { "a" },)).unwrap().snapshot();
        check_consistent(&s);
    }
    let registry: Registry<'_, 1> = Registry::new();
    registry.register("native", "Native.", &family).unwrap();
    let mut whole = vec![0u8; 64 * 1024];
    let n = Scrape::new(Format::Protobuf, &registry).fill(&mut whole).unwrap();
    let mut decoded = decode(&whole[..n]);
    let mut chunked = Vec::new();
    let mut scrape = Scrape::new(Format::Protobuf, &registry);
    let mut buf = vec![0u8; usize::from(case.chunk).max(256)];
    loop {
        match scrape.fill(&mut buf).unwrap() {
            0 => break,
            n => chunked.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(decode(&chunked), decoded, "chunked encode decodes differently");
    decoded.sort_by(|a, b| a.0.cmp(&b.0)); // series come in creation order
    let mut want = Vec::new();
    for label in ["a", "b"] {
        if let Some(h) = family.get((label,)) {
            want.push((label.to_owned(), Decoded::of(&h.snapshot())));
        }
    }
    assert_eq!(decoded, want);
}

fn check_consistent<const B: usize>(s: &NativeSnapshot<B>) {
    let buckets: u64 = s.negative().iter().chain(s.positive()).map(|b| b.count).sum();
    assert_eq!(s.count, s.zero_count + s.nan_count + buckets, "{s:?}");
    assert!(s.negative().len() + s.positive().len() <= B);
    assert!((-4..=8).contains(&s.schema));
    for side in [s.negative(), s.positive()] {
        assert!(side.windows(2).all(|w| w[0].key < w[1].key), "{s:?}");
        assert!(side.iter().all(|b| b.count > 0), "{s:?}");
    }
}

/// A native histogram as decoded: count, sum bits, schema, zero threshold bits, zero count,
/// `(key, count)` of negative and positive buckets.
#[derive(Debug, PartialEq)]
struct Decoded {
    count: u64,
    sum: u64,
    schema: i64,
    zero_threshold: u64,
    zero_count: u64,
    negative: Vec<(i64, u64)>,
    positive: Vec<(i64, u64)>,
}

impl Decoded {
    fn of<const B: usize>(s: &NativeSnapshot<B>) -> Self {
        let pairs = |b: &[NativeBucket]| b.iter().map(|b| (i64::from(b.key), b.count)).collect();
        Self {
            count: s.count,
            sum: canonical(s.sum.to_bits()),
            schema: i64::from(s.schema),
            zero_threshold: s.zero_threshold.to_bits(),
            zero_count: s.zero_count,
            negative: pairs(s.negative()),
            positive: pairs(s.positive()),
        }
    }
}

fn canonical(bits: u64) -> u64 {
    if f64::from_bits(bits).is_nan() { f64::NAN.to_bits() } else { bits }
}

/// `(field, wire type, value or length, bytes)` of each field of a message, strictly.
fn fields(mut b: &[u8]) -> Vec<(u32, WireType, u64, &[u8])> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (key, n) = varint::read(b).expect("key");
        assert_eq!(n, varint::len(key), "canonical key");
        b = &b[n..];
        let wire = WireType::from_bits((key & 7) as u8).expect("wire type");
        let field = (key >> 3) as u32;
        match wire {
            WireType::Varint => {
                let (v, n) = varint::read(b).expect("varint");
                assert_eq!(n, varint::len(v), "canonical varint");
                out.push((field, wire, v, &b[..0]));
                b = &b[n..];
            }
            WireType::Fixed64 => {
                out.push((field, wire, u64::from_le_bytes(b[..8].try_into().unwrap()), &b[..0]));
                b = &b[8..];
            }
            WireType::Len => {
                let (len, n) = varint::read(b).expect("length");
                assert_eq!(n, varint::len(len), "canonical length");
                let body = &b[n..n + len as usize];
                out.push((field, wire, len, body));
                b = &b[n + len as usize..];
            }
            WireType::Fixed32 => panic!("fixed32 is never written"),
        }
    }
    out
}

/// Every series of the delimited stream: its label value and native histogram.
fn decode(mut b: &[u8]) -> Vec<(String, Decoded)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (len, n) = varint::read(b).expect("delimiter");
        let msg = &b[n..n + len as usize];
        b = &b[n + len as usize..];
        for (field, _, v, body) in fields(msg) {
            match field {
                1 => assert_eq!(body, b"native"),
                2 => assert_eq!(body, b"Native."),
                3 => assert_eq!(v, 4, "type HISTOGRAM"),
                4 => out.push(metric(body)),
                _ => panic!("unexpected MetricFamily field {field}"),
            }
        }
    }
    out
}

fn metric(b: &[u8]) -> (String, Decoded) {
    let mut label = None;
    let mut histogram = None;
    for (field, _, _, body) in fields(b) {
        match field {
            1 => {
                let pair = fields(body);
                assert_eq!(pair[0].3, b"s");
                label = Some(String::from_utf8(pair[1].3.to_vec()).unwrap());
            }
            7 => histogram = Some(native(body)),
            _ => panic!("unexpected Metric field {field}"),
        }
    }
    (label.expect("a label"), histogram.expect("a histogram"))
}

fn native(b: &[u8]) -> Decoded {
    let mut d = Decoded {
        count: 0,
        sum: 0,
        schema: 0,
        zero_threshold: 0,
        zero_count: 0,
        negative: Vec::new(),
        positive: Vec::new(),
    };
    let (mut spans, mut deltas) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for (field, _, v, body) in fields(b) {
        match field {
            1 => d.count = v,
            2 => d.sum = canonical(v),
            5 => d.schema = varint::unzigzag(v),
            6 => d.zero_threshold = v,
            7 => d.zero_count = v,
            9 | 12 => {
                let span = fields(body);
                let offset = span.iter().find(|f| f.0 == 1).map_or(0, |f| varint::unzigzag(f.2));
                let length = span.iter().find(|f| f.0 == 2).map_or(0, |f| f.2);
                spans[usize::from(field == 12)].push((offset, length));
            }
            10 | 13 => {
                let mut packed = body;
                while !packed.is_empty() {
                    let (z, n) = varint::read(packed).expect("delta");
                    deltas[usize::from(field == 13)].push(varint::unzigzag(z));
                    packed = &packed[n..];
                }
            }
            _ => panic!("unexpected Histogram field {field}"),
        }
    }
    for side in 0..2 {
        let mut buckets = Vec::new();
        let (mut key, mut count, mut i) = (0i64, 0i64, 0);
        for (n, &(offset, length)) in spans[side].iter().enumerate() {
            key = if n == 0 { offset } else { key + offset };
            for _ in 0..length {
                count += deltas[side][i];
                i += 1;
                buckets.push((key, count as u64));
                key += 1;
            }
        }
        assert_eq!(i, deltas[side].len(), "one delta per span bucket");
        if side == 0 { d.negative = buckets } else { d.positive = buckets }
    }
    d
}
