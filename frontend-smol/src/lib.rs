#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod io;
mod runtime_metrics;
mod server;

pub use async_net::TcpListener;
pub use diag_core;
pub use diag_core::server::ConnectionTask;
pub use diag_core::server::{BodyError, DiagBody, RouteBody, RouteFuture, Routes};
pub use runtime_metrics::SmolMetrics;
pub use server::Server;
