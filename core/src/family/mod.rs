//! Labelled families of fixed capacity, and the [`Series`] trait their members implement.

mod table;

use core::fmt;
use core::mem::MaybeUninit;
use core::ops::Deref;

use crate::atomic::{AtomicU8, AtomicUsize, Ordering, UnsafeCell, loom_const_fn, spin_loop};
use crate::counter::Counter;
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
use crate::error::{CapacityError, SeriesError};
use crate::labels::{Compare, Hash, LabelSet, Render};
use crate::registry::Metric;
use table::{Insert, Matcher, Table};

/// One time series' storage: [`Counter`], [`Gauge`](crate::Gauge),
/// [`GaugeF64`](crate::GaugeF64) or [`Histogram`](crate::Histogram).
pub trait Series: Send + Sync + Sized {
    /// What every new series of a family is built from (histogram bounds; `()` otherwise).
    type Template: Copy + Send + Sync;
    /// The metric type this series encodes as.
    const TYPE: MetricType;

    /// A new, zeroed series.
    fn new_series(template: Self::Template) -> Self;

    /// Encodes this series' sample lines (not the family header).
    ///
    /// # Errors
    /// [`Stop`] when the encoder's buffer is full; return it to the caller unchanged.
    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop>;

    /// For a series whose lines are one integer sample and nothing else ([`Counter`],
    /// [`Gauge`](crate::Gauge)): that integer, the same value
    /// [`encode_series`](Self::encode_series) writes. A family then writes such series'
    /// Prometheus text lines itself, without a call per series. `None` (the default) for
    /// every other series.
    #[inline]
    fn integer(&self) -> Option<Value> {
        None
    }
}

/// What a full family does with a new label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// The update goes to one extra series labelled only `otel_metric_overflow="true"`, as
    /// OpenTelemetry's cardinality limit does: nothing is lost, and the overflow shows in
    /// `/metrics`. The default.
    Series,
    /// [`Family::get_or_create`] returns [`SeriesError::Full`].
    Error,
}

/// The label text of the overflow series.
const OVERFLOW_TEXT: &str = "otel_metric_overflow=\"true\"";

/// A family of up to `N` series of type `V`, keyed by label sets of type `S`, each series'
/// label text (`name="value",…`, escaped) at most `B` bytes.
///
/// Label values are copied in when a series is created, so they may be borrowed for any
/// lifetime or computed at run time; lookups hash the label text and are lock-free; series can
/// be removed while other threads update and scrape. A label set beyond `N` goes to the
/// overflow series (or is an error, see [`Overflow`]); label text longer than `B` is an
/// error. Both are counted, never a panic, never an allocation.
///
/// `S` is the key type with `'static` lifetimes: a tuple such as `(&'static str, u16)` or an
/// array `[&'static str; 2]` (label names given to [`new`](Self::new)), or a struct with
/// `#[derive(LabelSet)]` written with `'static` (label names from its fields, see
/// [`typed`](Self::typed)). Lookups take the same type with any lifetimes.
///
/// # Examples
/// ```
/// use diag_core::{Counter, Family};
///
/// static REQUESTS: Family<Counter, (&'static str, u16, &'static str), 64> =
///     Family::new(["method", "code", "user"], ());
///
/// let user = String::from("ada"); // known only at run time
/// REQUESTS.get_or_create(("GET", 200, user.as_str())).unwrap().inc();
/// REQUESTS.get_or_create(("GET", 200, user.as_str())).unwrap().inc();
/// assert_eq!(REQUESTS.get(("GET", 200, "ada")).unwrap().get(), 2);
///
/// assert!(REQUESTS.remove(("GET", 200, "ada")));
/// assert!(REQUESTS.get(("GET", 200, "ada")).is_none());
/// ```
pub struct Family<V: Series, S: LabelSet, const N: usize, const B: usize = 64> {
    names: S::Names,
    template: V::Template,
    mode: Overflow,
    table: Table<V, N, B>,
    /// The family's hash seed, taken from [`seed_label_hashes`](crate::seed_label_hashes)'s
    /// global at the first creation; 0 before.
    seed: AtomicUsize,
    overflow: UnsafeCell<MaybeUninit<V>>,
    /// `OVERFLOW_*`: whether the overflow series exists.
    overflow_state: AtomicU8,
    full: Counter,
    refused: Counter,
}

