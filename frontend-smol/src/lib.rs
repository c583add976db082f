#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod io;
mod server;

pub use async_net::TcpListener;
pub use diag_core;
pub use diag_core::server::{BodyError, DiagBody, RouteFuture, Routes};
pub use server::{ConnectionTask, Server};
