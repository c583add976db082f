//! Opting into heap profiles: jemalloc as the global allocator, with its sampling heap profiler
//! on (feature `profiling`).
//!
//! A library must not choose the program's allocator, so diag installs none. CPU profiles and
//! thread stacks work with any allocator; `heap` and `allocs` profiles read jemalloc's samples
//! and answer an error saying what to do while jemalloc is not the global allocator. One line in
//! the program's `main.rs` opts in:
//!
//! ```ignore
//! diag::profiling::jemalloc!();
//! ```
//!
//! It expands to the `#[global_allocator]` static ([`Jemalloc`]) and to jemalloc's startup
//! options ([`MALLOC_CONF`]): profiling on and active from the first allocation, one sample per
//! 16 KiB allocated on average, and every sample also counted for good (the `allocs` profile).
//! `MALLOC_CONF` in the environment overrides these at startup.
//!
//! jemalloc is linked with prefixed symbols (`_rjem_malloc`): linking it replaces nothing; only
//! the `#[global_allocator]` makes Rust's allocations go through it.
//!
//! With the `tokio-taskdump` feature (and `RUSTFLAGS="--cfg tokio_unstable"`), the `goroutine`
//! profile also lists a tokio runtime's tasks at their await points: the runtime
//! `Diagnostics::serve_tokio` runs on, or the one given to `dump_tokio_tasks`.

/// jemalloc, built with its heap profiler: the type of the `#[global_allocator]` static
/// [`jemalloc!`](crate::profiling::jemalloc) defines. Used alone (without the macro's startup
/// options), heap profiles need `MALLOC_CONF=prof:true,prof_active:true` in the environment.
pub use tikv_jemallocator::Jemalloc;

#[cfg(feature = "tokio-taskdump")]
pub use crate::debug::tasks::dump_tokio_tasks;

/// jemalloc's startup options the [`jemalloc!`](crate::profiling::jemalloc) macro installs,
/// NUL-terminated: `prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true`.
pub const MALLOC_CONF: &[u8] = b"prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true\0";

/// Makes jemalloc the program's global allocator with its heap profiler on; call once, at the
/// top level of the binary crate (`main.rs`). See the [module docs](self).
#[macro_export]
macro_rules! jemalloc {
    () => {
        #[global_allocator]
        static DIAG_GLOBAL_ALLOCATOR: $crate::profiling::Jemalloc = $crate::profiling::Jemalloc;

        /// jemalloc's startup options, in the symbol it reads before `main` runs (it declares
        /// a weak default; this strong definition replaces it). Both spellings: jemalloc's
        /// symbols are prefixed (`_rjem_`) or not depending on the build's features.
        #[allow(unsafe_code, reason = "jemalloc reads its startup options from this exported symbol")]
        // SAFETY: jemalloc declares `extern const char *malloc_conf`; this static has that
        // layout (a nullable pointer: `Option<&u8>`) and points at a NUL-terminated string that
        // lives for the whole program and is never written. Nothing else defines the symbol.
        #[unsafe(export_name = "_rjem_malloc_conf")]
        #[used]
        static DIAG_RJEM_MALLOC_CONF: Option<&u8> = Some(&$crate::profiling::MALLOC_CONF[0]);

        #[allow(unsafe_code, reason = "jemalloc reads its startup options from this exported symbol")]
        // SAFETY: as above, for the unprefixed spelling.
        #[unsafe(export_name = "malloc_conf")]
        #[used]
        static DIAG_MALLOC_CONF: Option<&u8> = Some(&$crate::profiling::MALLOC_CONF[0]);
    };
}

#[doc(inline)]
pub use crate::jemalloc;

/// Whether jemalloc is the program's global allocator now (so `heap` profiles work).
pub fn jemalloc_is_global() -> bool {
    crate::debug::jemalloc_is_global()
}
