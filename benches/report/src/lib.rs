//! BENCHMARKS.md and BENCHMARKS.svg from the results of `cargo bench -p diag-benches`: the
//! measured times, the ratios to each peer, the targets met or missed, and the runs kept from
//! earlier CPUs.
//!
//! A crate of its own, without the peer crates the benchmarks link, so that the test suite
//! checks how targets are judged without building every peer.

#![deny(missing_docs)]

pub mod history;
pub mod report;
pub mod rows;
