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

/// The CPU time the calling thread has used.
///
/// Benchmarks time with it rather than the wall clock: the machine is shared, and time spent
/// descheduled while other processes run is not the code's cost. Cache-line contention between
/// the benchmark's own threads stalls them *on* the CPU, so it is counted.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Instant::now().elapsed(); // unreachable on Linux; a zero-ish value, never a panic
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

/// Runs `f` and returns the CPU time the calling thread spent in it.
pub fn cpu_timed(f: impl FnOnce()) -> Duration {
    let start = thread_cpu_time();
    f();
    thread_cpu_time().saturating_sub(start)
}

/// Benchmarks `f` (one whole encode, returning its length) as `id` in group `g`, timed by the
/// thread's CPU time: the encode groups' measurement, text and protobuf.
pub fn bench_encode(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    f: &mut dyn FnMut() -> usize,
) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            cpu_timed(|| {
                for _ in 0..iters {
                    std::hint::black_box(f());
                }
            })
        })
    });
}

/// Runs `op(i)` for `i in 0..iters` on each of `threads` threads started together and returns
/// the time per operation while `threads` threads contend.
///
/// One thread is timed by its CPU time (nothing can block it, so that is the code's whole
/// cost, and it does not count time the shared machine gave to other processes). Several
/// threads are timed by the wall clock, the slower thread's: a peer that takes a lock blocks
/// under contention, and that wait, off the CPU, is part of its cost.
///
/// # Panics
/// If a thread panics.
pub fn run<F: Fn(u64) + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    let run_one = |op: &F| {
        for i in 0..iters {
            op(std::hint::black_box(i));
        }
    };
    if threads <= 1 {
        return cpu_timed(|| run_one(&op));
    }
    let run_one = |op: &F| {
        let start = Instant::now();
        run_one(op);
        start.elapsed()
    };
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
