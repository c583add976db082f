//! The `goroutine` profile's counterpart: the stack of every thread of the process now, one
//! sample per thread labelled with its name, id and scheduler state (`R` running, `S`
//! sleeping, `D` waiting on I/O…), in pprof protobuf (`go tool pprof -traces` lists them).
//!
//! Each thread in turn is sent `SIGURG` (`tgkill`); its handler walks its own interrupted
//! stack with [`unwind`](super::unwind) into a shared slot and the collector waits for it.
//! `SIGURG` is the signal Go uses to interrupt goroutines for the same reason: its default
//! action is to ignore it, so a signal arriving after the handler was removed is harmless,
//! and programs rarely use it.
//!
//! Limits: a thread that blocks `SIGURG` or does not run within [`WAIT`] is listed without
//! a stack (label `stack: unavailable`); a system call the signal interrupts is restarted
//! (`SA_RESTART`), except the few Linux never restarts (`epoll_wait`, `nanosleep`…), which
//! return `EINTR` as they do for any signal; a program with its own `SIGURG` handler is
//! refused. Tasks of an async runtime are not threads: an idle task has no stack of its own;
//! with the `tokio-taskdump` feature the profile also holds a tokio runtime's tasks, each at
//! its await point ([`tasks`](super::tasks)), labelled `kind: task` beside `kind: thread`.

#![allow(unsafe_code, reason = "signals sent to each thread and a slot written by their handlers")]

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::cpu::{thread_ids, thread_name};
use super::proto::{Builder, Label};
use super::unwind::{Stack, Unwinder};

/// How long a thread may take to answer.
const WAIT: Duration = Duration::from_millis(500);

const IDLE: u8 = 0;
const ASKED: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;

/// The one request in flight: which thread is asked, its progress and its stack.
struct Request {
    tid: AtomicI32,
    state: AtomicU8,
    stack: UnsafeCell<Stack>,
}

// SAFETY: `stack` is written only by the handler that moved `state` ASKED→WRITING and read
// only by the collector after seeing DONE; one request at a time (`DUMPING`).
unsafe impl Sync for Request {}

static REQUEST: Request =
    Request { tid: AtomicI32::new(0), state: AtomicU8::new(IDLE), stack: UnsafeCell::new(Stack::EMPTY) };
/// The unwinder of the running dump (null when none).
static UNWINDER: AtomicPtr<Unwinder> = AtomicPtr::new(std::ptr::null_mut());
/// Handlers running now.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// One dump at a time.
static DUMPING: Mutex<()> = Mutex::new(());

