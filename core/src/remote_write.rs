//! Prometheus remote write 1.0 requests (`prometheus.WriteRequest`), built from any diag
//! sources into caller buffers, without allocation: for agents nobody can scrape.
//!
//! A [`Push`] walks the sources as a scrape would (the 0.0.4 text exposition, a chunk at a
//! time, into the caller's `text` buffer) and turns every sample line into one `TimeSeries`:
//! its labels sorted by name with `__name__` and the external labels (`job`, `instance`, …;
//! a series' own label of the same name wins, as in Prometheus), and one sample with the
//! push's timestamp. Histograms arrive as their `_bucket`/`_sum`/`_count` series, as remote
//! write 1.0 carries them. [`Push::next_request`] fills the caller's `request` buffer with as
//! many whole series as fit and returns its length: a request always ends at a series
//! boundary, and a push of more series than one buffer holds is several requests. Compress
//! each with [`snappy`](crate::snappy) before sending.
//!
//! Going through the text exposition reuses the encoders every scrape already runs (and their
//! snapshot rules: a histogram's series are consistent with each other) and the strict parser
//! that checks them. The cost is a parse of text diag wrote itself, a fraction of what the
//! protobuf and compression cost. Remote write 2.0 (interned symbols, native histograms,
//! metadata per series) would add a second writer behind the same [`Push`].
//!
//! ```
//! use diag_core::remote_write::Push;
//! use diag_core::snappy::{Compressor, max_compressed_len};
//! use diag_core::{Collect, Counter, Registry};
//!
//! static SENT: Counter = Counter::new();
//! static REGISTRY: Registry<'static, 4> = Registry::new();
//! REGISTRY.register("radio_packets_sent_total", "Packets sent.", &SENT).unwrap();
//! SENT.inc_by(3);
//!
//! let sources: [&dyn Collect; 1] = [&REGISTRY];
//! let external = [("job", "sensors"), ("instance", "mcu-7")];
//! let (mut text, mut request) = ([0u8; 1024], [0u8; 1024]);
//! let mut wire = [0u8; max_compressed_len(1024)];
//! let mut snappy = Compressor::<256>::new();
//!
//! let mut push = Push::new(&sources, &external, 1_700_000_000_000, &mut text);
//! while let Some(len) = push.next_request(&mut request)? {
//!     let n = snappy.compress(&request[..len], &mut wire)?;
//!     let body = &wire[..n];
//!     // POST `body` with `Content-Encoding: snappy` and
//!     // `X-Prometheus-Remote-Write-Version: 0.1.0`.
//!     assert!(!body.is_empty());
//! }
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

use core::fmt;

use crate::encoding::Format;
use crate::encoding::parse::{Escaped, Line, Lines};
use crate::proto::{BufferFull, Sink, SliceWriter};
use crate::registry::{Scrape, Sources};

/// The most labels a series may have, external labels and `__name__` included: they are
/// sorted on the stack.
pub const MAX_LABELS: usize = 32;

/// Field numbers of `prometheus.WriteRequest` (remote write 1.0, `types.proto`).
mod field {
    pub(super) const TIMESERIES: u32 = 1;
    pub(super) const SERIES_LABEL: u32 = 1;
    pub(super) const SERIES_SAMPLE: u32 = 2;
    pub(super) const LABEL_NAME: u32 = 1;
    pub(super) const LABEL_VALUE: u32 = 2;
    pub(super) const SAMPLE_VALUE: u32 = 1;
    pub(super) const SAMPLE_TIMESTAMP: u32 = 2;
}

