//! [`RequestDurations`]: how long a [`Handler`](super::Handler) took to answer each request, as
//! the family `diag_http_request_duration_seconds`.

use crate::encoding::{Desc, Encoder, MetricType, Stop};
use crate::registry::{Collect, Metric};
use crate::{Family, HybridHistogram, NativeConfig};

/// The classic bounds of [`RequestDurations`], in seconds: diag's answers take from tens of
/// microseconds (`/healthz`) to a second or more (a large `/metrics` over a slow link).
pub const REQUEST_DURATION_BOUNDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Most populated native buckets per series: 32 buckets at schema 3 (8 per power of two) span
/// 16×; wider spreads lower the resolution (see [`NativeHistogram`](crate::NativeHistogram)).
const NATIVE_BUCKETS: usize = 32;

/// One series per route and status class.
pub type RequestDurationFamily =
    Family<HybridHistogram<NATIVE_BUCKETS, { REQUEST_DURATION_BOUNDS.len() }>, (&'static str, &'static str), 32>;

/// The routes a duration is labelled with (`route`).
pub const ROUTES: [&str; 6] = ["healthz", "livez", "readyz", "metrics", "extra", "other"];
/// The status classes a duration is labelled with (`code`).
pub const CODES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

static DESC: Desc<'static> = Desc {
    name: "diag_http_request_duration_seconds",
    help: "Time the diagnostic server took to answer a request, from the request head to the response head.",
    metric_type: MetricType::Histogram,
};

/// The durations of the requests a [`Handler`](super::Handler) answered (given to it with
/// [`Handler::with_request_durations`](super::Handler::with_request_durations)): a
/// [`HybridHistogram`] (native buckets at schema 3, classic buckets at
/// [`REQUEST_DURATION_BOUNDS`], the latest exemplar of each classic bucket) per `route` and
/// `code`.
///
/// * `route`: `healthz`, `livez`, `readyz` (with `/readyz/<component>`), `metrics`, `extra`
///   (a path the extra [`Routes`](super::Routes) claimed, such as diagd's `/debug/…`) or
///   `other` (every other path, answered 404) — never the path itself, which a client chooses.
/// * `code`: the status class, `2xx` … `5xx`: the answers that matter (`503` from `/readyz`,
///   `404`, `406`, `431`) differ by class, and exact codes from extra routes are not bounded.
///
/// So at most 6 × 5 = 30 series, in a family of 32: memory is fixed (about 4 KiB per series)
/// and nothing a client sends adds a series. The duration runs from the request reaching the
/// handler to the response head being ready; a `/metrics` body is written after that (so a
/// scrape counts itself, and its encoding time is not included). An observation made with the
/// [exemplar source](crate::set_exemplar_source) set (diag's facade sets one that reads the
/// current trace) runs inside the request's span, so its exemplar names that trace.
///
/// # Examples
/// ```
/// use diag_core::server::RequestDurations;
/// use diag_core::{Format, Registry, Scrape};
/// let durations = RequestDurations::new();
/// durations.observe(RequestDurations::route("/healthz", false), 200, 0.00012);
/// let registry: Registry<'_, 1> = Registry::new();
/// registry.register_collector(&durations).unwrap();
/// let mut buf = vec![0u8; 4096];
/// let n = Scrape::new(Format::Prometheus, &registry).fill(&mut buf).unwrap();
/// let text = std::str::from_utf8(&buf[..n]).unwrap();
/// assert!(text.contains("diag_http_request_duration_seconds_count{route=\"healthz\",code=\"2xx\"} 1\n"));
/// ```
#[derive(Debug)]
pub struct RequestDurations {
    family: RequestDurationFamily,
}

impl RequestDurations {
    /// No requests yet.
    pub fn new() -> Self {
        Self { family: Family::new(["route", "code"], (NativeConfig::new(3), &REQUEST_DURATION_BOUNDS)) }
    }

    /// The family, for reading in tests and embedding programs.
    pub fn family(&self) -> &RequestDurationFamily {
        &self.family
    }

    /// The `route` label of a request for `path` (`extra`: claimed by the extra routes).
    pub fn route(path: &str, extra: bool) -> &'static str {
        match path {
            _ if extra => "extra",
            "/healthz" => "healthz",
            "/livez" => "livez",
            "/metrics" => "metrics",
            p if p == "/readyz" || p.starts_with("/readyz/") => "readyz",
            _ => "other",
        }
    }

    /// Records that a request for `route` (a label from [`route`](Self::route); any other
    /// string counts as `other`) got `status` after `seconds`.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        let route = ROUTES.iter().copied().find(|r| *r == route).unwrap_or("other");
        let code = CODES.get(usize::from(status / 100).wrapping_sub(1)).copied().unwrap_or("5xx");
        // A full family (it cannot be: 30 label sets, 32 series) would count in its
        // overflow series; a refused label set (none is) is dropped.
        if let Ok(series) = self.family.get_or_create((route, code)) {
            series.observe(seconds);
        }
    }
}

impl Default for RequestDurations {
    fn default() -> Self {
        Self::new()
    }
}

impl Collect for RequestDurations {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.entry(0, |enc| self.family.encode(&DESC, enc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_classes_stay_within_the_family() {
        let d = RequestDurations::new();
        for path in ["/healthz", "/livez", "/readyz", "/readyz/db", "/metrics", "/x", "/readyzz", "/debug/pprof"] {
            for status in [100, 200, 204, 304, 404, 431, 503, 599, 0, 999] {
                d.observe(RequestDurations::route(path, path.starts_with("/debug")), status, 0.001);
            }
        }
        assert_eq!(d.family.overflow(), 0);
        let healthz = d.family.get(("healthz", "2xx")).expect("series").snapshot();
        assert_eq!(healthz.native().count, 2);
        assert_eq!(d.family.get(("other", "5xx")).expect("series").snapshot().native().count, 8);
        assert_eq!(d.family.get(("extra", "4xx")).expect("series").snapshot().native().count, 2);
        assert_eq!(d.family.get(("readyz", "2xx")).expect("series").snapshot().native().count, 4);
        // `/x` and `/readyzz` answered 200 and 204, then a route that is no label.
        d.observe("/not-a-label", 200, 0.5);
        assert_eq!(d.family.get(("other", "2xx")).expect("series").snapshot().native().count, 5);
        assert!(ROUTES.contains(&RequestDurations::route("/anything", false)));
    }
}
