//! [`ExemplarHistogram`]: a classic histogram that keeps the latest exemplar of each bucket.

use super::{ExemplarCell, ExemplarCopy, ExemplarError};
use crate::atomic::{array_of, loom_const_fn};
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop};
use crate::family::Series;
use crate::histogram::{Histogram, Snapshot};

/// A [`Histogram`] with the latest exemplar of each bucket, `+Inf` included (OpenMetrics and
/// protobuf show them).
///
/// # Examples
/// ```
/// use diag_core::{ExemplarHistogram, DEFAULT_BUCKETS};
/// static LATENCY: ExemplarHistogram<11> = ExemplarHistogram::new(&DEFAULT_BUCKETS);
/// LATENCY.observe_with_exemplar(0.3, &[("trace_id", "4bf92f35")], Some(1_700_000_000_000)).unwrap();
/// assert_eq!(LATENCY.snapshot().count, 1);
/// assert_eq!(LATENCY.exemplar(6).unwrap().view().value, 0.3); // le="0.5"
/// ```
#[derive(Debug)]
pub struct ExemplarHistogram<const N: usize> {
    histogram: Histogram<N>,
    exemplars: [ExemplarCell; N],
    inf: ExemplarCell,
}

impl<const N: usize> ExemplarHistogram<N> {
    loom_const_fn! {
        /// An empty histogram over `bounds` (sorted ascending, finite).
        pub fn new(bounds: &'static [f64; N]) -> Self {
            Self { histogram: Histogram::new(bounds), exemplars: array_of![ExemplarCell::new(); N], inf: ExemplarCell::new() }
        }
    }

    /// Records one observation, with the [exemplar source](super::set_exemplar_source)'s
    /// labels as its bucket's exemplar if it has some.
    pub fn observe(&self, v: f64) {
        let traced = super::source::with_current(|labels, timestamp_ms| {
            // Refused labels (from the source) still record; the exemplar stays as it was.
            let _ = self.observe_with_exemplar(v, labels, timestamp_ms);
        });
        if !traced {
            self.histogram.observe(v);
        }
    }

    /// Records one observation and makes `labels` (at `timestamp_ms`) its bucket's exemplar.
    ///
    /// # Errors
    /// [`ExemplarError`] when the labels are refused; the observation is recorded anyway.
    pub fn observe_with_exemplar(
        &self,
        v: f64,
        labels: &[(&str, &str)],
        timestamp_ms: Option<u64>,
    ) -> Result<(), ExemplarError> {
        let i = self.histogram.observe_in_bucket(v);
        self.exemplars.get(i).unwrap_or(&self.inf).set(labels, v, timestamp_ms)
    }

    /// A consistent snapshot of the counts (see [`Histogram::snapshot`]).
    pub fn snapshot(&self) -> Snapshot<N> {
        self.histogram.snapshot()
    }

    /// The latest exemplar of bucket `i` (`i >= N`: the `+Inf` bucket).
    pub fn exemplar(&self, i: usize) -> Option<ExemplarCopy> {
        self.exemplars.get(i).unwrap_or(&self.inf).get()
    }
}

impl<const N: usize> Series for ExemplarHistogram<N> {
    type Template = &'static [f64; N];
    const TYPE: MetricType = MetricType::Histogram;

    fn new_series(bounds: Self::Template) -> Self {
        Self::new(bounds)
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.histogram_with_exemplars(desc, labels, || self.snapshot(), |i| self.exemplar(i))
    }
}
