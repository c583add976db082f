//! [`Backoff`]: how long the sender waits before it retries a request that failed (a
//! connection error, a timeout, 429 or 5xx): exponential from [`MIN_BACKOFF`] to
//! [`MAX_BACKOFF`] with jitter, or what the receiver's `Retry-After` asks
//! ([`retry_after`]: seconds or an HTTP date), at most [`MAX_RETRY_AFTER`].

use std::time::{Duration, SystemTime};

/// The wait after the first failure (before jitter).
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts without `Retry-After`: a receiver that comes back
/// is pushed to again within this.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a longer one waits this long.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The failures since the last success, and the waits they call for.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// A request went through: the next failure waits [`MIN_BACKOFF`] again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait before the next attempt after one more failure. `retry_after` (the
    /// receiver's ask) wins when given, at least [`MIN_BACKOFF`] and at most
    /// [`MAX_RETRY_AFTER`]; otherwise the exponential wait, doubled per failure up to
    /// [`MAX_BACKOFF`], of which `jitter` (in `0.0..=1.0`) picks a point in its upper half
    /// (so that agents failing together do not retry together).
    pub(crate) fn next(&mut self, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exponent = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        if let Some(asked) = retry_after {
            return asked.clamp(MIN_BACKOFF, MAX_RETRY_AFTER);
        }
        let base = MIN_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
        base / 2 + base.div_f64(2.0).mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// The wait a `Retry-After` header value asks for, at `now`: delay-seconds (`120`) or an
/// HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`; a date past is no wait). `None` when it is
/// neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_with_jitter_capped_and_reset() {
        let mut b = Backoff::default();
        let low: Vec<Duration> = (0..8).map(|_| b.next(None, 0.0)).collect();
        let ms = |v: &[Duration]| v.iter().map(|d| d.as_millis()).collect::<Vec<_>>();
        assert_eq!(ms(&low), [50, 100, 200, 400, 800, 1600, 2500, 2500]);
        b.reset();
        let high: Vec<Duration> = (0..8).map(|_| b.next(None, 1.0)).collect();
        assert_eq!(ms(&high), [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        let mid = b.next(None, 0.5);
        assert_eq!(mid, Duration::from_millis(75));
        for _ in 0..100 {
            assert!(b.next(None, 2.0) <= MAX_BACKOFF, "jitter out of range is clamped");
        }
    }

    #[test]
    fn retry_after_wins_within_bounds() {
        let mut b = Backoff::default();
        assert_eq!(b.next(Some(Duration::from_secs(7)), 0.0), Duration::from_secs(7));
        assert_eq!(b.next(Some(Duration::ZERO), 0.0), MIN_BACKOFF);
        assert_eq!(b.next(Some(Duration::from_secs(86_400)), 0.0), MAX_RETRY_AFTER);
        // The failures still count: without the header the wait has grown.
        assert_eq!(b.next(None, 1.0), Duration::from_millis(800));
    }

    #[test]
    fn retry_after_header_in_seconds_or_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO), "a date past");
        assert_eq!(retry_after("Wednesday, 21-Oct-15 07:28:10 GMT", now), Some(Duration::from_secs(10)), "RFC 850");
        for bad in ["", "-1", "soon", "1.5", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }
}
