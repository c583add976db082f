//! A real Prometheus server (the Debian package) for the tests that check what Prometheus
//! makes of diag: scrapes, and remote write pushes. Started on a free port with its own data
//! directory; stopped and restarted on the same port and data (for outages); killed when
//! dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{TempDir, free_port, request, require_tool, wait_for, wait_timeout};

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    /// Its HTTP address (query API, remote write receiver).
    pub addr: SocketAddr,
    binary: PathBuf,
    args: Vec<String>,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
    }
}

impl Prometheus {
    /// Starts Prometheus with `config` (its YAML) and `args` besides the config file, the
    /// data directory and the listen address; returns once it answers `/-/ready`.
    pub fn start(config: &str, args: &[&str]) -> Self {
        let binary = require_tool("prometheus", "apt-get install prometheus (Debian package)");
        let dir = TempDir::new("prometheus");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let port = free_port();
        let mut all = vec![
            format!("--config.file={}", file.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let child = spawn(&binary, &all);
        let prometheus = Self { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), binary, args: all, _dir: dir };
        prometheus.wait_ready();
        prometheus
    }

    fn wait_ready(&self) {
        wait_for("prometheus ready", Duration::from_secs(60), || {
            let r = std::panic::catch_unwind(|| request(self.addr, "GET", "/-/ready", &[]))
                .map_err(|_| "not listening yet".to_owned())?;
            (r.status == 200).then_some(()).ok_or_else(|| r.text())
        });
    }

    /// Stops Prometheus (SIGTERM, SIGKILL if it has not exited within 10 s), keeping its port
    /// and data directory for [`restart`](Self::restart): the receiver is gone meanwhile.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        if wait_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
        }
    }

    /// Starts Prometheus again after [`stop`](Self::stop), on the same port with the same
    /// data directory and arguments; returns once it answers `/-/ready`.
    pub fn restart(&mut self) {
        self.child = spawn(&self.binary, &self.args);
        self.wait_ready();
    }

    /// Starts Prometheus scraping `target` every second as job `diagd`.
    pub fn scraping(target: SocketAddr) -> Self {
        Self::start(
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: diagd\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
            &[],
        )
    }

    /// The result vector of the instant query `expr` (URL-encoded by the caller where it
    /// needs to be), evaluated at `time` (Unix seconds) or now.
    ///
    /// # Errors
    /// When Prometheus does not answer or answers an error (the text says what).
    pub fn query_at(&self, expr: &str, time: Option<f64>) -> Result<Vec<Value>, String> {
        let mut path = format!("/api/v1/query?query={expr}");
        if let Some(t) = time {
            path.push_str(&format!("&time={t:.3}"));
        }
        let r = std::panic::catch_unwind(|| request(self.addr, "GET", &path, &[]))
            .map_err(|_| "not listening".to_owned())?;
        let body: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))?;
        if body["status"] != "success" {
            return Err(r.text());
        }
        Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// [`query_at`](Self::query_at) now.
    ///
    /// # Errors
    /// As [`query_at`](Self::query_at).
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        self.query_at(expr, None)
    }
}

fn spawn(binary: &PathBuf, args: &[String]) -> Child {
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus")
}
