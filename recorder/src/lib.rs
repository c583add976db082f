#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cells;
mod name;
mod recorder;

pub use diag_core::DEFAULT_BUCKETS;
pub use recorder::Recorder;

/// Re-exported so that users name the same `metrics` crate as this recorder.
pub use metrics;
