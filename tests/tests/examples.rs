//! The runnable examples in `examples/` (an axum service on tokio, a smol service, an
//! async-std service), each started as its user would, probed over HTTP, and profiled through
//! `diagd debug` pointed at its own debug socket: the profiles are of the example's process,
//! read by `go tool pprof`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diag_tests::{
    TempDir, cargo_build_for_profiles, free_port, go_tool_pprof, promtool_check, python_parse, request,
    run_diagd_output, wait_for, wait_timeout,
};

/// A running example with its data dir, and a config naming it for `diagd debug -c`.
struct Example {
    child: Child,
    addr: SocketAddr,
    config: PathBuf,
    dir: TempDir,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    fn start(name: &str) -> Self {
        let binary = cargo_build_for_profiles(&["-p", name], name);
        let dir = TempDir::new(name);
        let data = dir.path().join("data");
        let config = dir.path().join("diagd.yaml");
        std::fs::write(&config, format!("data_dir: {}\n", data.display())).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut child = Command::new(binary)
            .env("ADDR", addr.to_string())
            .env("DATA_DIR", &data)
            .env("OTLP_URL", format!("file://{}", dir.path().join("traces").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("listening on http://{addr}"), "{name} did not start");
        wait_for("/readyz 200", Duration::from_secs(10), || {
            let r = request(addr, "GET", "/readyz", &[]);
            (r.status == 200).then_some(()).ok_or_else(|| r.text())
        });
        Self { child, addr, config, dir }
    }

    /// `diagd debug -c <config> profile heap,profile -s 2`, unpacked into the example's dir.
    fn profiles(&self, busy: impl Fn() + Send + Sync) -> (PathBuf, PathBuf) {
        let config = self.config.to_str().unwrap().to_owned();
        let done = std::sync::atomic::AtomicBool::new(false);
        let (status, tarball, stderr) = std::thread::scope(|s| {
            let worker = s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    busy();
                }
            });
            let out = run_diagd_output(&["debug", "-c", &config, "profile", "heap,profile", "-s", "2"]);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            worker.join().unwrap();
            out
        });
        assert!(status.success(), "diagd debug profile: {stderr}");
        let file = self.dir.path().join("profiles.tar.gz");
        std::fs::write(&file, tarball).unwrap();
        let unpacked = Command::new("tar").arg("xzf").arg(&file).arg("-C").arg(self.dir.path()).status().unwrap();
        assert!(unpacked.success());
        (self.dir.path().join("profile.pprof"), self.dir.path().join("heap.pprof"))
    }

    /// SIGTERM; the example must drain and exit 0.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = wait_timeout(&mut self.child, Duration::from_secs(30)).expect("exits after SIGTERM");
        assert!(status.success(), "exit status {status}");
    }
}

fn metrics(addr: SocketAddr) -> String {
    let r = request(addr, "GET", "/metrics", &[]);
    assert_eq!(r.status, 200);
    r.text()
}

/// The leading number of the token after `prefix` in `text` (`Total samples = 1.95s` → 1.95).
fn amount_after(text: &str, prefix: &str) -> f64 {
    let token = text.split_once(prefix).and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("");
    let number: String = token.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    number.parse().unwrap_or_else(|_| panic!("no amount after {prefix:?} in:\n{text}"))
}

/// The CPU profile holds samples (the example was kept busy while it was taken) and the heap
/// profile holds live memory of the example's process.
fn check_profiles(cpu: &Path, heap: &Path) {
    let top = go_tool_pprof(&["-top"], cpu);
    assert!(amount_after(&top, "Total samples = ") > 0.0, "an empty CPU profile:\n{top}");
    let heap_top = go_tool_pprof(&["-top", "-sample_index=inuse_space"], heap);
    assert!(amount_after(&heap_top, "% of ") > 0.0, "an empty heap profile:\n{heap_top}");
}

