//! Writing profiles in pprof's format (`profile.proto`, gzip-compressed), as `go tool pprof`
//! reads them, with the code addresses symbolized in-process (function, file and line, inlined
//! calls as extra lines of one location).
//!
//! The encoder is a few lines of protobuf by hand: the message is small and fixed, and this
//! keeps every profile (CPU, heap, allocs, threads) in one form with one symbolizer.

use std::collections::HashMap;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::unwind::Object;

/// One symbolized line of a location: a function (innermost inline call first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// Demangled name without the hash, e.g. `diagd::debug::cpu::collect`.
    pub(crate) function: String,
    /// The raw (mangled) symbol name.
    pub(crate) system_name: String,
    pub(crate) file: String,
    pub(crate) line: i64,
}

/// The lines at a code address, innermost inline call first (empty when unknown).
pub(crate) fn symbolize(address: u64) -> Vec<Line> {
    let mut lines = Vec::new();
    backtrace::resolve(address as *mut std::ffi::c_void, |symbol| {
        let Some(name) = symbol.name() else { return };
        lines.push(Line {
            function: format!("{name:#}"),
            system_name: String::from_utf8_lossy(name.as_bytes()).into_owned(),
            file: symbol.filename().map(|f| f.display().to_string()).unwrap_or_default(),
            line: symbol.lineno().map_or(0, i64::from),
        });
    });
    lines
}

/// A label on a sample.
#[derive(Debug, Clone)]
pub(crate) enum Label {
    Str(&'static str, String),
    Num(&'static str, i64),
}

#[derive(Debug)]
struct Sample {
    locations: Vec<u64>,
    values: Vec<i64>,
    labels: Vec<Label>,
}

#[derive(Debug)]
struct Location {
    id: u64,
    mapping: u64,
    address: u64,
    lines: Vec<(u64, i64)>,
}

/// Builds one profile: sample types, samples of symbolized stacks, comments; then
/// [`finish`](Self::finish) encodes it.
#[derive(Debug)]
pub(crate) struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    sample_types: Vec<(i64, i64)>,
    period_type: (i64, i64),
    period: i64,
    default_sample_type: i64,
    time_nanos: i64,
    duration_nanos: i64,
    comments: Vec<i64>,
    samples: Vec<Sample>,
    objects: Vec<Object>,
    used_mappings: Vec<bool>,
    functions: Vec<(i64, i64, i64)>,
    function_ids: HashMap<(String, String), u64>,
    locations: Vec<Location>,
    location_ids: HashMap<(u64, usize), u64>,
    symbols: HashMap<u64, Vec<Line>>,
}

impl Builder {
    /// A profile with `sample_types` (type, unit) and one sample every `period` of
    /// `period_type`; `objects` are the loaded objects the addresses belong to.
    pub(crate) fn new(
        sample_types: &[(&str, &str)],
        period_type: (&str, &str),
        period: i64,
        objects: Vec<Object>,
    ) -> Self {
        let mut builder = Self {
            strings: vec![String::new()],
            string_ids: HashMap::from([(String::new(), 0)]),
            sample_types: Vec::new(),
            period_type: (0, 0),
            period,
            default_sample_type: 0,
            time_nanos: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            duration_nanos: 0,
            comments: Vec::new(),
            samples: Vec::new(),
            used_mappings: vec![false; objects.len()],
            objects,
            functions: Vec::new(),
            function_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            symbols: HashMap::new(),
        };
        builder.sample_types = sample_types.iter().map(|(t, u)| (builder.string(t), builder.string(u))).collect();
        builder.period_type = (builder.string(period_type.0), builder.string(period_type.1));
        builder
    }

    /// The sample type `go tool pprof` shows first (by its type name).
    pub(crate) fn default_sample_type(&mut self, name: &str) {
        self.default_sample_type = self.string(name);
    }

    /// When the profile started (default: when the builder was made) and how long it covers.
    pub(crate) fn timing(&mut self, start: std::time::SystemTime, duration: std::time::Duration) {
        self.time_nanos =
            start.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.duration_nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
    }

