//! The hot-path harness: the same operation, timed on one thread or on several threads that
//! update the same series at once.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Values fed to histogram observations: they spread over the default buckets.
pub const VALUES: [f64; 8] = crate::workload::OBSERVATIONS;

/// The `i`-th observation value.
#[inline]
pub fn value(i: u64) -> f64 {
    VALUES[(i & 7) as usize]
}

/// Runs `op(i)` for `i in 0..iters` on each of `threads` threads started together and returns
/// the longest time one thread took: the time per operation while `threads` threads contend.
///
/// # Panics
/// If a thread panics.
pub fn run<F: Fn(u64) + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    let run_one = |op: &F| {
        let start = Instant::now();
        for i in 0..iters {
            op(std::hint::black_box(i));
        }
        start.elapsed()
    };
    if threads <= 1 {
        return run_one(&op);
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    run_one(&op)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
    })
}
