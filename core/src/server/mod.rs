//! The hyper 1.x glue every std frontend shares (feature `hyper`): the response body type,
//! the extra-routes hook, the conversion between hyper's request/response and the core's
//! [`Request`](crate::http::Request)/[`Response`](crate::http::Response), the per-connection
//! header and idle timeouts, and the connection driver.
//!
//! Nothing here names a runtime: a frontend brings its listener ([`Accept`], over its IO
//! adapter implementing hyper's `rt::Read` and `rt::Write`), its [`hyper::rt::Timer`] and a
//! way to spawn a task, and calls [`serve`], which accepts, caps the connections (at the cap
//! the longest-waiting idle connection gives way to the new one), serves each with the core
//! routes and drains on shutdown. [`serve_connection`] serves a single connection outside any
//! cap (e.g. a unix socket of one's own).
//!
//! # Examples
//! A minimal frontend over blocking-free IO and any timer, serving one connection:
//! ```no_run
//! use std::sync::Arc;
//! use diag_core::http::Service;
//! use diag_core::server::{Handler, serve_connection};
//! use diag_core::StateTable;
//!
//! static STATES: StateTable<4> = StateTable::new();
//!
//! async fn one<IO, T>(io: IO, timer: T)
//! where
//!     IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
//!     T: hyper::rt::Timer,
//! {
//!     let handler = Arc::new(Handler::new(Service::new(&STATES, &[], std::process::id())));
//!     serve_connection(handler, io, timer, std::future::pending()).await;
//! }
//! ```

mod admission;
mod body;
mod connection;
mod handler;
mod io;
mod pool;
mod request_durations;
mod route_body;
mod routes;
mod serve;
mod shared;
mod watchdog;

pub use admission::ConnectionStats;
pub use body::{BodyError, DiagBody};
pub use connection::serve_connection;
pub use handler::Handler;
pub use request_durations::{CODES, REQUEST_DURATION_BOUNDS, ROUTES, RequestDurationFamily, RequestDurations};
pub use route_body::{BoxError, RouteBody};
pub use routes::{RouteFuture, Routes};
pub use serve::{Accept, ConnectionTask, serve};
