extern crate std;
use std::sync::Arc;
use std::vec::Vec;

use super::*;

/// The snapshot a histogram must report after `values`, bucketed at the snapshot's own final
/// schema and zero threshold: every observation is in the bucket that holds it.
fn expected<const B: usize>(values: &[f64], got: &NativeSnapshot<B>) -> NativeSnapshot<B> {
    let mut want = NativeSnapshot::<B>::empty(got.schema, got.zero_threshold);
    let mut entries = std::collections::BTreeMap::new();
    for &v in values {
        want.count += 1;
        if v.is_nan() {
            want.nan_count += 1;
        } else if v.abs() <= got.zero_threshold
            || key::upper_bound(key::key(v, got.schema), got.schema) <= got.zero_threshold
        {
            want.zero_count += 1;
        } else {
            *entries.entry((v < 0.0, key::key(v, got.schema))).or_insert(0) += 1;
        }
    }
    want.fill(entries.into_iter().map(|((negative, key), n)| (negative, key, n)));
    want.sum = got.sum;
    want
}

/// `a == b`, NaN sums included.
fn same<const B: usize>(a: &NativeSnapshot<B>, b: &NativeSnapshot<B>) -> bool {
    let (mut a, mut b) = (*a, *b);
    assert_eq!(a.sum.to_bits(), b.sum.to_bits());
    (a.sum, b.sum) = (0.0, 0.0);
    a == b
}

fn observed<const B: usize>(h: &NativeHistogram<B>, values: &[f64]) -> NativeSnapshot<B> {
    observed_more(h, values, 0)
}

/// Observes `values[done..]` (the histogram holds the ones before) and checks the snapshot.
fn observed_more<const B: usize>(h: &NativeHistogram<B>, values: &[f64], done: usize) -> NativeSnapshot<B> {
    for &v in &values[done..] {
        h.observe(v);
    }
    let s = h.snapshot();
    let buckets: u64 = s.negative().iter().chain(s.positive()).map(|b| b.count).sum();
    assert_eq!(s.count, s.zero_count + s.nan_count + buckets, "consistent");
    assert!(same(&s, &expected(values, &s)), "{s:?}\n{:?}", expected(values, &s));
    s
}

#[test]
fn values_land_in_their_buckets() {
    let h: NativeHistogram<16> = NativeHistogram::new(NativeConfig::new(1));
    let s = observed(&h, &[1.0, 1.2, 1.5, 2.0, -1.2, 0.0, 1e-40, f64::NAN, f64::INFINITY]);
    assert_eq!(s.schema, 1);
    assert_eq!(
        s.positive().iter().map(|b| (b.key, b.count)).collect::<Vec<_>>(),
        [(0, 1), (1, 1), (2, 2), (key::key(f64::MAX, 1) + 1, 1)]
    );
    assert_eq!(s.negative(), [NativeBucket { key: 1, count: 1 }]);
    assert_eq!((s.zero_count, s.nan_count, s.count), (2, 1, 9));
    assert!(s.sum.is_nan());
}

#[test]
fn full_slots_lower_the_resolution() {
    let h: NativeHistogram<4> = NativeHistogram::new(NativeConfig::new(3));
    let values: Vec<f64> = (1..=200).map(|i| i as f64 * 0.37).collect();
    let s = observed(&h, &values);
    assert!(s.schema < 3, "schema {}", s.schema);
    assert!(s.positive().len() <= 4);
    assert_eq!(s.zero_threshold, NativeConfig::DEFAULT_ZERO_THRESHOLD, "no widening configured");
    assert_eq!(s.sum, values.iter().sum::<f64>());
    // Negative values share the slots.
    let all: Vec<f64> = values.iter().copied().chain([-3.0, -300.0]).collect();
    let s = observed_more(&h, &all, 200);
    assert!(s.negative().len() + s.positive().len() <= 4);
}

#[test]
fn the_zero_bucket_widens_before_the_resolution_drops() {
    let config = NativeConfig::new(2).with_zero_threshold(0.001).with_max_zero_threshold(0.1);
    let h: NativeHistogram<3> = NativeHistogram::new(config);
    let s = observed(&h, &[0.01, 0.02, 0.04, 0.5]);
    // Three slots, four buckets: the lowest, (2^-7.., 2^(-26/4)] = 0.011, joins the zero bucket.
    assert_eq!(s.schema, 2);
    assert_eq!(s.zero_threshold, key::upper_bound(key::key(0.01, 2), 2));
    assert_eq!(s.zero_count, 1);
    // Beyond the maximum, the resolution drops instead.
    let s = observed_more(&h, &[0.01, 0.02, 0.04, 0.5, 3.0, 30.0, 300.0], 4);
    assert!(s.zero_threshold <= 0.1);
    assert!(s.schema < 2);
}

