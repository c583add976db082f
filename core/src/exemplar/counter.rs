//! [`ExemplarCounter`]: a counter that keeps the exemplar of its latest increment.

use super::{ExemplarCell, ExemplarError};
use crate::atomic::loom_const_fn;
use crate::counter::Counter;
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
use crate::family::Series;

/// A [`Counter`] with the exemplar of its latest increment (OpenMetrics and protobuf show it).
///
/// # Examples
/// ```
/// use diag_core::ExemplarCounter;
/// static REQUESTS: ExemplarCounter = ExemplarCounter::new();
/// REQUESTS.inc_with_exemplar(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")], Some(1_700_000_000_000)).unwrap();
/// assert_eq!(REQUESTS.get(), 1);
/// assert_eq!(REQUESTS.exemplar().unwrap().view().value, 1.0);
/// ```
#[derive(Debug)]
pub struct ExemplarCounter {
    counter: Counter,
    exemplar: ExemplarCell,
}

impl ExemplarCounter {
    loom_const_fn! {
        /// A counter at 0 without an exemplar.
        pub fn new() -> Self {
            Self { counter: Counter::new(), exemplar: ExemplarCell::new() }
        }
    }

    /// Adds 1, with the [exemplar source](super::set_exemplar_source)'s labels as its
    /// exemplar if it has some.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`, with the exemplar source's labels as its exemplar if it has some.
    pub fn inc_by(&self, n: u64) {
        let traced = super::source::with_current(|labels, timestamp_ms| {
            // Refused labels (from the source) still count; the exemplar stays as it was.
            let _ = self.inc_by_with_exemplar(n, labels, timestamp_ms);
        });
        if !traced {
            self.counter.inc_by(n);
        }
    }

    /// Adds 1 and makes `labels` (at `timestamp_ms`, Unix milliseconds) its exemplar.
    ///
    /// # Errors
    /// [`ExemplarError`] when the labels are refused; the counter is incremented anyway.
    pub fn inc_with_exemplar(&self, labels: &[(&str, &str)], timestamp_ms: Option<u64>) -> Result<(), ExemplarError> {
        self.inc_by_with_exemplar(1, labels, timestamp_ms)
    }

    /// Adds `n` and makes `labels` its exemplar, with value `n`.
    ///
    /// # Errors
    /// [`ExemplarError`] when the labels are refused; the counter is incremented anyway.
    pub fn inc_by_with_exemplar(
        &self,
        n: u64,
        labels: &[(&str, &str)],
        timestamp_ms: Option<u64>,
    ) -> Result<(), ExemplarError> {
        self.counter.inc_by(n);
        self.exemplar.set(labels, n as f64, timestamp_ms)
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.counter.get()
    }

    /// The latest exemplar, if any.
    pub fn exemplar(&self) -> Option<super::ExemplarCopy> {
        self.exemplar.get()
    }
}

impl Default for ExemplarCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl Series for ExemplarCounter {
    type Template = ();
    const TYPE: MetricType = MetricType::Counter;

    fn new_series((): ()) -> Self {
        Self::new()
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        let exemplar = self.exemplar.get();
        enc.sample_with_exemplar(desc, labels, Value::U64(self.get()), exemplar.as_ref().map(|e| e.view()).as_ref())
    }
}