extern "C" fn on_sigurg(_signal: c_int, _info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is this thread's; saved and restored around the handler.
    let errno = unsafe { *libc::__errno_location() };
    // SeqCst (both): with `dump`'s SeqCst store and load, either this handler sees no
    // unwinder or `dump` sees it in flight and waits before freeing it.
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let unwinder = UNWINDER.load(Ordering::SeqCst);
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    // Acquire: the collector's writes of the request happen before this handler's reads.
    if !unwinder.is_null()
        && REQUEST.tid.load(Ordering::Acquire) == me
        && REQUEST.state.compare_exchange(ASKED, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok()
    {
        // SAFETY: WRITING gives this handler the slot; the unwinder lives while IN_FLIGHT
        // counts this handler; `context` is the kernel's for this signal.
        unsafe { (*unwinder).walk(context, &mut *REQUEST.stack.get()) };
        // Release: the stack is written before the collector sees DONE.
        REQUEST.state.store(DONE, Ordering::Release);
    }
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs the `SIGURG` handler once (it stays: it does nothing outside a dump).
fn install_handler() -> Result<(), String> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    super::signal::install_once(
        &INSTALLED,
        libc::SIGURG,
        on_sigurg,
        "SIGURG",
        "SIGURG already has a handler in this process: thread stacks unavailable",
    )
}

/// Collects the threads' stacks on a thread of its own.
///
/// # Errors
/// When the handler cannot be installed (another `SIGURG` handler) or the thread not started.
pub(crate) async fn collect() -> Result<Vec<u8>, String> {
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("diag-threads".into())
        .spawn(move || {
            // Tasks first: tokio's dump runs on a helper thread of its own, usually gone by the time
            // the threads are listed.
            #[cfg(feature = "tokio-taskdump")]
            let tasks = super::tasks::collect();
            let profile = profile().map(|builder| {
                #[cfg(feature = "tokio-taskdump")]
                let builder = super::tasks::add(builder, tasks);
                builder.finish()
            });
            let _ = tx.send_blocking(profile);
        })
        .map_err(|e| format!("cannot start the thread dump thread: {e}"))?;
    rx.recv().await.map_err(|_| "the thread dump thread ended without a profile".to_owned())?
}

/// One thread: id, name, state and stack (None: it did not answer).
type ThreadStack = (i32, String, String, Option<Stack>);

/// The threads' samples, not yet encoded.
fn profile() -> Result<Builder, String> {
    install_handler()?;
    let guard = DUMPING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let unwinder = Box::into_raw(Box::new(Unwinder::new()));
    // SeqCst: see `on_sigurg`.
    UNWINDER.store(unwinder, Ordering::SeqCst);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut threads: Vec<ThreadStack> = Vec::new();
    for tid in thread_ids() {
        let Some(name) = thread_name(tid) else { continue };
        let state = thread_state(tid).unwrap_or_else(|| "?".into());
        threads.push((tid, name, state, ask(pid, tid)));
    }
    UNWINDER.store(std::ptr::null_mut(), Ordering::SeqCst);
    while IN_FLIGHT.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
    // SAFETY: unpublished and no handler in flight: the last reference.
    let unwinder = unsafe { Box::from_raw(unwinder) };
    drop(guard);

    let mut builder = Builder::new(&[("threads", "count")], ("threads", "count"), 1, unwinder.objects().to_vec());
    let answered = threads.iter().filter(|t| t.3.is_some()).count();
    builder.comment(&format!("{} threads, {answered} with a stack", threads.len()));
    for (tid, name, state, stack) in threads {
        let mut labels = vec![
            Label::Str("kind", "thread".into()),
            Label::Str("thread", name),
            Label::Num("tid", i64::from(tid)),
            Label::Str("state", state),
        ];
        let frames: Vec<(u64, usize)> = match &stack {
            Some(stack) => stack.addresses().iter().map(|&a| (a, 0)).collect(),
            None => {
                labels.push(Label::Str("stack", "unavailable".into()));
                Vec::new()
            }
        };
        builder.sample(&frames, vec![1], labels);
    }
    Ok(builder)
}

/// Asks thread `tid` for its stack and waits up to [`WAIT`].
fn ask(pid: i32, tid: i32) -> Option<Stack> {
    // Release: the request is set before the thread's handler reads it (Acquire).
    REQUEST.tid.store(tid, Ordering::Release);
    REQUEST.state.store(ASKED, Ordering::Release);
    // SAFETY: tgkill has no memory preconditions; a thread that ended makes it fail.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGURG) } == 0;
    let deadline = Instant::now() + WAIT;
    loop {
        // Acquire: pairs with the handler's Release store of DONE.
        match REQUEST.state.load(Ordering::Acquire) {
            DONE => {
                // SAFETY: DONE: the handler finished writing and no other takes the slot
                // until it is ASKED again.
                let stack = unsafe { *REQUEST.stack.get() };
                REQUEST.state.store(IDLE, Ordering::Release);
                return Some(stack);
            }
            ASKED if !sent || Instant::now() >= deadline => {
                // Withdraw the request; if the handler took it meanwhile, wait for it.
                if REQUEST.state.compare_exchange(ASKED, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return None;
                }
            }
            _ => std::thread::sleep(Duration::from_micros(50)),
        }
    }
}

/// The scheduler state letter of `/proc/self/task/<tid>/stat`.
fn thread_state(tid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_answers_with_a_stack() {
        let parked = std::thread::Builder::new().name("parked-test".into()).spawn(std::thread::park).unwrap();
        install_handler().unwrap();
        let unwinder = Box::into_raw(Box::new(Unwinder::new()));
        UNWINDER.store(unwinder, Ordering::SeqCst);
        // SAFETY: getpid and gettid have no preconditions.
        let (pid, me) = unsafe { (libc::getpid(), libc::gettid()) };
        let own = ask(pid, me).expect("this thread answers");
        assert!(own.depth > 1, "{own:?}");
        // The new thread names itself once it runs: wait for that (bounded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let parked_tid = loop {
            match thread_ids().into_iter().find(|&t| thread_name(t).as_deref() == Some("parked-test")) {
                Some(tid) => break tid,
                None if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
                None => panic!("the parked thread never showed its name"),
            }
        };
        let other = ask(pid, parked_tid).expect("the parked thread answers");
        assert!(other.depth > 1, "{other:?}");
        assert!(ask(pid, i32::MAX).is_none(), "no such thread");
        UNWINDER.store(std::ptr::null_mut(), Ordering::SeqCst);
        while IN_FLIGHT.load(Ordering::SeqCst) != 0 {}
        // SAFETY: unpublished, no handler in flight.
        drop(unsafe { Box::from_raw(unwinder) });
        parked.thread().unpark();
        parked.join().unwrap();
        assert_eq!(thread_state(me).as_deref(), Some("R"));
    }
}
