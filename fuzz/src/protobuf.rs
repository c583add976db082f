//! A strict decoder of the delimited `io.prometheus.client.MetricFamily` exposition, and the
//! check that what the encoder wrote decodes to exactly what was emitted.

use diag_core::Value;
use diag_core::proto::{WireType, varint};

use crate::{FamilyDesc, Kind, MetricSet};

/// A decoded metric: labels, the `Metric` field that held the value (2 gauge, 3 counter,
/// 5 untyped, 7 histogram), the value's bits, and a histogram's count, sum bits and
/// `(cumulative count, bound bits)` buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedMetric {
    /// `(name, value)` pairs.
    pub labels: Vec<(String, String)>,
    /// The `Metric` field of the value.
    pub kind: u32,
    /// Counter, gauge or untyped value (`f64` bits, NaNs made canonical).
    pub value: u64,
    /// Histogram `(count, sum bits, buckets)`.
    pub histogram: Option<DecodedHistogram>,
}

/// A decoded histogram: count, sum bits, `(cumulative count, bound bits)` per bucket.
pub type DecodedHistogram = (u64, u64, Vec<(u64, u64)>);

/// A decoded family (consecutive messages of one name merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFamily {
    /// `name`.
    pub name: String,
    /// `help`, if present.
    pub help: Option<String>,
    /// `type`.
    pub metric_type: u64,
    /// `metric`s.
    pub metrics: Vec<DecodedMetric>,
}

/// One field: number, and its varint / fixed64 value or its bytes.
enum Field<'a> {
    Int(u32, u64),
    Bytes(u32, &'a [u8]),
}

/// Canonical NaN bits, so NaN payloads do not matter.
fn bits(v: f64) -> u64 {
    if v.is_nan() { f64::NAN.to_bits() } else { v.to_bits() }
}

fn read_varint(b: &mut &[u8]) -> Result<u64, String> {
    let (v, n) = varint::read(b).ok_or("truncated varint")?;
    if n != varint::len(v) {
        return Err(format!("non-canonical varint {v} in {n} bytes"));
    }
    *b = &b[n..];
    Ok(v)
}

fn fields(mut b: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = read_varint(&mut b)?;
        let field = u32::try_from(key >> 3).map_err(|_| "field number too large")?;
        match WireType::from_bits((key & 7) as u8) {
            Some(WireType::Varint) => out.push(Field::Int(field, read_varint(&mut b)?)),
            Some(WireType::Fixed64) => {
                let v = b.get(..8).ok_or("truncated fixed64")?;
                out.push(Field::Int(field, u64::from_le_bytes(v.try_into().unwrap())));
                b = &b[8..];
            }
            Some(WireType::Len) => {
                let len = usize::try_from(read_varint(&mut b)?).map_err(|_| "length too large")?;
                out.push(Field::Bytes(field, b.get(..len).ok_or("truncated bytes")?));
                b = &b[len..];
            }
            other => return Err(format!("unexpected wire type {other:?} of field {field}")),
        }
    }
    Ok(out)
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
}

fn label(b: &[u8]) -> Result<(String, String), String> {
    let (mut name, mut value) = (None, None);
    for f in fields(b)? {
        match f {
            Field::Bytes(1, n) if name.is_none() => name = Some(string(n)?),
            Field::Bytes(2, v) if value.is_none() => value = Some(string(v)?),
            _ => return Err("unexpected LabelPair field".into()),
        }
    }
    Ok((name.ok_or("label without name")?, value.ok_or("label without value")?))
}

/// `Counter`, `Gauge`, `Untyped`: `{ value = 1 (double) }` (and nothing else: no start time,
/// exemplar or other field is written by this target's sources).
fn single_value(b: &[u8]) -> Result<u64, String> {
    match fields(b)?.as_slice() {
        [Field::Int(1, v)] => Ok(bits(f64::from_bits(*v))),
        _ => Err("value message is not exactly { value }".into()),
    }
}

fn histogram(b: &[u8]) -> Result<DecodedHistogram, String> {
    let (mut count, mut sum, mut buckets) = (None, None, Vec::new());
    for f in fields(b)? {
        match f {
            Field::Int(1, c) if count.is_none() && buckets.is_empty() => count = Some(c),
            Field::Int(2, s) if sum.is_none() && buckets.is_empty() => sum = Some(bits(f64::from_bits(s))),
            Field::Bytes(3, bucket) => match fields(bucket)?.as_slice() {
                [Field::Int(1, c), Field::Int(2, bound)] => buckets.push((*c, bits(f64::from_bits(*bound)))),
                _ => return Err("bucket is not { cumulative_count, upper_bound }".into()),
            },
            _ => return Err("unexpected Histogram field".into()),
        }
    }
    Ok((count.ok_or("histogram without count")?, sum.ok_or("histogram without sum")?, buckets))
}

