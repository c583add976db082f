//! `Accept` and `Accept-Encoding` negotiation, with q-values.

use super::ascii;
pub use crate::encoding::Escaping;
use crate::encoding::Format;

/// A q-value in thousandths: 0 to 1000.
type Q = u16;

/// One element of a comma-separated header: the value before `;`, its parameters, and `q`.
fn elements(header: &str) -> impl Iterator<Item = (&str, &str, Q)> {
    ascii::split(header, b',').filter_map(|element| {
        let mut parts = ascii::split(element, b';');
        let value = parts.next()?.trim_ascii();
        if value.is_empty() {
            return None;
        }
        let params = ascii::split_once(element, b';').map_or("", |(_, params)| params);
        let q = parts
            .filter_map(|p| p.trim_ascii().strip_prefix("q=").or_else(|| p.trim_ascii().strip_prefix("Q=")))
            .find_map(|q| parse_q(q.trim_ascii()))
            .unwrap_or(1000);
        Some((value, params, q))
    })
}

/// Parses a q-value: an optionally signed decimal number without exponent (a superset of the
/// RFC 9110 `qvalue`), to thousandths (qvalues have at most three decimals), clamped to 0..=1000;
/// `NaN` and infinities give 0. Integer-only: `f32::from_str` would bring about 14 KiB of
/// tables and code, and float division soft-float routines, into microcontroller flash.
fn parse_q(s: &str) -> Option<Q> {
    // `get`, not indexing: after an ASCII sign byte there is always a character boundary, and
    // indexing would link `str`'s slice-error reporting (260 bytes on Cortex-M) for nothing.
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if ["nan", "inf", "infinity"].iter().any(|w| digits.eq_ignore_ascii_case(w)) {
        return Some(0);
    }
    let (int, frac) = ascii::split_once(digits, b'.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let whole = int.bytes().fold(0u32, |v, d| v.saturating_mul(10).saturating_add(u32::from(d - b'0')));
    let mut milli = whole.saturating_mul(1000);
    for (d, scale) in frac.bytes().zip([100, 10, 1]) {
        milli = milli.saturating_add(u32::from(d - b'0') * scale);
    }
    Some(if negative { 0 } else { milli.min(1000) as Q })
}

/// The value of parameter `name` in `params` (`a=b; c="d"`), unquoted.
fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    ascii::split(params, b';').find_map(|p| {
        let (k, v) = ascii::split_once(p, b'=')?;
        k.trim_ascii().eq_ignore_ascii_case(name).then(|| ascii::trim_quotes(v.trim_ascii()))
    })
}

/// What an `Accept` header negotiated: the format, the text format's version, and the
/// escaping scheme the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Negotiated {
    /// The exposition format.
    pub format: Format,
    /// `text/plain; version=1.0.0` was chosen (Prometheus 3: same lines as 0.0.4, with
    /// quoted UTF-8 names allowed); only with [`Format::Prometheus`].
    pub text_v1: bool,
    /// The `escaping` parameter of the chosen media range, if it had a valid one.
    pub escaping: Option<Escaping>,
}

impl Negotiated {
    /// How to write names that are not legacy: the scheme the client named, else
    /// client_golang's default, [`Escaping::Underscores`] (a client that names no scheme may
    /// not read UTF-8 names).
    pub fn name_escaping(&self) -> Escaping {
        self.escaping.unwrap_or(Escaping::Underscores)
    }

    /// The `Content-Type` of the response: the format's, with the text version and the
    /// escaping scheme echoed when the client named them.
    ///
    /// Without the `utf8-names` feature every name is legacy, so every scheme writes the same
    /// names and the scheme is not echoed: 16 fewer strings in flash on bare metal.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "utf8-names")] {
    /// use diag_core::http::negotiate;
    /// let prometheus3 = "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2";
    /// assert_eq!(
    ///     negotiate(Some(prometheus3)).content_type(),
    ///     "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    /// );
    /// # }
    /// ```
    pub fn content_type(&self) -> &'static str {
        macro_rules! with_escaping {
            ($base:expr) => {
                match self.escaping {
                    _ if !cfg!(feature = "utf8-names") => $base,
                    None => $base,
                    Some(Escaping::AllowUtf8) => concat!($base, "; escaping=allow-utf-8"),
                    Some(Escaping::Underscores) => concat!($base, "; escaping=underscores"),
                    Some(Escaping::Dots) => concat!($base, "; escaping=dots"),
                    Some(Escaping::Values) => concat!($base, "; escaping=values"),
                }
            };
        }
        match (self.format, self.text_v1) {
            (Format::Prometheus, false) => with_escaping!("text/plain; version=0.0.4; charset=utf-8"),
            (Format::Prometheus, true) => with_escaping!("text/plain; version=1.0.0; charset=utf-8"),
            (Format::OpenMetrics, _) => with_escaping!("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            #[cfg(feature = "protobuf")]
            (Format::Protobuf, _) => with_escaping!(
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            ),
        }
    }
}

