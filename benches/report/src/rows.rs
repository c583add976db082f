//! Names of the rows the report's targets compare, shared with the benchmarks that measure them.

/// The /metrics reference row: hyper answering with a body encoded once, before the run.
pub const CEILING: &str = "ceiling: hyper + a prebuilt body";
/// The /metrics peer every diag server is compared with.
pub const PEER: &str = "prometheus-client + hyper";

/// The native histogram implementations measured (criterion ids), with their display names.
pub const NATIVE: [(&str, &str); 6] = [
    ("diag_native", "diag `NativeHistogram<32>`"),
    ("diag_hybrid", "diag `HybridHistogram<32, 11>` (native + classic)"),
    ("diag_classic", "diag `Histogram<11>` (classic)"),
    ("prometheus_client_native", "prometheus-client 0.25 native"),
    ("prometheus_client_hybrid", "prometheus-client 0.25 native + classic"),
    ("metrics_native", "metrics-exporter-prometheus 0.18 native"),
];
