//! Labelled families of fixed capacity, and the [`Series`] trait their members implement.

use core::fmt;

use crate::counter::Counter;
use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop};
use crate::error::CapacityError;
use crate::registry::Metric;
use crate::slots::Slots;

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
}

/// A family of up to `N` series of type `V`, each keyed by `L` label values.
///
/// Lookup and insertion are lock-free; values are `&'static str` so that no label is copied.
/// A new label set beyond `N` returns an error and is counted in
/// `diag_series_overflow_total{family="…"}`; it never panics and never allocates.
///
/// # Examples
/// ```
/// use diag_core::{Counter, Family};
/// static REQUESTS: Family<Counter, 2, 8> = Family::new(["method", "code"], ());
///
/// REQUESTS.get_or_create(["GET", "200"]).unwrap().inc();
/// REQUESTS.get_or_create(["GET", "200"]).unwrap().inc();
/// assert_eq!(REQUESTS.get(&["GET", "200"]).unwrap().get(), 2);
/// assert!(REQUESTS.get(&["PUT", "200"]).is_none());
/// ```
pub struct Family<V: Series, const L: usize, const N: usize> {
    label_names: [&'static str; L],
    template: V::Template,
    series: Slots<([&'static str; L], V), N>,
    overflow: Counter,
}

impl<V: Series, const L: usize, const N: usize> Family<V, L, N> {
    crate::atomic::loom_const_fn! {
        /// An empty family with these label names; `template` builds each new series.
        pub fn new(label_names: [&'static str; L], template: V::Template) -> Self {
            Self { label_names, template, series: Slots::new(), overflow: Counter::new() }
        }
    }

    /// The series for `values`, created on first use.
    ///
    /// # Errors
    /// [`CapacityError`] when the label set is new and `N` series exist already; the overflow
    /// is counted.
    pub fn get_or_create(&self, values: [&'static str; L]) -> Result<&V, CapacityError> {
        match self.series.get_or_insert_with(|(v, _)| *v == values, || (values, V::new_series(self.template))) {
            Ok((_, (_, series))) => Ok(series),
            Err(_) => {
                self.overflow.inc();
                Err(CapacityError { capacity: N })
            }
        }
    }

    /// The series for `values` if it exists. Never waits, never inserts.
    pub fn get(&self, values: &[&str; L]) -> Option<&V> {
        self.series.iter().find(|(_, (v, _))| v == values).map(|(_, (_, s))| s)
    }

    /// Every series with its label values, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (&[&'static str; L], &V)> + '_ {
        self.series.iter().map(|(_, (labels, s))| (labels, s))
    }

    /// The label names.
    pub fn label_names(&self) -> &[&'static str; L] {
        &self.label_names
    }

    /// How many new label sets were refused because the family was full.
    pub fn overflow(&self) -> u64 {
        self.overflow.get()
    }
}

impl<V: Series, const L: usize, const N: usize> Metric for Family<V, L, N> {
    fn metric_type(&self) -> MetricType {
        V::TYPE
    }

    fn label_names(&self) -> &[&str] {
        &self.label_names
    }

    fn overflow(&self) -> u64 {
        self.overflow()
    }

    fn encode(&self, desc: &Desc<'_>, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        let claimed = self.series.len_hint();
        if claimed == 0 {
            return Ok(());
        }
        enc.header(desc)?;
        // Items of this entry: the header, then one per slot (unpublished slots count too, so
        // that an item's number never changes between chunks).
        enc.family(desc, &self.label_names, |enc| {
            for i in 0..claimed {
                if enc.skip_item() {
                    continue;
                }
                match self.series.get(i) {
                    Some((values, series)) => {
                        series.encode_series(desc, &Labels::new(&self.label_names, values), enc)?;
                    }
                    None => enc.empty_item(),
                }
            }
            Ok(())
        })
    }
}

impl<V: Series, const L: usize, const N: usize> fmt::Debug for Family<V, L, N>
where
    V: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("label_names", &self.label_names)
            .field("series", &self.series)
            .field("overflow", &self.overflow())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn full_family_errors_and_counts_overflow() {
        let f: Family<Counter, 1, 2> = Family::new(["k"], ());
        f.get_or_create(["a"]).unwrap();
        f.get_or_create(["b"]).unwrap();
        assert_eq!(f.get_or_create(["c"]).unwrap_err(), CapacityError { capacity: 2 });
        assert_eq!(f.get_or_create(["d"]).unwrap_err(), CapacityError { capacity: 2 });
        assert_eq!(f.overflow(), 2);
        f.get_or_create(["a"]).unwrap().inc();
        assert_eq!(f.get(&["a"]).unwrap().get(), 1);
        assert_eq!(f.iter().count(), 2);
    }
}