/// Picks the exposition format for an `Accept` header; see [`negotiate`].
///
/// # Examples
/// ```
/// use diag_core::{Format, http::negotiate_format};
/// let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// assert_eq!(negotiate_format(Some(prometheus)), Format::OpenMetrics);
/// assert_eq!(negotiate_format(Some("text/plain")), Format::Prometheus);
/// assert_eq!(negotiate_format(None), Format::Prometheus);
/// ```
pub fn negotiate_format(accept: Option<&str>) -> Format {
    negotiate(accept).format
}

/// Negotiates the exposition for an `Accept` header, q-values honoured.
///
/// Candidates: the protobuf exposition (`application/vnd.google.protobuf` with
/// `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`), OpenMetrics
/// (`application/openmetrics-text`, version absent, `1.0.0` or `0.0.1`), and the text format
/// (`text/plain` version absent, `0.0.4` or `1.0.0`; `text/*`; `*/*`). The one with the
/// strictly highest q-value wins, ties going to text, then OpenMetrics; without a header, or
/// with nothing acceptable, the 0.0.4 text format. The `escaping` parameter of the winning
/// range is kept when valid.
///
/// # Examples
/// What Prometheus 2.42 sends with `--enable-feature=native-histograms` (protobuf needs the
/// `protobuf` feature; without it, OpenMetrics):
/// ```
/// # #[cfg(feature = "protobuf")] {
/// use diag_core::{Format, http::negotiate};
/// let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,\
///               application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,\
///               text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(negotiate(Some(accept)).format, Format::Protobuf);
/// # }
/// ```
pub fn negotiate(accept: Option<&str>) -> Negotiated {
    /// The best q-value of a candidate, with its text version and escaping.
    #[derive(Clone, Copy, Default)]
    struct Best {
        q: Q,
        v1: bool,
        escaping: Option<Escaping>,
    }
    impl Best {
        fn offer(&mut self, q: Q, v1: bool, params: &str) {
            if q > self.q {
                *self = Best { q, v1, escaping: param(params, "escaping").and_then(Escaping::parse) };
            }
        }
    }
    let (mut pb, mut om, mut text) = (Best::default(), Best::default(), Best::default());
    if accept.is_none() {
        text.q = 1000;
    }
    for (range, params, q) in elements(accept.unwrap_or("")) {
        if range.eq_ignore_ascii_case("application/vnd.google.protobuf") {
            if cfg!(feature = "protobuf")
                && param(params, "proto") == Some("io.prometheus.client.MetricFamily")
                && param(params, "encoding") == Some("delimited")
            {
                pb.offer(q, false, params);
            }
        } else if range.eq_ignore_ascii_case("application/openmetrics-text") {
            if matches!(param(params, "version"), None | Some("1.0.0" | "0.0.1")) {
                om.offer(q, false, params);
            }
        } else if range.eq_ignore_ascii_case("text/plain") {
            match param(params, "version") {
                None | Some("0.0.4") => text.offer(q, false, params),
                Some("1.0.0") => text.offer(q, true, params),
                Some(_) => {}
            }
        } else if range == "*/*" || range.eq_ignore_ascii_case("text/*") {
            text.offer(q, false, "");
        }
    }
    #[cfg(feature = "protobuf")]
    if pb.q > 0 && pb.q > text.q && pb.q > om.q {
        return Negotiated { format: Format::Protobuf, text_v1: false, escaping: pb.escaping };
    }
    let (format, best) = if om.q > 0 && om.q > text.q { (Format::OpenMetrics, om) } else { (Format::Prometheus, text) };
    Negotiated { format, text_v1: best.v1 && format == Format::Prometheus, escaping: best.escaping }
}

