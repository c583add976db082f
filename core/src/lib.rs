#![doc = include_str!("../README.md")]
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

mod atomic;
mod classic_bucket;
#[cfg(feature = "std")]
mod clock;
mod counter;
mod decimal;
pub mod encoding;
mod error;
pub mod exemplar;
mod family;
mod float;
mod gauge;
#[cfg(feature = "gzip")]
pub mod gzip;
pub mod histogram;
pub mod http;
pub mod labels;
pub mod native_histogram;
mod prefetch;
#[cfg(feature = "std")]
pub mod process;
pub mod proto;
mod registry;
pub mod remote_write;
#[cfg(feature = "hyper")]
pub mod server;
mod sharded;
mod slots;
pub mod snappy;
pub mod state;
mod stripe;

#[cfg(feature = "std")]
pub use clock::unix_time_ms;
pub use counter::Counter;
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use diag_derive::{LabelSet, LabelValue};
pub use encoding::{Desc, Encoder, Format, Labels, MetricType, NativeHistogramView, Stop, Value};
pub use error::{CapacityError, ComponentError, EncodeError, NameError, RegisterError, SeriesError};
pub use exemplar::{
    ExemplarCounter, ExemplarError, ExemplarHistogram, ExemplarSink, ExemplarSource, clear_exemplar_source,
    set_exemplar_source,
};
pub use family::{Family, Overflow, Series, SeriesLabels, SeriesRef};
pub use gauge::{Gauge, GaugeF64};
pub use histogram::{DEFAULT_BUCKETS, Histogram};
pub use labels::{LabelSet, LabelValue, seed_label_hashes};
pub use native_histogram::{
    HybridHistogram, HybridSnapshot, NativeBucket, NativeConfig, NativeHistogram, NativeSnapshot,
};
pub use registry::{Collect, Metric, Registry, Scrape, Sources};
pub use sharded::{ShardedCounter, ShardedHistogram};
pub use state::{State, StateTable};
