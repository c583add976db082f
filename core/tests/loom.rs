//! loom models of the core's lock-free structures: every interleaving of the real code.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p diag-core --test loom --release`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use diag_core::{
    Counter, ExemplarCounter, Family, Format, Histogram, HybridHistogram, HybridSnapshot, Metric, NativeConfig,
    NativeHistogram, NativeSnapshot, Registry, Scrape, ShardedHistogram, State, StateTable,
};

/// Two heartbeat writers on one component and a reader: the reader only ever sees states some
/// interleaving produces, and the final state and transition count are exactly the serial ones.
#[test]
fn state_table_writers_and_reader() {
    loom::model(|| {
        let t: Arc<StateTable<2>> = Arc::new(StateTable::with_recovery_window_ms(5));
        t.heartbeat_failed("a", 0).unwrap();
        let w1 = {
            let t = t.clone();
            thread::spawn(move || t.heartbeat_ok("a", 1).unwrap())
        };
        let w2 = {
            let t = t.clone();
            thread::spawn(move || t.heartbeat_ok("a", 10).unwrap())
        };
        let seen = t.state();
        assert!(matches!(seen, State::Degraded | State::Recovering | State::Ok), "{seen:?}");
        let (s1, s2) = (w1.join().unwrap(), w2.join().unwrap());
        // Serial orders: (1 then 10) → recovering since 1, then ok (9 > 5);
        //                (10 then 1) → recovering since 10, then recovering (1 - 10 saturates).
        match (s1, s2) {
            (State::Recovering, State::Ok) => assert_eq!(t.state(), State::Ok),
            (State::Recovering, State::Recovering) => assert_eq!(t.state(), State::Recovering),
            other => panic!("impossible interleaving result {other:?}"),
        }
        let expected_transitions = if t.state() == State::Ok { 3 } else { 2 };
        assert_eq!(t.transitions(), expected_transitions);
    });
}

/// Two threads registering the same component and a different one at once: the same name ends
/// up in exactly one slot.
#[test]
fn state_table_concurrent_registration() {
    loom::model(|| {
        let t: Arc<StateTable<3>> = Arc::new(StateTable::new());
        let a = {
            let t = t.clone();
            thread::spawn(move || t.expect("x").unwrap())
        };
        let b = {
            let t = t.clone();
            thread::spawn(move || {
                t.heartbeat_ok("x", 0).unwrap();
                t.expect("y").unwrap();
            })
        };
        a.join().unwrap();
        b.join().unwrap();
        let names: Vec<_> = t.components().map(|(n, _)| n).collect();
        assert_eq!(names.iter().filter(|n| **n == "x").count(), 1, "{names:?}");
        assert!(names.contains(&"y"));
        assert_eq!(t.component("x"), Some(State::Ok), "the heartbeat is never lost to a racing expect");
    });
}

/// Registration copies names into the table: one thread registers a name it built at run time
/// (and drops right after) while another heartbeats a second one and a reader walks the table.
/// The reader sees each name whole or not at all, never a slot whose name is still being
/// written, and both names end up exactly as given.
#[test]
fn state_table_names_copied_at_registration() {
    loom::model(|| {
        let t: Arc<StateTable<2, 8>> = Arc::new(StateTable::new());
        let a = {
            let t = t.clone();
            thread::spawn(move || {
                let name = String::from("caf") + "é/x";
                t.expect(&name).unwrap();
            })
        };
        let b = {
            let t = t.clone();
            thread::spawn(move || {
                let name = ["my", "db"].join(" ");
                assert_eq!(t.heartbeat_ok(&name, 0), Ok(State::Ok));
            })
        };
        for (name, state) in t.components() {
            match name {
                "café/x" => assert_eq!(state, State::Starting),
                "my db" => assert_eq!(state, State::Ok),
                torn => panic!("reader saw a name being written: {torn:?}"),
            }
        }
        a.join().unwrap();
        b.join().unwrap();
        let mut names: Vec<_> = t.components().collect();
        names.sort_unstable();
        assert_eq!(names, [("café/x", State::Starting), ("my db", State::Ok)]);
        assert_eq!(t.state(), State::Starting);
    });
}

/// Series insertion: two threads create the same label set and count on it while a reader
/// scrapes the family; creation is lock-free, no increment is lost, one series exists, and the
/// slot of the creator that lost the race is free again.
#[test]
fn family_insertion_and_scrape() {
    bounded_model().check(|| {
        let f: Arc<Family<Counter, (&'static str,), 2>> = Arc::new(Family::new(["k"], ()));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || f.get_or_create(("v",)).unwrap().inc())
            })
            .collect();
        let text = scrape(&*f);
        assert!(text.is_empty() || text.starts_with("# TYPE c counter\nc{k=\"v\"} "), "{text}");
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(f.len(), 1);
        assert_eq!(f.get(("v",)).unwrap().get(), 2);
        // The creator that lost the race to link "v" retracted its slot: another set fits.
        assert!(!f.get_or_create(("w",)).unwrap().is_overflow());
    });
}

