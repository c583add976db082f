//! The CPU profile: every thread's stack, sampled [`FREQUENCY`] times per second of the CPU
//! time that thread uses, for the asked number of seconds; encoded as pprof protobuf.
//! One CPU profile runs at a time.
//!
//! How, and why so:
//! - **A timer per thread.** Each thread of the process gets a POSIX timer on its own CPU
//!   clock (`timer_create` on the thread's clock id, `SIGEV_THREAD_ID`), so each thread is
//!   signalled for its own CPU time and signals to different threads never merge; the thread
//!   list is read again every [`RESCAN`], so threads started during the profile are sampled
//!   too. A process-wide `ITIMER_PROF` delivers one pending `SIGPROF` to the whole process, and
//!   expiries that come while one is pending are lost.
//! - **Expiries are counted.** A timer that expired again before its signal was handled
//!   reports the overrun in `si_overrun`; the sample weighs `1 + overrun`.
//! - **No sample is dropped for where it landed.** Stacks are walked by
//!   [`unwind`](super::unwind) (no lock, no allocation), so samples in libc, in system calls
//!   and in the vDSO are kept; an unwinder that may take the loader's lock has to drop them.
//! - **No lock in the handler.** Samples go into a ring of slots claimed with an atomic
//!   counter and drained by the profiling thread every [`DRAIN`]; a full ring counts the
//!   samples it loses (reported in the profile's comments).
//! - **The window is exact.** Timers start before the first reading of the process's CPU time
//!   and are deleted before the last; symbolizing and encoding happen after, outside it.
//!
//! The profile's comments (`go tool pprof -comments`) give the process's CPU time over the
//! window (utime + stime from `/proc/self/stat`) beside the time the samples account for.
//!
//! Limits: a thread's CPU time since its last sample (under one period) is not counted, so a
//! thread that ran less than 1/[`FREQUENCY`] s in the window may be missing; threads blocking
//! `SIGPROF` are not sampled until they unblock it; `SIGPROF` is diag's while a profile runs
//! (an existing handler is refused, not replaced). Linux on x86_64 and aarch64.

#![allow(unsafe_code, reason = "signals, POSIX timers and a lock-free sample ring")]

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::proto::{Builder, Label};
use super::unwind::{Stack, Unwinder};

/// Samples per second of CPU time, per thread (Go's rate).
pub(crate) const FREQUENCY: u64 = 100;

/// How often the profiling thread empties the sample ring.
const DRAIN: Duration = Duration::from_millis(20);

/// How often the thread list is read again for threads started since.
const RESCAN: Duration = Duration::from_millis(100);

/// Slots in the sample ring: far more than [`DRAIN`] fills at [`FREQUENCY`] on any machine.
const SLOTS: usize = 2048;

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
/// cannot start.
pub(crate) async fn collect(seconds: u64) -> Result<Vec<u8>, CpuError> {
    let claim = Claim::take().ok_or(CpuError::Busy)?;
    tracing::info!(seconds, "collecting a CPU profile");
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("diag-cpu-profile".into())
        .spawn(move || {
            let _claim = claim;
            let _ = tx.send_blocking(profile(Duration::from_secs(seconds)).map_err(CpuError::Failed));
        })
        .map_err(|e| CpuError::Failed(format!("cannot start the profiling thread: {e}")))?;
    rx.recv().await.map_err(|_| CpuError::Failed("the profiling thread ended without a profile".into()))?
}

/// One recorded sample.
#[derive(Clone, Copy)]
struct Recorded {
    tid: i32,
    weight: u32,
    stack: Stack,
}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const FULL: u8 = 2;

struct Slot {
    state: AtomicU8,
    sample: UnsafeCell<Recorded>,
}

/// What the signal handler needs while a profile runs.
struct Session {
    unwinder: Unwinder,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    lost: AtomicU64,
}

// SAFETY: a slot's sample is written only by the handler that moved its state EMPTY→WRITING
// and read only by the drainer after seeing FULL (Acquire), which then frees it (Release).
unsafe impl Sync for Session {}