const OVERFLOW_NONE: u8 = 0;
const OVERFLOW_INIT: u8 = 1;
const OVERFLOW_READY: u8 = 2;

// SAFETY: the overflow series is written once, by the thread that moves `overflow_state` from
// NONE to INIT, and read only after acquiring READY; the table is `Sync` for the same bounds.
unsafe impl<V: Series, S: LabelSet, const N: usize, const B: usize> Sync for Family<V, S, N, B> where S::Names: Sync {}

/// A lookup's matcher on servers: the label values compared with a series' stored text in
/// place, without rendering them.
struct Values<'a, 'l, S: LabelSet> {
    labels: &'a S::Ref<'l>,
    names: &'a [&'a str],
}

impl<S: LabelSet> Matcher for Values<'_, '_, S> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn matches(&self, stored: &[u8], escaped: bool) -> bool {
        let mut w = Compare::new(stored, self.names, escaped);
        self.labels.write_labels(&mut w).is_ok() && w.at_end()
    }
}

impl<V: Series, S: LabelSet, const N: usize, const B: usize> Family<V, S, N, B> {
    loom_const_fn! {
        /// An empty family with these label names; `template` builds each new series (the
        /// histogram bounds, or `()`). A full family sends new label sets to the overflow
        /// series ([`Overflow::Series`]).
        pub fn new(label_names: S::Names, template: V::Template) -> Self {
            Self {
                names: label_names,
                template,
                mode: Overflow::Series,
                table: Table::new(),
                seed: AtomicUsize::new(0),
                overflow: UnsafeCell::new(MaybeUninit::uninit()),
                overflow_state: AtomicU8::new(OVERFLOW_NONE),
                full: Counter::new(),
                refused: Counter::new(),
            }
        }
    }

    /// The same family with another [`Overflow`] behaviour.
    pub const fn with_overflow(mut self, mode: Overflow) -> Self {
        self.mode = mode;
        self
    }

    /// The label names.
    pub fn label_names(&self) -> &[&'static str] {
        S::names(&self.names)
    }

    /// Renders `labels` into `buf`: the text's length. A failure is counted.
    fn render(&self, labels: &S::Ref<'_>, buf: &mut [u8; B]) -> Result<usize, SeriesError> {
        let mut w = Render::new(buf, S::names(&self.names));
        match labels.write_labels(&mut w) {
            Ok(()) => Ok(w.text().len()),
            Err(e) => {
                self.refused.inc();
                Err(e)
            }
        }
    }