#[test]
fn axum_service_serves_its_routes_and_diags_and_is_profiled_through_its_socket() {
    let mut example = Example::start("example-axum");
    let addr = example.addr;
    for user in ["alice", "bob", "alice"] {
        let r = request(addr, "GET", &format!("/hello/{user}"), &[]);
        assert_eq!((r.status, r.text()), (200, format!("hello, {user}\n")));
    }
    let text = metrics(addr);
    assert!(text.contains("hello_greetings_total{user=\"alice\"} 2\n"), "{text}");
    assert!(text.contains("hello_requests_total{route=\"/hello/{user}\"} 3\n"), "a metrics::counter!:\n{text}");
    let parsed = python_parse("prometheus", &text);
    assert!(parsed.to_string().contains("hello_requests"), "{parsed}");
    promtool_check(&text);
    let om = request(addr, "GET", "/metrics", &[("Accept", "application/openmetrics-text; version=1.0.0")]).text();
    python_parse("openmetrics", &om);
    promtool_check(&om);
    // Exemplars from traces: alice's count carries the ids of the span of her latest request.
    let line = om.lines().find(|l| l.starts_with("hello_greetings_total{user=\"alice\"} 2 # {")).unwrap_or_else(|| {
        panic!("alice's count with an exemplar:\n{om}");
    });
    let id = |name: &str| {
        let value = line.split_once(&format!("{name}=\"")).and_then(|(_, rest)| rest.split_once('"')).map(|(v, _)| v);
        value
            .filter(|v| v.chars().all(|c| c.is_ascii_hexdigit()))
            .unwrap_or_else(|| panic!("{name} in {line}"))
            .to_owned()
    };
    let (trace_id, span_id) = (id("trace_id"), id("span_id"));
    assert_eq!((trace_id.len(), span_id.len()), (32, 16), "{line}");
    assert_eq!(request(addr, "GET", "/nothing-here", &[]).status, 404, "axum's fallback");

    let (cpu, heap) = example.profiles(|| drop(request(addr, "GET", "/hello/load", &[])));
    check_profiles(&cpu, &heap);
    let top = go_tool_pprof(&["-top"], &cpu);
    // Samples of the service's own serving stack, not only of the profiler.
    assert!(top.contains("axum") || top.contains("hyper"), "{top}");
    let traces = example.dir.path().join("traces");
    example.terminate();
    let spans: String = std::fs::read_dir(&traces)
        .expect("the file exporter's directory")
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    assert!(spans.contains("\"hello\""), "a span per request, exported as OTLP JSON: {spans}");
    assert!(
        spans.contains(&trace_id) && spans.contains(&span_id),
        "the exemplar's trace {trace_id} and span {span_id} were exported: {spans}"
    );
}

#[test]
fn smol_and_async_std_services_serve_and_are_profiled_through_their_sockets() {
    for name in ["example-smol", "example-async-std"] {
        let mut example = Example::start(name);
        let addr = example.addr;
        let jobs = wait_for("jobs counted", Duration::from_secs(10), || {
            let text = metrics(addr);
            let n = text.lines().find_map(|l| l.strip_prefix("worker_jobs_total ")).map(str::to_owned);
            n.filter(|n| n != "0").ok_or(text)
        });
        assert!(jobs.parse::<u64>().unwrap() >= 1, "{name}");
        promtool_check(&metrics(addr));
        let (cpu, heap) = example.profiles(|| drop(request(addr, "GET", "/metrics", &[])));
        check_profiles(&cpu, &heap);
        example.terminate();
    }
}

#[test]
fn the_readme_shows_the_axum_example_as_it_is() {
    let root = diag_tests::package_dir().join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let main = std::fs::read_to_string(root.join("examples/axum/src/main.rs")).unwrap();
    let body = main.split_once("\n\n").map_or(main.as_str(), |(_doc, rest)| rest);
    assert!(readme.contains(body.trim_end()), "README.md's library example differs from examples/axum/src/main.rs");
}
