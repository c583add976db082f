//! Prometheus protobuf exposition: `io.prometheus.client.MetricFamily` messages, each
//! preceded by its length (`encoding=delimited`).
//!
//! A family's message is opened at its first series in a chunk: its length is reserved
//! (`varint::len` of the room left, so it can only shrink), the name, help and type written,
//! then every series of the family that fits the chunk is appended as one `Metric`. When the
//! chunk ends (or the next family starts) the length is patched in. A family whose series
//! span several chunks is therefore sent as several consecutive `MetricFamily` messages with
//! the same name, help and type, each holding some of its series; Prometheus and client_golang's
//! decoders read them as one family, series by series. A family with no series writes nothing
//! (an empty `MetricFamily` is an error for client_golang's text conversion).
//!
//! Values: counters, gauges and untyped samples are doubles (a `u64` counter above 2^53 loses
//! precision, as in every Prometheus client); classic histograms carry cumulative counts and
//! finite upper bounds, the `+Inf` bucket implied by `sample_count` as client_golang writes
//! it. The start time of a counter or histogram ([`Encoder::set_created`]) goes into its
//! `created_timestamp`. Native histograms ([`native_histogram`]) carry `schema`,
//! `zero_threshold`, `zero_count`, and spans with packed deltas per sign; one with no bucket
//! and a zero threshold of 0 gets an empty positive span, as client_golang writes, so that
//! Prometheus does not take it for a classic histogram. Exemplars go into a counter's or a bucket's `exemplar`
//! (an `ExemplarHistogram`'s `+Inf` bucket is then written explicitly).
//!
//! Labels come either as name/value pairs or as a family's rendered label text
//! (`name="value",…`, escaped once at series creation); the latter is split back into pairs as
//! it is copied, unescaping only values that hold a backslash.
//!
//! Names are written as they are under `escaping=allow-utf-8`; otherwise names that are not
//! legacy are escaped per the scheme (see [`Escaping`]), legacy names kept.

use super::{
    Desc, Encoder, Escaping, Full, HistogramView, Labels, MetricType, NativeHistogramView, Value, is_legacy_label_name,
    is_legacy_metric_name, names,
};
use crate::exemplar::{ExemplarCopy, ExemplarView};
use crate::native_histogram::{NativeBucket, deltas, spans};
use crate::proto::wire::key;
use crate::proto::{Open, Sink, SliceWriter, WireType, varint};

/// `Content-Type` of the delimited protobuf exposition.
pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Field numbers of `io.prometheus.client` (metrics.proto).
mod field {
    pub(super) const FAMILY_NAME: u32 = 1;
    pub(super) const FAMILY_HELP: u32 = 2;
    pub(super) const FAMILY_TYPE: u32 = 3;
    pub(super) const FAMILY_METRIC: u32 = 4;
    pub(super) const METRIC_LABEL: u32 = 1;
    pub(super) const METRIC_GAUGE: u32 = 2;
    pub(super) const METRIC_COUNTER: u32 = 3;
    pub(super) const METRIC_UNTYPED: u32 = 5;
    pub(super) const METRIC_HISTOGRAM: u32 = 7;
    pub(super) const LABEL_NAME: u32 = 1;
    pub(super) const LABEL_VALUE: u32 = 2;
    /// `Counter.value`, `Gauge.value`, `Untyped.value`.
    pub(super) const VALUE: u32 = 1;
    pub(super) const COUNTER_CREATED: u32 = 3;
    pub(super) const COUNTER_EXEMPLAR: u32 = 2;
    pub(super) const BUCKET_EXEMPLAR: u32 = 3;
    pub(super) const EXEMPLAR_LABEL: u32 = 1;
    pub(super) const EXEMPLAR_VALUE: u32 = 2;
    pub(super) const EXEMPLAR_TIMESTAMP: u32 = 3;
    pub(super) const HISTOGRAM_COUNT: u32 = 1;
    pub(super) const HISTOGRAM_SUM: u32 = 2;
    pub(super) const HISTOGRAM_BUCKET: u32 = 3;
    pub(super) const HISTOGRAM_CREATED: u32 = 15;
    pub(super) const HISTOGRAM_SCHEMA: u32 = 5;
    pub(super) const HISTOGRAM_ZERO_THRESHOLD: u32 = 6;
    pub(super) const HISTOGRAM_ZERO_COUNT: u32 = 7;
    pub(super) const HISTOGRAM_NEGATIVE_SPAN: u32 = 9;
    pub(super) const HISTOGRAM_NEGATIVE_DELTA: u32 = 10;
    pub(super) const HISTOGRAM_POSITIVE_SPAN: u32 = 12;
    pub(super) const HISTOGRAM_POSITIVE_DELTA: u32 = 13;
    /// `Histogram.exemplars`: a native histogram's exemplars (client_model 0.6).
    pub(super) const HISTOGRAM_EXEMPLARS: u32 = 16;
    pub(super) const SPAN_OFFSET: u32 = 1;
    pub(super) const SPAN_LENGTH: u32 = 2;
    pub(super) const BUCKET_COUNT: u32 = 1;
    pub(super) const BUCKET_BOUND: u32 = 2;
    pub(super) const TIMESTAMP_SECONDS: u32 = 1;
    pub(super) const TIMESTAMP_NANOS: u32 = 2;
}