impl Session {
    /// Called by the `SIGPROF` handler: walks the interrupted stack into a free slot.
    ///
    /// # Safety
    /// `context` is the handler's `ucontext_t`.
    unsafe fn record(&self, info: *const libc::siginfo_t, context: *const c_void) {
        let weight = 1 + overrun(info);
        // Relaxed: the counter only spreads writers over the slots; each slot's own state
        // orders its data.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for probe in 0..8 {
            let slot = &self.slots[(start + probe) % self.slots.len()];
            // Acquire: the drainer's reads of this slot's last sample are done.
            if slot.state.compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                // SAFETY: WRITING gives this handler the slot alone; `context` is live.
                unsafe {
                    let sample = &mut *slot.sample.get();
                    sample.tid = libc::gettid();
                    sample.weight = weight;
                    self.unwinder.walk(context, &mut sample.stack);
                }
                // Release: the sample is written before the drainer sees FULL.
                slot.state.store(FULL, Ordering::Release);
                return;
            }
        }
        self.lost.fetch_add(u64::from(weight), Ordering::Relaxed);
    }

    /// Moves every finished sample into `into`.
    fn drain(&self, into: &mut HashMap<(i32, Vec<u64>), u64>) {
        for slot in self.slots.iter() {
            // Acquire: pairs with the handler's Release store of FULL.
            if slot.state.load(Ordering::Acquire) == FULL {
                // SAFETY: FULL means the handler is done and no other handler takes the slot
                // until it is EMPTY again.
                let sample = unsafe { *slot.sample.get() };
                // Release: the read above happens before a handler reuses the slot.
                slot.state.store(EMPTY, Ordering::Release);
                *into.entry((sample.tid, sample.stack.addresses().to_vec())).or_default() += u64::from(sample.weight);
            }
        }
    }
}

/// The session of the running profile (null when none); the handler's only shared state.
static SESSION: AtomicPtr<Session> = AtomicPtr::new(std::ptr::null_mut());
/// Handlers running now; the session is freed only once this is 0 after it was unpublished.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigprof(_signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is this thread's; saved and restored around the handler.
    let errno = unsafe { *libc::__errno_location() };
    // SeqCst (both): with `stop`'s SeqCst store and load, either this handler sees no session
    // or `stop` sees it in flight and waits.
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let session = SESSION.load(Ordering::SeqCst);
    if !session.is_null() {
        // SAFETY: the session stays alive while IN_FLIGHT counts this handler; the context
        // and info are the kernel's for this signal.
        unsafe { (*session).record(info, context) };
    }
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// `si_overrun` of a timer signal: expiries since the signal was queued.
fn overrun(info: *const libc::siginfo_t) -> u32 {
    /// The head of `siginfo_t` for timer signals (`_sifields._timer`), on 64-bit Linux.
    #[repr(C)]
    struct TimerInfo {
        signo: c_int,
        errno: c_int,
        code: c_int,
        _pad: c_int,
        tid: c_int,
        overrun: c_int,
    }
    if info.is_null() {
        return 0;
    }
    // SAFETY: `siginfo_t` is 128 bytes and starts with these fields on 64-bit Linux; the
    // kernel fills `_timer` for SI_TIMER signals, checked first.
    let info = unsafe { &*info.cast::<TimerInfo>() };
    if info.code == libc::SI_TIMER { u32::try_from(info.overrun).unwrap_or(0).min(1000) } else { 0 }
}

/// Installs the `SIGPROF` handler once; it stays (idle without a session), so a late signal
/// never meets the default action, which would end the process.
fn install_handler() -> Result<(), String> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    super::signal::install_once(
        &INSTALLED,
        libc::SIGPROF,
        on_sigprof,
        "SIGPROF",
        "SIGPROF already has a handler (another profiler in this process?)",
    )
}

/// The CPU-time timers of the process's threads, by thread id.
struct Timers {
    period: libc::timespec,
    timers: HashMap<i32, libc::timer_t>,
}

impl Timers {
    /// Gives every thread now in the process that has no timer yet one.
    fn cover_new_threads(&mut self) {
        for tid in thread_ids() {
            if self.timers.contains_key(&tid) {
                continue;
            }
            // A thread's CPU clock: MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) of the kernel.
            let clock: libc::clockid_t = (!tid << 3) | 6;
            // SAFETY: zeroed sigevent then the fields SIGEV_THREAD_ID reads; the timer id is
            // written by the kernel on success.
            unsafe {
                let mut event: libc::sigevent = std::mem::zeroed();
                event.sigev_notify = libc::SIGEV_THREAD_ID;
                event.sigev_signo = libc::SIGPROF;
                event.sigev_notify_thread_id = tid;
                let mut timer: libc::timer_t = std::mem::zeroed();
                // Fails for a thread that ended since the list was read: nothing to sample.
                if libc::timer_create(clock, &mut event, &mut timer) != 0 {
                    continue;
                }
                let spec = libc::itimerspec { it_interval: self.period, it_value: self.period };
                if libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()) != 0 {
                    libc::timer_delete(timer);
                    continue;
                }
                self.timers.insert(tid, timer);
            }
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        for (_, timer) in self.timers.drain() {
            // SAFETY: each timer was created by `cover_new_threads` and is deleted once.
            unsafe { libc::timer_delete(timer) };
        }
    }
}

/// The ids of the process's threads now.
pub(crate) fn thread_ids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// A thread's name (`comm`), if it still runs.
pub(crate) fn thread_name(tid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok().map(|s| s.trim_end().to_owned())
}

