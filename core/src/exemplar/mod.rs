//! Exemplars: the labels (typically `trace_id` and `span_id`) of one observation, kept beside
//! a counter or a histogram bucket so that a scrape can link the metric to a trace.
//!
//! Each counter or bucket keeps the *latest* exemplar in a fixed [`ExemplarCell`]: label text
//! of up to [`EXEMPLAR_TEXT_BYTES`] bytes, the value and an optional timestamp. Writing one is
//! lock-free and never waits: a writer that finds another writer in the same cell drops its
//! exemplar (the other one is just as recent). A scrape reads a cell like a sequence lock and
//! retries a few times if a writer changed it meanwhile, then leaves the exemplar out; it
//! never shows a torn one.
//!
//! OpenMetrics writes exemplars after the sample (`# {trace_id="…"} 0.73 1700000000.123`),
//! protobuf as the `exemplar` of a `Counter` or `Bucket`; Prometheus 0.0.4 has no place for
//! them. Labels come from the caller (`inc_with_exemplar`, `observe_with_exemplar`) or, for
//! plain `inc` and `observe`, from the program's [`ExemplarSource`] if it set one (diag's std
//! facade sets one that reads the current trace).

mod counter;
mod histogram;
mod source;

use core::fmt;

use crate::atomic::{AtomicU32, AtomicU64, Ordering, array_of, loom_const_fn};
pub use counter::ExemplarCounter;
pub use histogram::ExemplarHistogram;
pub(crate) use source::with_current;
pub use source::{ExemplarSink, ExemplarSource, clear_exemplar_source, set_exemplar_source};

/// Most characters an exemplar's label names and values may have together (OpenMetrics).
pub const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;
/// Most bytes of an exemplar's rendered label text (`name="value",…`, escaped) a cell keeps.
pub const EXEMPLAR_TEXT_BYTES: usize = 192;
const WORDS: usize = EXEMPLAR_TEXT_BYTES / 4;

/// Why an exemplar was refused; the counter or histogram was still updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExemplarError {
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`, or starts with the reserved `__`.
    InvalidLabelName,
    /// The label names and values have more than [`EXEMPLAR_MAX_LABEL_CHARS`] characters, or
    /// their text more than [`EXEMPLAR_TEXT_BYTES`] bytes.
    TooLong,
}

impl fmt::Display for ExemplarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidLabelName => "invalid exemplar label name",
            Self::TooLong => "exemplar labels longer than 128 characters",
        })
    }
}

impl core::error::Error for ExemplarError {}

/// An exemplar to encode: rendered label text (`name="value",…`, escaped as in a sample's
/// labels), its value, and its time in milliseconds since the Unix epoch, if known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExemplarView<'a> {
    /// `name="value",…`, values escaped (`\\`, `\"`, `\n`).
    pub labels: &'a [u8],
    /// The observed value (a counter's increment, a histogram observation).
    pub value: f64,
    /// When, in Unix milliseconds.
    pub timestamp_ms: Option<u64>,
}

/// A copy of a cell's exemplar, owning its label text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExemplarCopy {
    text: [u8; EXEMPLAR_TEXT_BYTES],
    len: usize,
    value: f64,
    timestamp_ms: Option<u64>,
}

impl ExemplarCopy {
    /// The view the encoder takes.
    pub fn view(&self) -> ExemplarView<'_> {
        ExemplarView { labels: &self.text[..self.len], value: self.value, timestamp_ms: self.timestamp_ms }
    }
}

/// The latest exemplar of one counter or bucket, in fixed space; see the module documentation.
pub struct ExemplarCell {
    /// Even: stable (0: never set); odd: a writer is writing.
    version: AtomicU32,
    len: AtomicU32,
    value: AtomicU64,
    /// Unix milliseconds plus one; 0: no timestamp.
    timestamp: AtomicU64,
    text: [AtomicU32; WORDS],
}

impl ExemplarCell {
    loom_const_fn! {
        /// No exemplar yet.
        pub fn new() -> Self {
            Self {
                version: AtomicU32::new(0),
                len: AtomicU32::new(0),
                value: AtomicU64::new(0),
                timestamp: AtomicU64::new(0),
                text: array_of![AtomicU32::new(0); WORDS],
            }
        }
    }