/// `io.prometheus.client.MetricType`.
const fn type_number(t: MetricType) -> u64 {
    match t {
        MetricType::Counter => 0,
        MetricType::Gauge => 1,
        MetricType::Unknown => 3,
        MetricType::Histogram => 4,
    }
}

/// The `MetricFamily` open in the current chunk.
#[derive(Debug, Clone, Copy)]
struct OpenFamily {
    length: Open,
    /// Where the message's fields start (after the reserved length): an item rolled back to
    /// before it removes it.
    start: usize,
    /// The family name's address and length: the same `&str` as the last series' (the usual
    /// case) is the same family without comparing bytes.
    name: (usize, usize),
}

/// Protobuf state of an [`Encoder`]: the family message open in this chunk.
#[derive(Debug, Default)]
pub(super) struct State {
    open: Option<OpenFamily>,
    /// The failed item already rolled itself back.
    rolled_back: bool,
}

/// One series (a `Metric`) of family `desc`, opening the family's message if needed.
pub(super) fn sample(
    e: &mut Encoder<'_>,
    desc: &Desc<'_>,
    labels: &Labels<'_>,
    value: Value,
    exemplar: Option<&ExemplarView<'_>>,
) -> Result<(), Full> {
    let created = e.created;
    series(e, desc, labels, |w| {
        let v = match value {
            Value::U64(v) => v as f64,
            Value::I64(v) => v as f64,
            Value::F64(v) => v,
        };
        let kind = match desc.metric_type {
            MetricType::Counter => field::METRIC_COUNTER,
            MetricType::Gauge => field::METRIC_GAUGE,
            MetricType::Histogram | MetricType::Unknown => field::METRIC_UNTYPED,
        };
        if kind == field::METRIC_COUNTER && (created.is_some() || exemplar.is_some()) {
            return w.nested(kind, |w| {
                w.double(field::VALUE, v)?;
                if let Some(ex) = exemplar {
                    exemplar_message(w, field::COUNTER_EXEMPLAR, ex)?;
                }
                match created {
                    Some(ts) => timestamp(w, field::COUNTER_CREATED, ts),
                    None => Ok(()),
                }
            });
        }
        // `{ value: v }` is always 9 bytes.
        w.message_with_len(kind, 9, |w| w.double(field::VALUE, v))
    })
}

/// One histogram series: count, sum, a bucket per finite bound (cumulative; `+Inf` is the
/// count), and the start time. Native histogram fields (schema, zero bucket, spans and
/// deltas) and bucket exemplars will be added here, after the classic buckets.
pub(super) fn histogram(
    e: &mut Encoder<'_>,
    desc: &Desc<'_>,
    labels: &Labels<'_>,
    view: &HistogramView<'_>,
) -> Result<(), Full> {
    let created = e.created;
    series(e, desc, labels, |w| {
        let count = view.count();
        // The exact length, so the message is written once with no move: keys and doubles
        // are fixed, only the counts' varints vary. (`+Inf` is the count: not written.)
        let finite = || view.cumulative().take(view.bounds.len());
        let mut len = 1 + varint::len(count) + 9;
        for (_, cumulative) in finite() {
            let bucket = 1 + varint::len(cumulative) + 9;
            len += 1 + varint::len(bucket as u64) + bucket;
        }
        if let Some(ts) = created {
            // Key 15 takes one byte, the timestamp's length one.
            len += 2 + timestamp_len(ts);
        }
        w.message_with_len(field::METRIC_HISTOGRAM, len, |w| {
            w.uint64(field::HISTOGRAM_COUNT, count)?;
            w.double(field::HISTOGRAM_SUM, view.sum)?;
            for (bound, cumulative) in finite() {
                let bucket = 1 + varint::len(cumulative) + 9;
                w.message_with_len(field::HISTOGRAM_BUCKET, bucket, |w| {
                    w.uint64(field::BUCKET_COUNT, cumulative)?;
                    w.double(field::BUCKET_BOUND, bound)
                })?;
            }
            match created {
                Some(ts) => timestamp(w, field::HISTOGRAM_CREATED, ts),
                None => Ok(()),
            }
        })
    })
}

