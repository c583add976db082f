//! [`shutdown_signal`]: SIGTERM or SIGINT, on any runtime.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use anyhow::Context as _;
use futures_lite::StreamExt as _;

/// Watches for SIGTERM and SIGINT from this call on, under any runtime (async-io's reactor
/// watches the signals); await the result to wait for one.
///
/// The signals are taken over when this is *called*, not when it is first awaited: call it
/// before the service starts answering, so that a SIGTERM sent as soon as `/healthz` answers
/// (as orchestrators and tests do) is waited for rather than ending the process with the
/// default action. A signal that arrives before the await is kept for it.
///
/// # Errors
/// The awaited result is an error when the signals cannot be watched.
///
/// # Examples
/// ```no_run
/// # async fn run(diag: diag::Diagnostics) -> Result<(), diag::Error> {
/// let signal = diag::shutdown_signal();
/// let serving = diag.serve(diag::runtime::Runtime::Tokio, "127.0.0.1:3000".parse().unwrap()).await?;
/// signal.await?;
/// serving.shutdown().await?;
/// # Ok(()) }
/// ```
pub fn shutdown_signal() -> ShutdownSignal {
    use async_signal::{Signal, Signals};
    ShutdownSignal(Signals::new([Signal::Term, Signal::Int]).context("cannot listen for SIGTERM and SIGINT"))
}

/// SIGTERM or SIGINT, watched since [`shutdown_signal`] was called; await it.
#[must_use = "await it to wait for SIGTERM or SIGINT"]
pub struct ShutdownSignal(anyhow::Result<async_signal::Signals>);

impl std::fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watching = if self.0.is_ok() { "SIGTERM, SIGINT" } else { "nothing (cannot watch signals)" };
        f.debug_tuple("ShutdownSignal").field(&format_args!("{watching}")).finish()
    }
}

impl IntoFuture for ShutdownSignal {
    type Output = Result<(), crate::Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut signals = self.0?;
            let signal = signals.next().await.context("signal stream ended")?.context("cannot read a signal")?;
            tracing::info!(?signal, "signal received");
            Ok(())
        })
    }
}
