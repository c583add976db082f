//! Shared code of the diag benchmarks: the workloads built on diag and on each peer crate,
//! the hot-path harness, the serving harness and the report writer.
//!
//! The benchmark itself is `benches/peers.rs`; run it with `cargo bench -p diag-benches`.

#![deny(missing_docs)]

pub mod alloc;
pub mod history;
pub mod hot;
pub mod lookup;
pub mod native;
pub mod protobuf;
pub mod report;
pub mod serve;
pub mod workload;