/// A histogram's classic buckets, cumulative, each with its exemplar (`exemplar(i)`, `i ==`
/// the number of bounds for `+Inf`); the `+Inf` bucket only when it has one (its count is the
/// histogram's). Shared by classic histograms with exemplars and hybrid histograms.
fn classic_buckets(
    w: &mut SliceWriter<'_>,
    view: &HistogramView<'_>,
    exemplar: &dyn Fn(usize) -> Option<ExemplarCopy>,
) -> Result<(), crate::proto::BufferFull> {
    for (i, (bound, cumulative)) in view.cumulative().enumerate() {
        let ex = exemplar(i);
        if bound.is_infinite() && ex.is_none() {
            break;
        }
        w.nested(field::HISTOGRAM_BUCKET, |w| {
            w.uint64(field::BUCKET_COUNT, cumulative)?;
            w.double(field::BUCKET_BOUND, bound)?;
            match &ex {
                Some(ex) => exemplar_message(w, field::BUCKET_EXEMPLAR, &ex.view()),
                None => Ok(()),
            }
        })?;
    }
    Ok(())
}

/// An `Exemplar`: its labels (split from the rendered text), value and timestamp.
fn exemplar_message(
    w: &mut SliceWriter<'_>,
    field: u32,
    ex: &ExemplarView<'_>,
) -> Result<(), crate::proto::BufferFull> {
    w.nested(field, |w| {
        let mut rest = ex.labels;
        while let Some(pair) = next_rendered(rest) {
            w.nested(field::EXEMPLAR_LABEL, |w| {
                w.bytes(field::LABEL_NAME, pair.name)?;
                w.key(field::LABEL_VALUE, WireType::Len)?;
                w.put_varint((pair.value.len() - pair.escapes) as u64)?;
                if pair.escapes == 0 { w.put(pair.value) } else { unescape(w, pair.value) }
            })?;
            rest = pair.rest;
        }
        w.double(field::EXEMPLAR_VALUE, ex.value)?;
        match ex.timestamp_ms {
            Some(ts) => timestamp(w, field::EXEMPLAR_TIMESTAMP, ts),
            None => Ok(()),
        }
    })
}

/// A classic histogram series whose buckets carry exemplars (`exemplar(i)`, `i == bounds`
/// for `+Inf`, written as an explicit bucket only when it has one, as client_golang does).
pub(super) fn histogram_with_exemplars(
    e: &mut Encoder<'_>,
    desc: &Desc<'_>,
    labels: &Labels<'_>,
    view: &HistogramView<'_>,
    exemplar: &dyn Fn(usize) -> Option<ExemplarCopy>,
) -> Result<(), Full> {
    let created = e.created;
    series(e, desc, labels, |w| {
        w.nested(field::METRIC_HISTOGRAM, |w| {
            let count = view.buckets.iter().take(view.bounds.len()).fold(view.inf, |a, b| a.wrapping_add(*b));
            w.uint64(field::HISTOGRAM_COUNT, count)?;
            w.double(field::HISTOGRAM_SUM, view.sum)?;
            classic_buckets(w, view, exemplar)?;
            match created {
                Some(ts) => timestamp(w, field::HISTOGRAM_CREATED, ts),
                None => Ok(()),
            }
        })
    })
}

