//! [`Recorder`]: the `metrics` recorder whose series live in diag's atomics and are scraped
//! by diag's encoders as one more [`Collect`] source.

use core::fmt;
use core::hash::{BuildHasherDefault, Hasher};
use std::collections::HashMap;
use std::hash::DefaultHasher;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use diag_core::{Collect, Counter, Desc, Encoder, Labels, MetricType, Series, Stop, Value};
use metrics::{Key, KeyName, Metadata, SharedString, Unit};

use crate::cells::{Buckets, CounterCell, EncodeHistogram, GaugeCell};
use crate::name::sanitize;

/// Shards of the key → series map: registrations of different keys rarely share a lock.
const SHARDS: usize = 16;

/// Labels of a series written from the stack; more go through a vector.
const STACK_LABELS: usize = 16;

/// Hashes a [`Key`] by the hash it carries (`Key` writes exactly that `u64`).
#[derive(Default)]
struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached by a `Hash` other than `Key`'s; fold the bytes in (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap = HashMap<Key, Arc<SeriesEntry>, BuildHasherDefault<KeyHash>>;

/// A map with a hasher a `const fn` can make (names come from code, not from attackers).
type Map<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

const fn map<K, V>() -> Map<K, V> {
    HashMap::with_hasher(BuildHasherDefault::new())
}

/// A `metrics` recorder backed by diag's storage; see the [crate docs](crate).
///
/// Register it with [`metrics::set_global_recorder`] (or use it with
/// [`metrics::with_local_recorder`]) and as a source of diag's `/metrics`
/// ([`Registry::register_collector`](diag_core::Registry::register_collector), or a
/// [`Sources`](diag_core::Sources) of yours).
pub struct Recorder {
    /// Key → series: what `register_*` looks up.
    shards: [RwLock<KeyMap>; SHARDS],
    /// The families in order of creation: what a scrape walks.
    families: RwLock<Families>,
    /// Descriptions given before their family exists.
    described: RwLock<Map<String, String>>,
    /// Histogram buckets: the default, and those for names starting with a prefix.
    buckets: Buckets,
    overrides: Vec<(String, Buckets)>,
    /// Registrations refused: a name already used by a metric of another type.
    rejected: Counter,
}

struct Families {
    list: Vec<Arc<Family>>,
    by_name: Map<String, usize>,
}

/// One family: a name, a type, a help text and its series in order of creation.
struct Family {
    name: String,
    metric_type: MetricType,
    help: OnceLock<String>,
    series: RwLock<FamilySeries>,
}

struct FamilySeries {
    list: Vec<Arc<SeriesEntry>>,
    /// Sanitized label pairs, sorted by name → series: keys that differ only in label order
    /// share a series.
    by_labels: Map<Vec<(String, String)>, Arc<SeriesEntry>>,
}

/// One series: its labels and its storage.
struct SeriesEntry {
    names: Vec<String>,
    values: Vec<String>,
    storage: Storage,
    /// When the series was first used (Unix milliseconds): its start time, `_created` in
    /// OpenMetrics and `created_timestamp` in protobuf.
    created_ms: u64,
}

enum Storage {
    Counter(Arc<CounterCell>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<dyn EncodeHistogram>, metrics::Histogram),
}

