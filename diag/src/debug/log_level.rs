//! The live log level behind `GET`/`PUT /log-level`: the stderr log's filter sits in
//! tracing-subscriber's reload layer, so the debug service can replace it while diagd runs.
//!
//! The level shown is the most verbose level the filter lets through (`INFO` for the default
//! `log.severity: info`; for a `DIAGD_LOG` directive such as `diagd=debug,warn`, `DEBUG`).
//! Setting a level replaces the whole filter with that level.

use std::sync::OnceLock;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The handle that changes the filter, set once by [`reloadable`].
static HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The level names accepted, for messages.
pub const SUPPORTED: &str = "TRACE, DEBUG, INFO, WARN, ERROR";

/// Wraps the log filter so [`set`] can replace it; call once, when logging starts.
pub fn reloadable(filter: EnvFilter) -> reload::Layer<EnvFilter, Registry> {
    let (layer, handle) = reload::Layer::new(filter);
    if HANDLE.set(handle).is_err() {
        tracing::warn!("the log filter was made reloadable twice; /log-level changes the first");
    }
    layer
}

/// A level name (`TRACE`, `DEBUG`, `INFO`, `WARN`/`WARNING`, `ERROR`/`ERR`, any case).
pub fn parse(name: &str) -> Option<LevelFilter> {
    match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some(LevelFilter::TRACE),
        "DEBUG" => Some(LevelFilter::DEBUG),
        "INFO" => Some(LevelFilter::INFO),
        "WARN" | "WARNING" => Some(LevelFilter::WARN),
        "ERROR" | "ERR" => Some(LevelFilter::ERROR),
        _ => None,
    }
}

/// The name a level is shown with: `TRACE` … `ERROR`, or `OFF`.
pub fn name(level: LevelFilter) -> &'static str {
    match level.into_level() {
        Some(tracing::Level::TRACE) => "TRACE",
        Some(tracing::Level::DEBUG) => "DEBUG",
        Some(tracing::Level::INFO) => "INFO",
        Some(tracing::Level::WARN) => "WARN",
        Some(tracing::Level::ERROR) => "ERROR",
        None => "OFF",
    }
}

/// The level in force.
///
/// # Errors
/// When logging was not set up with [`reloadable`].
pub fn current() -> Result<LevelFilter, String> {
    let handle = HANDLE.get().ok_or("the log level cannot be read: logging is not reloadable")?;
    handle
        .with_current(|filter| filter.max_level_hint().unwrap_or(LevelFilter::TRACE))
        .map_err(|e| format!("the log level cannot be read: {e}"))
}

/// What [`set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The level changed from the first to the second.
    Changed(LevelFilter, LevelFilter),
    /// The level already was this one; nothing changed.
    Unchanged(LevelFilter),
}

impl Change {
    /// The debug service's answer: `Changed log level from "INFO" to "DEBUG".` or
    /// `Log level already set to "DEBUG".`
    pub fn message(self) -> String {
        match self {
            Self::Changed(from, to) => format!("Changed log level from {:?} to {:?}.", name(from), name(to)),
            Self::Unchanged(level) => format!("Log level already set to {:?}.", name(level)),
        }
    }
}

/// Makes `level` the log level, at once for every thread.
///
/// # Errors
/// When logging was not set up with [`reloadable`].
pub fn set(level: LevelFilter) -> Result<Change, String> {
    let before = current()?;
    if before == level {
        return Ok(Change::Unchanged(level));
    }
    let handle = HANDLE.get().ok_or("the log level cannot be changed: logging is not reloadable")?;
    handle
        .reload(EnvFilter::default().add_directive(level.into()))
        .map_err(|e| format!("the log level cannot be changed: {e}"))?;
    tracing::info!(from = name(before), to = name(level), "log level changed");
    Ok(Change::Changed(before, level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        for n in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] {
            assert_eq!(name(parse(n).unwrap()), n);
            assert_eq!(parse(&n.to_lowercase()), parse(n));
        }
        assert_eq!(parse("warning"), Some(LevelFilter::WARN));
        assert_eq!(parse(" err\n"), Some(LevelFilter::ERROR));
        assert_eq!(parse("LOUD"), None);
        assert_eq!(parse(""), None);
        assert_eq!(
            Change::Changed(LevelFilter::INFO, LevelFilter::DEBUG).message(),
            "Changed log level from \"INFO\" to \"DEBUG\"."
        );
        assert_eq!(Change::Unchanged(LevelFilter::DEBUG).message(), "Log level already set to \"DEBUG\".");
    }
}
