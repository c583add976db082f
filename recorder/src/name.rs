//! Metric and label names as the exposition formats accept them.

/// `name` with every character the formats do not allow replaced by `_` (a leading digit is
/// prefixed with `_`), as the Prometheus exporters of the `metrics` ecosystem do: `http.requests`
/// becomes `http_requests`. `colons` allows `:` (metric names, not label names).
pub(crate) fn sanitize(name: &str, colons: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') { c } else { '_' }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn names_become_valid_for_the_formats() {
        assert_eq!(sanitize("http.requests-total", true), "http_requests_total");
        assert_eq!(sanitize("job:rate5m", true), "job:rate5m");
        assert_eq!(sanitize("job:rate5m", false), "job_rate5m");
        assert_eq!(sanitize("5xx", false), "_5xx");
        assert_eq!(sanitize("", false), "_");
        assert_eq!(sanitize("naïve", true), "na_ve");
        assert!(diag_core::encoding::is_legacy_metric_name(&sanitize("1.a-b:c", true)));
        assert!(diag_core::encoding::is_legacy_label_name(&sanitize("1.a-b:c", false)));
    }
}
