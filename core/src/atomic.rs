//! The one place where the core chooses its atomics.
//!
//! * Normal builds use [`portable_atomic`], which re-exports the native `core::sync::atomic`
//!   types where the target has them (x86_64, aarch64, thumbv7em for 32-bit widths) and
//!   provides fallbacks elsewhere: 64-bit atomics on thumbv7em, and compare-and-swap on
//!   thumbv6m through `critical-section`.
//! * `--cfg loom` builds use loom's model-checked atomics and cells, so the loom models in
//!   `core/tests/loom.rs` explore every interleaving of the real code.
//!
//! Every other module imports atomics from here, never from `core::sync::atomic`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use portable_atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::fence;
/// A memory fence: loom's under loom (so models see it), `core`'s otherwise.
#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;

/// An atomic for process-wide statics (the label hash seed): loom's atomics cannot be built in
/// a `static`, so this one is portable-atomic's under loom too (no model depends on it).
pub(crate) type StaticAtomicUsize = portable_atomic::AtomicUsize;

/// Busy-wait hint used by the rare paths that wait for another *writer* (never a reader).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// An `UnsafeCell` with loom's closure API, so slot code is written once for both builds.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// An `UnsafeCell` with loom's closure API, so slot code is written once for both builds.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Gives a shared raw pointer to the contents; the caller upholds aliasing rules.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Gives a mutable raw pointer to the contents; the caller upholds aliasing rules.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Declares a constructor that is `const fn` in normal builds and a plain `fn` under loom,
/// whose atomics cannot be built in const context.
macro_rules! loom_const_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $name $($rest)*
        #[cfg(loom)]
        $(#[$m])* $vis fn $name $($rest)*
    };
}
pub(crate) use loom_const_fn;

/// Builds `[expr; N]` for non-`Copy` elements, in const context when not under loom.
macro_rules! array_of {
    ($e:expr; $n:expr) => {{
        #[cfg(not(loom))]
        {
            [const { $e }; $n]
        }
        #[cfg(loom)]
        {
            core::array::from_fn(|_| $e)
        }
    }};
}
pub(crate) use array_of;