fn metric(b: &[u8]) -> Result<DecodedMetric, String> {
    let mut m = DecodedMetric { labels: Vec::new(), kind: 0, value: 0, histogram: None };
    for f in fields(b)? {
        match f {
            Field::Bytes(1, l) if m.kind == 0 => m.labels.push(label(l)?),
            Field::Bytes(kind @ (2 | 3 | 5), v) if m.kind == 0 => {
                m.kind = kind;
                m.value = single_value(v)?;
            }
            Field::Bytes(7, h) if m.kind == 0 => {
                m.kind = 7;
                m.histogram = Some(histogram(h)?);
            }
            _ => return Err("unexpected Metric field".into()),
        }
    }
    if m.kind == 0 {
        return Err("metric without a value".into());
    }
    Ok(m)
}

/// Decodes a delimited stream strictly: canonical varints, known fields in the order the
/// encoder writes them, no empty family message, nothing after the last message. Consecutive
/// messages of one family are merged (their help and type must agree). Returns the families
/// and the number of messages.
///
/// # Errors
/// What is wrong, as text.
pub fn decode(mut b: &[u8]) -> Result<(Vec<DecodedFamily>, usize), String> {
    let mut out: Vec<DecodedFamily> = Vec::new();
    let mut messages = 0;
    while !b.is_empty() {
        let len = usize::try_from(read_varint(&mut b)?).map_err(|_| "length too large")?;
        let msg = b.get(..len).ok_or("truncated message")?;
        b = &b[len..];
        messages += 1;
        let mut family = DecodedFamily { name: String::new(), help: None, metric_type: u64::MAX, metrics: Vec::new() };
        for (i, f) in fields(msg)?.into_iter().enumerate() {
            match f {
                Field::Bytes(1, n) if i == 0 => family.name = string(n)?,
                Field::Bytes(2, h) if i == 1 => family.help = Some(string(h)?),
                Field::Int(3, t) if family.metric_type == u64::MAX && family.metrics.is_empty() => {
                    family.metric_type = t;
                }
                Field::Bytes(4, m) if family.metric_type != u64::MAX => family.metrics.push(metric(m)?),
                _ => return Err(format!("unexpected MetricFamily field at {i}")),
            }
        }
        if family.metrics.is_empty() {
            return Err(format!("family {} without metrics", family.name));
        }
        match out.last_mut() {
            Some(last) if last.name == family.name => {
                if (&last.help, last.metric_type) != (&family.help, family.metric_type) {
                    return Err(format!("family {} continues with another help or type", family.name));
                }
                last.metrics.append(&mut family.metrics);
            }
            _ => out.push(family),
        }
    }
    Ok((out, messages))
}

/// What `set` must decode to.
pub fn expected(set: &MetricSet) -> Vec<DecodedFamily> {
    set.families.iter().filter(|f| !f.series.is_empty()).map(expected_family).collect()
}

fn expected_family(f: &FamilyDesc) -> DecodedFamily {
    let (metric_type, kind) = match f.kind {
        Kind::Counter => (0, 3),
        Kind::Gauge | Kind::GaugeF64 => (1, 2),
        Kind::Unknown => (3, 5),
        Kind::Histogram(_) => (4, 7),
    };
    let metrics = f
        .series
        .iter()
        .map(|s| {
            let labels = f.label_names.iter().cloned().zip(s.values.iter().cloned()).collect();
            let value = match s.value {
                Value::U64(v) => bits(v as f64),
                Value::I64(v) => bits(v as f64),
                Value::F64(v) => bits(v),
            };
            match &f.kind {
                Kind::Histogram(bounds) => {
                    let count = s.buckets.iter().take(bounds.len()).fold(s.inf, |a, b| a.wrapping_add(*b));
                    let mut cumulative = 0u64;
                    let buckets = bounds
                        .iter()
                        .enumerate()
                        .map(|(i, b)| {
                            cumulative = cumulative.wrapping_add(s.buckets.get(i).copied().unwrap_or(0));
                            (cumulative, bits(*b))
                        })
                        .collect();
                    DecodedMetric { labels, kind, value: 0, histogram: Some((count, bits(s.sum), buckets)) }
                }
                _ => DecodedMetric { labels, kind, value, histogram: None },
            }
        })
        .collect();
    let help = (!f.help.is_empty()).then(|| f.help.clone());
    DecodedFamily { name: f.name.clone(), help, metric_type, metrics }
}
