//! The per-request pattern: look a series up by label values known only at run time (a method
//! and a user name taken from the request) and increment it, on diag and on each peer.

use diag_core::{Counter, Family};

/// Series present in the lookup groups.
pub const SIZES: [usize; 4] = [4, 32, 256, 1024];

/// The method label of every series.
pub const METHOD: &str = "GET";

/// `size` user names, `user-0000`…: what a service cuts from request paths.
pub fn users(size: usize) -> Vec<String> {
    (0..size).map(|i| format!("user-{i:04}")).collect()
}

/// A diag family large enough for every size, keyed by (method, user).
pub type DiagRequests = Family<Counter, (&'static str, &'static str), 1024>;

/// prometheus-client's label set for the same family: it looks series up by an owned set.
pub type PromClientLabels = Vec<(&'static str, String)>;

/// The key of one request in the `metrics` crate, as `counter!("…", "method" => …, "user" => …)`
/// builds it on every call.
pub fn metrics_key(user: &str) -> metrics::Key {
    metrics::Key::from_parts(
        "requests_total",
        vec![metrics::Label::new("method", METHOD), metrics::Label::new("user", user.to_owned())],
    )
}

/// What the fastest peer skips, checked by every benchmark run before the report says it:
/// prometheus finds a series by an FNV hash of the values concatenated, without comparing
/// them, so two label sets whose values concatenate alike are one series; diag keeps them
/// apart.
///
/// # Panics
/// When either is no longer so (a new version of either crate): the report's text is then
/// wrong.
pub fn check_prometheus_merges_concatenated_values() {
    let prom = prometheus::IntCounterVec::new(prometheus::Opts::new("t_total", "t"), &["a", "b"]).expect("opts");
    prom.with_label_values(&["ab", "c"]).inc();
    assert_eq!(prom.with_label_values(&["a", "bc"]).get(), 1, "prometheus: (a, bc) is no longer (ab, c)'s series");

    let diag: Family<Counter, (&str, &str), 4> = Family::new(["a", "b"], ());
    diag.get_or_create(("ab", "c")).expect("capacity").inc();
    assert_eq!(diag.get_or_create(("a", "bc")).expect("capacity").get(), 0, "diag: two series");
}