/// One native histogram series: count, sum, schema, zero bucket, spans and deltas of each
/// sign, and the start time.
pub(super) fn native_histogram(
    e: &mut Encoder<'_>,
    desc: &Desc<'_>,
    labels: &Labels<'_>,
    view: &NativeHistogramView<'_>,
) -> Result<(), Full> {
    let created = e.created;
    series(e, desc, labels, |w| {
        w.nested(field::METRIC_HISTOGRAM, |w| {
            w.uint64(field::HISTOGRAM_COUNT, view.count)?;
            w.double(field::HISTOGRAM_SUM, view.sum)?;
            // sint32: zigzag, as sint64 for values in i32's range.
            w.sint64(field::HISTOGRAM_SCHEMA, i64::from(view.schema))?;
            w.double(field::HISTOGRAM_ZERO_THRESHOLD, view.zero_threshold)?;
            w.uint64(field::HISTOGRAM_ZERO_COUNT, view.zero_count)?;
            buckets(w, field::HISTOGRAM_NEGATIVE_SPAN, field::HISTOGRAM_NEGATIVE_DELTA, view.negative)?;
            buckets(w, field::HISTOGRAM_POSITIVE_SPAN, field::HISTOGRAM_POSITIVE_DELTA, view.positive)?;
            if view.zero_threshold == 0.0
                && view.zero_count == 0
                && view.positive.is_empty()
                && view.negative.is_empty()
            {
                // The no-op span: a native histogram, not a classic one without buckets.
                w.nested(field::HISTOGRAM_POSITIVE_SPAN, |w| {
                    w.sint64(field::SPAN_OFFSET, 0)?;
                    w.uint64(field::SPAN_LENGTH, 0)
                })?;
            }
            match created {
                Some(ts) => timestamp(w, field::HISTOGRAM_CREATED, ts),
                None => Ok(()),
            }
        })
    })
}

/// One series with native and classic buckets (a [`HybridHistogram`](crate::HybridHistogram)):
/// count, sum, the classic buckets (cumulative, each with its exemplar; `+Inf` written only
/// when it has one), the native fields, the exemplars again in `exemplars`, the start time.
pub(super) fn hybrid_histogram(
    e: &mut Encoder<'_>,
    desc: &Desc<'_>,
    labels: &Labels<'_>,
    native: &NativeHistogramView<'_>,
    classic: &HistogramView<'_>,
    exemplar: &dyn Fn(usize) -> Option<ExemplarCopy>,
) -> Result<(), Full> {
    let created = e.created;
    series(e, desc, labels, |w| {
        w.nested(field::METRIC_HISTOGRAM, |w| {
            w.uint64(field::HISTOGRAM_COUNT, native.count)?;
            w.double(field::HISTOGRAM_SUM, native.sum)?;
            classic_buckets(w, classic, exemplar)?;
            // sint32: zigzag, as sint64 for values in i32's range.
            w.sint64(field::HISTOGRAM_SCHEMA, i64::from(native.schema))?;
            w.double(field::HISTOGRAM_ZERO_THRESHOLD, native.zero_threshold)?;
            w.uint64(field::HISTOGRAM_ZERO_COUNT, native.zero_count)?;
            buckets(w, field::HISTOGRAM_NEGATIVE_SPAN, field::HISTOGRAM_NEGATIVE_DELTA, native.negative)?;
            buckets(w, field::HISTOGRAM_POSITIVE_SPAN, field::HISTOGRAM_POSITIVE_DELTA, native.positive)?;
            if native.zero_threshold == 0.0
                && native.zero_count == 0
                && native.positive.is_empty()
                && native.negative.is_empty()
            {
                // The no-op span, as for a plain native histogram.
                w.nested(field::HISTOGRAM_POSITIVE_SPAN, |w| {
                    w.sint64(field::SPAN_OFFSET, 0)?;
                    w.uint64(field::SPAN_LENGTH, 0)
                })?;
            }
            for i in 0..=classic.bounds.len() {
                if let Some(ex) = exemplar(i) {
                    exemplar_message(w, field::HISTOGRAM_EXEMPLARS, &ex.view())?;
                }
            }
            match created {
                Some(ts) => timestamp(w, field::HISTOGRAM_CREATED, ts),
                None => Ok(()),
            }
        })
    })
}

/// The `BucketSpan`s of `buckets` and their counts as packed deltas.
fn buckets(
    w: &mut SliceWriter<'_>,
    span_field: u32,
    delta_field: u32,
    buckets: &[NativeBucket],
) -> Result<(), crate::proto::BufferFull> {
    if buckets.is_empty() {
        return Ok(());
    }
    for (offset, length) in spans(buckets) {
        w.nested(span_field, |w| {
            w.sint64(field::SPAN_OFFSET, i64::from(offset))?;
            w.uint64(field::SPAN_LENGTH, u64::from(length))
        })?;
    }
    let len: usize = deltas(buckets).map(|d| varint::len(varint::zigzag(d))).sum();
    w.key(delta_field, WireType::Len)?;
    w.put_varint(len as u64)?;
    for d in deltas(buckets) {
        w.put_varint(varint::zigzag(d))?;
    }
    Ok(())
}

