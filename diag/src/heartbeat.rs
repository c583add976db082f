//! The heartbeat driver: one task per checked component runs its check every
//! `heartbeat_period` and feeds the result to the state table as `heartbeat_ok` /
//! `heartbeat_failed`, logging every change of state; and the [`Clock`] the table runs on.
//! The tasks use async-io's timer, so they run under every runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diag_core::StateTable;

use crate::check;
use crate::config::Check;

/// The state table of a [`Diagnostics`](crate::Diagnostics): at most
/// [`MAX_COMPONENTS`](crate::config::MAX_COMPONENTS) components, names of at most
/// [`MAX_COMPONENT_NAME`](crate::config::MAX_COMPONENT_NAME) bytes.
pub type States = StateTable<{ crate::config::MAX_COMPONENTS }, { crate::config::MAX_COMPONENT_NAME }>;

/// Monotonic milliseconds since the clock started, the clock the state table runs on.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// A clock reading 0 now.
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Milliseconds since [`start`](Self::start), from the monotonic clock.
    pub fn now_ms(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The task that heartbeats the component `name` (registered already) with `check` every
/// `period`.
///
/// A configured check first runs one period after start (so `starting` is visible until
/// then); the self-check ([`Check::Itself`]) reports at once.
pub(crate) async fn watch(states: Arc<States>, name: String, check: Check, period: Duration, clock: Clock) {
    {
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
    }
}