/// Why a push could not go on, or skipped a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// One series alone needs more than the request buffer (`bytes` is what it needs, at
    /// least): it is skipped, and the next call goes on with the series after it.
    SeriesTooLarge {
        /// The bytes the series needs in a request.
        bytes: usize,
    },
    /// A series has more than [`MAX_LABELS`] labels with `__name__` and the external
    /// labels: it is skipped, and the next call goes on after it.
    TooManyLabels,
    /// One exposition item (a series with all its lines) does not fit the `text` buffer; the
    /// push stays at that item, so there is no way on but a bigger buffer.
    TextBufferTooSmall,
    /// The exposition did not parse: a bug in an encoder, reported rather than sent.
    Malformed,
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SeriesTooLarge { bytes } => {
                write!(f, "a series needs {bytes} bytes, more than the remote write request buffer")
            }
            Self::TooManyLabels => write!(f, "a series has more than {MAX_LABELS} labels"),
            Self::TextBufferTooSmall => f.write_str("an exposition item does not fit the text buffer"),
            Self::Malformed => f.write_str("the exposition did not parse"),
        }
    }
}

impl core::error::Error for PushError {}

/// One push: the series of some sources at one time, as remote write requests; see the
/// [module docs](self).
pub struct Push<'a> {
    scrape: Scrape<'a>,
    external: &'a [(&'a str, &'a str)],
    timestamp_ms: i64,
    text: &'a mut [u8],
    /// The exposition chunk in `text`, and how much of it is sent.
    len: usize,
    at: usize,
}