/// Creation while another thread removes a series: a removal makes creations wait while it
/// walks the index, and waits for those in flight; both see the other's change whole.
#[test]
fn family_creation_during_removal() {
    bounded_model().check(|| {
        let f: Arc<Family<Counter, (&'static str,), 2>> = Arc::new(Family::new(["k"], ()));
        f.get_or_create(("a",)).unwrap().inc();
        let remover = {
            let f = f.clone();
            thread::spawn(move || f.remove(("a",)))
        };
        f.get_or_create(("b",)).unwrap().inc();
        assert!(remover.join().unwrap());
        assert_eq!(f.len(), 1);
        assert_eq!(f.overflow(), 0);
        assert_eq!(scrape(&*f), "# TYPE c counter\nc{k=\"b\"} 1\n");
        // a's slot is free again.
        assert!(!f.get_or_create(("c",)).unwrap().is_overflow());
    });
}

/// Removal while another thread updates the series and a third creates a new one in a family
/// of one: the new series reuses the slot only once the updater's reference is gone, so the
/// update never lands on the new label set (loom also checks that no slot's text or series is
/// written while another thread reads it).
#[test]
fn family_removal_and_reuse() {
    bounded_model().check(|| {
        let f: Arc<Family<Counter, (&'static str,), 1>> = Arc::new(Family::new(["k"], ()));
        f.get_or_create(("a",)).unwrap();
        let updater = {
            let f = f.clone();
            thread::spawn(move || {
                let a = f.get_or_create(("a",)).unwrap();
                a.inc();
                a.is_overflow()
            })
        };
        let remover = {
            let f = f.clone();
            thread::spawn(move || {
                f.remove(("a",));
                let b = f.get_or_create(("b",)).unwrap();
                (b.is_overflow(), b.get())
            })
        };
        let a_overflowed = updater.join().unwrap();
        let (b_overflowed, b_seen) = remover.join().unwrap();
        if !b_overflowed {
            assert_eq!(b_seen, 0, "b's series is fresh: the update to a never lands on it");
        }
        if a_overflowed && b_overflowed {
            panic!("one of a and b had the only slot");
        }
        let text = scrape(&*f);
        assert!(!text.contains("k=\"b\"} 1"), "{text}");
    });
}

/// A scrape while a series is removed and another created in its slot: the scrape shows each
/// series whole (its own text with its own value), never a mix.
#[test]
fn family_scrape_during_removal() {
    bounded_model().check(|| {
        let f: Arc<Family<Counter, (&'static str,), 1>> = Arc::new(Family::new(["k"], ()));
        f.get_or_create(("a",)).unwrap().inc_by(7);
        let churn = {
            let f = f.clone();
            thread::spawn(move || {
                f.remove(("a",));
                f.get_or_create(("b",)).unwrap().inc_by(3);
            })
        };
        let text = scrape(&*f);
        for line in text.lines().filter(|l| l.starts_with("c{")) {
            assert!(line == "c{k=\"a\"} 7" || line.starts_with("c{k=\"b\"} "), "{text}");
        }
        churn.join().unwrap();
        // b has its own series, or (if the scrape still pinned a's slot when b came, in this
        // family of one) went to the overflow series, counted as such.
        match f.get(("b",)) {
            Some(b) => assert_eq!(b.get(), 3),
            None => assert_eq!(f.overflow(), 1),
        }
    });
}

/// A native histogram's scrape is consistent: the zero bucket plus every bucket is the count.
fn assert_consistent<const B: usize>(s: &NativeSnapshot<B>) {
    let buckets: u64 = s.negative().iter().chain(s.positive()).map(|b| b.count).sum();
    assert_eq!(s.count, s.zero_count + s.nan_count + buckets, "{s:?}");
}

/// Two observers fill a native histogram of two slots; the third bucket lowers the resolution
/// (retagging and merging slots) while a scraper reads. Every scrape is consistent and the
/// final state holds every observation, in the buckets of the final schema.
#[test]
fn native_histogram_resolution_drop_during_scrape() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let h: Arc<NativeHistogram<2>> = Arc::new(NativeHistogram::new(NativeConfig::new(0).with_zero_threshold(0.0)));
        let a = {
            let h = h.clone();
            thread::spawn(move || h.observe(1.5))
        };
        let b = {
            let h = h.clone();
            thread::spawn(move || {
                h.observe(3.0);
                h.observe(100.0)
            })
        };
        let seen = h.snapshot();
        assert_consistent(&seen);
        a.join().unwrap();
        b.join().unwrap();
        let s = h.snapshot();
        assert_consistent(&s);
        assert!(s.count == 3 && s.count >= seen.count && s.sum == 104.5, "{s:?}");
        // Schema -1 holds 1.5 and 3.0 in (1, 4] (key 1) and 100 in (64, 256] (key 4); a lower
        // schema (another interleaving's retry) merges them further, never loses one.
        assert!(s.schema <= -1);
        assert_eq!(s.positive().iter().map(|b| b.count).sum::<u64>(), 3);
    });
}

