//! A strict, allocation-free parser for the Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! Two layers:
//! * [`Lines`] splits an exposition into lines and checks each against its format's grammar
//!   (names, label syntax and escapes, numbers, timestamps, exemplars, `# EOF`), yielding
//!   borrowed [`Line`]s. Label values and HELP text stay escaped in the input;
//!   [`Escaped::chars`] unescapes them lazily.
//! * [`Parser`] runs over the lines and checks what spans lines: families (TYPE before samples,
//!   one HELP/TYPE/UNIT each, no duplicate or clashing family names, contiguous families and
//!   series), the sample names a type allows (OpenMetrics counters end in `_total`), histograms
//!   (`le` strictly ascending with `+Inf` last, cumulative buckets, `_count` equal to the `+Inf`
//!   bucket), summaries, state sets, info metrics, and `# EOF` last in OpenMetrics. It yields
//!   [`Event`]s, each sample tagged with its family.
//!
//! Both formats also accept Prometheus 3's quoted UTF-8 names, as the encoders write them under
//! `escaping=allow-utf-8`: `# TYPE "my.metric" counter`, `{"my.metric_total","my.label"="v"} 1`
//! (the metric name first inside the braces). A quoted name is yielded as written between its
//! quotes (escapes kept), and a quoted label name starting with `__` is reserved like any other.
//!
//! Nothing is allocated: checks that look back (duplicate families, a series reappearing)
//! re-read the already parsed input, so they cost time proportional to the input seen so far.
//!
//! Deliberately stricter than the reference parsers in a few places (documented at
//! [`Parser`]); the encoders in this crate only produce what both accept.
//!
//! # Examples
//! ```
//! use diag_core::Format;
//! use diag_core::encoding::parse::{Event, Parser, validate};
//!
//! let text = "# TYPE jobs counter\njobs_total{queue=\"a\\\"b\"} 3\n# EOF\n";
//! let summary = validate(Format::OpenMetrics, text).unwrap();
//! assert_eq!((summary.families, summary.samples), (1, 1));
//!
//! for event in Parser::new(Format::OpenMetrics, text) {
//!     if let Event::Sample { family, suffix, sample, .. } = event.unwrap() {
//!         assert_eq!((family, suffix, sample.value.as_f64()), ("jobs", "_total", 3.0));
//!         let (name, value) = sample.labels.iter().next().unwrap();
//!         assert_eq!(name, "queue");
//!         assert!(value.eq_str("a\"b"));
//!     }
//! }
//! assert!(validate(Format::OpenMetrics, "# TYPE jobs counter\njobs 3\n# EOF\n").is_err());
//! ```

use core::fmt;

use super::Format;

/// What is wrong with an exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input is not UTF-8.
    InvalidUtf8,
    /// The last line does not end in a line feed (only `# EOF` may, in OpenMetrics).
    MissingNewline,
    /// An empty line (OpenMetrics has none).
    BlankLine,
    /// A line that matches nothing in the grammar.
    InvalidLine,
    /// A metric name that does not match `[a-zA-Z_:][a-zA-Z0-9_:]*` and is not a quoted
    /// UTF-8 name (`"my.metric"`).
    InvalidMetricName,
    /// A label name that does not match `[a-zA-Z_][a-zA-Z0-9_]*` and is not a quoted UTF-8
    /// name, or starts with the reserved `__`, or bad label syntax.
    InvalidLabel,
    /// A backslash not followed by an escape the format allows.
    InvalidEscape,
    /// HELP text or a label value with a raw character the format forbids (`"` in OpenMetrics HELP).
    InvalidCharacter,
    /// A sample value that is not a number.
    InvalidValue,
    /// A timestamp that is not a number (OpenMetrics) or a 64-bit integer (0.0.4).
    InvalidTimestamp,
    /// An unknown type in a TYPE line.
    InvalidType,
    /// Bad exemplar syntax.
    InvalidExemplar,
    /// An exemplar's labels exceed 128 characters.
    ExemplarTooLong,
    /// An exemplar on a sample other than a counter's `_total` or a histogram's `_bucket`.
    ExemplarNotAllowed,
    /// A label name repeated within one label set.
    DuplicateLabel,
    /// A second HELP, TYPE or UNIT line for a family.
    DuplicateMetadata,
    /// A HELP, TYPE or UNIT line after the family's samples.
    MetadataAfterSamples,
    /// A family name used twice, or clashing with another family's sample names.
    DuplicateFamily,
    /// A sample named after the current family with a suffix its type does not allow (e.g.
    /// an OpenMetrics counter sample without `_total`).
    InvalidSampleName,
    /// The same sample (name and labels) twice.
    DuplicateSample,
    /// The samples of one series are not contiguous.
    InvalidGrouping,
    /// A bucket without `le`, or an `le` that is not a number, is NaN, or (OpenMetrics) is an
    /// infinity not written `+Inf`.
    InvalidLe,
    /// `le` values not strictly ascending.
    BucketsOutOfOrder,
    /// Bucket counts decreasing (buckets must be cumulative).
    BucketsNotCumulative,
    /// A histogram series without an `le="+Inf"` bucket.
    MissingInfBucket,
    /// `_count` differs from the `+Inf` bucket.
    CountMismatch,
    /// (OpenMetrics) `_sum` without `_count` or `_count` without `_sum`.
    CountWithoutSum,
    /// (OpenMetrics) a histogram with negative buckets and a `_sum`.
    NegativeBucketsWithSum,
    /// (OpenMetrics) a bucket or count value that is not an integer.
    NotInteger,
    /// (OpenMetrics) a counter-like value (`_total`, `_count`, `_bucket`, `_sum`, …) that is
    /// negative or NaN, or a negative quantile value.
    InvalidCounterValue,
    /// A summary quantile sample without a valid `quantile` label, or quantiles not ascending.
    InvalidQuantile,
    /// (OpenMetrics) a state set sample without its state label, or with a value other than 0 or 1.
    InvalidStateSet,
    /// (OpenMetrics) an info sample with a value other than 1.
    InvalidInfo,
    /// (OpenMetrics) a UNIT that is not a suffix of the family name, or on an info or state set.
    InvalidUnit,
    /// (OpenMetrics) some samples of a series have a timestamp and others not.
    TimestampMix,
    /// (OpenMetrics) `# EOF` is missing.
    MissingEof,
    /// (OpenMetrics) something follows `# EOF`.
    AfterEof,
}

impl ParseErrorKind {
    /// A short description.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUtf8 => "input is not UTF-8",
            Self::MissingNewline => "last line does not end in a line feed",
            Self::BlankLine => "blank line",
            Self::InvalidLine => "invalid line",
            Self::InvalidMetricName => "invalid metric name",
            Self::InvalidLabel => "invalid label",
            Self::InvalidEscape => "invalid escape sequence",
            Self::InvalidCharacter => "character not allowed here",
            Self::InvalidValue => "invalid sample value",
            Self::InvalidTimestamp => "invalid timestamp",
            Self::InvalidType => "invalid metric type",
            Self::InvalidExemplar => "invalid exemplar",
            Self::ExemplarTooLong => "exemplar labels longer than 128 characters",
            Self::ExemplarNotAllowed => "exemplar not allowed on this sample",
            Self::DuplicateLabel => "duplicate label name",
            Self::DuplicateMetadata => "second HELP, TYPE or UNIT for a family",
            Self::MetadataAfterSamples => "metadata after samples",
            Self::DuplicateFamily => "duplicate or clashing family name",
            Self::InvalidSampleName => "sample name not allowed for the family's type",
            Self::DuplicateSample => "duplicate sample",
            Self::InvalidGrouping => "samples of a series are not contiguous",
            Self::InvalidLe => "missing or invalid le label",
            Self::BucketsOutOfOrder => "buckets not in ascending le order",
            Self::BucketsNotCumulative => "bucket counts not cumulative",
            Self::MissingInfBucket => "+Inf bucket missing",
            Self::CountMismatch => "_count does not equal the +Inf bucket",
            Self::CountWithoutSum => "_sum and _count must come together",
            Self::NegativeBucketsWithSum => "histogram with negative buckets has a _sum",
            Self::NotInteger => "bucket or count value is not an integer",
            Self::InvalidCounterValue => "counter-like value is negative or NaN",
            Self::InvalidQuantile => "missing, invalid or unordered quantile",
            Self::InvalidStateSet => "invalid state set sample",
            Self::InvalidInfo => "info sample value is not 1",
            Self::InvalidUnit => "unit does not match the family",
            Self::TimestampMix => "mix of samples with and without timestamp in a series",
            Self::MissingEof => "missing # EOF",
            Self::AfterEof => "line after # EOF",
        }
    }
}

/// An invalid exposition: what and on which line (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ParseError {
    /// The line the error was detected on, counting from 1; for errors found at the end of
    /// the input, the number of lines plus one.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    const fn new(line: usize, kind: ParseErrorKind) -> Self {
        Self { line, kind }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.kind.as_str())
    }
}

impl core::error::Error for ParseError {}

/// A family's type as written in a TYPE line (`untyped` in 0.0.4 is [`Unknown`](Self::Unknown)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FamilyType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics only).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `stateset` (OpenMetrics only).
    StateSet,
    /// `info` (OpenMetrics only).
    Info,
    /// `unknown` (OpenMetrics) or `untyped` (0.0.4), and families without a TYPE line.
    Unknown,
}