    /// Replaces the exemplar with `labels`, `value` and `timestamp_ms`. Never waits: if another
    /// thread is writing this cell at the same moment, this exemplar is dropped (`Ok`).
    ///
    /// # Errors
    /// [`ExemplarError`] for an invalid label name or labels that are too long; the cell keeps
    /// its previous exemplar.
    pub fn set(&self, labels: &[(&str, &str)], value: f64, timestamp_ms: Option<u64>) -> Result<(), ExemplarError> {
        let mut text = [0u8; EXEMPLAR_TEXT_BYTES];
        let len = render(labels, &mut text)?;
        // Acquire/Relaxed: claiming the cell orders nothing by itself; the fence below does.
        let v = self.version.load(Ordering::Relaxed);
        if v % 2 == 1 || self.version.compare_exchange(v, v + 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return Ok(()); // another writer is in: its exemplar is as recent as this one
        }
        // Release on every store below (Acquire on the scrape's loads): a scrape that reads
        // any of them also sees the odd version on its second check, so it retries.
        for (i, word) in self.text.iter().enumerate() {
            let mut w = [0u8; 4];
            w.copy_from_slice(&text[i * 4..i * 4 + 4]);
            word.store(u32::from_le_bytes(w), Ordering::Release);
        }
        self.len.store(len as u32, Ordering::Release);
        self.value.store(value.to_bits(), Ordering::Release);
        // `u64::MAX` ms (584 million years) is kept as one less: 0 marks "no timestamp".
        self.timestamp.store(timestamp_ms.map_or(0, |t| t.min(u64::MAX - 1) + 1), Ordering::Release);
        // Release: a scrape that reads this version sees every store above.
        self.version.store(v + 2, Ordering::Release);
        Ok(())
    }

    /// The exemplar, if one was set and a stable copy could be read in a few tries.
    pub fn get(&self) -> Option<ExemplarCopy> {
        for _ in 0..4 {
            // Acquire: pairs with the writer's final Release store.
            let v = self.version.load(Ordering::Acquire);
            if v == 0 {
                return None;
            }
            if v % 2 == 1 {
                crate::atomic::spin_loop();
                continue;
            }
            let mut copy = ExemplarCopy { text: [0; EXEMPLAR_TEXT_BYTES], len: 0, value: 0.0, timestamp_ms: None };
            for (i, word) in self.text.iter().enumerate() {
                copy.text[i * 4..i * 4 + 4].copy_from_slice(&word.load(Ordering::Acquire).to_le_bytes());
            }
            copy.len = (self.len.load(Ordering::Acquire) as usize).min(EXEMPLAR_TEXT_BYTES);
            copy.value = f64::from_bits(self.value.load(Ordering::Acquire));
            copy.timestamp_ms = self.timestamp.load(Ordering::Acquire).checked_sub(1);
            // Acquire loads above keep this one after them: unchanged means no writer touched
            // the words read (see `set`).
            if self.version.load(Ordering::Relaxed) == v {
                return Some(copy);
            }
        }
        None
    }
}

impl Default for ExemplarCell {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ExemplarCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExemplarCell").finish_non_exhaustive()
    }
}

