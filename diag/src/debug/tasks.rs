//! The tasks of a tokio runtime in the `goroutine` profile (feature `tokio-taskdump`): tokio's
//! task dump (`Handle::dump`), each task with its stack at the await point it is parked on,
//! beside the stacks of the threads ([`threads`](super::threads)).
//!
//! Which runtime: the one given to [`dump_tokio_tasks`], else the first one
//! `Diagnostics::serve_tokio` ran on. tokio pauses the runtime's workers and polls each idle
//! task once in a tracing mode where tokio's own leaf futures (timers, I/O, `tokio::sync`,
//! `yield_now`…) record the stack from the task's root down to them and return `Pending`; the
//! stack is then symbolized like the threads' (function, file, line).
//!
//! tokio offers this only when the program is built with `RUSTFLAGS="--cfg tokio_unstable"`
//! (the feature turns on tokio's `taskdump` feature). The feature builds without it, so that
//! `--all-features` builds stay ordinary builds: the profile then lists the threads only and
//! its comment says which flag is missing.
//!
//! Limits (tokio's): Linux on x86_64 and aarch64; a task parked on a future that is not
//! tokio's (another runtime's channel, `futures`' combinators over non-tokio leaves) has no
//! await point to show and is listed without a stack; a task running at that instant is left
//! out; tasks of a `LocalSet` or a `FuturesUnordered` inside a task are not separate tasks;
//! a task joining several tokio futures (`join!`) shows one sample per future. The dump waits
//! for every worker: one blocked for longer than [`WAIT`] (or a `current_thread` runtime nobody
//! drives) leaves the profile with threads only and a comment saying so. A dump costs one
//! poll of every task and symbolizing every frame: it is for a person debugging, not a loop.

use std::sync::{Mutex, PoisonError};

use tokio::runtime::Handle;

use super::proto::{Builder, Label};

/// The runtime whose tasks are dumped.
static RUNTIME: Mutex<Option<Handle>> = Mutex::new(None);

/// How long the dump may take (tokio waits for every worker to pause).
#[cfg_attr(not(tokio_unstable), allow(dead_code, reason = "the dump needs --cfg tokio_unstable"))]
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Chooses the tokio runtime whose tasks the `goroutine` profile lists (replacing the one
/// `serve_tokio` ran on, or an earlier choice).
///
/// Needed when diag's endpoints are not served by `Diagnostics::serve_tokio` (for example with
/// `Diagnostics::router()` in the program's own server) or when the tasks to see run on
/// another runtime. Without `--cfg tokio_unstable` in `RUSTFLAGS` the choice is kept but the
/// profile lists threads only.
///
/// # Examples
/// ```no_run
/// # async fn f() {
/// diag::profiling::dump_tokio_tasks(tokio::runtime::Handle::current());
/// # }
/// ```
pub fn dump_tokio_tasks(runtime: Handle) {
    *RUNTIME.lock().unwrap_or_else(PoisonError::into_inner) = Some(runtime);
}

/// `serve_tokio` runs on the current runtime: it is the one dumped unless one was chosen
/// already (by the program, or by an earlier `serve_tokio`).
pub(crate) fn served_on_current() {
    let mut chosen = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if chosen.is_none() {
        *chosen = Handle::try_current().ok();
    }
}

/// One task's stack: its id and its code addresses, innermost first, each in its call
/// instruction (as [`Stack`](super::unwind::Stack) holds them). Empty: no tokio await point.
#[derive(Debug)]
#[cfg_attr(not(tokio_unstable), allow(dead_code, reason = "made by the dump, which needs --cfg tokio_unstable"))]
pub(crate) struct TaskStack {
    pub(crate) id: i64,
    pub(crate) addresses: Vec<u64>,
}

/// The dump: a description of the runtime and the stacks.
#[derive(Debug)]
#[cfg_attr(not(tokio_unstable), allow(dead_code, reason = "made by the dump, which needs --cfg tokio_unstable"))]
pub(crate) struct Tasks {
    pub(crate) runtime: String,
    pub(crate) stacks: Vec<TaskStack>,
}

/// Dumps the chosen runtime's tasks (blocking this thread up to [`WAIT`]).
///
/// # Errors
/// Why there are none to show (no `--cfg tokio_unstable`, no runtime, a timeout), for the
/// profile's comment.
pub(crate) fn collect() -> Result<Tasks, String> {
    let Some(runtime) = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner).clone() else {
        return Err("no tokio runtime to dump: serve with `Diagnostics::serve_tokio` or call \
                    `diag::profiling::dump_tokio_tasks`"
            .into());
    };
    dump(&runtime)
}