impl FamilyType {
    /// The type this crate's encoders write for `t`.
    pub const fn from_metric_type(t: super::MetricType) -> Self {
        match t {
            super::MetricType::Counter => Self::Counter,
            super::MetricType::Gauge => Self::Gauge,
            super::MetricType::Histogram => Self::Histogram,
            super::MetricType::Unknown => Self::Unknown,
        }
    }

    fn parse(format: Format, s: &str) -> Option<Self> {
        Some(match (format, s) {
            (_, "counter") => Self::Counter,
            (_, "gauge") => Self::Gauge,
            (_, "histogram") => Self::Histogram,
            (_, "summary") => Self::Summary,
            (Format::Prometheus, "untyped") => Self::Unknown,
            (Format::OpenMetrics, "unknown") => Self::Unknown,
            (Format::OpenMetrics, "gaugehistogram") => Self::GaugeHistogram,
            (Format::OpenMetrics, "stateset") => Self::StateSet,
            (Format::OpenMetrics, "info") => Self::Info,
            _ => return None,
        })
    }

    /// The sample-name suffixes this type allows in `format` (`""` is the bare family name).
    pub const fn suffixes(self, format: Format) -> &'static [&'static str] {
        match (format, self) {
            (Format::OpenMetrics, Self::Counter) => &["_total", "_created"],
            (Format::OpenMetrics, Self::Histogram) => &["_bucket", "_count", "_sum", "_created"],
            (Format::OpenMetrics, Self::GaugeHistogram) => &["_bucket", "_gcount", "_gsum"],
            (Format::OpenMetrics, Self::Summary) => &["", "_count", "_sum", "_created"],
            (Format::OpenMetrics, Self::Info) => &["_info"],
            (_, Self::Histogram) => &["_bucket", "_count", "_sum"],
            (_, Self::Summary) => &["", "_count", "_sum"],
            _ => &[""],
        }
    }

    const fn is_histogram(self) -> bool {
        matches!(self, Self::Histogram | Self::GaugeHistogram)
    }
}

/// A HELP text or label value exactly as written, escapes included.
///
/// Compare and read it through [`chars`](Self::chars) (unescaped lazily), [`eq_str`](Self::eq_str)
/// or `Display` (which prints it unescaped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a>(&'a str);

impl<'a> Escaped<'a> {
    /// The text as written, with its escapes.
    pub const fn raw(&self) -> &'a str {
        self.0
    }

    /// Whether the text is empty.
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The unescaped characters (`\\` → `\`, `\"` → `"`, `\n` → line feed).
    pub fn chars(&self) -> Unescape<'a> {
        Unescape(self.0.chars())
    }

    /// Whether the unescaped text equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        self.chars().eq(s.chars())
    }

    /// Whether two escaped texts are equal once unescaped.
    pub fn eq_unescaped(&self, other: &Escaped<'_>) -> bool {
        self.0 == other.0 || self.chars().eq(other.chars())
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        self.chars().try_for_each(|c| f.write_char(c))
    }
}

/// Iterator over the unescaped characters of an [`Escaped`].
#[derive(Debug, Clone)]
pub struct Unescape<'a>(core::str::Chars<'a>);

impl Iterator for Unescape<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self.0.next()? {
            '\\' => match self.0.next() {
                Some('n') => Some('\n'),
                // Validated input only holds `\\` and `\"` besides `\n`.
                Some(c) => Some(c),
                None => Some('\\'),
            },
            c => Some(c),
        }
    }
}

/// A sample value or timestamp: its text and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number<'a> {
    raw: &'a str,
    value: f64,
}

impl<'a> Number<'a> {
    /// The text as written.
    pub const fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub const fn as_f64(&self) -> f64 {
        self.value
    }

    /// The value if the text is a plain unsigned integer (exact beyond 2^53).
    pub fn as_u64(&self) -> Option<u64> {
        self.raw.parse().ok()
    }

    /// The value if the text is a plain signed integer (exact beyond 2^53).
    pub fn as_i64(&self) -> Option<i64> {
        self.raw.parse().ok()
    }
}

/// The labels of a sample or exemplar, as written; iterate them with [`iter`](Self::iter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabelSet<'a> {
    /// The text between the braces (already validated).
    raw: &'a str,
}

impl<'a> LabelSet<'a> {
    /// The text between the braces, as written.
    pub const fn raw(&self) -> &'a str {
        self.raw
    }

    /// The `(name, value)` pairs in order of appearance.
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter { rest: self.raw }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<Escaped<'a>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Whether both sets hold the same labels with the same values, in any order, ignoring
    /// label `ignore`. Assumes neither repeats a label name (the parser checks that).
    pub fn same_as(&self, other: &LabelSet<'_>, ignore: Option<&str>) -> bool {
        let keep = |n: &str| Some(n) != ignore;
        let count = |s: &LabelSet<'_>| s.iter().filter(|(n, _)| keep(n)).count();
        count(self) == count(other)
            && self.iter().filter(|(n, _)| keep(n)).all(|(n, v)| other.get(n).is_some_and(|w| v.eq_unescaped(&w)))
    }
}

/// Iterator over a [`LabelSet`].
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Escaped<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // The text was validated by `lex_labels`; this walk tolerates 0.0.4 blanks and a
        // trailing comma, and stops (never panics) on anything else.
        let rest = skip_blank(self.rest);
        let rest = skip_blank(rest.strip_prefix(',').unwrap_or(rest));
        let (name, rest) = if rest.starts_with('"') {
            match split_quoted_name(rest) {
                Some(split) => split,
                None => {
                    self.rest = "";
                    return None;
                }
            }
        } else {
            let name_len = rest.bytes().take_while(|b| is_label_char(*b)).count();
            if name_len == 0 {
                self.rest = "";
                return None;
            }
            rest.split_at(name_len)
        };
        let rest = skip_blank(skip_blank(rest).strip_prefix('=')?).strip_prefix('"')?;
        let end = quoted_end(rest)?;
        self.rest = &rest[end + 1..];
        Some((name, Escaped(&rest[..end])))
    }
}

/// An exemplar attached to an OpenMetrics sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar<'a> {
    /// Its labels.
    pub labels: LabelSet<'a>,
    /// Its value.
    pub value: Number<'a>,
    /// Its timestamp, if any.
    pub timestamp: Option<Number<'a>>,
}

/// One sample line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name (family name and suffix).
    pub name: &'a str,
    /// The labels.
    pub labels: LabelSet<'a>,
    /// The value.
    pub value: Number<'a>,
    /// The timestamp, if any (milliseconds in 0.0.4, seconds in OpenMetrics).
    pub timestamp: Option<Number<'a>>,
    /// The exemplar, if any (OpenMetrics only).
    pub exemplar: Option<Exemplar<'a>>,
}

/// One meaningful line of an exposition (0.0.4 comments and blank lines are skipped).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Line<'a> {
    /// `# HELP name text`.
    Help {
        /// The family name.
        name: &'a str,
        /// The help text.
        help: Escaped<'a>,
    },
    /// `# TYPE name type`.
    Type {
        /// The family name.
        name: &'a str,
        /// The type.
        family_type: FamilyType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        /// The family name.
        name: &'a str,
        /// The unit.
        unit: &'a str,
    },
    /// A sample.
    Sample(Sample<'a>),
    /// `# EOF` (OpenMetrics).
    Eof,
}

/// The lines of an exposition, each checked against its format's grammar.
///
/// Yields `Err` at the first bad line and then ends. Does not check anything that spans
/// lines (see [`Parser`]).
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    text: &'a str,
    format: Format,
    pos: usize,
    line: usize,
    line_start: usize,
    failed: bool,
}

impl<'a> Lines<'a> {
    /// The lines of `text` in `format`.
    pub const fn new(format: Format, text: &'a str) -> Self {
        Self { text, format, pos: 0, line: 0, line_start: 0, failed: false }
    }

    /// The number (from 1) of the line last returned.
    pub const fn line_number(&self) -> usize {
        self.line
    }

    /// Byte offset where the line last returned starts.
    pub const fn line_start(&self) -> usize {
        self.line_start
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.text.len() {
            let rest = &self.text[self.pos..];
            self.line += 1;
            self.line_start = self.pos;
            let (line, advance) = match rest.find('\n') {
                Some(i) => (&rest[..i], i + 1),
                None if self.format == Format::OpenMetrics && rest == "# EOF" => (rest, rest.len()),
                None => {
                    self.failed = true;
                    return Some(Err(ParseError::new(self.line, ParseErrorKind::MissingNewline)));
                }
            };
            self.pos += advance;
            let lexed = match self.format {
                Format::OpenMetrics => lex_openmetrics(line).map(Some),
                _ => lex_text(line),
            };
            match lexed {
                Ok(Some(l)) => return Some(Ok(l)),
                Ok(None) => {}
                Err(kind) => {
                    self.failed = true;
                    return Some(Err(ParseError::new(self.line, kind)));
                }
            }
        }
        None
    }
}

const fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blank(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

const fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

const fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits a quoted name (`"my.metric"`, Prometheus 3) off the front of `s`: the text between
/// the quotes as written (escapes kept), and the rest. `None` unless `s` starts with a
/// non-empty quoted string whose escapes are `\\`, `\"` and `\n` only.
fn split_quoted_name(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('"')?;
    let end = quoted_end(inner)?;
    let name = &inner[..end];
    if name.is_empty() || check_escapes(name, b"\\\"n").is_err() {
        return None;
    }
    Some((name, &inner[end + 1..]))
}

/// Splits the family name of a HELP, TYPE or UNIT line off the front of `s`: a metric name
/// or a quoted name.
fn split_family_name(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('"') { split_quoted_name(s) } else { split_metric_name(s) }
}

/// A sample that starts with `{`: its quoted name first in the braces (`{"my.metric"}` or
/// `{"my.metric",label="v"}`), then its labels; returns the name, the labels and the rest.
fn lex_braced_name(s: &str, blanks: bool) -> Result<(&str, LabelSet<'_>, &str), ParseErrorKind> {
    let skip = |s| if blanks { skip_blank(s) } else { s };
    let (name, after) = split_quoted_name(skip(&s[1..])).ok_or(ParseErrorKind::InvalidMetricName)?;
    let after = skip(after);
    if let Some(rest) = after.strip_prefix('}') {
        return Ok((name, LabelSet::default(), rest));
    }
    if !after.starts_with(',') || (!blanks && after[1..].starts_with('}')) {
        return Err(ParseErrorKind::InvalidLabel);
    }
    // `lex_labels` skips the first byte, here the comma.
    let (labels, rest) = lex_labels(after, blanks)?;
    Ok((name, labels, rest))
}

/// Splits a metric name off the front of `s`; `None` if `s` does not start with one.
fn split_metric_name(s: &str) -> Option<(&str, &str)> {
    let len = s.bytes().take_while(|b| is_name_char(*b)).count();
    match s.as_bytes().first() {
        Some(b) if len > 0 && !b.is_ascii_digit() => Some(s.split_at(len)),
        _ => None,
    }
}

/// Index of the closing unescaped `"` in `s` (which starts after the opening one).
fn quoted_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Checks the escapes of `s`: a backslash must be followed by one of `allowed`.
fn check_escapes(s: &str, allowed: &[u8]) -> Result<(), ParseErrorKind> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            match bytes.get(i + 1) {
                Some(b) if allowed.contains(b) => i += 2,
                _ => return Err(ParseErrorKind::InvalidEscape),
            }
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Splits a label set `{…}` off the front of `s` (which starts with `{`). `blanks`: the 0.0.4
/// grammar (blanks between tokens and a trailing comma allowed).
fn lex_labels(s: &str, blanks: bool) -> Result<(LabelSet<'_>, &str), ParseErrorKind> {
    use ParseErrorKind::{DuplicateLabel, InvalidLabel};
    let inner = &s[1..];
    let skip = |s| if blanks { skip_blank(s) } else { s };
    let mut rest = skip(inner);
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            let labels = LabelSet { raw: &inner[..inner.len() - rest.len()] };
            check_duplicate_labels(&labels).map_err(|()| DuplicateLabel)?;
            return Ok((labels, after));
        }
        if rest.starts_with('"') {
            // A quoted UTF-8 label name (Prometheus 3).
            let (name, after) = split_quoted_name(rest).ok_or(InvalidLabel)?;
            if name.starts_with("__") {
                return Err(InvalidLabel);
            }
            rest = skip(after);
        } else {
            let name_len = rest.bytes().take_while(|b| is_label_char(*b)).count();
            // Names starting with `__` are reserved (`__name__`, …) in both formats.
            if name_len == 0 || rest.as_bytes()[0].is_ascii_digit() || rest.starts_with("__") {
                return Err(InvalidLabel);
            }
            rest = skip(&rest[name_len..]);
        }
        rest = skip(rest.strip_prefix('=').ok_or(InvalidLabel)?);
        rest = rest.strip_prefix('"').ok_or(InvalidLabel)?;
        let end = quoted_end(rest).ok_or(InvalidLabel)?;
        check_escapes(&rest[..end], b"\\\"n")?;
        rest = skip(&rest[end + 1..]);
        if let Some(after) = rest.strip_prefix(',') {
            rest = skip(after);
            if !blanks && rest.starts_with('}') {
                return Err(InvalidLabel); // `,}`: OpenMetrics has no trailing comma
            }
        } else if !rest.starts_with('}') {
            return Err(InvalidLabel);
        }
    }
}

fn check_duplicate_labels(labels: &LabelSet<'_>) -> Result<(), ()> {
    for (i, (name, _)) in labels.iter().enumerate() {
        if labels.iter().skip(i + 1).any(|(n, _)| n == name) {
            return Err(());
        }
    }
    Ok(())
}

/// `[sign] (digits ["." digits*] | "." digits) [("e"|"E") [sign] digits]`: the decimal syntax
/// of OpenMetrics' `realnumber` and of Go's `ParseFloat`.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A sample value: the decimal syntax, `[sign]inf`/`[sign]infinity` and `nan` (case-insensitive).
/// 0.0.4 (Go's `ParseFloat`) also rejects decimals that overflow to an infinity.
fn parse_number(format: Format, s: &str) -> Option<Number<'_>> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let value = if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY }
    } else if s.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else if is_decimal(s) {
        let v: f64 = s.parse().ok()?;
        if v.is_infinite() && format == Format::Prometheus {
            return None;
        }
        v
    } else {
        return None;
    };
    Some(Number { raw: s, value })
}

/// An OpenMetrics timestamp (`realnumber`) or a 0.0.4 one (a 64-bit integer).
fn parse_timestamp(format: Format, s: &str) -> Option<Number<'_>> {
    match format {
        Format::OpenMetrics if is_decimal(s) => s.parse().ok().map(|value| Number { raw: s, value }),
        Format::OpenMetrics => None,
        _ => s.parse::<i64>().ok().map(|v| Number { raw: s, value: v as f64 }),
    }
}

/// One OpenMetrics line (without its line feed).
fn lex_openmetrics(line: &str) -> Result<Line<'_>, ParseErrorKind> {
    use ParseErrorKind::*;
    if line.is_empty() {
        return Err(BlankLine);
    }
    let Some(comment) = line.strip_prefix("# ") else {
        if line.starts_with('#') {
            return Err(InvalidLine);
        }
        return lex_openmetrics_sample(line).map(Line::Sample);
    };
    if comment == "EOF" {
        return Ok(Line::Eof);
    }
    let (keyword, rest) = comment.split_once(' ').ok_or(InvalidLine)?;
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Err(InvalidLine);
    }
    let (name, rest) = split_family_name(rest).ok_or(InvalidMetricName)?;
    let text = rest.strip_prefix(' ').ok_or(if rest.is_empty() { InvalidLine } else { InvalidMetricName })?;
    match keyword {
        "HELP" => {
            check_escapes(text, b"\\\"n")?;
            if quoted_end(text).is_some() {
                return Err(InvalidCharacter);
            }
            Ok(Line::Help { name, help: Escaped(text) })
        }
        "TYPE" => {
            let family_type = FamilyType::parse(Format::OpenMetrics, text).ok_or(InvalidType)?;
            Ok(Line::Type { name, family_type })
        }
        _ => {
            if !text.bytes().all(is_name_char) {
                return Err(InvalidUnit);
            }
            Ok(Line::Unit { name, unit: text })
        }
    }
}

/// `name [labels] SP number [SP timestamp] [SP "#" SP labels SP number [SP timestamp]]`
fn lex_openmetrics_sample(line: &str) -> Result<Sample<'_>, ParseErrorKind> {
    use ParseErrorKind::*;
    let (name, labels, rest) = if line.starts_with('{') {
        lex_braced_name(line, false)?
    } else {
        let (name, rest) = split_metric_name(line).ok_or(InvalidMetricName)?;
        let (labels, rest) = if rest.starts_with('{') { lex_labels(rest, false)? } else { (LabelSet::default(), rest) };
        (name, labels, rest)
    };
    let rest = rest.strip_prefix(' ').ok_or(if labels.raw.is_empty() { InvalidMetricName } else { InvalidLine })?;
    let (value, rest) = match rest.split_once(' ') {
        Some((value, rest)) => (value, Some(rest)),
        None => (rest, None),
    };
    let value = parse_number(Format::OpenMetrics, value).ok_or(InvalidValue)?;
    let mut sample = Sample { name, labels, value, timestamp: None, exemplar: None };
    let Some(rest) = rest else { return Ok(sample) };
    let exemplar = if let Some(ex) = rest.strip_prefix("# ") {
        Some(ex)
    } else {
        let (ts, after) = match rest.split_once(' ') {
            Some((ts, after)) => (ts, Some(after)),
            None => (rest, None),
        };
        sample.timestamp = Some(parse_timestamp(Format::OpenMetrics, ts).ok_or(InvalidTimestamp)?);
        match after {
            None => None,
            Some(after) => Some(after.strip_prefix("# ").ok_or(InvalidExemplar)?),
        }
    };
    if let Some(ex) = exemplar {
        sample.exemplar = Some(lex_exemplar(ex)?);
    }
    Ok(sample)
}

/// `labels SP number [SP timestamp]` after `# `.
fn lex_exemplar(s: &str) -> Result<Exemplar<'_>, ParseErrorKind> {
    use ParseErrorKind::*;
    if !s.starts_with('{') {
        return Err(InvalidExemplar);
    }
    let (labels, rest) = lex_labels(s, false)?;
    let rest = rest.strip_prefix(' ').ok_or(InvalidExemplar)?;
    let (value, ts) = match rest.split_once(' ') {
        Some((v, ts)) => (v, Some(ts)),
        None => (rest, None),
    };
    let value = parse_number(Format::OpenMetrics, value).ok_or(InvalidExemplar)?;
    let timestamp = match ts {
        Some(ts) => Some(parse_timestamp(Format::OpenMetrics, ts).ok_or(InvalidExemplar)?),
        None => None,
    };
    let len: usize = labels.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
    if len > 128 {
        return Err(ExemplarTooLong);
    }
    Ok(Exemplar { labels, value, timestamp })
}

