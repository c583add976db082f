#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod runtime_metrics;
mod server;

pub use diag_core;
pub use diag_core::server::{BodyError, DiagBody, RouteFuture, Routes};
pub use runtime_metrics::TokioMetrics;
pub use server::Server;