    /// The index hash of `labels` (whose text is `text`) under `seed`: of the values, on
    /// servers; of the text, on bare metal (see [`find`](Self::find)).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn hash(&self, labels: &S::Ref<'_>, text: &[u8], seed: usize) -> u64 {
        let mut w = Hash::new(seed);
        if cfg!(target_os = "none") {
            w.write(text);
        } else {
            let _ = labels.write_labels(&mut w);
        }
        w.finish()
    }

    /// Finds the live series of `labels`, pinned.
    ///
    /// On servers it copies nothing: the values are hashed, then compared with the stored text
    /// in place. On bare metal, where flash counts more than nanoseconds, the label set is
    /// rendered and the text hashed and compared, so only one writer (`Render`) is compiled
    /// for it (1.3 KiB less in the Cortex-M example), and found by the creators' walk (one
    /// walk compiled: 260 bytes less).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn find(&self, labels: &S::Ref<'_>, seed: usize) -> Option<usize> {
        let names = S::names(&self.names);
        if cfg!(target_os = "none") {
            let mut buf = [0u8; B];
            let mut w = Render::new(&mut buf, names);
            labels.write_labels(&mut w).ok()?;
            let text = w.text();
            self.table.find_text(text, self.hash(labels, text, seed))
        } else {
            self.table.find(self.hash(labels, &[], seed), &Values::<S> { labels, names })
        }
    }

    /// The series for `labels`, created on first use. Hold the returned [`SeriesRef`] only as
    /// long as needed: a removed series' slot is reused only after every `SeriesRef` to it is
    /// dropped.
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] when the label text exceeds `B` bytes;
    /// [`SeriesError::Full`] when the family is full and built with [`Overflow::Error`];
    /// [`SeriesError::Crowded`] when the probe limit is hit. Each is counted.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn get_or_create(&self, labels: S::Ref<'_>) -> Result<SeriesRef<'_, V>, SeriesError> {
        // Relaxed: the seed is written once; the entries a lookup finds are acquired.
        let seed = self.seed.load(Ordering::Relaxed);
        if seed != 0 {
            if let Some(i) = self.find(&labels, seed) {
                return Ok(self.pinned(i));
            }
        }
        self.create(labels)
    }

    #[cold]
    fn create(&self, labels: S::Ref<'_>) -> Result<SeriesRef<'_, V>, SeriesError> {
        let global = crate::labels::global_seed();
        // Relaxed: the seed orders nothing; the first value stored wins.
        let seed = match self.seed.compare_exchange(0, global, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => global,
            Err(seed) => seed,
        };
        let mut buf = [0u8; B];
        let len = self.render(&labels, &mut buf)?;
        let hash = self.hash(&labels, &buf[..len], seed);
        match self.table.find_or_insert(&buf[..len], hash, || V::new_series(self.template)) {
            Ok(i) => Ok(self.pinned(i)),
            Err(Insert::Crowded) => {
                self.refused.inc();
                Err(SeriesError::Crowded)
            }
            Err(Insert::Full) => {
                self.full.inc();
                match self.mode {
                    Overflow::Error => Err(SeriesError::Full(CapacityError { capacity: N })),
                    Overflow::Series => Ok(SeriesRef { series: self.overflow_series(), pin: None }),
                }
            }
        }
    }

    fn pinned(&self, i: usize) -> SeriesRef<'_, V> {
        // SAFETY: `find`/`find_or_insert` pinned slot `i` LIVE; the SeriesRef keeps the pin.
        let series = unsafe { self.table.series(i) };
        SeriesRef { series, pin: Some(Pin { state: self.table.state_word(i), table: &self.table, slot: i }) }
    }

    /// The overflow series, created on first use.
    fn overflow_series(&self) -> &V {
        loop {
            // Acquire: pairs with the release store of READY below.
            match self.overflow_state.compare_exchange(
                OVERFLOW_NONE,
                OVERFLOW_INIT,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let series = V::new_series(self.template);
                    self.overflow.with_mut(|p| {
                        // SAFETY: this thread alone moved the state from NONE to INIT; nobody
                        // reads the cell before READY.
                        unsafe { (*p).write(series) };
                    });
                    // Release: publishes the series written just above.
                    self.overflow_state.store(OVERFLOW_READY, Ordering::Release);
                }
                Err(OVERFLOW_READY) => break,
                Err(_) => spin_loop(), // another thread is writing it: a few instructions
            }
        }
        // SAFETY: READY acquired above; the series is never written again.
        self.overflow.with(|p| unsafe { (*p).assume_init_ref() })
    }

    fn overflow_ready(&self) -> Option<&V> {
        // Acquire: as in `overflow_series`.
        (self.overflow_state.load(Ordering::Acquire) == OVERFLOW_READY)
            // SAFETY: READY acquired just above.
            .then(|| self.overflow.with(|p| unsafe { (*p).assume_init_ref() }))
    }

    /// The series for `labels` if it exists. Never waits, never creates.
    pub fn get(&self, labels: S::Ref<'_>) -> Option<SeriesRef<'_, V>> {
        // Relaxed: as in `get_or_create`.
        let seed = self.seed.load(Ordering::Relaxed);
        if seed == 0 {
            return None;
        }
        self.find(&labels, seed).map(|i| self.pinned(i))
    }

    /// Removes the series for `labels`; `true` if it existed. Safe while other threads update
    /// and scrape: it disappears from the next scrape, and a [`SeriesRef`] still held keeps
    /// working (its updates are no longer exported) until dropped.
    pub fn remove(&self, labels: S::Ref<'_>) -> bool {
        // Relaxed: as in `get_or_create`.
        let seed = self.seed.load(Ordering::Relaxed);
        if seed == 0 {
            return false;
        }
        let mut buf = [0u8; B];
        let mut w = Render::new(&mut buf, S::names(&self.names));
        if labels.write_labels(&mut w).is_err() {
            return false; // too long: never created
        }
        let len = w.text().len();
        self.table.remove(&buf[..len], self.hash(&labels, &buf[..len], seed))
    }

    /// Removes every series for which `keep` returns `false`; returns how many were removed.
    /// `keep` sees each series' labels and its value.
    pub fn retain(&self, mut keep: impl FnMut(&SeriesLabels<'_>, &V) -> bool) -> usize {
        let names = S::names(&self.names);
        self.table.retain(|text, series| keep(&SeriesLabels { text, names }, series))
    }

    /// Removes every series (the overflow series stays: it counts what was refused).
    pub fn clear(&self) -> usize {
        self.table.retain(|_, _| false)
    }

    /// Every live series with its labels, in slot order. (Removed slots are not reused while
    /// it runs.)
    pub fn for_each(&self, mut f: impl FnMut(&SeriesLabels<'_>, &V)) {
        let names = S::names(&self.names);
        let _scrape = self.table.scrape_begin();
        for i in 0..self.table.high_water() {
            if let Some((text, series)) = self.table.peek(i) {
                f(&SeriesLabels { text, names }, series);
            }
        }
    }

    /// Live series (not counting the overflow series).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no series is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// New label sets that found the family full (sent to the overflow series, or refused).
    pub fn overflow(&self) -> u64 {
        self.full.get()
    }

    /// Label sets refused: text longer than `B` bytes, or the probe limit hit.
    pub fn refused(&self) -> u64 {
        self.refused.get()
    }
}

impl<V: Series, S: LabelSet<Names = ()>, const N: usize, const B: usize> Family<V, S, N, B> {
    loom_const_fn! {
        /// An empty family keyed by a struct with `#[derive(LabelSet)]`, whose field names are
        /// the label names.
        pub fn typed(template: V::Template) -> Self {
            Self::new((), template)
        }
    }
}

/// The labels of a live series, as a scrape writes them (values escaped).
#[derive(Debug, Clone, Copy)]
pub struct SeriesLabels<'a> {
    text: &'a [u8],
    names: &'a [&'static str],
}

