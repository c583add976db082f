//! A real Prometheus server scrapes diagd; `process_state` is read back through its HTTP query
//! API.

use std::time::Duration;

use diag_tests::prometheus::Prometheus;
use diag_tests::{Diagd, each_runtime, wait_for};

#[test]
fn prometheus_scrapes_process_state() {
    each_runtime(|runtime| {
        let diagd = Diagd::start(runtime, None);
        let prometheus = Prometheus::scraping(diagd.addr);
        let instance = diagd.addr.to_string();

        let up = wait_for("up == 1", Duration::from_secs(60), || {
            let result = prometheus.query("up")?;
            let v = result.first().ok_or("no up series yet")?;
            (v["value"][1] == "1").then(|| v.clone()).ok_or_else(|| v.to_string())
        });
        assert_eq!(up["metric"]["instance"], instance.as_str(), "{runtime}");

        let state = wait_for("process_state == 0", Duration::from_secs(30), || {
            let result = prometheus.query("process_state")?;
            let v = result.first().ok_or("no process_state yet")?;
            (v["value"][1] == "0").then(|| v.clone()).ok_or_else(|| v.to_string())
        });
        assert_eq!(state["metric"]["job"], "diagd");

        // Further families arrive intact through the scrape (Prometheus asks for OpenMetrics first).
        let build = wait_for("diag_build_info", Duration::from_secs(10), || {
            prometheus.query("diag_build_info")?.first().cloned().ok_or_else(|| "none".to_owned())
        });
        assert_eq!(build["metric"]["version"], env!("CARGO_PKG_VERSION"));
        let scrapes = wait_for("scrape counter", Duration::from_secs(10), || {
            let r = prometheus.query("promhttp_metric_handler_requests_total%7Bcode%3D%22200%22%7D")?;
            r.first().cloned().ok_or_else(|| "none".to_owned())
        });
        assert!(scrapes["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= 1.0);
    });
}