/// One 0.0.4 line (without its line feed); `None` for comments and blank lines.
fn lex_text(line: &str) -> Result<Option<Line<'_>>, ParseErrorKind> {
    use ParseErrorKind::*;
    let line = skip_blank(line);
    if line.is_empty() {
        return Ok(None);
    }
    let Some(comment) = line.strip_prefix('#') else {
        return lex_text_sample(line).map(|s| Some(Line::Sample(s)));
    };
    // As Go's parser: only `# HELP name …` and `# TYPE name …` mean anything; other comments,
    // and HELP/TYPE lines that stop before the text, are ignored.
    let comment = skip_blank(comment);
    let keyword_len = comment.bytes().take_while(|b| !is_blank(*b)).count();
    let (keyword, rest) = comment.split_at(keyword_len);
    if !matches!(keyword, "HELP" | "TYPE") || rest.is_empty() {
        return Ok(None);
    }
    let rest = skip_blank(rest);
    if rest.is_empty() {
        return Ok(None);
    }
    let (name, rest) = split_family_name(rest).ok_or(InvalidMetricName)?;
    if rest.is_empty() {
        return Ok(None);
    }
    if !is_blank(rest.as_bytes()[0]) {
        return Err(InvalidMetricName);
    }
    let text = skip_blank(rest);
    if keyword == "HELP" {
        check_escapes(text, b"\\n")?;
        Ok(Some(Line::Help { name, help: Escaped(text) }))
    } else {
        let family_type = FamilyType::parse(Format::Prometheus, text.trim_end_matches([' ', '\t']));
        Ok(Some(Line::Type { name, family_type: family_type.ok_or(InvalidType)? }))
    }
}

/// `name [labels] value [timestamp]` with blanks between tokens.
fn lex_text_sample(line: &str) -> Result<Sample<'_>, ParseErrorKind> {
    use ParseErrorKind::*;
    let (name, labels, mut rest) = if line.starts_with('{') {
        let (name, labels, after) = lex_braced_name(line, true)?;
        (name, labels, skip_blank(after))
    } else {
        let (name, after_name) = split_metric_name(line).ok_or(InvalidMetricName)?;
        let mut rest = skip_blank(after_name);
        let labels = if rest.starts_with('{') {
            let (labels, after) = lex_labels(rest, true)?;
            rest = skip_blank(after);
            labels
        } else {
            if rest.len() == after_name.len() && !rest.is_empty() {
                return Err(InvalidMetricName);
            }
            LabelSet::default()
        };
        (name, labels, rest)
    };
    let value_len = rest.bytes().take_while(|b| !is_blank(*b)).count();
    let value = parse_number(Format::Prometheus, &rest[..value_len]).ok_or(InvalidValue)?;
    rest = skip_blank(&rest[value_len..]);
    let timestamp = if rest.is_empty() {
        None
    } else {
        let ts_len = rest.bytes().take_while(|b| !is_blank(*b)).count();
        let ts = parse_timestamp(Format::Prometheus, &rest[..ts_len]).ok_or(InvalidTimestamp)?;
        if !skip_blank(&rest[ts_len..]).is_empty() {
            return Err(InvalidLine);
        }
        Some(ts)
    };
    Ok(Sample { name, labels, value, timestamp, exemplar: None })
}

/// What a validated exposition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Summary {
    /// Number of families (with or without samples).
    pub families: usize,
    /// Number of sample lines.
    pub samples: usize,
}

/// Checks a whole exposition.
///
/// # Errors
/// The first [`ParseError`].
pub fn validate(format: Format, text: &str) -> Result<Summary, ParseError> {
    let mut summary = Summary::default();
    for event in Parser::new(format, text) {
        match event? {
            Event::Sample { .. } => summary.samples += 1,
            Event::Help { .. } | Event::Type { .. } | Event::Unit { .. } | Event::Eof => {}
        }
    }
    summary.families = Families::new(format, text).count();
    Ok(summary)
}

/// Checks a whole exposition given as bytes.
///
/// # Errors
/// [`ParseErrorKind::InvalidUtf8`] on the line holding the first bad byte, or the first
/// [`ParseError`] of [`validate`].
pub fn validate_bytes(format: Format, bytes: &[u8]) -> Result<Summary, ParseError> {
    match core::str::from_utf8(bytes) {
        Ok(text) => validate(format, text),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count();
            Err(ParseError::new(line, ParseErrorKind::InvalidUtf8))
        }
    }
}

/// What the [`Parser`] yields.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A family's help text.
    Help {
        /// The family name.
        family: &'a str,
        /// The text.
        help: Escaped<'a>,
    },
    /// A family's type.
    Type {
        /// The family name.
        family: &'a str,
        /// The type.
        family_type: FamilyType,
    },
    /// A family's unit (OpenMetrics).
    Unit {
        /// The family name.
        family: &'a str,
        /// The unit.
        unit: &'a str,
    },
    /// A sample, with the family it belongs to.
    Sample {
        /// The family name (the sample name without `suffix`).
        family: &'a str,
        /// The family's type ([`FamilyType::Unknown`] without a TYPE line).
        family_type: FamilyType,
        /// The suffix after the family name: `""`, `_total`, `_bucket`, `_count`, `_sum`, …
        suffix: &'a str,
        /// The sample.
        sample: Sample<'a>,
    },
    /// `# EOF` (OpenMetrics).
    Eof,
}

#[derive(Debug, Clone, Copy)]
struct FamilyState<'a> {
    name: &'a str,
    family_type: FamilyType,
    typed: bool,
    help: bool,
    unit: Option<&'a str>,
    /// Offset of the family's first line.
    start: usize,
    /// Offset of its first sample, once it has one.
    first_sample: Option<usize>,
}

impl<'a> FamilyState<'a> {
    fn new(name: &'a str, start: usize) -> Self {
        Self {
            name,
            family_type: FamilyType::Unknown,
            typed: false,
            help: false,
            unit: None,
            start,
            first_sample: None,
        }
    }

    /// The suffix of `sample` if it belongs to this family.
    fn suffix_of(&self, format: Format, sample: &'a str) -> Option<&'a str> {
        let suffix = sample.strip_prefix(self.name)?;
        self.family_type.suffixes(format).contains(&suffix).then_some(suffix)
    }

    /// The label that varies within one series of this family (`le`, `quantile`, the state).
    fn series_label(&self) -> Option<&'a str> {
        match self.family_type {
            FamilyType::Histogram | FamilyType::GaugeHistogram => Some("le"),
            FamilyType::Summary => Some("quantile"),
            FamilyType::StateSet => Some(self.name),
            _ => None,
        }
    }
}

/// Per-series state of the histogram and summary checks.
#[derive(Debug, Clone, Copy)]
struct Series<'a> {
    labels: LabelSet<'a>,
    /// Offset of the series' first sample.
    start: usize,
    timestamped: bool,
    last_bound: Option<f64>,
    last_bucket: f64,
    inf: Option<f64>,
    count: Option<f64>,
    sum: Option<f64>,
    negative_buckets: bool,
    /// Bit per suffix seen (duplicate detection).
    seen: u32,
}

/// Validates an exposition line by line; see the [module docs](self).
///
/// Yields [`Event`]s until the first error, which it yields and then ends. Without an error,
/// the exposition is valid once the iterator is exhausted.
///
/// Stricter than the reference parsers, on purpose:
/// * numbers in hexadecimal or with `_` (which Go's `ParseFloat` accepts in 0.0.4) are rejected;
/// * in 0.0.4 too, the samples of one series (label set, ignoring `le`/`quantile`) must be
///   contiguous and a histogram series must have a `+Inf` bucket;
/// * a series may not repeat a sample even with another timestamp (OpenMetrics would allow
///   several points of one series with distinct timestamps).
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    text: &'a str,
    format: Format,
    lines: Lines<'a>,
    family: Option<FamilyState<'a>>,
    series: Option<Series<'a>>,
    eof: bool,
    done: bool,
}

impl<'a> Parser<'a> {
    /// A parser of `text` in `format`.
    pub const fn new(format: Format, text: &'a str) -> Self {
        Self { text, format, lines: Lines::new(format, text), family: None, series: None, eof: false, done: false }
    }

    fn om(&self) -> bool {
        self.format == Format::OpenMetrics
    }