impl<'a> SeriesLabels<'a> {
    /// The label text, `name="value",…`, as written in the exposition.
    pub fn text(&self) -> &'a str {
        core::str::from_utf8(self.text).unwrap_or("")
    }

    /// The value of label `name` as written in the exposition (escaped: `\\`, `\"`, `\n`).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let index = self.names.iter().position(|n| *n == name)?;
        self.values().nth(index)
    }

    /// The values, in label order, escaped.
    pub fn values(&self) -> impl Iterator<Item = &'a str> + 'a {
        let names = self.names;
        let mut rest = self.text();
        names.iter().map_while(move |name| {
            // Each pair is `name="value"`, with `,` between; an escaped value has no bare `"`.
            let body = rest.strip_prefix(',').unwrap_or(rest).strip_prefix(*name)?.strip_prefix("=\"")?;
            let mut end = 0;
            let bytes = body.as_bytes();
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let value = body.get(..end)?;
            rest = body.get(end + 1..)?;
            Some(value)
        })
    }
}

/// A series of a [`Family`], pinned: while any `SeriesRef` to a series lives, its slot is not
/// reused for another label set (a removed series stays updatable but is no longer exported).
pub struct SeriesRef<'a, V> {
    series: &'a V,
    pin: Option<Pin<'a>>,
}

struct Pin<'a> {
    state: &'a crate::atomic::AtomicU32,
    table: &'a dyn table::Pins,
    slot: usize,
}

impl<V> SeriesRef<'_, V> {
    /// Whether this is the family's overflow series (`otel_metric_overflow="true"`).
    pub fn is_overflow(&self) -> bool {
        self.pin.is_none()
    }

    /// Whether the series was removed from its family after this reference was taken.
    pub fn is_removed(&self) -> bool {
        self.pin.as_ref().is_some_and(|p| !p.table.is_live(p.slot))
    }
}

impl<V> Deref for SeriesRef<'_, V> {
    type Target = V;
    #[inline]
    fn deref(&self) -> &V {
        self.series
    }
}

