//! A real Prometheus server scrapes diagd; `process_state` is read back through its HTTP query
//! API.

use std::process::{Command, Stdio};
use std::time::Duration;

use diag_tests::{Diagd, RUNTIMES, TempDir, free_port, request, require_tool, wait_for, wait_timeout};
use serde_json::Value;

struct Prometheus {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
    }
}

fn start_prometheus(target: std::net::SocketAddr) -> Prometheus {
    let binary = require_tool("prometheus", "apt-get install prometheus (Debian package)");
    let dir = TempDir::new("prometheus");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: diagd\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    Prometheus { child, port, _dir: dir }
}

fn query(prometheus: &Prometheus, expr: &str) -> Result<Vec<Value>, String> {
    let addr = format!("127.0.0.1:{}", prometheus.port).parse().unwrap();
    let path = format!("/api/v1/query?query={expr}");
    let r =
        std::panic::catch_unwind(|| request(addr, "GET", &path, &[])).map_err(|_| "not listening yet".to_owned())?;
    let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))?;
    if body["status"] != "success" {
        return Err(r.text());
    }
    Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
}

#[test]
fn prometheus_scrapes_process_state() {
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, None);
        let prometheus = start_prometheus(diagd.addr);
        let instance = diagd.addr.to_string();

        let up = wait_for("up == 1", Duration::from_secs(60), || {
            let result = query(&prometheus, "up")?;
            let v = result.first().ok_or("no up series yet")?;
            (v["value"][1] == "1").then(|| v.clone()).ok_or_else(|| v.to_string())
        });
        assert_eq!(up["metric"]["instance"], instance.as_str(), "{runtime}");

        let state = wait_for("process_state == 0", Duration::from_secs(30), || {
            let result = query(&prometheus, "process_state")?;
            let v = result.first().ok_or("no process_state yet")?;
            (v["value"][1] == "0").then(|| v.clone()).ok_or_else(|| v.to_string())
        });
        assert_eq!(state["metric"]["job"], "diagd");

        // Further families arrive intact through the scrape (Prometheus asks for OpenMetrics first).
        let build = wait_for("diag_build_info", Duration::from_secs(10), || {
            query(&prometheus, "diag_build_info")?.first().cloned().ok_or_else(|| "none".to_owned())
        });
        assert_eq!(build["metric"]["version"], env!("CARGO_PKG_VERSION"));
        let scrapes = wait_for("scrape counter", Duration::from_secs(10), || {
            let r = query(&prometheus, "promhttp_metric_handler_requests_total%7Bcode%3D%22200%22%7D")?;
            r.first().cloned().ok_or_else(|| "none".to_owned())
        });
        assert!(scrapes["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= 1.0);
    }
}
