//! A monotonically increasing `u64` counter.

use crate::atomic::{AtomicU64, Ordering, loom_const_fn};
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
use crate::family::Series;

/// A counter: one relaxed atomic add per increment.
///
/// # Examples
/// ```
/// use diag_core::Counter;
/// static REQUESTS: Counter = Counter::new();
/// REQUESTS.inc();
/// REQUESTS.inc_by(2);
/// assert_eq!(REQUESTS.get(), 3);
/// ```
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    loom_const_fn! {
        /// A counter at zero.
        pub fn new() -> Self {
            Self(AtomicU64::new(0))
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n` (wrapping at `u64::MAX`, which no real counter reaches).
    #[inline]
    pub fn inc_by(&self, n: u64) {
        // Relaxed: a counter publishes nothing but its own value.
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        // Relaxed: see `inc_by`.
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl Series for Counter {
    type Template = ();
    const TYPE: MetricType = MetricType::Counter;

    fn new_series((): ()) -> Self {
        Self::new()
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.sample(desc, labels, Value::U64(self.get()))
    }

    #[inline]
    fn integer(&self) -> Option<Value> {
        Some(Value::U64(self.get()))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let c = Counter::new();
        c.inc();
        c.inc_by(41);
        assert_eq!(c.get(), 42);
    }
}