impl<V> Drop for SeriesRef<'_, V> {
    #[inline]
    fn drop(&mut self) {
        if let Some(pin) = &self.pin {
            if table::release_pin(pin.state) {
                pin.table.reclaim(pin.slot);
            }
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for SeriesRef<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.series, f)
    }
}

impl<V: Series, S: LabelSet, const N: usize, const B: usize> Metric for Family<V, S, N, B>
where
    S::Names: Sync,
{
    fn metric_type(&self) -> MetricType {
        V::TYPE
    }

    fn label_names(&self) -> &[&str] {
        S::names(&self.names)
    }

    fn overflow(&self) -> u64 {
        self.overflow()
    }

    fn refused(&self) -> u64 {
        self.refused()
    }

    fn prefetch(&self) {
        crate::prefetch::read(&self.names);
        crate::prefetch::read(&self.overflow_state);
        self.table.prefetch_walk();
    }

    fn encode(&self, desc: &Desc<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        let high_water = self.table.high_water();
        let overflow = self.overflow_ready();
        if high_water == 0 && overflow.is_none() {
            return Ok(());
        }
        enc.header(desc)?;
        let names = S::names(&self.names);
        // Label names that are not all legacy are written per the scrape's escaping scheme,
        // from the text with its raw names (a slower path for these families only).
        let plain = names.iter().all(|n| crate::encoding::is_legacy_label_name(n));
        let labels = |text| if plain { Labels::rendered(text) } else { Labels::rendered_with_names(text, names) };
        // Items of this entry: the header, the overflow series (an empty item until it
        // exists), then one per slot, live or not, so an item's number never changes between
        // chunks.
        if !enc.skip_item() {
            match overflow {
                Some(series) => series.encode_series(desc, &Labels::rendered(OVERFLOW_TEXT.as_bytes()), enc)?,
                None => enc.empty_item(),
            }
        }
        let _scrape = self.table.scrape_begin();
        let plain_lines = plain && enc.writes_plain_lines(desc);
        for i in 0..high_water {
            if enc.skip_item() {
                continue;
            }
            self.table.prefetch_ahead(i);
            match self.table.peek(i) {
                Some((text, series)) => match series.integer() {
                    Some(value) if plain_lines && !text.is_empty() => enc.plain_sample(desc, text, value)?,
                    _ => series.encode_series(desc, &labels(text), enc)?,
                },
                None => enc.empty_item(),
            }
        }
        Ok(())
    }
}

impl<V: Series, S: LabelSet, const N: usize, const B: usize> fmt::Debug for Family<V, S, N, B>
where
    V: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        self.for_each(|labels, series| {
            list.entry(&labels.text(), series);
        });
        list.finish()?;
        write!(f, " (capacity {N}, overflow {}, refused {})", self.overflow(), self.refused())
    }
}

