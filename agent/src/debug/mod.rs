//! The debug service (docs/debug.md): a unix socket in the data dir serving health, metrics, the
//! live log level and profiles; the `diagd debug …` commands that talk to it; and the same
//! profiles under `/debug/pprof/` on the diagnostic address with `--debug`.
//!
//! The socket is served on a thread of its own by async-io (whatever `--runtime` the agent runs
//! on), and every route here is runtime-independent: profiles are collected on plain threads and
//! awaited through channels, so the routes also run under tokio, smol and async-std when mounted
//! on the diagnostic address.

mod allocator;
pub(crate) mod cli;
mod client;
mod cpu;
mod heap;
pub(crate) mod log_level;
mod profiles;
mod proto;
mod routes;
mod socket;
mod tarball;
mod threads;
mod unwind;

pub(crate) use routes::DebugRoutes;
pub(crate) use socket::start;
