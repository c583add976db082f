#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod body;
mod io;
mod routes;
mod runtime_metrics;
mod server;
mod watchdog;

pub use body::{BodyError, DiagBody};
pub use diag_core;
pub use routes::{RouteFuture, Routes};
pub use runtime_metrics::TokioMetrics;
pub use server::Server;
