//! One task per component: run its check every `heartbeat_period` and feed the result to the
//! state table as `heartbeat_ok` / `heartbeat_failed`, logging every change of state. The
//! tasks use async-io's timer, so they run under every `--runtime`.

use std::time::{Duration, Instant};

use diag_core::StateTable;

use crate::check;
use crate::config::{Check, Component};

/// The agent's state table.
pub(crate) type States = StateTable<{ crate::config::MAX_COMPONENTS }, { crate::config::MAX_COMPONENT_NAME }>;

/// Monotonic milliseconds since the agent started, the clock the state table runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn start() -> Self {
        Self(Instant::now())
    }

    pub(crate) fn now_ms(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Registers `component` as `starting` and returns the task that heartbeats it.
///
/// A configured check first runs one period after start (so `starting` is visible until
/// then); the agent's self-check reports at once.
///
/// # Errors
/// When the state table is full or refuses the name.
pub(crate) fn watch(
    states: &'static States,
    component: &Component,
    clock: Clock,
) -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let name = component.name.clone();
    let window_ms = u64::try_from(component.recovery_window.as_millis()).unwrap_or(u64::MAX);
    states
        .expect_with_window(&name, window_ms)
        .map_err(|e| anyhow::anyhow!("components: cannot watch {name:?}: {e}"))?;
    let check = component.check();
    let period = component.heartbeat_period;
    Ok(async move {
        let first = if check == Check::Itself { Duration::ZERO } else { period };
        let mut next = Instant::now() + first;
        loop {
            async_io::Timer::at(next).await;
            // A check that overran its period delays the next one instead of bursting.
            next = (next + period).max(Instant::now());
            let span = tracing::info_span!("heartbeat", otel.name = %format_args!("heartbeat {name}"), component = name.as_str(), otel.status_code = tracing::field::Empty, error = tracing::field::Empty);
            let result = tracing::Instrument::instrument(check::run(&check, period), span.clone()).await;
            if let Err(reason) = &result {
                span.record("otel.status_code", "ERROR").record("error", reason.as_str());
            }
            drop(span);
            let before = states.component(&name);
            let now = clock.now_ms();
            let recorded = match &result {
                Ok(()) => states.heartbeat_ok(&name, now),
                Err(_) => states.heartbeat_failed(&name, now),
            };
            if let Err(e) = recorded {
                tracing::error!(component = name.as_str(), error = %e, "cannot record heartbeat");
            }
            let after = states.component(&name);
            if let Err(reason) = &result {
                tracing::warn!(component = name.as_str(), %reason, "heartbeat failed");
            }
            if before != after {
                let (from, to) = (before.map_or("unknown", |s| s.as_str()), after.map_or("unknown", |s| s.as_str()));
                tracing::info!(component = name.as_str(), from, to, "component state changed");
            }
        }
    })
}
