#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
// Unsafe code lives in the profilers only (signals, POSIX timers, jemalloc's mallctl), each
// block with a SAFETY comment; everything else is safe.
#![deny(unsafe_code)]

pub mod check;
pub mod config;
pub mod debug;
mod diagnostics;
mod error;
pub mod heartbeat;
#[cfg(feature = "profiling")]
pub mod profiling;
pub mod push;
#[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
pub mod runtime;
mod signal;
mod sources;
pub mod telemetry;

/// The no_std core, whole: metrics, the state table, encoders, the HTTP logic.
pub use diag_core as core;
#[doc(no_inline)]
pub use diag_core::*;
#[cfg(feature = "metrics")]
/// The `metrics` crate's recorder on diag's storage ([`Builder::metrics_recorder`] installs it).
pub use diag_recorder as recorder;
#[cfg(feature = "smol")]
pub use diag_smol;
#[cfg(feature = "tokio")]
pub use diag_tokio;
pub use diagnostics::{Builder, Component, Diagnostics, Heartbeat, Serving, Timed};
pub use error::Error;
pub use push::RemoteWrite;
pub use signal::{ShutdownSignal, shutdown_signal};