/// A start time in milliseconds since the Unix epoch, as a `google.protobuf.Timestamp`.
fn timestamp(w: &mut SliceWriter<'_>, field: u32, unix_ms: u64) -> Result<(), crate::proto::BufferFull> {
    w.message_with_len(field, timestamp_len(unix_ms), |w| {
        w.int64(field::TIMESTAMP_SECONDS, (unix_ms / 1000) as i64)?;
        match unix_ms % 1000 {
            0 => Ok(()),
            ms => w.int64(field::TIMESTAMP_NANOS, (ms * 1_000_000) as i64),
        }
    })
}

fn timestamp_len(unix_ms: u64) -> usize {
    let nanos = match unix_ms % 1000 {
        0 => 0,
        ms => 1 + varint::len(ms * 1_000_000),
    };
    1 + varint::len(unix_ms / 1000) + nanos
}

/// Writes one `Metric` (labels, then `body`) into the family's message.
///
/// On failure the item rolls itself back: closing the previous family may have moved its
/// bytes (a shorter length), so the position before the item is no longer the caller's mark;
/// [`stop`] then only ends the chunk.
fn series(
    e: &mut Encoder<'_>,
    desc: &Desc<'_>,
    labels: &Labels<'_>,
    body: impl FnOnce(&mut SliceWriter<'_>) -> Result<(), crate::proto::BufferFull>,
) -> Result<(), Full> {
    let mut w = SliceWriter::at(&mut *e.buf, e.pos);
    let name = (desc.name.as_ptr() as usize, desc.name.len());
    let mut rollback = w.pos();
    if e.proto.open.is_none_or(|f| f.name != name) {
        if let Some(family) = e.proto.open.take() {
            // Cannot fail: the reservation was as long as the room left, so it only shrinks.
            let _ = w.close(family.length);
            rollback = w.pos();
        }
        // The most the family can take is what is left of the chunk, so the reservation
        // only ever shrinks when patched.
        match w.open(varint::len(w.remaining() as u64)) {
            Ok(length) => {
                let start = w.pos();
                e.proto.open = Some(OpenFamily { length, start, name });
                if family_fields(&mut w, desc, e.escaping).is_err() {
                    return Err(rolled_back(e, rollback));
                }
            }
            Err(_) => return Err(rolled_back(e, rollback)),
        }
    }
    // A series with labels and a histogram is likely over 127 bytes: reserve two bytes.
    let reserve = if desc.metric_type == MetricType::Histogram { 2 } else { 1 };
    let result = w.put_varint(key(field::FAMILY_METRIC, WireType::Len)).and_then(|()| {
        let open = w.open(reserve)?;
        label_pairs(&mut w, labels, e.escaping)?;
        body(&mut w)?;
        w.close(open)
    });
    match result {
        Ok(()) => {
            e.pos = w.pos();
            Ok(())
        }
        Err(_) => Err(rolled_back(e, rollback)),
    }
}

/// Rolls the item back to `pos`, dropping a family it opened.
fn rolled_back(e: &mut Encoder<'_>, pos: usize) -> Full {
    if e.proto.open.is_some_and(|f| f.start > pos) {
        e.proto.open = None;
    }
    e.pos = pos;
    e.proto.rolled_back = true;
    Full
}

fn family_fields(w: &mut SliceWriter<'_>, desc: &Desc<'_>, escaping: Escaping) -> Result<(), crate::proto::BufferFull> {
    // Once per family and chunk: the name is checked here rather than cached.
    if !cfg!(feature = "utf8-names") || escaping == Escaping::AllowUtf8 || is_legacy_metric_name(desc.name) {
        w.string(field::FAMILY_NAME, desc.name)?;
    } else {
        escaped_name(w, field::FAMILY_NAME, desc.name, escaping, false)?;
    }
    if !desc.help.is_empty() {
        w.string(field::FAMILY_HELP, desc.help)?;
    }
    w.uint64(field::FAMILY_TYPE, type_number(desc.metric_type))
}

/// A name field holding `name` escaped per `escaping`.
#[cold]
fn escaped_name(
    w: &mut SliceWriter<'_>,
    field: u32,
    name: &str,
    escaping: Escaping,
    label: bool,
) -> Result<(), crate::proto::BufferFull> {
    w.key(field, WireType::Len)?;
    w.put_varint(names::escaped_len(name, escaping, label) as u64)?;
    names::escape(name, escaping, label, &mut |piece| w.put(piece))
}

/// The labels as `LabelPair` messages; names that are not legacy escaped per `escaping`.
fn label_pairs(
    w: &mut SliceWriter<'_>,
    labels: &Labels<'_>,
    escaping: Escaping,
) -> Result<(), crate::proto::BufferFull> {
    let unusual =
        |name: &str| cfg!(feature = "utf8-names") && escaping != Escaping::AllowUtf8 && !is_legacy_label_name(name);
    if labels.rendered.is_empty() {
        for (name, value) in labels.iter() {
            if unusual(name) {
                escaped_label_pair(w, name, value.as_bytes(), 0, escaping)?;
            } else {
                label_pair(w, name.as_bytes(), value.as_bytes(), 0)?;
            }
        }
        return Ok(());
    }
    if !labels.names.is_empty() {
        // A family with label names that are not all legacy: split by name.
        for (name, value) in super::rendered_pairs(labels.names, labels.rendered) {
            let escapes = count_escapes(value);
            if unusual(name) {
                escaped_label_pair(w, name, value, escapes, escaping)?;
            } else {
                label_pair(w, name.as_bytes(), value, escapes)?;
            }
        }
        return Ok(());
    }
    let mut rest = labels.rendered;
    while let Some(pair) = next_rendered(rest) {
        label_pair(w, pair.name, pair.value, pair.escapes)?;
        rest = pair.rest;
    }
    Ok(())
}

/// One `LabelPair`; `value` is escaped text holding `escapes` backslash escapes (0: raw).
#[cfg_attr(not(target_os = "none"), inline(always))]
fn label_pair(
    w: &mut SliceWriter<'_>,
    name: &[u8],
    value: &[u8],
    escapes: usize,
) -> Result<(), crate::proto::BufferFull> {
    let value_len = value.len() - escapes;
    let len = 2 + varint::len(name.len() as u64) + name.len() + varint::len(value_len as u64) + value_len;
    w.message_with_len(field::METRIC_LABEL, len, |w| {
        w.bytes(field::LABEL_NAME, name)?;
        if escapes == 0 {
            return w.bytes(field::LABEL_VALUE, value);
        }
        w.key(field::LABEL_VALUE, WireType::Len)?;
        w.put_varint(value_len as u64)?;
        unescape(w, value)
    })
}

/// A `LabelPair` whose name is written escaped per `escaping`.
#[cold]
fn escaped_label_pair(
    w: &mut SliceWriter<'_>,
    name: &str,
    value: &[u8],
    escapes: usize,
    escaping: Escaping,
) -> Result<(), crate::proto::BufferFull> {
    let name_len = names::escaped_len(name, escaping, true);
    let value_len = value.len() - escapes;
    let len = 2 + varint::len(name_len as u64) + name_len + varint::len(value_len as u64) + value_len;
    w.message_with_len(field::METRIC_LABEL, len, |w| {
        escaped_name(w, field::LABEL_NAME, name, escaping, true)?;
        w.key(field::LABEL_VALUE, WireType::Len)?;
        w.put_varint(value_len as u64)?;
        if escapes == 0 { w.put(value) } else { unescape(w, value) }
    })
}

/// The backslash escapes in escaped label text.
fn count_escapes(value: &[u8]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < value.len() {
        if value[i] == b'\\' {
            n += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    n
}

/// Writes escaped label text (`\\`, `\"`, `\n`) unescaped.
#[cold]
fn unescape(w: &mut SliceWriter<'_>, value: &[u8]) -> Result<(), crate::proto::BufferFull> {
    let mut start = 0;
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'\\' {
            w.put(&value[start..i])?;
            let raw: &[u8] = match value.get(i + 1) {
                Some(b'n') => b"\n",
                Some(b'"') => b"\"",
                _ => b"\\",
            };
            w.put(raw)?;
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    w.put(value.get(start..).unwrap_or(&[]))
}

/// Splits the first pair off rendered label text `name="value",…`: the name, the escaped
/// value, how many escapes it holds, and the rest. `None` at the end (or on text diag does not
/// render, which is never written half).
#[cfg_attr(not(target_os = "none"), inline(always))]
fn next_rendered(text: &[u8]) -> Option<RenderedPair<'_>> {
    let eq = text.iter().position(|&b| b == b'=')?;
    let name = &text[..eq];
    let value_and_rest = text.get(eq + 2..)?; // after `="`
    let mut escapes = 0;
    let mut i = 0;
    loop {
        match *value_and_rest.get(i)? {
            b'"' => break,
            b'\\' => {
                escapes += 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    let value = &value_and_rest[..i];
    let rest = value_and_rest.get(i + 1..).unwrap_or(&[]);
    Some(RenderedPair { name, value, escapes, rest: rest.strip_prefix(b",").unwrap_or(rest) })
}

/// One pair of rendered label text, and the text after it.
struct RenderedPair<'a> {
    name: &'a [u8],
    /// Escaped as rendered.
    value: &'a [u8],
    /// Backslash escapes in `value`.
    escapes: usize,
    rest: &'a [u8],
}

/// Patches the open family's length: the chunk ends here.
pub(super) fn close(e: &mut Encoder<'_>) {
    if let Some(family) = e.proto.open.take() {
        let mut w = SliceWriter::at(&mut *e.buf, e.pos);
        // Cannot fail: the reservation was as long as the room left, so it only shrinks.
        let _ = w.close(family.length);
        e.pos = w.pos();
    }
}

/// An item that did not fit: roll it back to `mark` (unless it did so itself) and end the
/// chunk.
pub(super) fn stop(e: &mut Encoder<'_>, mark: usize) {
    if !core::mem::take(&mut e.proto.rolled_back) {
        e.pos = mark;
        if e.proto.open.is_some_and(|f| f.start > mark) {
            e.proto.open = None;
        }
    }
    close(e);
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use crate::proto::{WireType, varint};
    use crate::{Counter, Family, Format, Gauge, Histogram, Registry, Scrape};

    /// The fields of a message: (field number, wire type, value or bytes).
    fn fields(mut b: &[u8]) -> Vec<(u32, WireType, u64, &[u8])> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let (key, n) = varint::read(b).expect("key");
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
                WireType::Fixed32 => unreachable!("not written"),
            }
        }
        out
    }

    /// A family: name, its other fields, its metrics' bytes.
    type Decoded = (Vec<u8>, Vec<(u32, u64)>, Vec<u8>);

    /// Families of a delimited stream, consecutive messages of one family merged: name, the
    /// other family fields, and the metrics' bytes back to back; and the message count.
    fn families(mut b: &[u8]) -> (Vec<Decoded>, usize) {
        let mut out: Vec<Decoded> = Vec::new();
        let mut messages = 0;
        while !b.is_empty() {
            let (len, n) = varint::read(b).unwrap();
            assert_eq!(n, varint::len(len), "canonical delimiter");
            let msg = &b[n..n + len as usize];
            b = &b[n + len as usize..];
            messages += 1;
            let (mut name, mut other, mut metrics) = (Vec::new(), Vec::new(), Vec::new());
            for (field, _, v, body) in fields(msg) {
                match field {
                    1 => name = body.to_vec(),
                    4 => {
                        metrics.extend_from_slice(body);
                        metrics.push(0xff); // separator
                    }
                    _ => other.push((field, if body.is_empty() { v } else { body.len() as u64 })),
                }
            }
            assert!(!metrics.is_empty(), "no empty family messages");
            match out.last_mut() {
                Some(last) if last.0 == name => {
                    assert_eq!(last.1, other);
                    last.2.extend_from_slice(&metrics);
                }
                _ => out.push((name, other, metrics)),
            }
        }
        (out, messages)
    }

    static BOUNDS: [f64; 3] = [0.5, 1.0, 2.0];

    #[test]
    fn chunked_protobuf_holds_the_same_series_as_whole() {
        let requests: Family<Counter, [&str; 2], 8, 512> = Family::new(["a", "b"], ());
        let latency: Family<Histogram<3>, (&str,), 4> = Family::new(["route"], &BOUNDS);
        let empty: Family<Gauge, (&str,), 4> = Family::new(["x"], ());
        let up = Counter::new();
        let registry: Registry<'_, 8> = Registry::new().with_clock(|| 1_234_567);
        registry.register("requests_total", "Requests \"x\".", &requests).unwrap();
        registry.register("empty", "", &empty).unwrap();
        registry.register("latency_seconds", "", &latency).unwrap();
        registry.register("up_total", "", &up).unwrap();
        for (i, values) in
            [["x", "y"], ["q\"uo\\te", "new\nline"], ["é", ""], ["long", &"v".repeat(300)]].iter().enumerate()
        {
            requests.get_or_create(*values).unwrap().inc_by(i as u64 * 1000);
        }
        for route in ["/a", "/b", "/c\\"] {
            latency.get_or_create((route,)).unwrap().observe(0.7);
        }
        let mut whole = std::vec![0u8; 16 * 1024];
        let n = Scrape::new(Format::Protobuf, &registry).fill(&mut whole).unwrap();
        let (expected, messages) = families(&whole[..n]);
        assert_eq!(messages, expected.len());
        let names: Vec<&[u8]> = expected.iter().map(|f| &f.0[..]).collect();
        assert_eq!(names, [&b"requests_total"[..], b"latency_seconds", b"up_total"]);
        // Label values with escapes are written unescaped.
        assert!(expected[0].2.windows(9).any(|w| w == b"\x12\x07q\"uo\\te"));
        assert!(expected[0].2.windows(8).any(|w| w == b"new\nline"));
        for chunk in [380, 381, 390, 400, 450, 512, 700] {
            let mut scrape = Scrape::new(Format::Protobuf, &registry);
            let mut out = Vec::new();
            let mut buf = std::vec![0u8; chunk];
            loop {
                match scrape.fill(&mut buf).unwrap() {
                    0 => break,
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
            let (got, messages) = families(&out);
            assert_eq!(got, expected, "chunk {chunk}");
            assert!(messages > got.len(), "chunk {chunk}: families split");
        }
    }

    #[test]
    fn created_timestamps_and_values_decode() {
        let up = Counter::new();
        let latency: Histogram<3> = Histogram::new(&BOUNDS);
        let registry: Registry<'_, 4> = Registry::new().with_clock(|| 1_700_000_000_250);
        registry.register("up_total", "", &up).unwrap();
        registry.register("latency_seconds", "", &latency).unwrap();
        up.inc_by(3);
        latency.observe(0.7);
        latency.observe(5.0);
        let mut buf = [0u8; 512];
        let n = Scrape::new(Format::Protobuf, &registry).fill(&mut buf).unwrap();
        let (families, _) = families(&buf[..n]);
        let timestamp = |body: &[u8]| {
            let f = fields(body);
            assert_eq!((f[0].0, f[0].2), (1, 1_700_000_000));
            assert_eq!((f[1].0, f[1].2), (2, 250_000_000));
        };
        // up_total: type COUNTER, metric { counter { value: 3, created_timestamp } }
        let metric = fields(&families[0].2[..families[0].2.len() - 1]);
        assert_eq!(metric[0].0, 3);
        let counter = fields(metric[0].3);
        assert_eq!(f64::from_bits(counter[0].2), 3.0);
        assert_eq!(counter[1].0, 3);
        timestamp(counter[1].3);
        // latency_seconds: count 2, sum 5.7, buckets 0/1/1 (no +Inf), created_timestamp
        assert_eq!(families[1].1, [(3, 4)]);
        let metric = fields(&families[1].2[..families[1].2.len() - 1]);
        assert_eq!(metric[0].0, 7);
        let h = fields(metric[0].3);
        assert_eq!((h[0].0, h[0].2), (1, 2));
        assert_eq!((h[1].0, f64::from_bits(h[1].2)), (2, 5.7));
        let buckets: Vec<(u64, f64)> = h[2..5]
            .iter()
            .map(|b| {
                let b = fields(b.3);
                (b[0].2, f64::from_bits(b[1].2))
            })
            .collect();
        assert_eq!(buckets, [(0, 0.5), (1, 1.0), (1, 2.0)]);
        assert_eq!(h[5].0, 15);
        timestamp(h[5].3);
        // OpenMetrics writes the same time as `_created` samples.
        let n = Scrape::new(Format::OpenMetrics, &registry).fill(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.contains("up_total 3\nup_created 1700000000.250\n"), "{text}");
        assert!(text.contains("latency_seconds_count 2\nlatency_seconds_created 1700000000.250\n"), "{text}");
        crate::encoding::parse::validate(Format::OpenMetrics, text).unwrap();
    }
}