#[cfg(not(tokio_unstable))]
fn dump(_runtime: &Handle) -> Result<Tasks, String> {
    Err("unavailable: this program was built with diag's `tokio-taskdump` feature but without \
         RUSTFLAGS=\"--cfg tokio_unstable\", which tokio's task dump needs"
        .into())
}

#[cfg(tokio_unstable)]
fn dump(runtime: &Handle) -> Result<Tasks, String> {
    use futures_lite::future;
    use tokio::runtime::RuntimeFlavor;

    let flavor = runtime.runtime_flavor();
    // A current_thread runtime is dumped from within (tokio's rule): by a task of its own, left
    // out of the list. A multi_thread one from outside, which leaves nothing out.
    let dumped = async {
        match flavor {
            RuntimeFlavor::CurrentThread => runtime
                .spawn(async { (Some(tokio::task::id()), Handle::current().dump().await) })
                .await
                .map_err(|e| format!("the task dump task failed: {e}")),
            _ => Ok((None, runtime.dump().await)),
        }
    };
    let timeout = async {
        async_io::Timer::after(WAIT).await;
        Err(format!(
            "the runtime did not pause its workers within {WAIT:?} (a worker blocked, or a \
             current_thread runtime nobody drives)"
        ))
    };
    let (own, dump) = async_io::block_on(future::or(dumped, timeout))?;
    let mut stacks = Vec::new();
    for task in dump.tasks().iter() {
        let id = task.id();
        if Some(id) == own {
            continue;
        }
        let id = id.to_string().parse::<i64>().unwrap_or(-1);
        let backtraces = task.trace().resolve_backtraces();
        if backtraces.is_empty() {
            stacks.push(TaskStack { id, addresses: Vec::new() });
        }
        for backtrace in backtraces {
            // Every frame above tokio's leaf is a return address: step back into the call.
            let addresses = backtrace.frames().map(|f| (f.ip() as u64).saturating_sub(1)).collect();
            stacks.push(TaskStack { id, addresses });
        }
    }
    Ok(Tasks { runtime: format!("{flavor:?}"), stacks })
}

/// Adds the dump to the profile: one sample per task stack, labelled `kind: task` and `task`
/// (tokio's task id), and a comment; or only a comment saying why there are no tasks.
pub(crate) fn add(mut builder: Builder, dumped: Result<Tasks, String>) -> Builder {
    let tasks = match dumped {
        Ok(tasks) => tasks,
        Err(why) => {
            builder.comment(&format!("tokio tasks: {why}"));
            return builder;
        }
    };
    let mut ids: Vec<i64> = tasks.stacks.iter().map(|t| t.id).collect();
    ids.dedup();
    let parked = tasks.stacks.iter().filter(|t| !t.addresses.is_empty()).count();
    builder.comment(&format!(
        "tokio tasks ({} runtime): {} tasks, {parked} stacks at a tokio await point",
        tasks.runtime,
        ids.len()
    ));
    for task in tasks.stacks {
        let mut labels = vec![Label::Str("kind", "task".into()), Label::Num("task", task.id)];
        if task.addresses.is_empty() {
            labels.push(Label::Str("stack", "no tokio await point".into()));
        }
        let frames: Vec<(u64, usize)> = task.addresses.iter().map(|&a| (a, 0)).collect();
        builder.sample(&frames, vec![1], labels);
    }
    builder
}
