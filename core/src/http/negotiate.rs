//! `Accept` and `Accept-Encoding` negotiation, with q-values.

use crate::encoding::Format;

/// A q-value in thousandths: 0 to 1000.
type Q = u16;

/// One element of a comma-separated header: the value before `;`, its parameters, and `q`.
fn elements(header: &str) -> impl Iterator<Item = (&str, &str, Q)> {
    header.split(',').filter_map(|element| {
        let mut parts = element.split(';');
        let value = parts.next()?.trim_ascii();
        if value.is_empty() {
            return None;
        }
        let params = element.get(element.find(';').map_or(element.len(), |i| i + 1)..).unwrap_or("");
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
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if ["nan", "inf", "infinity"].iter().any(|w| digits.eq_ignore_ascii_case(w)) {
        return Some(0);
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
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
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim_ascii().eq_ignore_ascii_case(name).then(|| v.trim_ascii().trim_matches('"'))
    })
}

/// Picks the exposition format for an `Accept` header.
///
/// OpenMetrics is chosen when `application/openmetrics-text` (version absent, `1.0.0` or
/// `0.0.1`) has a strictly higher q-value than the best range that admits the 0.0.4 text format
/// (`text/plain`, `text/*`, `*/*`); otherwise, and without a header, the 0.0.4 text format.
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
    let (mut om, mut text): (Q, Q) = (0, if accept.is_none() { 1000 } else { 0 });
    for (range, params, q) in elements(accept.unwrap_or("")) {
        if range.eq_ignore_ascii_case("application/openmetrics-text") {
            if matches!(param(params, "version"), None | Some("1.0.0" | "0.0.1")) {
                om = om.max(q);
            }
        } else if range.eq_ignore_ascii_case("text/plain") {
            if matches!(param(params, "version"), None | Some("0.0.4")) {
                text = text.max(q);
            }
        } else if range == "*/*" || range.eq_ignore_ascii_case("text/*") {
            text = text.max(q);
        }
    }
    if om > 0 && om > text { Format::OpenMetrics } else { Format::Prometheus }
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
