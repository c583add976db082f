//! A program doing known work, whose profiles the tests read: it serves diag's debug socket
//! on `<DIR>/debug.sock` (the `diag` library's, as any service embedding it would), spins
//! [`spin_known`] on two threads named `busy-1` and `busy-2`, keeps 64 MiB allocated by
//! [`retain_known`] and has allocated and freed 256 MiB in [`churn_known`].
//!
//! `cargo run -p diagd --example profile_workload -- DIR` prints `ready <socket>` once it
//! serves; then `diagd debug -c CONFIG profile` (CONFIG holding `data_dir: DIR`) collects its
//! profiles.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use diag::Diagnostics;

// Heap profiles of this program: jemalloc with its profiler, as the global allocator.
diag::profiling::jemalloc!();

/// Where the spinning threads leave their result, so the loop is not optimized away.
static SPUN: AtomicU64 = AtomicU64::new(0);

/// The busy loop: only integer arithmetic in the loop body, no calls even unoptimized, so its
/// samples land in this function.
#[inline(never)]
fn spin_known(rounds: u64) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut i = 0;
    while i < rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
    }
    x
}

/// Allocates `mib` MiB in 1 MiB blocks and returns them (kept live by the caller).
#[inline(never)]
fn retain_known(mib: usize) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    for i in 0..mib {
        blocks.push(vec![i as u8; 1 << 20]);
    }
    blocks
}

/// Allocates and frees `mib` MiB in 256 KiB blocks.
#[inline(never)]
fn churn_known(mib: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..mib * 4 {
        let block = vec![i as u8; 256 << 10];
        sum += u64::from(block[block.len() - 1]);
    }
    sum
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: profile_workload DIR");
        return ExitCode::from(2);
    };
    match run(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("profile_workload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: PathBuf) -> Result<(), diag::Error> {
    let churned = churn_known(256);
    let retained = retain_known(64);
    for name in ["busy-1", "busy-2"] {
        std::thread::Builder::new().name(name.into()).spawn(|| {
            loop {
                // Relaxed: a sink for the result, read by nobody.
                SPUN.store(spin_known(1 << 20), Ordering::Relaxed);
            }
        })?;
    }

    let diag = Diagnostics::builder().debug_socket(&dir).build()?;
    println!("ready {} ({} MiB retained, {churned})", dir.join("debug.sock").display(), retained.len());
    std::io::stdout().flush()?;
    // Serves until killed.
    loop {
        std::thread::park();
        let _ = &diag;
    }
}