/// The process's CPU time so far (utime + stime of `/proc/self/stat`).
pub(crate) fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&hz| hz > 0)?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Publishes a session, samples for `duration`, unpublishes it and waits out the handlers.
fn profile(duration: Duration) -> Result<Vec<u8>, String> {
    install_handler()?;
    let session = Box::new(Session {
        unwinder: Unwinder::new(),
        slots: (0..SLOTS)
            .map(|_| Slot {
                state: AtomicU8::new(EMPTY),
                sample: UnsafeCell::new(Recorded { tid: 0, weight: 0, stack: Stack::EMPTY }),
            })
            .collect(),
        next: AtomicUsize::new(0),
        lost: AtomicU64::new(0),
    });
    let session = Box::into_raw(session);
    // SeqCst: see `on_sigprof`.
    SESSION.store(session, Ordering::SeqCst);
    // SAFETY: the session is freed only at the end of this function, after it is unpublished
    // and no handler runs.
    let shared = unsafe { &*session };

    let mut counts: HashMap<(i32, Vec<u64>), u64> = HashMap::new();
    let mut names: HashMap<i32, String> = HashMap::new();
    let period = Duration::from_secs(1) / FREQUENCY as u32;
    let mut timers = Timers {
        period: libc::timespec { tv_sec: 0, tv_nsec: period.as_nanos() as libc::c_long },
        timers: HashMap::new(),
    };
    let started_at = SystemTime::now();
    let started = Instant::now();
    timers.cover_new_threads();
    let cpu_start = process_cpu_time();
    let deadline = started + duration;
    let mut rescan = started + RESCAN;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep(DRAIN.min(deadline - now));
        shared.drain(&mut counts);
        if Instant::now() >= rescan {
            timers.cover_new_threads();
            rescan += RESCAN;
            for &tid in timers.timers.keys() {
                if let (false, Some(name)) = (names.contains_key(&tid), thread_name(tid)) {
                    names.insert(tid, name);
                }
            }
        }
    }
    drop(timers);
    let cpu_end = process_cpu_time();
    let elapsed = started.elapsed();
    // SeqCst: see `on_sigprof`. After this store and once IN_FLIGHT is 0, no handler uses
    // the session.
    SESSION.store(std::ptr::null_mut(), Ordering::SeqCst);
    while IN_FLIGHT.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
    shared.drain(&mut counts);
    let lost = shared.lost.load(Ordering::Relaxed);
    // SAFETY: unpublished and no handler in flight: this is the last reference.
    let session = unsafe { Box::from_raw(session) };
    for &(tid, _) in counts.keys() {
        if let (false, Some(name)) = (names.contains_key(&tid), thread_name(tid)) {
            names.insert(tid, name);
        }
    }

    let period_ns = i64::try_from(period.as_nanos()).unwrap_or(i64::MAX);
    let mut builder =
        Builder::new(&[("samples", "count"), ("cpu", "nanoseconds")], ("cpu", "nanoseconds"), period_ns, {
            session.unwinder.objects().to_vec()
        });
    builder.timing(started_at, elapsed);
    let total: u64 = counts.values().sum();
    let threads: std::collections::HashSet<i32> = counts.keys().map(|&(tid, _)| tid).collect();
    if let (Some(start), Some(end)) = (cpu_start, cpu_end) {
        let used = end.saturating_sub(start);
        builder.comment(&format!(
            "process CPU time over the window: {} ms (utime+stime from /proc/self/stat)",
            used.as_millis()
        ));
    }
    builder.comment(&format!(
        "samples: {total} ({} ms) from {} threads, {lost} lost; {FREQUENCY} Hz per thread CPU clock",
        total * 1000 / FREQUENCY,
        threads.len()
    ));
    for ((tid, stack), count) in counts {
        let weight = i64::try_from(count).unwrap_or(i64::MAX);
        let frames: Vec<(u64, usize)> = stack.iter().map(|&a| (a, 0)).collect();
        let name = names.get(&tid).cloned().unwrap_or_else(|| format!("thread-{tid}"));
        builder.sample(
            &frames,
            vec![weight, weight.saturating_mul(period_ns)],
            vec![Label::Str("thread", name), Label::Num("tid", i64::from(tid))],
        );
    }
    drop(session);
    Ok(builder.finish())
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
    fn the_process_cpu_time_and_threads_are_read() {
        let before = process_cpu_time().expect("/proc/self/stat");
        let mut x = 0u64;
        let end = Instant::now() + Duration::from_millis(50);
        while Instant::now() < end {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_cpu_time().expect("/proc/self/stat") >= before);
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        assert!(thread_ids().contains(&me));
        assert!(thread_name(me).is_some());
    }
}