    /// A comment (`go tool pprof -comments` prints them).
    pub(crate) fn comment(&mut self, text: &str) {
        let id = self.string(text);
        self.comments.push(id);
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), id);
        id
    }

    /// The symbolized lines at `address` (cached).
    pub(crate) fn lines(&mut self, address: u64) -> &[Line] {
        self.symbols.entry(address).or_insert_with(|| symbolize(address))
    }

    /// The location of `address` without its `skip` innermost lines.
    fn location(&mut self, address: u64, skip: usize) -> u64 {
        if let Some(&id) = self.location_ids.get(&(address, skip)) {
            return id;
        }
        let lines: Vec<Line> = self.lines(address).iter().skip(skip).cloned().collect();
        let mut ids = Vec::with_capacity(lines.len());
        for line in lines {
            let key = (line.function.clone(), line.file.clone());
            let function = match self.function_ids.get(&key) {
                Some(&id) => id,
                None => {
                    let entry = (self.string(&line.function), self.string(&line.system_name), self.string(&line.file));
                    self.functions.push(entry);
                    let id = self.functions.len() as u64;
                    self.function_ids.insert(key, id);
                    id
                }
            };
            ids.push((function, line.line));
        }
        let mapping = self.objects.partition_point(|o| o.start <= address);
        let mapping = match mapping.checked_sub(1) {
            Some(i) if address < self.objects[i].end => {
                self.used_mappings[i] = true;
                i as u64 + 1
            }
            _ => 0,
        };
        let id = self.locations.len() as u64 + 1;
        self.locations.push(Location { id, mapping, address, lines: ids });
        self.location_ids.insert((address, skip), id);
        id
    }

    /// Adds a sample: `stack` innermost first, each address with the number of its innermost
    /// lines to leave out (`(address, 0)` keeps all), `values` one per sample type.
    pub(crate) fn sample(&mut self, stack: &[(u64, usize)], values: Vec<i64>, labels: Vec<Label>) {
        let locations = stack.iter().map(|&(address, skip)| self.location(address, skip)).collect();
        self.samples.push(Sample { locations, values, labels });
    }

    /// Encodes the profile (protobuf, gzip-compressed).
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let samples = std::mem::take(&mut self.samples);
        let mut encoded_samples = Vec::with_capacity(samples.len());
        for sample in samples {
            let mut m = Message::default();
            m.packed(1, sample.locations.iter().copied());
            m.packed(2, sample.values.iter().map(|&v| v as u64));
            for label in sample.labels {
                let mut l = Message::default();
                match label {
                    Label::Str(key, value) => {
                        l.uint(1, self.string(key) as u64);
                        l.uint(2, self.string(&value) as u64);
                    }
                    Label::Num(key, value) => {
                        l.uint(1, self.string(key) as u64);
                        l.uint(3, value as u64);
                    }
                }
                m.message(3, &l);
            }
            encoded_samples.push(m);
        }
        let mut p = Message::default();
        for &(ty, unit) in &self.sample_types {
            p.message(1, &value_type(ty, unit));
        }
        for m in &encoded_samples {
            p.message(2, m);
        }
        let objects = std::mem::take(&mut self.objects);
        let mut mappings = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            let filename = self.string(&object.name);
            let mut m = Message::default();
            m.uint(1, i as u64 + 1);
            m.uint(2, object.start);
            m.uint(3, object.end);
            m.uint(5, filename as u64);
            if self.used_mappings[i] {
                m.uint(7, 1);
                m.uint(8, 1);
                m.uint(9, 1);
                m.uint(10, 1);
            }
            mappings.push(m);
        }
        for m in &mappings {
            p.message(3, m);
        }
        for location in &self.locations {
            let mut m = Message::default();
            m.uint(1, location.id);
            m.uint(2, location.mapping);
            m.uint(3, location.address);
            for &(function, line) in &location.lines {
                let mut l = Message::default();
                l.uint(1, function);
                l.uint(2, line as u64);
                m.message(4, &l);
            }
            p.message(4, &m);
        }
        for (i, &(name, system_name, file)) in self.functions.iter().enumerate() {
            let mut m = Message::default();
            m.uint(1, i as u64 + 1);
            m.uint(2, name as u64);
            m.uint(3, system_name as u64);
            m.uint(4, file as u64);
            p.message(5, &m);
        }
        for s in &self.strings {
            p.bytes(6, s.as_bytes());
        }
        p.uint(9, self.time_nanos as u64);
        p.uint(10, self.duration_nanos as u64);
        p.message(11, &value_type(self.period_type.0, self.period_type.1));
        p.uint(12, self.period as u64);
        for &c in &self.comments {
            p.uint(13, c as u64);
        }
        p.uint(14, self.default_sample_type as u64);
        let mut gz = GzEncoder::new(Vec::with_capacity(p.0.len() / 4), Compression::default());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&p.0);
        gz.finish().unwrap_or_default()
    }
}

fn value_type(ty: i64, unit: i64) -> Message {
    let mut m = Message::default();
    m.uint(1, ty as u64);
    m.uint(2, unit as u64);
    m
}

/// A protobuf message being written.
#[derive(Debug, Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    /// A varint field (left out when 0, as proto3 does).
    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn message(&mut self, field: u32, m: &Message) {
        self.bytes(field, &m.0);
    }

    fn packed(&mut self, field: u32, values: impl Iterator<Item = u64>) {
        let mut inner = Message::default();
        for v in values {
            inner.varint(v);
        }
        if !inner.0.is_empty() {
            self.bytes(field, &inner.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_are_protobuf() {
        let mut m = Message::default();
        m.uint(1, 300);
        m.uint(2, 0);
        m.bytes(6, b"hi");
        m.packed(2, [1, 150].into_iter());
        assert_eq!(m.0, [0x08, 0xac, 0x02, 0x32, 2, b'h', b'i', 0x12, 3, 1, 0x96, 0x01]);
    }

    #[test]
    fn symbolizes_the_calling_function_of_this_binary() {
        // The return addresses of this call stack, as the profiles record them.
        let mut addresses = Vec::new();
        backtrace::trace(|frame| {
            addresses.push(frame.ip() as u64 - 1);
            addresses.len() < 8
        });
        let names: Vec<String> = addresses.iter().flat_map(|&a| symbolize(a)).map(|l| l.function).collect();
        assert!(names.iter().any(|n| n.ends_with("symbolizes_the_calling_function_of_this_binary")), "{names:?}");
    }
}