/// The zero bucket widens (a move into it) while another thread observes into the bucket
/// being folded and a scraper reads: no count is lost or seen twice.
#[test]
fn native_histogram_zero_widening_during_observe() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let config = NativeConfig::new(0).with_zero_threshold(0.0).with_max_zero_threshold(1.0);
        let h: Arc<NativeHistogram<1>> = Arc::new(NativeHistogram::new(config));
        h.observe(0.75); // key 0, upper bound 1: the one slot
        let a = {
            let h = h.clone();
            thread::spawn(move || h.observe(0.8)) // the same bucket
        };
        let b = {
            let h = h.clone();
            thread::spawn(move || h.observe(3.0)) // no slot: bucket 0 joins the zero bucket
        };
        let seen = h.snapshot();
        assert_consistent(&seen);
        a.join().unwrap();
        b.join().unwrap();
        let s = h.snapshot();
        assert_consistent(&s);
        assert_eq!((s.count, s.zero_threshold, s.zero_count), (3, 1.0, 2), "{s:?}");
        assert_eq!(s.positive().iter().map(|b| (b.key, b.count)).collect::<Vec<_>>(), [(2, 1)]);
    });
}

/// A hybrid histogram's scrape is consistent: native buckets, zero bucket and the classic
/// `+Inf` bucket all count the same observations.
fn assert_hybrid_consistent<const B: usize, const N: usize>(s: &HybridSnapshot<B, N>) {
    assert_consistent(s.native());
    assert_eq!(s.native().count, s.classic().count, "{s:?}");
    assert_eq!(s.classic().cumulative(N), s.classic().count, "{s:?}");
}

static HYBRID_BOUNDS: [f64; 1] = [1.0];

/// Two observers (one of them with an exemplar) while a scraper flips the halves: every
/// scrape sees each observation in both the native and the classic buckets or in neither, and
/// the final scrape holds both, with the exemplar on its classic bucket.
#[test]
fn hybrid_histogram_observers_and_scrape() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let h: Arc<HybridHistogram<2, 1>> =
            Arc::new(HybridHistogram::new(NativeConfig::new(0).with_zero_threshold(0.0), &HYBRID_BOUNDS));
        let a = {
            let h = h.clone();
            thread::spawn(move || h.observe(0.75))
        };
        let b = {
            let h = h.clone();
            thread::spawn(move || h.observe_with_exemplar(3.0, &[("trace_id", "t")], None).unwrap())
        };
        let seen = h.snapshot();
        assert_hybrid_consistent(&seen);
        a.join().unwrap();
        b.join().unwrap();
        let s = h.snapshot();
        assert_hybrid_consistent(&s);
        assert!(s.native().count == 2 && s.native().count >= seen.native().count, "{s:?}");
        assert_eq!((s.classic().buckets, s.classic().inf, s.native().sum), ([1], 1, 3.75));
        assert_eq!(h.exemplar(1).map(|e| e.view().value), Some(3.0));
    });
}

/// Two scrapers take turns while an observer records: both scrapes are consistent, neither
/// waits forever, and the observation is counted once.
#[test]
fn hybrid_histogram_concurrent_scrapes() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let h: Arc<HybridHistogram<1, 1>> = Arc::new(HybridHistogram::new(NativeConfig::new(0), &HYBRID_BOUNDS));
        let scraper = {
            let h = h.clone();
            thread::spawn(move || assert_hybrid_consistent(&h.snapshot()))
        };
        let observer = {
            let h = h.clone();
            thread::spawn(move || h.observe(0.5))
        };
        assert_hybrid_consistent(&h.snapshot());
        scraper.join().unwrap();
        observer.join().unwrap();
        let s = h.snapshot();
        assert_eq!((s.native().count, s.classic().buckets), (1, [1]), "{s:?}");
    });
}

