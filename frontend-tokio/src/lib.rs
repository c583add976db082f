#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "tower")]
mod router;
mod runtime_metrics;
mod server;

pub use diag_core;
pub use diag_core::server::{BodyError, BoxError, DiagBody, RouteBody, RouteFuture, Routes};
#[cfg(feature = "tower")]
pub use router::ServiceFuture;
pub use runtime_metrics::TokioMetrics;
pub use server::Server;