/// Renders `name="value",…` (values escaped) into `out`; the length.
fn render(labels: &[(&str, &str)], out: &mut [u8; EXEMPLAR_TEXT_BYTES]) -> Result<usize, ExemplarError> {
    let mut chars = 0;
    let mut at = 0;
    let mut put = |bytes: &[u8], at: &mut usize| -> Result<(), ExemplarError> {
        let dst = out.get_mut(*at..*at + bytes.len()).ok_or(ExemplarError::TooLong)?;
        dst.copy_from_slice(bytes);
        *at += bytes.len();
        Ok(())
    };
    for (i, (name, value)) in labels.iter().enumerate() {
        let mut bytes = name.bytes();
        let valid = matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
            && bytes.all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_'))
            && !name.starts_with("__");
        if !valid {
            return Err(ExemplarError::InvalidLabelName);
        }
        chars += name.chars().count() + value.chars().count();
        if chars > EXEMPLAR_MAX_LABEL_CHARS {
            return Err(ExemplarError::TooLong);
        }
        if i > 0 {
            put(b",", &mut at)?;
        }
        put(name.as_bytes(), &mut at)?;
        put(b"=\"", &mut at)?;
        for &b in value.as_bytes() {
            match b {
                b'\\' => put(b"\\\\", &mut at)?,
                b'"' => put(b"\\\"", &mut at)?,
                b'\n' => put(b"\\n", &mut at)?,
                _ => put(&[b], &mut at)?,
            }
        }
        put(b"\"", &mut at)?;
    }
    Ok(at)
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn set_and_get_round_trip_and_escape() {
        let cell = ExemplarCell::new();
        assert_eq!(cell.get(), None);
        cell.set(&[("trace_id", "abc"), ("q", "a\"b\\c\nd")], 0.5, Some(1_700_000_000_123)).unwrap();
        let copy = cell.get().unwrap();
        let view = copy.view();
        assert_eq!(view.labels, b"trace_id=\"abc\",q=\"a\\\"b\\\\c\\nd\"");
        assert_eq!((view.value, view.timestamp_ms), (0.5, Some(1_700_000_000_123)));
        cell.set(&[("span_id", "1")], 2.0, None).unwrap();
        assert_eq!(cell.get().unwrap().view().labels, b"span_id=\"1\"");
    }

    #[test]
    fn bad_exemplars_are_refused_and_keep_the_last() {
        let cell = ExemplarCell::new();
        cell.set(&[("t", "1")], 1.0, None).unwrap();
        assert_eq!(cell.set(&[("1x", "v")], 1.0, None), Err(ExemplarError::InvalidLabelName));
        assert_eq!(cell.set(&[("__", "")], 1.0, None), Err(ExemplarError::InvalidLabelName));
        let long = "v".repeat(121);
        assert_eq!(cell.set(&[("trace_id", &long)], 1.0, None), Err(ExemplarError::TooLong));
        // 128 characters exactly, but escapes make the text longer than a cell holds.
        let quotes = "\"".repeat(127);
        assert_eq!(cell.set(&[("t", &quotes)], 1.0, None), Err(ExemplarError::TooLong));
        assert_eq!(cell.get().unwrap().view().labels, b"t=\"1\"");
    }

    #[test]
    fn readers_never_see_a_torn_exemplar() {
        let cell = std::sync::Arc::new(ExemplarCell::new());
        let writer = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                for i in 0..if cfg!(miri) { 200 } else { 20_000u32 } {
                    let id = if i % 2 == 0 { "aaaaaaaaaaaaaaaa" } else { "bbbbbbbb" };
                    cell.set(&[("trace_id", id)], f64::from(i % 2), None).unwrap();
                }
            })
        };
        while !writer.is_finished() {
            if let Some(copy) = cell.get() {
                let v = copy.view();
                let ok = (v.labels == b"trace_id=\"aaaaaaaaaaaaaaaa\"" && v.value == 0.0)
                    || (v.labels == b"trace_id=\"bbbbbbbb\"" && v.value == 1.0);
                assert!(ok, "{:?} {}", core::str::from_utf8(v.labels), v.value);
            }
        }
        writer.join().unwrap();
    }

    #[test]
    fn openmetrics_writes_exemplars_the_strict_parser_accepts() {
        use crate::encoding::parse::{Event, Parser};
        use crate::{Family, Format, Registry, Scrape};
        static BOUNDS: [f64; 2] = [0.1, 1.0];
        let requests: Family<ExemplarCounter, (&str,), 2> = Family::new(["code"], ());
        let latency: ExemplarHistogram<2> = ExemplarHistogram::new(&BOUNDS);
        let registry: Registry<'_, 2> = Registry::new().with_clock(|| 1_700_000_000_000);
        registry.register("requests_total", "", &requests).unwrap();
        registry.register("latency_seconds", "", &latency).unwrap();
        requests
            .get_or_create(("200",))
            .unwrap()
            .inc_by_with_exemplar(3, &[("trace_id", "ab\"c")], Some(1_700_000_000_042))
            .unwrap();
        requests.get_or_create(("500",)).unwrap().inc();
        latency.observe_with_exemplar(0.5, &[("trace_id", "t1"), ("span_id", "s1")], None).unwrap();
        latency.observe_with_exemplar(7.0, &[("trace_id", "t2")], Some(1_700_000_001_000)).unwrap();
        latency.observe(0.05);
        let mut buf = [0u8; 2048];
        let n = Scrape::new(Format::OpenMetrics, &registry).fill(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            text.contains("requests_total{code=\"200\"} 3 # {trace_id=\"ab\\\"c\"} 3.0 1700000000.042\n"),
            "{text}"
        );
        assert!(text.contains("requests_total{code=\"500\"} 1\n"), "{text}");
        assert!(text.contains("latency_seconds_bucket{le=\"0.1\"} 1\n"), "{text}");
        assert!(
            text.contains("latency_seconds_bucket{le=\"1.0\"} 2 # {trace_id=\"t1\",span_id=\"s1\"} 0.5\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{le=\"+Inf\"} 3 # {trace_id=\"t2\"} 7.0 1700000001.000\n"),
            "{text}"
        );
        crate::encoding::parse::validate(Format::OpenMetrics, text).unwrap();
        let exemplars = Parser::new(Format::OpenMetrics, text)
            .filter_map(|e| match e.unwrap() {
                Event::Sample { sample, .. } => sample.exemplar.map(|_| sample.name.len()),
                _ => None,
            })
            .count();
        assert_eq!(exemplars, 3);
        // 0.0.4 has no exemplars.
        let n = Scrape::new(Format::Prometheus, &registry).fill(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(!text.contains('#') || !text.contains("trace_id"), "{text}");
        crate::encoding::parse::validate(Format::Prometheus, text).unwrap();
    }
}