    fn step(&mut self, line: Line<'a>) -> Result<Event<'a>, ParseErrorKind> {
        if self.eof {
            return Err(ParseErrorKind::AfterEof);
        }
        let start = self.lines.line_start();
        match line {
            Line::Eof => {
                self.close_family()?;
                self.eof = true;
                Ok(Event::Eof)
            }
            Line::Help { name, help } => {
                self.metadata(name, start, |f| core::mem::replace(&mut f.help, true))?;
                Ok(Event::Help { family: name, help })
            }
            Line::Type { name, family_type } => {
                self.metadata(name, start, |f| {
                    f.family_type = family_type;
                    core::mem::replace(&mut f.typed, true)
                })?;
                Ok(Event::Type { family: name, family_type })
            }
            Line::Unit { name, unit } => {
                self.metadata(name, start, |f| f.unit.replace(unit).is_some())?;
                Ok(Event::Unit { family: name, unit })
            }
            Line::Sample(sample) => self.sample(sample, start),
        }
    }

    /// A metadata line for `name`; `set` records it and returns whether it was already set.
    fn metadata(
        &mut self,
        name: &'a str,
        start: usize,
        set: impl FnOnce(&mut FamilyState<'a>) -> bool,
    ) -> Result<(), ParseErrorKind> {
        match &mut self.family {
            Some(f) if f.name == name => {
                if f.first_sample.is_some() {
                    return Err(ParseErrorKind::MetadataAfterSamples);
                }
                if set(f) {
                    return Err(ParseErrorKind::DuplicateMetadata);
                }
                Ok(())
            }
            _ => {
                self.close_family()?;
                let mut f = FamilyState::new(name, start);
                set(&mut f);
                self.family = Some(f);
                Ok(())
            }
        }
    }

    fn sample(&mut self, sample: Sample<'a>, start: usize) -> Result<Event<'a>, ParseErrorKind> {
        use ParseErrorKind::*;
        let suffix = match &self.family {
            Some(f) => match f.suffix_of(self.format, sample.name) {
                Some(suffix) => Some(suffix),
                None if sample.name == f.name => return Err(InvalidSampleName),
                None => None,
            },
            None => None,
        };
        let suffix = match suffix {
            Some(suffix) => suffix,
            None => {
                self.close_family()?;
                self.family = Some(FamilyState::new(sample.name, start));
                ""
            }
        };
        let Some(mut family) = self.family else { return Err(InvalidLine) };
        if family.first_sample.is_none() {
            family.first_sample = Some(start);
            self.family = Some(family);
        }
        self.check_sample(&family, suffix, &sample)?;
        let ignore = family.series_label();
        let same_series = self.series.as_ref().is_some_and(|s| s.labels.same_as(&sample.labels, ignore));
        if !same_series {
            self.close_series()?;
            if self.seen_in_family(&family, &sample.labels, ignore, start) {
                return Err(InvalidGrouping);
            }
            self.series = Some(Series {
                labels: sample.labels,
                start,
                timestamped: sample.timestamp.is_some(),
                last_bound: None,
                last_bucket: 0.0,
                inf: None,
                count: None,
                sum: None,
                negative_buckets: false,
                seen: 0,
            });
        }
        self.series_sample(&family, suffix, &sample, start)?;
        Ok(Event::Sample { family: family.name, family_type: family.family_type, suffix, sample })
    }

    /// Checks of one sample on its own.
    fn check_sample(&self, family: &FamilyState<'a>, suffix: &str, sample: &Sample<'a>) -> Result<(), ParseErrorKind> {
        use ParseErrorKind::*;
        let om = self.om();
        let value = sample.value.as_f64();
        let t = family.family_type;
        if t.is_histogram() && suffix == "_bucket" {
            let le = sample.labels.get("le").ok_or(InvalidLe)?;
            let bound = parse_number(self.format, le.raw()).ok_or(InvalidLe)?.as_f64();
            if bound.is_nan() || (om && bound.is_infinite() && le.raw() != if bound > 0.0 { "+Inf" } else { "-Inf" }) {
                return Err(InvalidLe);
            }
        }
        if t == FamilyType::Summary && suffix.is_empty() {
            let q = sample.labels.get("quantile").ok_or(InvalidQuantile)?;
            let q = parse_number(self.format, q.raw()).ok_or(InvalidQuantile)?.as_f64();
            if q.is_nan() || (om && !(0.0..=1.0).contains(&q)) {
                return Err(InvalidQuantile);
            }
            if om && value < 0.0 {
                return Err(InvalidCounterValue);
            }
        }
        if !om {
            return Ok(());
        }
        if t == FamilyType::StateSet && (sample.labels.get(family.name).is_none() || !(value == 0.0 || value == 1.0)) {
            return Err(InvalidStateSet);
        }
        if t == FamilyType::Info && value != 1.0 {
            return Err(InvalidInfo);
        }
        if matches!(suffix, "_bucket" | "_count" | "_gcount") && value % 1.0 != 0.0 {
            return Err(NotInteger);
        }
        let counter_like = matches!(suffix, "_total" | "_sum" | "_count" | "_bucket" | "_gcount" | "_gsum");
        if counter_like && (value.is_nan() || (value < 0.0 && suffix != "_gsum")) {
            return Err(InvalidCounterValue);
        }
        if sample.exemplar.is_some() {
            let allowed = (t.is_histogram() && suffix == "_bucket") || (t == FamilyType::Counter && suffix == "_total");
            if !allowed {
                return Err(ExemplarNotAllowed);
            }
        }
        Ok(())
    }

    /// Checks of a sample within its series.
    fn series_sample(
        &mut self,
        family: &FamilyState<'a>,
        suffix: &'a str,
        sample: &Sample<'a>,
        start: usize,
    ) -> Result<(), ParseErrorKind> {
        use ParseErrorKind::*;
        let om = self.om();
        let Some(series) = &mut self.series else { return Err(InvalidLine) };
        if om && series.timestamped != sample.timestamp.is_some() {
            return Err(TimestampMix);
        }
        let value = sample.value.as_f64();
        match (family.family_type, suffix) {
            (t, "_bucket") if t.is_histogram() => {
                let le = sample.labels.get("le").map(|le| le.raw()).unwrap_or_default();
                let bound = parse_number(self.format, le).ok_or(InvalidLe)?.as_f64();
                if series.last_bound.is_some_and(|last| last >= bound) {
                    return Err(BucketsOutOfOrder);
                }
                if value < series.last_bucket || value.is_nan() {
                    return Err(BucketsNotCumulative);
                }
                series.last_bound = Some(bound);
                series.last_bucket = value;
                series.negative_buckets |= bound < 0.0;
                if bound == f64::INFINITY {
                    series.inf = Some(value);
                }
                Ok(())
            }
            (FamilyType::Summary, "") => {
                let q = sample.labels.get("quantile").map(|q| q.raw()).unwrap_or_default();
                let q = parse_number(self.format, q).ok_or(InvalidQuantile)?.as_f64();
                if series.last_bound.is_some_and(|last| last >= q) {
                    return Err(InvalidQuantile);
                }
                series.last_bound = Some(q);
                Ok(())
            }
            (FamilyType::StateSet, _) => {
                let (state, from) = (sample.labels.get(family.name), series.start);
                let region = &self.text[from..start];
                let repeated = Lines::new(self.format, region).any(|l| match l {
                    Ok(Line::Sample(s)) => match (s.labels.get(family.name), state) {
                        (Some(a), Some(b)) => a.eq_unescaped(&b),
                        _ => false,
                    },
                    _ => false,
                });
                if repeated { Err(DuplicateSample) } else { Ok(()) }
            }
            (_, suffix) => {
                let bit =
                    1u32 << family.family_type.suffixes(self.format).iter().position(|s| *s == suffix).unwrap_or(31);
                if series.seen & bit != 0 {
                    return Err(DuplicateSample);
                }
                series.seen |= bit;
                match suffix {
                    "_count" | "_gcount" => series.count = Some(value),
                    "_sum" | "_gsum" => series.sum = Some(value),
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// Whether a sample of `family` before `end` belongs to the series `labels` (an earlier,
    /// finished series: the series would not be contiguous).
    fn seen_in_family(
        &self,
        family: &FamilyState<'a>,
        labels: &LabelSet<'_>,
        ignore: Option<&str>,
        end: usize,
    ) -> bool {
        let Some(from) = family.first_sample else { return false };
        if from >= end {
            return false;
        }
        Lines::new(self.format, &self.text[from..end]).any(|l| match l {
            Ok(Line::Sample(s)) => s.labels.same_as(labels, ignore),
            _ => false,
        })
    }

    fn close_series(&mut self) -> Result<(), ParseErrorKind> {
        use ParseErrorKind::*;
        let (Some(series), Some(family)) = (self.series.take(), &self.family) else { return Ok(()) };
        if !family.family_type.is_histogram() {
            return Ok(());
        }
        let inf = series.inf.ok_or(MissingInfBucket)?;
        if series.count.is_some_and(|c| c != inf) {
            return Err(CountMismatch);
        }
        if self.om() {
            if series.count.is_some() != series.sum.is_some() {
                return Err(CountWithoutSum);
            }
            if family.family_type == FamilyType::Histogram && series.negative_buckets && series.sum.is_some() {
                return Err(NegativeBucketsWithSum);
            }
            if family.family_type == FamilyType::GaugeHistogram
                && !series.negative_buckets
                && series.sum.is_some_and(|s| s < 0.0)
            {
                return Err(InvalidCounterValue);
            }
        }
        Ok(())
    }

    fn close_family(&mut self) -> Result<(), ParseErrorKind> {
        self.close_series()?;
        let Some(family) = self.family.take() else { return Ok(()) };
        if let Some(unit) = family.unit.filter(|u| !u.is_empty()) {
            let matches = family.name.strip_suffix(unit).is_some_and(|n| n.ends_with('_'));
            if !matches || matches!(family.family_type, FamilyType::Info | FamilyType::StateSet) {
                return Err(ParseErrorKind::InvalidUnit);
            }
        }
        let names = |f: &FamilyState<'a>| {
            let s = f.family_type.suffixes(self.format);
            core::iter::once("").chain(s.iter().copied().filter(|s| !s.is_empty()))
        };
        for earlier in Families::new(self.format, &self.text[..family.start]) {
            for a in names(&earlier) {
                for b in names(&family) {
                    if concat_eq(earlier.name, a, family.name, b) {
                        return Err(ParseErrorKind::DuplicateFamily);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether `a + a2 == b + b2`.
fn concat_eq(a: &str, a2: &str, b: &str, b2: &str) -> bool {
    a.len() + a2.len() == b.len() + b2.len() && a.bytes().chain(a2.bytes()).eq(b.bytes().chain(b2.bytes()))
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Event<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match self.lines.next() {
            Some(Ok(line)) => self.step(line).map_err(|kind| ParseError::new(self.lines.line_number(), kind)),
            Some(Err(e)) => Err(e),
            None => {
                self.done = true;
                let end = self.lines.line_number() + 1;
                if let Err(kind) = self.close_family() {
                    return Some(Err(ParseError::new(end, kind)));
                }
                if self.om() && !self.eof {
                    return Some(Err(ParseError::new(end, ParseErrorKind::MissingEof)));
                }
                return None;
            }
        };
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// The families of an already validated prefix, in order (no checks).
struct Families<'a> {
    format: Format,
    lines: Lines<'a>,
    current: Option<FamilyState<'a>>,
}

impl<'a> Families<'a> {
    fn new(format: Format, text: &'a str) -> Self {
        Self { format, lines: Lines::new(format, text), current: None }
    }
}

impl<'a> Iterator for Families<'a> {
    type Item = FamilyState<'a>;

    fn next(&mut self) -> Option<FamilyState<'a>> {
        loop {
            let Some(Ok(line)) = self.lines.next() else { return self.current.take() };
            let start = self.lines.line_start();
            let (name, family_type) = match line {
                Line::Help { name, .. } | Line::Unit { name, .. } => (name, None),
                Line::Type { name, family_type } => (name, Some(family_type)),
                Line::Sample(s) => match &mut self.current {
                    Some(f) if f.suffix_of(self.format, s.name).is_some() => {
                        f.first_sample.get_or_insert(start);
                        continue;
                    }
                    _ => (s.name, None),
                },
                Line::Eof => return self.current.take(),
            };
            match &mut self.current {
                Some(f) if f.name == name => {
                    if let Some(t) = family_type {
                        f.family_type = t;
                    }
                }
                _ => {
                    let mut f = FamilyState::new(name, start);
                    if let Some(t) = family_type {
                        f.family_type = t;
                    }
                    if let Some(done) = self.current.replace(f) {
                        return Some(done);
                    }
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;

    use super::*;
    use ParseErrorKind::*;

    const OM: Format = Format::OpenMetrics;
    const TEXT: Format = Format::Prometheus;

    fn err(format: Format, text: &str) -> (usize, ParseErrorKind) {
        let e = validate(format, text).expect_err(text);
        (e.line, e.kind)
    }

    fn ok(format: Format, text: &str) -> Summary {
        validate(format, text).unwrap_or_else(|e| panic!("{e} in {text:?}"))
    }

    #[test]
    fn empty_expositions() {
        assert_eq!(ok(TEXT, ""), Summary { families: 0, samples: 0 });
        assert_eq!(ok(OM, "# EOF\n").samples, 0);
        assert_eq!(ok(OM, "# EOF").samples, 0, "the final line feed is optional after # EOF");
        assert_eq!(err(OM, ""), (1, MissingEof));
    }

    #[test]
    fn eof_must_be_last() {
        assert_eq!(err(OM, "# EOF\na 1\n"), (2, AfterEof));
        assert_eq!(err(OM, "# EOF\n# EOF\n"), (2, AfterEof));
        assert_eq!(err(OM, "# EOF\n\n"), (2, BlankLine));
        assert_eq!(err(OM, "a 1\n"), (2, MissingEof));
        assert_eq!(err(OM, "a 1\n# EOF \n"), (2, InvalidLine));
        assert_eq!(err(OM, "a 1\n#EOF\n"), (2, InvalidLine));
    }

    #[test]
    fn last_line_needs_a_line_feed() {
        assert_eq!(err(TEXT, "a 1"), (1, MissingNewline));
        assert_eq!(err(OM, "a 1\n# EOF\n# x"), (3, MissingNewline));
    }

    #[test]
    fn openmetrics_counters_need_total() {
        let text = "# TYPE c counter\nc_total 1\nc_created 1.5e9\n# EOF\n";
        assert_eq!(ok(OM, text), Summary { families: 1, samples: 2 });
        assert_eq!(err(OM, "# TYPE c counter\nc 1\n# EOF\n"), (2, InvalidSampleName));
        // A sample of another name starts an unknown family, which must not clash.
        assert_eq!(err(OM, "# TYPE c counter\nc_total 1\nc_total 2\n# EOF\n"), (3, DuplicateSample));
        // 0.0.4 counters keep their name.
        assert_eq!(ok(TEXT, "# TYPE c_total counter\nc_total 1\n").samples, 1);
    }

    #[test]
    fn escapes_per_format() {
        let label = "a{l=\"x\\\\y\\\"z\\n\"} 1\n";
        assert_eq!(ok(TEXT, label).samples, 1);
        assert_eq!(err(TEXT, "a{l=\"\\t\"} 1\n"), (1, InvalidEscape));
        assert_eq!(err(OM, "a{l=\"\\t\"} 1\n# EOF\n"), (1, InvalidEscape));
        // HELP: 0.0.4 escapes only `\\` and `\n`; `"` is plain.
        assert_eq!(ok(TEXT, "# HELP a say \"hi\" \\\\ \\n\na 1\n").samples, 1);
        assert_eq!(err(TEXT, "# HELP a \\\"\n"), (1, InvalidEscape));
        // OpenMetrics HELP escapes `"` too, and a raw `"` is not allowed.
        assert_eq!(ok(OM, "# HELP a say \\\"hi\\\" \\\\ \\n\n# EOF\n").families, 1);
        assert_eq!(err(OM, "# HELP a say \"hi\"\n# EOF\n"), (1, InvalidCharacter));
        assert_eq!(err(OM, "# HELP a trailing \\\n# EOF\n"), (1, InvalidEscape));
    }

    #[test]
    fn help_text_is_unescaped_lazily() {
        let mut p = Parser::new(OM, "# HELP a x\\\\y\\\"z\\nw\n# EOF\n");
        let Some(Ok(Event::Help { family, help })) = p.next() else { panic!() };
        assert_eq!(family, "a");
        assert!(help.eq_str("x\\y\"z\nw"));
        assert_eq!(help.raw(), "x\\\\y\\\"z\\nw");
        assert!(p.all(|e| e.is_ok()));
    }

    #[test]
    fn help_leading_blanks_are_separators_in_text_format() {
        let mut p = Parser::new(TEXT, "# HELP a \t  x \n");
        let Some(Ok(Event::Help { help, .. })) = p.next() else { panic!() };
        assert_eq!(help.raw(), "x ", "trailing blanks are kept, as Go's parser does");
        let mut p = Parser::new(OM, "# HELP a  x\n# EOF\n");
        let Some(Ok(Event::Help { help, .. })) = p.next() else { panic!() };
        assert_eq!(help.raw(), " x", "OpenMetrics has exactly one separator");
    }

    #[test]
    fn text_format_comments_and_blanks() {
        let text = "\n  \t\n# just a comment\n#\n# HELP\n# HELP x\n# TYPE y\n  # TYPE a gauge \na 1\n";
        assert_eq!(ok(TEXT, text), Summary { families: 1, samples: 1 });
        assert_eq!(err(TEXT, "# TYPE a gauge2\n"), (1, InvalidType));
        assert_eq!(err(TEXT, "# TYPE a unknown\n"), (1, InvalidType), "0.0.4 says untyped");
        assert_eq!(err(OM, "# TYPE a untyped\n# EOF\n"), (1, InvalidType), "OpenMetrics says unknown");
        assert_eq!(err(OM, "# comment\n# EOF\n"), (1, InvalidLine));
        assert_eq!(err(TEXT, "# HELP a-b x\n"), (1, InvalidMetricName));
    }

    #[test]
    fn text_format_whitespace() {
        let text = "  a { l = \"v\" , m=\"w\", } \t 1.5 \t -17 \t\n";
        let mut p = Parser::new(TEXT, text);
        let Some(Ok(Event::Sample { sample, .. })) = p.next() else { panic!() };
        assert_eq!(sample.name, "a");
        assert_eq!(sample.labels.len(), 2);
        assert!(sample.labels.get("m").unwrap().eq_str("w"));
        assert_eq!(sample.value.as_f64(), 1.5);
        assert_eq!(sample.timestamp.unwrap().as_i64(), Some(-17));
        assert_eq!(err(TEXT, "a 1 2 3\n"), (1, InvalidLine));
        assert_eq!(err(TEXT, "a 1 1.5\n"), (1, InvalidTimestamp), "0.0.4 timestamps are integers");
        assert_eq!(err(TEXT, "a\n"), (1, InvalidValue));
        assert_eq!(err(TEXT, "a{,} 1\n"), (1, InvalidLabel));
        // OpenMetrics allows exactly one space and no trailing comma.
        assert_eq!(err(OM, "a  1\n# EOF\n"), (1, InvalidValue));
        assert_eq!(err(OM, "a{l=\"v\",} 1\n# EOF\n"), (1, InvalidLabel));
        assert_eq!(err(OM, "a{l = \"v\"} 1\n# EOF\n"), (1, InvalidLabel));
        assert_eq!(err(OM, "a 1 \n# EOF\n"), (1, InvalidTimestamp));
        assert_eq!(err(OM, " a 1\n# EOF\n"), (1, InvalidMetricName));
    }

    #[test]
    fn numbers() {
        for v in ["1", "-1", "+1", "1.", ".5", "1e5", "1E-5", "-0.0", "+Inf", "-Inf", "inf", "-Infinity", "NaN", "nan"]
        {
            ok(TEXT, &format_sample(v));
        }
        for v in ["", ".", "e5", "1e", "1e+", "0x1p3", "1_000", "+NaN", "Infx", "1.2.3", "--1", "1e400"] {
            assert_eq!(err(TEXT, &format_sample(v)), (1, InvalidValue), "{v:?}");
        }
        assert!(validate(OM, "a 1e400\n# EOF\n").is_ok(), "OpenMetrics reads overflow as +Inf");
        assert_eq!(err(OM, "a 1 NaN\n# EOF\n"), (1, InvalidTimestamp));
        assert_eq!(ok(OM, "a 1 1.5e9\n# EOF\n").samples, 1);
    }

    fn format_sample(v: &str) -> std::string::String {
        std::format!("a {v}\n")
    }

    #[test]
    fn u64_values_read_back_exactly() {
        let mut p = Parser::new(TEXT, "a 18446744073709551615\n");
        let Some(Ok(Event::Sample { sample, .. })) = p.next() else { panic!() };
        assert_eq!(sample.value.as_u64(), Some(u64::MAX));
        assert_eq!(sample.value.as_i64(), None);
    }

    #[test]
    fn histogram_rules() {
        let good = "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n";
        assert_eq!(ok(TEXT, good).samples, 5);
        assert_eq!(ok(OM, &std::format!("{good}# EOF\n")).samples, 5);
        let cases: &[(&str, ParseErrorKind)] = &[
            (
                "h_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                BucketsOutOfOrder,
            ),
            (
                "h_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
                BucketsOutOfOrder,
            ),
            ("h_bucket{le=\"+Inf\"} 1\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", BucketsOutOfOrder),
            ("h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", BucketsNotCumulative),
            ("h_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", MissingInfBucket),
            ("h_sum 1\nh_count 1\n", MissingInfBucket),
            ("h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", CountMismatch),
            ("h_bucket{le=\"NaN\"} 2\n", InvalidLe),
            ("h_bucket{le=\"x\"} 2\n", InvalidLe),
            ("h_bucket 2\n", InvalidLe),
            ("h 2\n", InvalidSampleName),
            ("h_count 1\nh_count 1\n", DuplicateSample),
        ];
        for (body, kind) in cases {
            for format in [TEXT, OM] {
                let text = std::format!("# TYPE h histogram\n{body}{}", if format == OM { "# EOF\n" } else { "" });
                assert_eq!(validate(format, &text).map_err(|e| e.kind), Err(*kind), "{format:?} {body}");
            }
        }
    }

    #[test]
    fn openmetrics_histogram_extras() {
        let h = |body: &str| std::format!("# TYPE h histogram\n{body}# EOF\n");
        assert_eq!(err(OM, &h("h_bucket{le=\"Inf\"} 1\n")).1, InvalidLe, "+Inf is canonical");
        assert_eq!(err(OM, &h("h_bucket{le=\"+Inf\"} 1.5\n")).1, NotInteger);
        assert_eq!(err(OM, &h("h_bucket{le=\"+Inf\"} 1\nh_count 1\n")).1, CountWithoutSum);
        assert_eq!(err(OM, &h("h_bucket{le=\"+Inf\"} 1\nh_sum 1\n")).1, CountWithoutSum);
        assert_eq!(err(OM, &h("h_bucket{le=\"+Inf\"} 1\nh_sum NaN\nh_count 1\n")).1, InvalidCounterValue);
        assert_eq!(
            err(OM, &h("h_bucket{le=\"-1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")).1,
            NegativeBucketsWithSum
        );
        assert_eq!(ok(OM, &h("h_bucket{le=\"-1\"} 0\nh_bucket{le=\"+Inf\"} 1\n")).samples, 2);
        // 0.0.4 has none of these rules.
        assert_eq!(ok(TEXT, "# TYPE h histogram\nh_bucket{le=\"Inf\"} 1\nh_sum -1\nh_count 1\n").samples, 3);
    }

    #[test]
    fn series_must_be_contiguous() {
        let text = "# TYPE h histogram\nh_bucket{a=\"1\",le=\"+Inf\"} 1\nh_bucket{a=\"2\",le=\"+Inf\"} 1\nh_count{a=\"1\"} 1\n";
        assert_eq!(err(TEXT, text), (4, InvalidGrouping));
        assert_eq!(err(TEXT, "g{a=\"1\"} 1\ng{a=\"2\"} 1\ng{a=\"1\"} 1\n"), (3, InvalidGrouping));
        assert_eq!(
            err(TEXT, "g{a=\"1\",b=\"2\"} 1\ng{b=\"2\",a=\"1\"} 1\n"),
            (2, DuplicateSample),
            "order-insensitive"
        );
        assert_eq!(err(TEXT, "g{a=\"\\\\\"} 1\ng{a=\"\\\\\"} 1\n"), (2, DuplicateSample));
        assert_eq!(ok(TEXT, "g{a=\"1\"} 1\ng{a=\"1\",b=\"\"} 1\n").samples, 2);
    }

    #[test]
    fn families_are_unique_and_typed_first() {
        assert_eq!(err(TEXT, "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n"), (6, DuplicateFamily));
        assert_eq!(err(TEXT, "a 1\nb 1\na 2\n"), (4, DuplicateFamily));
        assert_eq!(err(TEXT, "a 1\n# TYPE a gauge\n"), (2, MetadataAfterSamples));
        assert_eq!(err(TEXT, "# TYPE a gauge\n# TYPE a gauge\n"), (2, DuplicateMetadata));
        assert_eq!(err(TEXT, "# HELP a x\n# HELP a y\n"), (2, DuplicateMetadata));
        assert_eq!(ok(TEXT, "# HELP a x\n# TYPE a gauge\na 1\n").families, 1);
        assert_eq!(ok(TEXT, "# TYPE a gauge\n# HELP a x\na 1\n").families, 1);
        // Names clash through a type's suffixes.
        assert_eq!(
            err(TEXT, "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n# TYPE h_count gauge\nh_count 1\n").1,
            DuplicateFamily
        );
        assert_eq!(err(OM, "# TYPE c counter\nc_total 1\n# TYPE c_total gauge\nc_total 1\n# EOF\n").1, DuplicateFamily);
    }

    /// A legacy name quoted (`{"a"}`, `"b"="1"`) is the same name unquoted: Prometheus 3 reads
    /// both as one series, so a second sample of it is a duplicate and its family is one family.
    #[test]
    fn a_quoted_legacy_name_is_the_name() {
        for (format, text, kind) in [
            (OM, "# TYPE a counter\na_total 1\n{\"a_total\"} 2\n# EOF\n", DuplicateSample),
            (OM, "# TYPE a gauge\na{b=\"1\"} 1\na{\"b\"=\"1\"} 2\n# EOF\n", DuplicateSample),
            (TEXT, "# TYPE a gauge\na{b=\"1\"} 1\n{\"a\",\"b\"=\"1\"} 2\n", DuplicateSample),
            (OM, "# TYPE a gauge\na{b=\"1\"} 1\n{\"a\",b=\"1\"} 2\n# EOF\n", DuplicateSample),
            (OM, "# TYPE a gauge\n{\"a\"} 1\na 2\n# EOF\n", DuplicateSample),
            (OM, "# TYPE a gauge\na 1\n# TYPE \"a\" gauge\n# EOF\n", MetadataAfterSamples),
            (OM, "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE \"a\" gauge\n# EOF\n", DuplicateFamily),
            (OM, "# TYPE a gauge\na{\"b\"=\"1\",b=\"2\"} 1\n# EOF\n", DuplicateLabel),
        ] {
            assert_eq!(err(format, text).1, kind, "{text:?}");
        }
        // Quoted and unquoted samples of one family, each once: fine.
        assert_eq!(ok(OM, "# TYPE \"a\" gauge\na{b=\"1\"} 1\n{\"a\",\"b\"=\"2\"} 2\n# EOF\n").samples, 2);
    }

    /// Prometheus 3's quoted UTF-8 names, as the encoders write them under `allow-utf-8`.
    #[test]
    fn quoted_utf8_names() {
        let om = "# HELP \"café\" Visits.\n# TYPE \"café\" counter\n{\"café_total\"} 3\n\
                  # TYPE \"http.server.duration\" histogram\n\
                  {\"http.server.duration_bucket\",\"http.method\"=\"GET\",le=\"+Inf\"} 1\n\
                  {\"http.server.duration_sum\",\"http.method\"=\"GET\"} 0.25\n\
                  {\"http.server.duration_count\",\"http.method\"=\"GET\"} 1\n\
                  # TYPE q\\\"uote gauge\n# EOF\n";
        // (`q\"uote` is not a name: only a quoted name may hold a quote.)
        assert_eq!(err(Format::OpenMetrics, om).1, ParseErrorKind::InvalidMetricName);
        let om = om.replace("# TYPE q\\\"uote gauge\n", "# TYPE \"q\\\"uote\" gauge\n{\"q\\\"uote\"} 1\n");
        assert_eq!(ok(Format::OpenMetrics, &om).samples, 5);
        let mut names = std::vec::Vec::new();
        for event in Parser::new(Format::OpenMetrics, &om) {
            if let Event::Sample { family, sample, .. } = event.unwrap() {
                names.push((family, sample.name, sample.labels.iter().map(|(n, _)| n).collect::<std::vec::Vec<_>>()));
            }
        }
        assert_eq!(names[0], ("café", "café_total", std::vec![]));
        assert_eq!(names[1], ("http.server.duration", "http.server.duration_bucket", std::vec!["http.method", "le"]));
        assert_eq!(names[4], ("q\\\"uote", "q\\\"uote", std::vec![]), "names as written, escapes kept");
        let text = "# TYPE \"a.b\" gauge\n{ \"a.b\" , \"c.d\" = \"1\" , } 1\n{\"a.b\"} 2 1700000000000\n";
        assert_eq!(ok(Format::Prometheus, text).samples, 2);
        for (format, bad, kind) in [
            (Format::OpenMetrics, "{\"\"} 1\n# EOF\n", ParseErrorKind::InvalidMetricName),
            (Format::OpenMetrics, "{\"a.b\",} 1\n# EOF\n", ParseErrorKind::InvalidLabel),
            (Format::OpenMetrics, "{\"a.b\" 1\n# EOF\n", ParseErrorKind::InvalidLabel),
            (Format::OpenMetrics, "{\"a\\tb\"} 1\n# EOF\n", ParseErrorKind::InvalidMetricName),
            (Format::OpenMetrics, "a{\"__x\"=\"1\"} 1\n# EOF\n", ParseErrorKind::InvalidLabel),
            (Format::OpenMetrics, "a{\"\"=\"1\"} 1\n# EOF\n", ParseErrorKind::InvalidLabel),
            (Format::OpenMetrics, "# TYPE \"a.b counter\n# EOF\n", ParseErrorKind::InvalidMetricName),
            (Format::Prometheus, "\"a.b\" 1\n", ParseErrorKind::InvalidMetricName),
            (Format::Prometheus, "{a=\"1\"} 1\n", ParseErrorKind::InvalidMetricName),
        ] {
            assert_eq!(err(format, bad).1, kind, "{bad:?}");
        }
    }

    #[test]
    fn label_syntax() {
        assert_eq!(err(TEXT, "a{l=\"v\",l=\"w\"} 1\n"), (1, DuplicateLabel));
        assert_eq!(err(TEXT, "a{1l=\"v\"} 1\n"), (1, InvalidLabel));
        assert_eq!(err(TEXT, "a{l=\"v} 1\n"), (1, InvalidLabel));
        assert_eq!(err(TEXT, "a{l=v} 1\n"), (1, InvalidLabel));
        assert_eq!(err(TEXT, "a{l=\"v\"\n"), (1, InvalidLabel));
        assert_eq!(err(TEXT, "1a 1\n"), (1, InvalidMetricName));
        assert_eq!(err(TEXT, "a{__name__=\"b\"} 1\n"), (1, InvalidLabel), "reserved");
        assert_eq!(err(OM, "a{__x=\"b\"} 1\n# EOF\n"), (1, InvalidLabel), "reserved");
        assert_eq!(ok(OM, "a{_x=\"b\"} 1\n# EOF\n").samples, 1);
        assert_eq!(ok(TEXT, "a{} 1\na:b_c{} 1\n").samples, 2);
        assert_eq!(ok(OM, "a{} 1\n# EOF\n").samples, 1);
        let mut p = Parser::new(TEXT, "a{x=\"ü\\\"}\\n\"} 1\n");
        let Some(Ok(Event::Sample { sample, .. })) = p.next() else { panic!() };
        assert!(sample.labels.get("x").unwrap().eq_str("ü\"}\n"));
    }

    #[test]
    fn exemplars() {
        let c = |s: &str| std::format!("# TYPE c counter\n{s}# EOF\n");
        assert_eq!(ok(OM, &c("c_total 1 # {id=\"a\"} 0.5\n")).samples, 1);
        assert_eq!(ok(OM, &c("c_total 1 123 # {id=\"a\"} 0.5 122\n")).samples, 1);
        assert_eq!(ok(OM, &c("c_total 1 # {} 0.5\n")).samples, 1);
        assert_eq!(err(OM, &c("c_total 1 # {id=\"a\"}\n")).1, InvalidExemplar);
        assert_eq!(err(OM, &c("c_total 1 #{id=\"a\"} 1\n")).1, InvalidTimestamp);
        assert_eq!(err(OM, &c("c_created 1 # {id=\"a\"} 1\n")).1, ExemplarNotAllowed);
        let long = std::string::String::from("x").repeat(126);
        assert_eq!(ok(OM, &c(&std::format!("c_total 1 # {{id=\"{long}\"}} 1\n"))).samples, 1);
        assert_eq!(err(OM, &c(&std::format!("c_total 1 # {{id=\"{long}x\"}} 1\n"))).1, ExemplarTooLong);
        assert_eq!(err(OM, "g 1 # {a=\"b\"} 1\n# EOF\n").1, ExemplarNotAllowed);
    }

    #[test]
    fn openmetrics_counter_values() {
        let c = |v: &str| std::format!("# TYPE c counter\nc_total {v}\n# EOF\n");
        assert_eq!(err(OM, &c("-1")).1, InvalidCounterValue);
        assert_eq!(err(OM, &c("NaN")).1, InvalidCounterValue);
        assert_eq!(ok(OM, &c("+Inf")).samples, 1);
        assert_eq!(ok(OM, &c("1.5")).samples, 1);
    }

    #[test]
    fn other_openmetrics_types() {
        let s = "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 2\ns_sum 3\ns_count 2\n# EOF\n";
        assert_eq!(ok(OM, s).samples, 4);
        assert_eq!(
            err(OM, "# TYPE s summary\ns{quantile=\"0.9\"} 1\ns{quantile=\"0.5\"} 2\n# EOF\n").1,
            InvalidQuantile
        );
        assert_eq!(err(OM, "# TYPE s summary\ns{quantile=\"1.5\"} 1\n# EOF\n").1, InvalidQuantile);
        assert_eq!(err(OM, "# TYPE s summary\ns 1\n# EOF\n").1, InvalidQuantile);
        let st = "# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n# EOF\n";
        assert_eq!(ok(OM, st).samples, 2);
        assert_eq!(err(OM, "# TYPE st stateset\nst{st=\"a\"} 2\n# EOF\n").1, InvalidStateSet);
        assert_eq!(err(OM, "# TYPE st stateset\nst{x=\"a\"} 1\n# EOF\n").1, InvalidStateSet);
        assert_eq!(err(OM, "# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"a\"} 0\n# EOF\n").1, DuplicateSample);
        assert_eq!(ok(OM, "# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n").samples, 1);
        assert_eq!(err(OM, "# TYPE i info\ni_info 2\n# EOF\n").1, InvalidInfo);
        assert_eq!(err(TEXT, "# TYPE i info\n").1, InvalidType);
        let gh = "# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\ng_gsum -1\ng_gcount 1\n# EOF\n";
        assert_eq!(err(OM, gh).1, InvalidCounterValue, "negative _gsum needs negative buckets");
    }

    #[test]
    fn units() {
        assert_eq!(ok(OM, "# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n# EOF\n").samples, 1);
        assert_eq!(err(OM, "# UNIT a_seconds bytes\n# EOF\n").1, InvalidUnit);
        assert_eq!(err(OM, "# TYPE i_seconds info\n# UNIT i_seconds seconds\n# EOF\n").1, InvalidUnit);
        assert_eq!(ok(OM, "# UNIT a \n# EOF\n").families, 1);
        assert_eq!(err(OM, "# UNIT a_b b\n# UNIT a_b b\n# EOF\n").1, DuplicateMetadata);
    }

    #[test]
    fn timestamps_within_a_series() {
        let h = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1 5\nh_sum 1\nh_count 1 5\n# EOF\n";
        assert_eq!(err(OM, h).1, TimestampMix);
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(
            validate_bytes(TEXT, b"a 1\nb{l=\"\xff\"} 1\n").map_err(|e| (e.line, e.kind)),
            Err((2, InvalidUtf8))
        );
        assert_eq!(validate_bytes(TEXT, b"a 1\n").map(|s| s.samples), Ok(1));
    }

    #[test]
    fn events_tag_samples_with_their_family() {
        let text = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\nloose 2\n# EOF\n";
        let tags: std::vec::Vec<_> = Parser::new(OM, text)
            .filter_map(|e| match e.unwrap() {
                Event::Sample { family, family_type, suffix, .. } => Some((family, family_type, suffix)),
                _ => None,
            })
            .collect();
        assert_eq!(
            tags,
            [
                ("h", FamilyType::Histogram, "_bucket"),
                ("h", FamilyType::Histogram, "_sum"),
                ("h", FamilyType::Histogram, "_count"),
                ("loose", FamilyType::Unknown, ""),
            ]
        );
    }

    #[test]
    fn display() {
        let e = validate(OM, "a 1\n").unwrap_err();
        assert_eq!(std::format!("{e}"), "line 2: missing # EOF");
    }
}
