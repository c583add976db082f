//! [`shutdown_signal`]: SIGTERM or SIGINT, on any runtime.

use anyhow::Context as _;
use futures_lite::StreamExt as _;

/// Waits for SIGTERM or SIGINT, under any runtime (async-io's reactor watches the signals).
///
/// # Errors
/// When the signals cannot be watched.
///
/// # Examples
/// ```no_run
/// # async fn run(serving: diag::Serving) -> Result<(), diag::Error> {
/// diag::shutdown_signal().await?;
/// serving.shutdown().await?;
/// # Ok(()) }
/// ```
pub async fn shutdown_signal() -> Result<(), crate::Error> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Term, Signal::Int]).context("cannot listen for SIGTERM and SIGINT")?;
    let signal = signals.next().await.context("signal stream ended")?.context("cannot read a signal")?;
    tracing::info!(?signal, "signal received");
    Ok(())
}