impl Storage {
    fn metric_type(&self) -> MetricType {
        match self {
            Self::Counter(_) => MetricType::Counter,
            Self::Gauge(_) => MetricType::Gauge,
            Self::Histogram(..) => MetricType::Histogram,
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic elsewhere while holding a lock leaves the data consistent (every change is one
    // push or insert), so a poisoned lock is used as it is.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Recorder {
    /// An empty recorder whose histograms use the Prometheus clients' default buckets
    /// ([`DEFAULT_BUCKETS`](crate::DEFAULT_BUCKETS)). `const`, so it can be a `static`.
    pub const fn new() -> Self {
        Self {
            shards: [const { RwLock::new(HashMap::with_hasher(BuildHasherDefault::new())) }; SHARDS],
            families: RwLock::new(Families { list: Vec::new(), by_name: map() }),
            described: RwLock::new(map()),
            buckets: Buckets::new(&diag_core::DEFAULT_BUCKETS),
            overrides: Vec::new(),
            rejected: Counter::new(),
        }
    }

    /// Histograms use `bounds` (sorted ascending, finite; the `+Inf` bucket is implicit)
    /// unless a [`with_buckets_for`](Self::with_buckets_for) prefix matches their name.
    ///
    /// # Examples
    /// ```
    /// static RECORDER: diag_recorder::Recorder =
    ///     diag_recorder::Recorder::new().with_buckets(&[0.001, 0.01, 0.1, 1.0]);
    /// ```
    pub const fn with_buckets<const N: usize>(mut self, bounds: &'static [f64; N]) -> Self {
        self.buckets = Buckets::new(bounds);
        self
    }

    /// Histograms whose name (as given to `metrics`, before any character is replaced)
    /// starts with `prefix` use `bounds`; the longest matching prefix wins.
    pub fn with_buckets_for<const N: usize>(mut self, prefix: &str, bounds: &'static [f64; N]) -> Self {
        self.overrides.push((prefix.to_owned(), Buckets::new(bounds)));
        self.overrides.sort_by_key(|(p, _)| core::cmp::Reverse(p.len()));
        self
    }

    /// Registrations refused so far: a name already in use by a metric of another type (the
    /// handle returned then records nothing). Also on `/metrics` as
    /// `diag_recorder_rejected_total` once not zero.
    pub fn rejected(&self) -> u64 {
        self.rejected.get()
    }

    fn buckets_for(&self, name: &str) -> Buckets {
        self.overrides.iter().find(|(p, _)| name.starts_with(p.as_str())).map_or(self.buckets, |(_, b)| *b)
    }

    fn shard(&self, key: &Key) -> &RwLock<KeyMap> {
        // The high bits: the map uses the low ones for its buckets.
        &self.shards[(key.get_hash() >> 60) as usize % SHARDS]
    }

    /// The series of `key`, created as `metric_type` if new; `None` when the name belongs to
    /// a family of another type.
    fn series(&self, key: &Key, metric_type: MetricType) -> Option<Arc<SeriesEntry>> {
        let shard = self.shard(key);
        if let Some(series) = read(shard).get(key) {
            return (series.storage.metric_type() == metric_type).then(|| Arc::clone(series));
        }
        let mut shard = write(shard);
        if let Some(series) = shard.get(key) {
            return (series.storage.metric_type() == metric_type).then(|| Arc::clone(series));
        }
        let series = self.create(key, metric_type);
        if series.is_none() {
            self.rejected.inc();
        }
        let series = series?;
        shard.insert(key.clone(), Arc::clone(&series));
        Some(series)
    }

    /// Finds or makes the family and the series of `key` (a key whose labels differ only in
    /// order from another's gets the same series).
    fn create(&self, key: &Key, metric_type: MetricType) -> Option<Arc<SeriesEntry>> {
        let family = self.family(key.name(), metric_type)?;
        let mut labels: Vec<(String, String)> =
            key.labels().map(|l| (sanitize(l.key(), false), l.value().to_owned())).collect();
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        let mut series = write(&family.series);
        if let Some(found) = series.by_labels.get(&labels) {
            return Some(Arc::clone(found));
        }
        let storage = match metric_type {
            MetricType::Counter => Storage::Counter(Arc::default()),
            MetricType::Gauge => Storage::Gauge(Arc::default()),
            _ => {
                let (encode, handle) = self.buckets_for(key.name()).make();
                Storage::Histogram(encode, handle)
            }
        };
        let entry = Arc::new(SeriesEntry {
            names: labels.iter().map(|(n, _)| n.clone()).collect(),
            values: labels.iter().map(|(_, v)| v.clone()).collect(),
            storage,
            created_ms: diag_core::unix_time_ms(),
        });
        series.list.push(Arc::clone(&entry));
        series.by_labels.insert(labels, Arc::clone(&entry));
        Some(entry)
    }

    /// The family named `name` (sanitized), created as `metric_type` if new; `None` when it
    /// exists with another type.
    fn family(&self, name: &str, metric_type: MetricType) -> Option<Arc<Family>> {
        let name = family_name(name, metric_type);
        let found = |families: &Families| families.by_name.get(&name).map(|&i| Arc::clone(&families.list[i]));
        let existing = found(&read(&self.families));
        let family = match existing {
            Some(family) => family,
            None => {
                let mut families = write(&self.families);
                match found(&families) {
                    Some(family) => family,
                    None => {
                        let help = OnceLock::new();
                        if let Some(text) = read(&self.described).get(&name) {
                            let _ = help.set(text.clone());
                        }
                        let series = RwLock::new(FamilySeries { list: Vec::new(), by_labels: map() });
                        let family = Arc::new(Family { name: name.clone(), metric_type, help, series });
                        let index = families.list.len();
                        families.by_name.insert(name, index);
                        families.list.push(Arc::clone(&family));
                        family
                    }
                }
            }
        };
        (family.metric_type == metric_type).then_some(family)
    }

    /// Keeps `description` (and `unit`) as the HELP text of the family `name`.
    fn describe(&self, name: &KeyName, metric_type: MetricType, unit: Option<Unit>, description: &SharedString) {
        let name = family_name(name.as_str(), metric_type);
        let help = match unit {
            Some(unit) if unit != Unit::Count => format!("{description} (unit: {})", unit.as_str()),
            _ => description.to_string(),
        };
        // The families' lock is held while the description is kept, as `family` holds it
        // while reading descriptions: a family made meanwhile cannot miss it.
        let families = read(&self.families);
        match families.by_name.get(&name) {
            Some(&i) => {
                let _ = families.list[i].help.set(help);
            }
            None => {
                write(&self.described).entry(name).or_insert(help);
            }
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("families", &read(&self.families).list.len())
            .field("buckets", &self.buckets)
            .field("rejected", &self.rejected.get())
            .finish_non_exhaustive()
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, MetricType::Counter, unit, &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, MetricType::Gauge, unit, &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, MetricType::Histogram, unit, &description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        match self.series(key, MetricType::Counter).as_deref() {
            Some(SeriesEntry { storage: Storage::Counter(cell), .. }) => metrics::Counter::from_arc(Arc::clone(cell)),
            _ => metrics::Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        match self.series(key, MetricType::Gauge).as_deref() {
            Some(SeriesEntry { storage: Storage::Gauge(cell), .. }) => metrics::Gauge::from_arc(Arc::clone(cell)),
            _ => metrics::Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        match self.series(key, MetricType::Histogram).as_deref() {
            Some(SeriesEntry { storage: Storage::Histogram(_, handle), .. }) => handle.clone(),
            _ => metrics::Histogram::noop(),
        }
    }
}

/// The family name of the metric `name`: sanitized, and for a counter ending in `_total`, as
/// Prometheus names counters and OpenMetrics requires of their samples.
fn family_name(name: &str, metric_type: MetricType) -> String {
    let mut name = sanitize(name, true);
    if metric_type == MetricType::Counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}

/// The family counting refused registrations.
const REJECTED: Desc<'static> = Desc {
    name: "diag_recorder_rejected_total",
    help: "metrics registrations refused: the name belongs to a metric of another type.",
    metric_type: MetricType::Counter,
};

impl Collect for Recorder {
    /// Entry 0 is `diag_recorder_rejected_total` (when not zero), entry `i + 1` the `i`-th
    /// family created. Families and series are only ever appended, so every chunk of a scrape
    /// sees the items of the chunks before it in the same places. The scrape holds read locks
    /// only: it never blocks an update of a registered handle (a plain atomic), and delays a
    /// registration of a new series for at most the encoding of one chunk.
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.set_created(None); // until a series sets its own
        let rejected = self.rejected.get();
        if rejected > 0 {
            enc.entry(0, |enc| {
                enc.header(&REJECTED)?;
                enc.sample(&REJECTED, &Labels::EMPTY, Value::U64(rejected))
            })?;
        }
        let families = read(&self.families);
        for (i, family) in families.list.iter().enumerate() {
            enc.entry(i + 1, |enc| family.encode(enc))?;
        }
        enc.set_created(None);
        Ok(())
    }
}

impl Family {
    fn encode(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        let help = self.help.get().map_or("", String::as_str);
        let desc = Desc { name: &self.name, help, metric_type: self.metric_type };
        enc.header(&desc)?;
        for series in &read(&self.series).list {
            series.encode(&desc, enc)?;
        }
        Ok(())
    }
}

impl SeriesEntry {
    fn encode(&self, desc: &Desc<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        let n = self.names.len();
        if n <= STACK_LABELS {
            let mut names = [""; STACK_LABELS];
            let mut values = [""; STACK_LABELS];
            for i in 0..n {
                names[i] = &self.names[i];
                values[i] = &self.values[i];
            }
            return self.encode_with(desc, &Labels::new(&names[..n], &values[..n]), enc);
        }
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        self.encode_with(desc, &Labels::new(&names, &values), enc)
    }

    fn encode_with(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.set_created(Some(self.created_ms));
        match &self.storage {
            Storage::Counter(cell) => cell.0.encode_series(desc, labels, enc),
            Storage::Gauge(cell) => cell.0.encode_series(desc, labels, enc),
            Storage::Histogram(encode, _) => encode.encode(desc, labels, enc),
        }
    }
}
