//! Exemplars taken from the context of an update: a hook, empty until a program (or diag's
//! std facade, reading the current trace) sets one. [`ExemplarCounter::inc`] and
//! [`ExemplarHistogram::observe`] ask it for labels; with none they update without an exemplar.
//!
//! The core has no notion of a trace or a clock: the source supplies both the labels
//! (typically `trace_id` and `span_id`) and the timestamp. It is a plain function, so a
//! `no_std` program can set one too (a request id kept in a static, say).
//!
//! [`ExemplarCounter::inc`]: super::ExemplarCounter::inc
//! [`ExemplarHistogram::observe`]: super::ExemplarHistogram::observe

use core::sync::atomic::{AtomicPtr, Ordering};

/// What an [`ExemplarSource`] hands the current labels and timestamp (Unix milliseconds) to.
pub type ExemplarSink<'a> = dyn FnMut(&[(&str, &str)], Option<u64>) + 'a;

/// Calls its argument with the current exemplar labels and timestamp, or does not call it
/// when there are none (no current trace, say).
pub type ExemplarSource = fn(&mut ExemplarSink<'_>);

/// The source, as a pointer: null, or an [`ExemplarSource`] cast to a pointer. Not a loom
/// atomic: set once at start-up, and what it orders (the function's code) is immutable.
static SOURCE: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Makes `source` where exemplar counters and histograms take their exemplars from, for every
/// one in the program. Replaces an earlier source.
///
/// # Examples
/// ```
/// use diag_core::{ExemplarCounter, ExemplarSink, set_exemplar_source};
///
/// fn current_request(f: &mut ExemplarSink<'_>) {
///     f(&[("request_id", "7f3a")], Some(1_700_000_000_000));
/// }
///
/// static REQUESTS: ExemplarCounter = ExemplarCounter::new();
/// set_exemplar_source(current_request);
/// REQUESTS.inc();
/// # diag_core::clear_exemplar_source();
/// assert_eq!(REQUESTS.exemplar().unwrap().view().labels, br#"request_id="7f3a""#);
/// ```
pub fn set_exemplar_source(source: ExemplarSource) {
    // Release: pairs with the acquire in `with_current`.
    SOURCE.store(source as *mut (), Ordering::Release);
}

/// Removes the source: updates carry no exemplar unless given one.
pub fn clear_exemplar_source() {
    // Release: as above.
    SOURCE.store(core::ptr::null_mut(), Ordering::Release);
}

/// Calls `f` with the source's current labels and timestamp; `false` when there is no source
/// or it had none (then `f` was not called).
#[inline]
pub(crate) fn with_current(mut f: impl FnMut(&[(&str, &str)], Option<u64>)) -> bool {
    // Acquire: pairs with the release in `set_exemplar_source`.
    let p = SOURCE.load(Ordering::Acquire);
    if p.is_null() {
        return false;
    }
    // SAFETY: `SOURCE` only ever holds null (checked above) or a pointer made from an
    // `ExemplarSource` by `set_exemplar_source`; function pointers and `*mut ()` have the same
    // size and round-trip through such casts.
    let source = unsafe { core::mem::transmute::<*mut (), ExemplarSource>(p) };
    let mut called = false;
    source(&mut |labels, timestamp_ms| {
        called = true;
        f(labels, timestamp_ms);
    });
    called
}
