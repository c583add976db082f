//! The wall clock of std targets, for start timestamps.

/// Milliseconds since the Unix epoch from [`std::time::SystemTime`] (0 if the system clock
/// is before 1970): the clock to give [`Registry::with_clock`](crate::Registry::with_clock) on
/// a std target.
///
/// # Examples
/// ```
/// use diag_core::{Registry, unix_time_ms};
/// static REGISTRY: Registry<'static, 16> = Registry::new().with_clock(unix_time_ms);
/// assert!(unix_time_ms() > 1_600_000_000_000);
/// ```
pub fn unix_time_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