/// Whether an `Accept-Encoding` header allows gzip (`gzip` or `*` with q > 0, an explicit
/// `gzip;q=0` wins over `*`).
///
/// # Examples
/// ```
/// use diag_core::http::accepts_gzip;
/// assert!(accepts_gzip(Some("gzip, deflate")));
/// assert!(!accepts_gzip(Some("gzip;q=0, *")));
/// assert!(accepts_gzip(Some("br;q=1.0, *;q=0.1")));
/// assert!(!accepts_gzip(None));
/// ```
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let (mut gzip, mut any) = (None, None);
    for (coding, _, q) in elements(accept_encoding.unwrap_or("")) {
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            any = Some(q);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0)
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn q_values_decide() {
        assert_eq!(negotiate_format(Some("text/plain;q=0.9, application/openmetrics-text;q=0.8")), Format::Prometheus);
        assert_eq!(negotiate_format(Some("text/plain;q=0.5, application/openmetrics-text")), Format::OpenMetrics);
        assert_eq!(negotiate_format(Some("application/openmetrics-text; version=1.0.0")), Format::OpenMetrics);
        assert_eq!(negotiate_format(Some("application/openmetrics-text; version=2.0.0")), Format::Prometheus);
        assert_eq!(negotiate_format(Some("application/openmetrics-text;q=0")), Format::Prometheus);
        assert_eq!(negotiate_format(Some("*/*")), Format::Prometheus);
        assert_eq!(negotiate_format(Some("")), Format::Prometheus);
        assert_eq!(negotiate_format(Some("application/json")), Format::Prometheus);
        assert_eq!(negotiate_format(Some("application/openmetrics-text;q=1, text/plain;q=1")), Format::Prometheus);
        assert_eq!(negotiate_format(Some("application/openmetrics-text;q=abc")), Format::OpenMetrics, "bad q is 1");
        assert_eq!(negotiate_format(Some(",,;;,application/openmetrics-text;q=NaN")), Format::Prometheus);
    }

    /// The exact `Accept` headers Prometheus sends.
    #[cfg(feature = "protobuf")]
    #[test]
    fn prometheus_accept_headers() {
        // 2.42, default.
        let v2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                  text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(v2)).format, Format::OpenMetrics);
        // 2.42 with --enable-feature=native-histograms (read from the binary).
        let v2_native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,\
                         application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,\
                         text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let n = negotiate(Some(v2_native));
        assert_eq!((n.format, n.escaping), (Format::Protobuf, None));
        assert_eq!(n.content_type(), crate::encoding::protobuf::CONTENT_TYPE);
        // 3.x with native histograms (scrape_protocols PrometheusProto first, UTF-8 validation).
        let v3_native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;\
                         escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.4,\
                         application/openmetrics-text;version=0.0.1;q=0.3,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.2,\
                         text/plain;version=0.0.4;q=0.1,*/*;q=0.05";
        let n = negotiate(Some(v3_native));
        assert_eq!((n.format, n.escaping), (Format::Protobuf, Some(Escaping::AllowUtf8)));
        #[cfg(feature = "utf8-names")]
        assert!(n.content_type().ends_with("encoding=delimited; escaping=allow-utf-8"));
        // 3.x default: OpenMetrics with escaping; text 1.0.0 when OpenMetrics is not wanted.
        let v3 = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,text/plain;version=1.0.0;escaping=dots;q=0.4";
        let n = negotiate(Some(v3));
        assert_eq!((n.format, n.escaping), (Format::OpenMetrics, Some(Escaping::Underscores)));
        let n = negotiate(Some("text/plain;version=1.0.0;escaping=values;q=0.4,text/plain;version=0.0.4;q=0.3"));
        assert_eq!((n.format, n.text_v1, n.escaping), (Format::Prometheus, true, Some(Escaping::Values)));
        let with_scheme = if cfg!(feature = "utf8-names") { "; escaping=values" } else { "" };
        assert_eq!(n.content_type(), std::format!("text/plain; version=1.0.0; charset=utf-8{with_scheme}"));
        let n = negotiate(Some("text/plain;version=1.0.0;escaping=bogus"));
        assert_eq!((n.text_v1, n.escaping), (true, None));
    }

    #[cfg(feature = "protobuf")]
    #[test]
    fn protobuf_needs_its_parameters_and_the_best_q() {
        let pb = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
        assert_eq!(negotiate_format(Some(pb)), Format::Protobuf);
        assert_eq!(negotiate_format(Some(&pb.replace(";encoding=delimited", ""))), Format::Prometheus);
        assert_eq!(negotiate_format(Some(&pb.replace("delimited", "text"))), Format::Prometheus);
        assert_eq!(negotiate_format(Some(&pb.replace("MetricFamily", "Other"))), Format::Prometheus);
        assert_eq!(negotiate_format(Some(&std::format!("{pb};q=0.5,text/plain;q=0.6"))), Format::Prometheus);
        assert_eq!(negotiate_format(Some(&std::format!("{pb};q=0.5,text/plain;q=0.5"))), Format::Prometheus);
        assert_eq!(negotiate_format(Some(&std::format!("{pb};q=0,application/json"))), Format::Prometheus);
        assert_eq!(negotiate_format(Some(&std::format!("text/plain;q=0.1,{pb};q=0.2"))), Format::Protobuf);
    }

    #[test]
    fn q_values_parse_like_numbers() {
        for (q, want) in [
            ("1", 1000),
            ("0.5", 500),
            ("0.001", 1),
            (".5", 500),
            ("1.", 1000),
            ("-0.5", 0),
            ("+0.25", 250),
            ("0.1239", 123),
            ("1.000", 1000),
            ("2.5", 1000),
            ("99999999999999", 1000),
            ("NaN", 0),
            ("inf", 0),
            ("-Infinity", 0),
        ] {
            assert_eq!(parse_q(q), Some(want), "{q}");
        }
        for q in ["", ".", "abc", "1e-1", "0.5x", "--1"] {
            assert_eq!(parse_q(q), None, "{q}");
        }
    }

    #[test]
    fn gzip() {
        assert!(accepts_gzip(Some("GZIP")));
        assert!(accepts_gzip(Some("identity, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("*;q=0")));
    }
}
