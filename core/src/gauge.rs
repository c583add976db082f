//! Gauges: an `i64` one and an `f64` one.

use crate::atomic::{AtomicI64, AtomicU64, Ordering, loom_const_fn};
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
use crate::family::Series;

/// An integer gauge.
///
/// # Examples
/// ```
/// use diag_core::Gauge;
/// static IN_FLIGHT: Gauge = Gauge::new();
/// IN_FLIGHT.inc();
/// IN_FLIGHT.add(4);
/// IN_FLIGHT.dec();
/// assert_eq!(IN_FLIGHT.get(), 4);
/// ```
#[derive(Debug)]
pub struct Gauge(AtomicI64);

impl Gauge {
    loom_const_fn! {
        /// A gauge at zero.
        pub fn new() -> Self {
            Self(AtomicI64::new(0))
        }
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: i64) {
        // Relaxed: a gauge publishes nothing but its own value.
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds `v` (may be negative).
    #[inline]
    pub fn add(&self, v: i64) {
        // Relaxed: see `set`.
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        // Relaxed: see `set`.
        self.0.load(Ordering::Relaxed)
    }
}

/// A floating-point gauge, stored as the bits of an `f64`.
///
/// # Examples
/// ```
/// use diag_core::GaugeF64;
/// static TEMPERATURE: GaugeF64 = GaugeF64::new();
/// TEMPERATURE.set(21.5);
/// TEMPERATURE.add(-0.5);
/// assert_eq!(TEMPERATURE.get(), 21.0);
/// ```
#[derive(Debug)]
pub struct GaugeF64(AtomicU64);

impl GaugeF64 {
    loom_const_fn! {
        /// A gauge at `0.0`.
        pub fn new() -> Self {
            Self(AtomicU64::new(0))
        }
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: f64) {
        // Relaxed: a gauge publishes nothing but its own value.
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `v` with a compare-and-swap loop.
    #[inline]
    pub fn add(&self, v: f64) {
        add_f64(&self.0, v);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> f64 {
        // Relaxed: see `set`.
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Adds `v` to the `f64` stored as bits in `cell`.
#[inline]
fn add_f64(cell: &AtomicU64, v: f64) {
    // Relaxed: the value is self-contained; callers order publication separately.
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + v).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

#[cfg(not(loom))]
impl Default for Gauge {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
impl Default for GaugeF64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Series for Gauge {
    type Template = ();
    const TYPE: MetricType = MetricType::Gauge;

    fn new_series((): ()) -> Self {
        Self::new()
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.sample(desc, labels, Value::I64(self.get()))
    }

    #[inline]
    fn integer(&self) -> Option<Value> {
        Some(Value::I64(self.get()))
    }
}

impl Series for GaugeF64 {
    type Template = ();
    const TYPE: MetricType = MetricType::Gauge;

    fn new_series((): ()) -> Self {
        Self::new()
    }

    fn encode_series(&self, desc: &Desc<'_>, labels: &Labels<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.sample(desc, labels, Value::F64(self.get()))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn integer_gauge() {
        let g = Gauge::new();
        g.set(-5);
        g.inc();
        g.add(10);
        g.dec();
        assert_eq!(g.get(), 5);
    }

    #[test]
    fn float_gauge() {
        let g = GaugeF64::new();
        g.set(1.5);
        g.add(2.25);
        assert_eq!(g.get(), 3.75);
        g.set(f64::NAN);
        assert!(g.get().is_nan());
    }
}