/// Two writers replace a counter's exemplar while a scrape reads it: the scrape sees no
/// exemplar or one of the two whole (labels and value together), never a torn mix; the cell
/// ends with one of them.
#[test]
fn exemplar_writers_and_reader() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let c = Arc::new(ExemplarCounter::new());
        let writers: Vec<_> = [("trace_id", "aaaa", 1u64), ("span_id", "bb", 2)]
            .into_iter()
            .map(|(k, v, n)| {
                let c = c.clone();
                thread::spawn(move || c.inc_by_with_exemplar(n, &[(k, v)], Some(n)).unwrap())
            })
            .collect();
        let whole = |copy: &diag_core::exemplar::ExemplarCopy| {
            let v = copy.view();
            (v.labels == b"trace_id=\"aaaa\"" && v.value == 1.0 && v.timestamp_ms == Some(1))
                || (v.labels == b"span_id=\"bb\"" && v.value == 2.0 && v.timestamp_ms == Some(2))
        };
        if let Some(copy) = c.exemplar() {
            assert!(whole(&copy), "{copy:?}");
        }
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(c.get(), 3);
        let last = c.exemplar().expect("one writer always lands");
        assert!(whole(&last), "{last:?}");
    });
}

static BOUNDS: [f64; 2] = [1.0, 2.0];

/// Every schedule with up to 2 preemptions, the bound loom's documentation recommends for code
/// where a thread may wait for another (an observer finding every histogram stripe taken, a
/// scrape waiting for an observer in flight, a creation waiting for a removal): an unbounded
/// search never ends on spin loops. The family models need it for their size too: creations
/// are lock-free, and their swaps, walks again and retractions under an unbounded search took
/// minutes per model (3 threads: 220 s for insertion and scrape). Bugs that need more than two
/// preemptions to show are rare (loom's documentation); the threaded stress tests in `family`
/// cover the rest by volume.
fn bounded_model() -> loom::model::Builder {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.max_branches = 100_000;
    model
}

/// Whether a histogram snapshot is one that whole observations of 0.5 (first bucket), 1.5
/// (second) and 3.0 (`+Inf`) add up to: `count` (the `+Inf` line) is the sum of the buckets
/// and `sum` the sum of exactly the counted values.
fn consistent(buckets: [u64; 2], inf: u64, count: u64, sum: f64) -> bool {
    count == buckets[0] + buckets[1] + inf
        && sum == buckets[0] as f64 * 0.5 + buckets[1] as f64 * 1.5 + inf as f64 * 3.0
}

/// Two threads observe one series while a third scrapes it: the scrape is whole and nothing
/// is lost. Under loom a scrape reads a stripe optimistically once, then takes it, so both
/// paths meet observers mid-write; observers that find a stripe taken use the other.
#[test]
fn histogram_scrape_consistent_while_observed() {
    bounded_model().check(|| {
        let h: Arc<Histogram<2>> = Arc::new(Histogram::new(&BOUNDS));
        let observer = {
            let h = h.clone();
            thread::spawn(move || h.observe(1.5))
        };
        let scraper = {
            let h = h.clone();
            thread::spawn(move || h.snapshot())
        };
        h.observe(0.5);
        h.observe(3.0);
        let s = scraper.join().unwrap();
        assert!(consistent(s.buckets, s.inf, s.count, s.sum), "{s:?}");
        observer.join().unwrap();
        let last = h.snapshot();
        assert_eq!((last.buckets, last.inf, last.count, last.sum), ([1, 1], 1, 3, 5.0));
        assert!(last.buckets.iter().zip(&s.buckets).all(|(b, a)| b >= a) && last.inf >= s.inf);
    });
}

/// One stripe, so observers and a scrape take the same one: the scrape may find an observer
/// mid-write (and retry, then take the stripe) and an observer may find the stripe taken by
/// the scrape or the other observer (and wait).
#[test]
fn histogram_one_stripe_contended() {
    bounded_model().check(|| {
        let h: Arc<ShardedHistogram<2, 1>> = Arc::new(ShardedHistogram::new(&BOUNDS));
        let scraper = {
            let h = h.clone();
            thread::spawn(move || h.snapshot())
        };
        h.observe(3.0);
        h.observe(0.5);
        let s = scraper.join().unwrap();
        assert!(consistent(s.buckets, s.inf, s.count, s.sum), "{s:?}");
        let s = h.snapshot();
        assert_eq!((s.buckets, s.inf, s.count, s.sum), ([1, 0], 1, 2, 3.5));
    });
}

/// The family's Prometheus text, as `c`.
fn scrape(metric: &dyn Metric) -> String {
    let registry: Registry<'_, 1> = Registry::new();
    registry.register("c", "", metric).unwrap();
    let mut buf = [0u8; 512];
    let n = Scrape::new(Format::Prometheus, &registry).fill(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}
