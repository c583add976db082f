//! The CPU profile: the `pprof` crate samples every thread's stack (SIGPROF at
//! [`FREQUENCY`] Hz) for the asked number of seconds; the report is encoded as pprof protobuf.
//! One CPU profile runs at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pprof::protos::Message as _;

/// Samples per second.
const FREQUENCY: i32 = 100;

/// Whether a CPU profile is being collected.
static BUSY: AtomicBool = AtomicBool::new(false);

/// Why no CPU profile came back.
#[derive(Debug)]
pub(crate) enum CpuError {
    /// Another CPU profile is being collected.
    Busy,
    /// The profiler failed.
    Failed(String),
}

/// Holds [`BUSY`] until dropped (when the profiling thread ends, even if the client left).
struct Claim;

impl Claim {
    fn take() -> Option<Self> {
        // AcqRel/Acquire: the previous profile's end happens before this one's start.
        // A `Claim` is built only on success: one built and dropped on failure would clear BUSY.
        if BUSY.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() { Some(Self) } else { None }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Release: pairs with the Acquire of the next `take`.
        BUSY.store(false, Ordering::Release);
    }
}

/// Samples for `seconds` on a thread of its own and returns the profile (pprof protobuf).
///
/// # Errors
/// [`CpuError::Busy`] while another CPU profile runs; [`CpuError::Failed`] when the profiler
/// cannot start or report.
pub(crate) async fn collect(seconds: u64) -> Result<Vec<u8>, CpuError> {
    let claim = Claim::take().ok_or(CpuError::Busy)?;
    tracing::info!(seconds, "collecting a CPU profile");
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("diagd-cpu-profile".into())
        .spawn(move || {
            let _claim = claim;
            let _ = tx.send_blocking(sample(Duration::from_secs(seconds)));
        })
        .map_err(|e| CpuError::Failed(format!("cannot start the profiling thread: {e}")))?;
    rx.recv().await.map_err(|_| CpuError::Failed("the profiling thread ended without a profile".into()))?
}

fn sample(duration: Duration) -> Result<Vec<u8>, CpuError> {
    let failed = |what: &str, e: pprof::Error| CpuError::Failed(format!("{what}: {e}"));
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        // Unwinding through these from a signal handler can crash (pprof-rs' advice).
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| failed("cannot start the CPU profiler", e))?;
    std::thread::sleep(duration);
    let report = guard
        .report()
        .frames_post_processor(drop_profiler_frames)
        .build()
        .map_err(|e| failed("cannot build the CPU profile", e))?;
    drop(guard);
    let profile = report.pprof().map_err(|e| failed("cannot encode the CPU profile", e))?;
    Ok(profile.encode_to_vec())
}

/// Removes the sampler's own frames from the leaf end of a stack (the unwinder called from the
/// signal handler; inlined away in optimized builds, present in debug ones), so each sample is
/// charged to the function it interrupted.
fn drop_profiler_frames(frames: &mut pprof::Frames) {
    let own = |symbols: &Vec<pprof::Symbol>| {
        symbols.iter().any(|s| {
            let name = s.name();
            name.starts_with("backtrace::") || name.contains("pprof::backtrace::")
        })
    };
    let leading = frames.frames.iter().take_while(|symbols| own(symbols)).count();
    frames.frames.drain(..leading);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_claim_leaves_the_first_one_in_force() {
        let first = Claim::take().expect("free at first");
        assert!(Claim::take().is_none(), "taken");
        assert!(Claim::take().is_none(), "a refused claim must not free it");
        drop(first);
        assert!(Claim::take().is_some(), "free again");
    }

    #[test]
    fn the_samplers_own_frames_are_dropped_from_the_leaf_end_only() {
        let symbol = |name: &str| pprof::Symbol {
            name: Some(name.as_bytes().to_vec()),
            addr: None,
            lineno: None,
            filename: None,
        };
        let stack = |names: &[&str]| names.iter().map(|n| vec![symbol(n)]).collect::<Vec<_>>();
        let mut frames = pprof::Frames {
            frames: stack(&[
                "backtrace::backtrace::libunwind::trace",
                "<pprof::backtrace::backtrace_rs::Trace as pprof::backtrace::Trace>::trace",
                "diagd::debug::socket::serve",
                "backtrace::later",
            ]),
            thread_name: "t".into(),
            thread_id: 1,
            sample_timestamp: std::time::SystemTime::UNIX_EPOCH,
        };
        drop_profiler_frames(&mut frames);
        let names: Vec<String> = frames.frames.iter().map(|s| s[0].name()).collect();
        assert_eq!(names, ["diagd::debug::socket::serve", "backtrace::later"]);
    }
}