impl fmt::Debug for Push<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("external", &self.external)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("text_bytes", &self.text.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Push<'a> {
    /// A push of every series of `sources`, stamped `timestamp_ms` (milliseconds since the
    /// Unix epoch, from the caller's clock), with `external` labels added to every series.
    /// `text` holds the exposition a chunk at a time: it must hold the largest series with
    /// all its lines (a histogram's buckets), a few hundred bytes to a few KiB.
    pub fn new(
        sources: &'a dyn Sources,
        external: &'a [(&'a str, &'a str)],
        timestamp_ms: i64,
        text: &'a mut [u8],
    ) -> Self {
        Self { scrape: Scrape::new(Format::Prometheus, sources), external, timestamp_ms, text, len: 0, at: 0 }
    }

    /// Writes the next request (a serialized `WriteRequest`) into `request` and returns its
    /// length, or `None` when every series has been sent.
    ///
    /// # Errors
    /// See [`PushError`]: a series too large for `request` or with too many labels is skipped
    /// (the error says so, and the next call goes on); the others end the push.
    pub fn next_request(&mut self, request: &mut [u8]) -> Result<Option<usize>, PushError> {
        let mut w = SliceWriter::new(request);
        loop {
            if self.at == self.len {
                self.at = 0;
                self.len = match self.scrape.fill(self.text) {
                    Ok(0) => 0,
                    Ok(n) => n,
                    // Into a slice, `fill` fails only when the next item alone does not fit.
                    Err(_) => return Err(PushError::TextBufferTooSmall),
                };
                if self.len == 0 {
                    return Ok((w.pos() > 0).then_some(w.pos()));
                }
            }
            // One line at a time, checked as UTF-8 on its own: checking the whole chunk for
            // every line made a push quadratic in the text buffer's size.
            let rest = &self.text[self.at..self.len];
            let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
            let line = core::str::from_utf8(&rest[..end]).map_err(|_| PushError::Malformed)?;
            let before = w.pos();
            match self.series(line, &mut w) {
                Ok(()) => self.at += end,
                Err(Skip::Full) if before > 0 => {
                    // The request is as full as it gets: send it, this series opens the next.
                    w.truncate(before);
                    return Ok(Some(before));
                }
                Err(Skip::Full) => {
                    self.at += end;
                    return Err(PushError::SeriesTooLarge { bytes: request_len_at_least(line, self.external) });
                }
                Err(Skip::TooManyLabels) => {
                    w.truncate(before);
                    self.at += end;
                    return Err(PushError::TooManyLabels);
                }
                Err(Skip::Malformed) => return Err(PushError::Malformed),
            }
        }
    }

    /// Writes the `TimeSeries` of one exposition line (nothing for comments).
    fn series(&self, line: &str, w: &mut SliceWriter<'_>) -> Result<(), Skip> {
        let Some(parsed) = Lines::new(Format::Prometheus, line).next() else { return Ok(()) };
        let Line::Sample(sample) = parsed.map_err(|_| Skip::Malformed)? else { return Ok(()) };
        let mut labels: [(&str, Value<'_>); MAX_LABELS] = [("", Value::Plain("")); MAX_LABELS];
        let mut n = 0;
        labels[n] = ("__name__", Value::Plain(sample.name));
        n += 1;
        for (name, value) in sample.labels.iter() {
            if value.is_empty() {
                continue; // an empty value is no label, in Prometheus
            }
            let slot = labels.get_mut(n).ok_or(Skip::TooManyLabels)?;
            *slot = (name, Value::Escaped(value));
            n += 1;
        }
        let own = n;
        for &(name, value) in self.external {
            if value.is_empty() || labels[..own].iter().any(|(have, _)| *have == name) {
                continue;
            }
            let slot = labels.get_mut(n).ok_or(Skip::TooManyLabels)?;
            *slot = (name, Value::Plain(value));
            n += 1;
        }
        let labels = &mut labels[..n];
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let value = sample.value.as_f64();
        w.nested(field::TIMESERIES, |w| {
            for (name, value) in labels.iter() {
                w.nested(field::SERIES_LABEL, |w| {
                    w.string(field::LABEL_NAME, name)?;
                    match value {
                        Value::Plain(v) => w.string(field::LABEL_VALUE, v),
                        Value::Escaped(v) if !v.raw().contains('\\') => w.string(field::LABEL_VALUE, v.raw()),
                        Value::Escaped(v) => w.nested(field::LABEL_VALUE, |w| {
                            let mut utf8 = [0u8; 4];
                            v.chars().try_for_each(|c| w.put(c.encode_utf8(&mut utf8).as_bytes()))
                        }),
                    }
                })?;
            }
            w.nested(field::SERIES_SAMPLE, |w| {
                w.double(field::SAMPLE_VALUE, value)?;
                w.int64(field::SAMPLE_TIMESTAMP, self.timestamp_ms)
            })
        })
        .map_err(|BufferFull| Skip::Full)
    }
}

/// A label value: as given (external labels, the name), or escaped as in the exposition.
#[derive(Debug, Clone, Copy)]
enum Value<'v> {
    Plain(&'v str),
    Escaped(Escaped<'v>),
}

/// Why one series was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Full,
    TooManyLabels,
    Malformed,
}

/// A lower bound of the bytes a series written from `line` takes: its text and the external
/// labels (every byte of a label's name and value appears once in the protobuf).
fn request_len_at_least(line: &str, external: &[(&str, &str)]) -> usize {
    line.len() + external.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;

    use std::string::String;
    use std::vec::Vec;

    use super::*;
    use crate::proto::varint;
    use crate::{Collect, Counter, Family, GaugeF64, Histogram, Registry};

    /// A decoded `TimeSeries`: sorted labels, one (value, timestamp).
    type Series = (Vec<(String, String)>, f64, i64);

    /// The fields of one message: (field number, wire type, varint or fixed64 value, bytes).
    fn fields(mut msg: &[u8]) -> Vec<(u32, u8, u64, &[u8])> {
        let mut out = Vec::new();
        while !msg.is_empty() {
            let (key, n) = varint::read(msg).expect("key");
            msg = &msg[n..];
            let (field, wire) = ((key >> 3) as u32, (key & 7) as u8);
            match wire {
                0 => {
                    let (v, n) = varint::read(msg).expect("varint");
                    out.push((field, wire, v, &[][..]));
                    msg = &msg[n..];
                }
                1 => {
                    out.push((field, wire, u64::from_le_bytes(msg[..8].try_into().unwrap()), &[][..]));
                    msg = &msg[8..];
                }
                2 => {
                    let (len, n) = varint::read(msg).expect("length");
                    let body = &msg[n..n + len as usize];
                    out.push((field, wire, 0, body));
                    msg = &msg[n + len as usize..];
                }
                w => panic!("unexpected wire type {w}"),
            }
        }
        out
    }

    fn decode(request: &[u8]) -> Vec<Series> {
        fields(request)
            .into_iter()
            .map(|(f, _, _, ts)| {
                assert_eq!(f, field::TIMESERIES);
                let (mut labels, mut sample) = (Vec::new(), None);
                for (f, _, _, body) in fields(ts) {
                    match f {
                        field::SERIES_LABEL => {
                            let l = fields(body);
                            let text = |i: usize| String::from_utf8(l[i].3.to_vec()).unwrap();
                            labels.push((text(0), text(1)));
                        }
                        field::SERIES_SAMPLE => {
                            let s = fields(body);
                            sample = Some((f64::from_bits(s[0].2), s[1].2 as i64));
                        }
                        f => panic!("field {f}"),
                    }
                }
                let (value, ts) = sample.expect("one sample");
                (labels, value, ts)
            })
            .collect()
    }

    fn push_all(sources: &dyn Sources, external: &[(&str, &str)], request: usize) -> Vec<Vec<Series>> {
        let mut text = [0u8; 2048];
        let mut buf = std::vec![0u8; request];
        let mut push = Push::new(sources, external, 1_700_000_000_123, &mut text);
        let mut out = Vec::new();
        while let Some(len) = push.next_request(&mut buf).expect("push") {
            out.push(decode(&buf[..len]));
        }
        out
    }

    fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels.iter().map(|(n, v)| (String::from(*n), String::from(*v))).collect()
    }

    #[test]
    fn every_sample_becomes_a_series_with_sorted_labels_name_and_external_labels() {
        let sent = Counter::new();
        sent.inc_by(7);
        let temp = GaugeF64::new();
        temp.set(-1.5);
        let by_path: Family<Counter, (&str, &str), 4> = Family::new(["path", "Zone"], ());
        by_path.get_or_create(("/a\"b\\c\nd", "eu")).unwrap().inc_by(2);
        static BOUNDS: [f64; 2] = [0.5, 1.0];
        let latency: Histogram<2> = Histogram::new(&BOUNDS);
        latency.observe(0.7);
        let registry: Registry<'_, 8> = Registry::new();
        registry.register("sent_total", "Sent.", &sent).unwrap();
        registry.register("temperature_celsius", "T.", &temp).unwrap();
        registry.register("requests_total", "R.", &by_path).unwrap();
        registry.register("latency_seconds", "L.", &latency).unwrap();
        let sources: [&dyn Collect; 1] = [&registry];

        let requests = push_all(&sources, &[("job", "node"), ("instance", "mcu-1"), ("path", "ignored")], 4096);
        assert_eq!(requests.len(), 1);
        let series = &requests[0];
        let ts = 1_700_000_000_123;
        let ext = |extra: &[(&str, &str)]| {
            let mut l = owned(extra);
            l.extend(owned(&[("instance", "mcu-1"), ("job", "node"), ("path", "ignored")]));
            l.sort();
            l
        };
        assert_eq!(series[0], (ext(&[("__name__", "sent_total")]), 7.0, ts));
        assert_eq!(series[1], (ext(&[("__name__", "temperature_celsius")]), -1.5, ts));
        // The series' own `path` wins over the external one (which the others get); `Zone`
        // sorts before `__name__`.
        let mut own = owned(&[("Zone", "eu"), ("__name__", "requests_total"), ("path", "/a\"b\\c\nd")]);
        own.extend(owned(&[("instance", "mcu-1"), ("job", "node")]));
        own.sort();
        assert_eq!(series[2], (own, 2.0, ts));
        assert_eq!(series[3].0, ext(&[("__name__", "latency_seconds_bucket"), ("le", "0.5")]));
        assert_eq!(series[4], (ext(&[("__name__", "latency_seconds_bucket"), ("le", "1.0")]), 1.0, ts));
        assert_eq!(series[5], (ext(&[("__name__", "latency_seconds_bucket"), ("le", "+Inf")]), 1.0, ts));
        assert_eq!(series[6], (ext(&[("__name__", "latency_seconds_sum")]), 0.7, ts));
        assert_eq!(series[7], (ext(&[("__name__", "latency_seconds_count")]), 1.0, ts));
        assert_eq!(series.len(), 8);
        for (labels, ..) in series {
            assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique: {labels:?}");
        }
    }

    #[test]
    fn a_push_larger_than_the_buffer_splits_at_series_boundaries() {
        let family: Family<Counter, (u16,), 64> = Family::new(["n"], ());
        for n in 0..64u16 {
            family.get_or_create((n,)).unwrap().inc_by(u64::from(n));
        }
        let registry: Registry<'_, 4> = Registry::new();
        registry.register("items_total", "I.", &family).unwrap();
        let sources: [&dyn Collect; 1] = [&registry];
        let requests = push_all(&sources, &[], 256);
        assert!(requests.len() > 5, "{} requests", requests.len());
        let all: Vec<Series> = requests.into_iter().flatten().collect();
        assert_eq!(all.len(), 64, "every series once, none cut");
        for (n, (labels, value, _)) in all.iter().enumerate() {
            assert_eq!(labels[1], (String::from("n"), std::format!("{n}")));
            assert_eq!(*value, n as f64);
        }
    }

    #[test]
    fn a_series_too_large_for_the_request_is_skipped_with_an_error_and_the_push_goes_on() {
        let family: Family<Counter, (&str,), 4, 200> = Family::new(["v"], ());
        family.get_or_create(("x".repeat(150).as_str(),)).unwrap().inc();
        let small = Counter::new();
        let registry: Registry<'_, 4> = Registry::new();
        registry.register("big_total", "B.", &family).unwrap();
        registry.register("small_total", "S.", &small).unwrap();
        let sources: [&dyn Collect; 1] = [&registry];
        let mut text = [0u8; 1024];
        let mut buf = [0u8; 100];
        let mut push = Push::new(&sources, &[], 5, &mut text);
        assert!(matches!(push.next_request(&mut buf), Err(PushError::SeriesTooLarge { bytes }) if bytes > 100));
        let len = push.next_request(&mut buf).unwrap().expect("the small series");
        assert_eq!(decode(&buf[..len])[0].0[0].1, "small_total");
        assert_eq!(push.next_request(&mut buf), Ok(None));
    }

    #[test]
    fn too_many_labels_is_an_error_for_that_series_only() {
        let one = Counter::new();
        let registry: Registry<'_, 4> = Registry::new();
        registry.register("one_total", "O.", &one).unwrap();
        let sources: [&dyn Collect; 1] = [&registry];
        let names: Vec<String> = (0..MAX_LABELS).map(|i| std::format!("l{i:02}")).collect();
        let external: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let mut text = [0u8; 1024];
        let mut buf = [0u8; 4096];
        let mut push = Push::new(&sources, &external, 5, &mut text);
        assert_eq!(push.next_request(&mut buf), Err(PushError::TooManyLabels));
        assert_eq!(push.next_request(&mut buf), Ok(None));
        let mut text = [0u8; 1024];
        let mut push = Push::new(&sources, &external[..MAX_LABELS - 1], 5, &mut text);
        let len = push.next_request(&mut buf).unwrap().expect("31 external labels and the name fit");
        assert_eq!(decode(&buf[..len])[0].0.len(), MAX_LABELS);
    }

    #[test]
    fn a_text_buffer_smaller_than_one_item_is_an_error() {
        let one = Counter::new();
        let registry: Registry<'_, 4> = Registry::new();
        registry.register("one_total", "A help text longer than the buffer.", &one).unwrap();
        let sources: [&dyn Collect; 1] = [&registry];
        let mut text = [0u8; 16];
        let mut buf = [0u8; 256];
        let mut push = Push::new(&sources, &[], 5, &mut text);
        assert_eq!(push.next_request(&mut buf), Err(PushError::TextBufferTooSmall));
    }

    #[test]
    fn nothing_to_send_is_no_request() {
        let registry: Registry<'_, 4> = Registry::new();
        let sources: [&dyn Collect; 1] = [&registry];
        assert!(push_all(&sources, &[("job", "x")], 256).is_empty());
    }
}