impl<V: Series, S: LabelSet, const N: usize, const B: usize> Drop for Family<V, S, N, B> {
    fn drop(&mut self) {
        if self.overflow_state.load(Ordering::Relaxed) == OVERFLOW_READY {
            // SAFETY: READY means initialised; `&mut self` means nobody else holds it.
            self.overflow.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn full_family_sends_new_sets_to_the_overflow_series() {
        let f: Family<Counter, (&str,), 2> = Family::new(["k"], ());
        f.get_or_create(("a",)).unwrap().inc();
        f.get_or_create(("b",)).unwrap().inc();
        let c = f.get_or_create(("c",)).unwrap();
        assert!(c.is_overflow());
        c.inc();
        f.get_or_create(("d",)).unwrap().inc();
        assert_eq!(f.overflow(), 2);
        assert_eq!(f.get_or_create(("c",)).unwrap().get(), 2, "c and d share the overflow series");
        assert_eq!(f.len(), 2);
    }

    /// Label values that differ in a few bytes (numbers, numbered paths) spread over the
    /// index whatever the seed. The first seeds listed made an earlier hash (without its
    /// final multiply) cluster them into runs of 33 to 126 entries at a quarter load, so that
    /// a family of 512 refused its 300th series as crowded; a random hash's longest run at
    /// this load is about 10.
    #[test]
    #[cfg_attr(miri, ignore = "a statistical test of safe hashing code: 150,000 creations")]
    fn similar_values_spread_over_the_index_for_every_seed() {
        let broke_earlier = [
            0x0897_3a4a_9f08_7e9d,
            0xf9b3_5f41_7b81_41a1,
            0x1358_b458_8502_d4e9,
            0xa96d_5a8a_48c4_f0a9,
            0xf7f8_6ef0_208c_9943,
            0x5076_971a_ab04_fbeb,
            0x3a07_9865_673e_9d8d,
            0x9a56_79fe_6bb2_ad9d,
            0x2543_e8fb_2e23_89b9,
        ];
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        let more = core::iter::repeat_with(move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        });
        let patterns: [fn(usize) -> String; 3] = [
            |i| std::format!("{i}"),
            |i| std::format!("/a/fairly/long/request/path/{i}"),
            |i| std::format!("/api/v1/items/{i:06}"),
        ];
        for seed in broke_earlier.into_iter().chain(more.take(40)) {
            for pattern in patterns {
                let f: std::boxed::Box<Family<Counter, [&str; 1], 1024>> = std::boxed::Box::new(Family::new(["k"], ()));
                f.seed.store(seed as usize | 1, Ordering::Relaxed);
                for i in 0..1024 {
                    f.get_or_create([&pattern(i)]).expect("room for every value").inc();
                }
                let run = f.table.longest_run();
                assert!(run < 24, "seed {seed:#x}, values like {:?}: a run of {run} entries", pattern(7));
            }
            // Two labels: a method and a path, and the same number in both places (which a
            // hash that did not tell the positions apart would send to one entry).
            let f: std::boxed::Box<Family<Counter, [&str; 2], 1024>> =
                std::boxed::Box::new(Family::new(["a", "b"], ()));
            f.seed.store(seed as usize | 1, Ordering::Relaxed);
            for i in 0..512 {
                let (path, n) = (std::format!("/api/v1/items/{i}"), std::format!("{i}"));
                f.get_or_create([["GET", "POST"][i % 2], &path]).expect("room for every value").inc();
                f.get_or_create([&n, &n]).expect("room for every value").inc();
            }
            let run = f.table.longest_run();
            assert!(run < 24, "seed {seed:#x}, two labels: a run of {run} entries");
        }
    }

    #[test]
    fn full_family_with_error_mode_errors() {
        let f: Family<Counter, [&str; 1], 1> = Family::new(["k"], ()).with_overflow(Overflow::Error);
        f.get_or_create(["a"]).unwrap();
        assert_eq!(f.get_or_create(["b"]).unwrap_err(), SeriesError::Full(CapacityError { capacity: 1 }));
        assert_eq!(f.overflow(), 1);
    }

    #[test]
    fn too_long_label_text_is_refused_and_counted() {
        let f: Family<Counter, (&str,), 4, 8> = Family::new(["k"], ());
        assert_eq!(f.get_or_create(("abc",)).unwrap().get(), 0); // k="abc" is 7 bytes
        assert!(f.get_or_create(("abcd",)).is_ok()); // 8 bytes: fits exactly
        assert_eq!(f.get_or_create(("abcde",)).unwrap_err(), SeriesError::TooLong { capacity: 8 });
        assert_eq!(f.refused(), 1);
    }

    #[test]
    fn removed_slots_are_reused_only_when_unpinned() {
        let f: Family<Counter, (u32,), 2> = Family::new(["id"], ());
        let held = f.get_or_create((1,)).unwrap();
        held.inc();
        f.get_or_create((2,)).unwrap().inc();
        assert!(f.remove((1,)));
        assert!(!f.remove((1,)));
        assert!(held.is_removed());
        // Slot of 1 is still pinned by `held`: the family counts as full.
        assert!(f.get_or_create((3,)).unwrap().is_overflow());
        drop(held);
        let three = f.get_or_create((3,)).unwrap();
        assert!(!three.is_overflow());
        assert_eq!(three.get(), 0, "a reused slot starts from zero");
        assert_eq!(f.get((2,)).unwrap().get(), 1);
    }

    #[test]
    fn retain_and_clear() {
        let f: Family<Counter, (&str, u8), 16> = Family::new(["user", "n"], ());
        for (i, user) in ["ada", "bob", "ada", "cy"].iter().enumerate() {
            f.get_or_create((*user, i as u8)).unwrap().inc();
        }
        assert_eq!(f.retain(|labels, _| labels.get("user") != Some("ada")), 2);
        let mut left: Vec<String> = Vec::new();
        f.for_each(|l, _| left.push(l.text().into()));
        left.sort();
        assert_eq!(left, ["user=\"bob\",n=\"1\"", "user=\"cy\",n=\"3\""]);
        assert_eq!(f.clear(), 2);
        assert!(f.is_empty());
    }

    #[test]
    fn many_series_churn_without_losing_any() {
        let f: Family<Counter, (u32,), 64> = Family::new(["id"], ());
        let rounds = if cfg!(miri) { 3 } else { 50 };
        for round in 0..rounds {
            for id in 0..64 {
                f.get_or_create((round * 64 + id,)).unwrap().inc_by(u64::from(id));
            }
            assert_eq!(f.len(), 64);
            for id in 0..64 {
                assert_eq!(f.get((round * 64 + id,)).unwrap().get(), u64::from(id));
            }
            assert_eq!(f.overflow(), 0);
            if round % 2 == 0 {
                assert_eq!(f.clear(), 64);
            } else {
                assert_eq!(f.retain(|_, _| false), 64);
            }
        }
    }

    /// Threads creating the same label sets at once, while another removes and recreates
    /// others: each label set is one series holding every increment, and no slot is lost to a
    /// creator that lost the race to link it.
    #[test]
    fn concurrent_creators_link_each_label_set_once() {
        use std::sync::{Arc, Barrier};
        let threads = 4;
        let (keys, rounds) = if cfg!(miri) { (8u32, 2) } else { (200, 20) };
        for _ in 0..rounds {
            let f: Arc<Family<Counter, (u32,), 256>> = Arc::new(Family::new(["id"], ()));
            let start = Arc::new(Barrier::new(threads + 1));
            let creators: Vec<_> = (0..threads)
                .map(|t| {
                    let (f, start) = (Arc::clone(&f), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        // Each thread in its own order, so that creators of one key meet.
                        for k in 0..keys {
                            let k = if t % 2 == 0 { k } else { keys - 1 - k };
                            f.get_or_create((k,)).unwrap().inc();
                        }
                    })
                })
                .collect();
            let churn = {
                let (f, start) = (Arc::clone(&f), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for k in 0..keys {
                        f.get_or_create((1_000 + k,)).unwrap().inc();
                        assert!(f.remove((1_000 + k,)));
                    }
                })
            };
            for t in creators {
                t.join().unwrap();
            }
            churn.join().unwrap();
            assert_eq!(f.len(), keys as usize);
            assert_eq!(f.overflow(), 0);
            for k in 0..keys {
                assert_eq!(f.get((k,)).unwrap().get(), threads as u64, "key {k}");
            }
            // Every other slot is free again: the family fills to its capacity.
            for k in 0..256 - keys {
                assert!(!f.get_or_create((2_000 + k,)).unwrap().is_overflow(), "slot {k} lost");
            }
            assert_eq!(f.len(), 256);
        }
    }

    /// Values that escape to look like others, or whose raw bytes equal another's escaped
    /// bytes, are distinct series, found again exactly.
    #[test]
    fn lookalike_values_are_distinct_series() {
        let f: Family<Counter, (&str, &str), 128> = Family::new(["a", "b"], ());
        let values = ["a\\", "a\\\\", "a\"", "a\\\"", "a\n", "a\\n", "a", "", "\"", "a\",b=\""];
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                f.get_or_create((*a, *b)).unwrap().inc_by((i * 100 + j) as u64 + 1);
            }
        }
        assert_eq!(f.len(), values.len() * values.len());
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                assert_eq!(f.get((*a, *b)).unwrap().get(), (i * 100 + j) as u64 + 1, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn escaped_values_round_trip_through_series_labels() {
        let f: Family<Counter, (&str, &str), 4> = Family::new(["a", "b"], ());
        f.get_or_create(("x\"y\\z\n", "")).unwrap().inc();
        f.for_each(|l, _| {
            assert_eq!(l.get("a"), Some(r#"x\"y\\z\n"#));
            assert_eq!(l.get("b"), Some(""));
            assert_eq!(l.get("c"), None);
        });
    }
}
