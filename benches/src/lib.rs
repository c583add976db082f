//! Shared code of the diag benchmarks: the workloads built on diag and on each peer crate,
//! the hot-path harness and the serving harness. The report writer is `diag-bench-report`.
//!
//! The benchmark itself is `benches/peers.rs`; run it with `cargo bench -p diag-benches`.

#![deny(missing_docs)]

pub mod alloc;
pub mod hot;
pub mod lookup;
pub mod native;
pub mod protobuf;
pub mod serve;
pub mod workload;

pub use diag_bench_report::{history, report};