#[test]
fn at_the_lowest_schema_the_zero_bucket_takes_the_rest() {
    // One slot, values 2^64 apart at schema -4 (one bucket per 2^16): nothing fits but the
    // zero bucket, which widens past its maximum rather than lose a count or panic.
    let h: NativeHistogram<1> = NativeHistogram::new(NativeConfig::new(8));
    let s = observed(&h, &[1e-30, 1.0, 1e30, -1e-30, f64::INFINITY]);
    assert_eq!(s.schema, NATIVE_MIN_SCHEMA);
    assert_eq!(s.count, 5);
    assert!(s.positive().len() + s.negative().len() <= 1);
    let h: NativeHistogram<0> = NativeHistogram::new(NativeConfig::DEFAULT);
    let s = observed(&h, &[1.0, 2.0, -5.0]);
    assert_eq!((s.zero_count, s.count), (3, 3));
}

#[test]
fn snapshots_are_consistent_under_concurrent_observers() {
    // Few slots and spread values, so slots fill, merge and the schema drops while the
    // scraper reads.
    let h: Arc<NativeHistogram<6>> =
        Arc::new(NativeHistogram::new(NativeConfig::new(6).with_zero_threshold(0.0).with_max_zero_threshold(0.01)));
    let per_thread: u64 = if cfg!(miri) { 40 } else { 20_000 };
    let observers: Vec<_> = (0..3)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let v = ((i * 7 + t * 13) % 97) as f64 * 0.05 - 0.5;
                    h.observe(v);
                }
            })
        })
        .collect();
    let mut last = 0;
    loop {
        let done = observers.iter().all(|o| o.is_finished());
        let s = h.snapshot();
        let buckets: u64 = s.negative().iter().chain(s.positive()).map(|b| b.count).sum();
        assert_eq!(s.count, s.zero_count + s.nan_count + buckets);
        assert!(s.count >= last, "counts only grow");
        assert!(s.negative().len() + s.positive().len() <= 6);
        last = s.count;
        if done {
            break;
        }
    }
    for o in observers {
        o.join().unwrap();
    }
    let values: Vec<f64> =
        (0..3).flat_map(|t| (0..per_thread).map(move |i| ((i * 7 + t * 13) % 97) as f64 * 0.05 - 0.5)).collect();
    let s = h.snapshot();
    assert!(same(&s, &expected(&values, &s)), "{s:?}\n{:?}", expected(&values, &s));
}

#[test]
fn a_family_of_native_histograms_encodes_in_every_format() {
    use crate::{Family, Format, Registry, Scrape};
    let family: Family<NativeHistogram<8>, (&str,), 4> = Family::new(["route"], NativeConfig::new(0));
    let registry: Registry<'_, 2> = Registry::new();
    registry.register("latency_seconds", "Latency.", &family).unwrap();
    for v in [0.75, 1.5, 3.0] {
        family.get_or_create(("/a",)).unwrap().observe(v);
    }
    let mut buf = [0u8; 1024];
    let n = Scrape::new(Format::Prometheus, &registry).fill(&mut buf).unwrap();
    assert_eq!(
        core::str::from_utf8(&buf[..n]).unwrap(),
        "# HELP latency_seconds Latency.\n# TYPE latency_seconds histogram\n\
         latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\nlatency_seconds_sum{route=\"/a\"} 5.25\n\
         latency_seconds_count{route=\"/a\"} 3\n"
    );
    let n = Scrape::new(Format::OpenMetrics, &registry).fill(&mut buf).unwrap();
    crate::encoding::parse::validate(Format::OpenMetrics, core::str::from_utf8(&buf[..n]).unwrap()).unwrap();
}

/// What docs/metrics.md says a `NativeHistogram<32>` takes on a 64-bit server: two stripes of
/// 32 slots (a 4-byte tag and an 8-byte count each) plus their counters, each stripe padded to
/// the cache-line pair crossbeam's `CachePadded` uses on x86-64 (128 bytes).
#[test]
#[cfg(target_arch = "x86_64")]
fn a_native_histogram_of_32_buckets_takes_about_a_kilobyte() {
    assert_eq!(core::mem::size_of::<NativeHistogram<32>>(), 1152);
}
