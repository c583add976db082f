//! Installing the profilers' signal handlers (`SIGPROF` for CPU profiles, `SIGURG` for thread
//! stacks): once per signal, refusing a signal the program already handles.

#![allow(unsafe_code, reason = "sigaction is the only way to install a signal handler")]

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// A `SA_SIGINFO` handler.
pub(crate) type Handler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// Installs `handler` for `signal` the first time it is called for that `once` (each profiler
/// keeps its own), and returns that first result every time after. The handler stays installed
/// (idle outside a profile), so a late signal never meets the default action. `name` (`SIGPROF`)
/// and `taken` (what an existing handler means for the user) word the errors.
///
/// # Errors
/// When the signal already has a handler of the program's (`taken`), or `sigaction` fails.
pub(crate) fn install_once(
    once: &'static OnceLock<Result<(), String>>,
    signal: c_int,
    handler: Handler,
    name: &str,
    taken: &str,
) -> Result<(), String> {
    once.get_or_init(|| install(signal, handler, name, taken)).clone()
}

fn install(signal: c_int, handler: Handler, name: &str, taken: &str) -> Result<(), String> {
    // SAFETY: plain sigaction calls on zeroed structs; the caller's handler is
    // async-signal-safe (it only touches atomics and its own slot, and restores errno).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
            return Err(format!("cannot read the {name} action: {}", std::io::Error::last_os_error()));
        }
        if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
            return Err(taken.to_owned());
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(format!("cannot install the {name} handler: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
