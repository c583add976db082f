//! The storage behind the `metrics` handles: diag's atomic [`Counter`], [`GaugeF64`] and
//! [`Histogram`], each behind the `metrics` trait its handle calls.

use std::sync::Arc;

use diag_core::{Counter, Desc, Encoder, GaugeF64, Histogram, Labels, Series, Stop};
use metrics::{CounterFn, GaugeFn, HistogramFn};

/// A counter: one atomic add per increment.
#[derive(Debug, Default)]
pub(crate) struct CounterCell(pub(crate) Counter);

impl CounterFn for CounterCell {
    #[inline]
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    /// Raises the counter to `value` if it is below. Meant for mirroring a counter kept
    /// elsewhere from one place: two threads calling it at once on one series may both add
    /// the difference they saw.
    fn absolute(&self, value: u64) {
        let current = self.0.get();
        if value > current {
            self.0.inc_by(value - current);
        }
    }
}

/// A gauge of `f64`s: one atomic store or compare-and-swap per update.
#[derive(Debug, Default)]
pub(crate) struct GaugeCell(pub(crate) GaugeF64);

impl GaugeFn for GaugeCell {
    #[inline]
    fn increment(&self, value: f64) {
        self.0.add(value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.0.add(-value);
    }

    #[inline]
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

/// A histogram over `N` bounds: one compare-and-swap per observation.
#[derive(Debug)]
pub(crate) struct HistogramCell<const N: usize>(Histogram<N>);

impl<const N: usize> HistogramFn for HistogramCell<N> {
    #[inline]
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

/// What a scrape needs of a histogram, whatever its number of buckets.
pub(crate) trait EncodeHistogram: Send + Sync {
    /// Encodes this series' bucket, sum and count lines.
    fn encode(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop>;
}

impl<const N: usize> EncodeHistogram for HistogramCell<N> {
    fn encode(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        self.0.encode_series(desc, labels, enc)
    }
}

/// A new histogram: its scrape side and its `metrics` handle.
pub(crate) type NewHistogram = (Arc<dyn EncodeHistogram>, metrics::Histogram);

/// Histogram buckets chosen at compile time (`&'static [f64; N]`), kept with the function
/// that makes a histogram of that size, so one recorder serves several bucket counts.
#[derive(Clone, Copy)]
pub(crate) struct Buckets {
    pub(crate) bounds: &'static [f64],
    make: fn(&'static [f64]) -> NewHistogram,
}

impl Buckets {
    pub(crate) const fn new<const N: usize>(bounds: &'static [f64; N]) -> Self {
        Self { bounds, make: make::<N> }
    }

    /// A new, empty histogram over these buckets: its scrape side and its `metrics` handle.
    pub(crate) fn make(&self) -> NewHistogram {
        (self.make)(self.bounds)
    }
}

impl core::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Buckets").field(&self.bounds).finish()
    }
}

fn make<const N: usize>(bounds: &'static [f64]) -> NewHistogram {
    // `bounds` came from a `&'static [f64; N]` in `Buckets::new`, so the conversion holds; the
    // other arm only keeps this free of panics.
    let Ok(bounds) = <&'static [f64; N]>::try_from(bounds) else {
        return (Arc::new(HistogramCell(Histogram::<0>::new(&[]))), metrics::Histogram::noop());
    };
    let cell = Arc::new(HistogramCell(Histogram::new(bounds)));
    (Arc::clone(&cell) as Arc<dyn EncodeHistogram>, metrics::Histogram::from_arc(cell))
}
