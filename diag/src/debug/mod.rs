//! The debug service (docs/debug.md): a unix socket in the data dir serving
//! health, metrics, the live log level and profiles of the process that embeds it; the client
//! `diagd debug` uses to talk to it; and the same profiles under `/debug/pprof/` on the
//! diagnostic address when asked.
//!
//! The socket is served on a thread of its own by async-io (whatever runtime the service runs
//! on), and every route here is runtime-independent: profiles are collected on plain threads and
//! awaited through channels, so the routes also run under tokio, smol and async-std when mounted
//! on the diagnostic address. Profiles need the `profiling` feature; without it the profile
//! routes answer 404 saying so.

pub mod client;
#[cfg(feature = "profiling")]
mod cpu;
#[cfg(feature = "profiling")]
mod heap;
pub mod log_level;
pub mod profiles;
#[cfg(feature = "profiling")]
mod proto;
mod routes;
#[cfg(feature = "profiling")]
mod signal;
mod socket;
pub mod tarball;
#[cfg(feature = "tokio-taskdump")]
pub(crate) mod tasks;
#[cfg(feature = "profiling")]
mod threads;
#[cfg(feature = "profiling")]
mod unwind;

#[cfg(feature = "profiling")]
pub(crate) use heap::jemalloc_is_global;
pub use routes::DebugRoutes;
pub use socket::{DEFAULT_DATA_DIR, SOCKET_NAME, socket_path};
pub(crate) use socket::{DataDir, DebugSocket, start};
