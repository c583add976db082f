//! Support for the black-box conformance suite: spawn `diagd` under a runtime, speak raw
//! HTTP/1.1 to it, and find the external tools (promtool, Python prometheus_client,
//! Prometheus) — failing with an install hint when one is missing, never skipping.
//!
//! Every test runs once per entry of [`RUNTIMES`]; adding a runtime to diagd means adding
//! its `--runtime` name there.

#![deny(missing_docs)]

pub mod fixtures;
pub mod otlp;
pub mod prometheus;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `--runtime` values the suite runs against.
pub const RUNTIMES: &[&str] = &["tokio", "smol", "async-std"];

/// Runs `f` once per entry of [`RUNTIMES`], all at once on threads of their own: the suite's
/// long waits (timeouts, drains, scrape intervals) then overlap instead of adding up. Fails
/// with the names of the runtimes whose run panicked (each panic's own message is printed
/// as it happens).
///
/// # Panics
/// When any runtime's run panics.
pub fn each_runtime(f: impl Fn(&'static str) + Sync) {
    let failed: Vec<&str> = std::thread::scope(|s| {
        let f = &f;
        let runs: Vec<_> = RUNTIMES
            .iter()
            .map(|&runtime| {
                let thread = std::thread::Builder::new().name(format!("runtime {runtime}"));
                (runtime, thread.spawn_scoped(s, move || f(runtime)).expect("spawn a test thread"))
            })
            .collect();
        runs.into_iter().filter_map(|(runtime, run)| run.join().is_err().then_some(runtime)).collect()
    });
    assert!(failed.is_empty(), "failed under {failed:?} (their panics are printed above)");
}

/// Set (to anything) when the binaries and examples the tests run were built beforehand, in
/// the tests' own target directory and profile, by one
/// `cargo build --workspace --bins --examples` (as `.ci/run` does): the tests then run them
/// instead of building each. One build resolves features once for all of them, where a
/// `cargo build -p …` per program resolves them per package and builds diag, its frontends
/// and their dependencies again for each feature set.
pub const PREBUILT: &str = "DIAG_PREBUILT";

/// The `diagd` binary under test, built by `cargo build -p diagd` into this test's target
/// directory (once per test process, so the binary is never stale) unless [`PREBUILT`].
///
/// # Panics
/// When the build fails, with cargo's output.
pub fn diagd_path() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| cargo_build_for_profiles(&["-p", "diagd", "--bin", "diagd"], "diagd")).clone()
}

/// Runs `cargo build <args>` into this test's target directory and profile and returns
/// `<target>/<profile>/<artifact>` (e.g. `examples/profile_workload` or `example-axum`); with
/// [`PREBUILT`] set, only checks that the artifact is there. The symbolizer's crates are
/// optimized in every dev build (the workspace's `Cargo.toml`), so the profiles these programs
/// write are read quickly.
///
/// # Panics
/// When the build fails, with cargo's output, or a prebuilt artifact is missing.
pub fn cargo_build_for_profiles(args: &[&str], artifact: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target directory").to_path_buf();
    let path = profile_dir.join(artifact);
    if std::env::var_os(PREBUILT).is_some() {
        assert!(path.is_file(), "{PREBUILT} is set but {} was not built", path.display());
        return path;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.arg("build").arg("--quiet").args(args).env("CARGO_TARGET_DIR", profile_dir.parent().expect("target dir"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let out = build.output().expect("run cargo build");
    assert!(out.status.success(), "cargo build {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(path.is_file(), "{} not found after cargo build {args:?}", path.display());
    path
}

/// A running `diagd start`.
#[derive(Debug)]
pub struct Diagd {
    child: Child,
    /// The address its diagnostic endpoints are bound to.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Diagd {
    /// Starts `diagd start --runtime <runtime> --diag-addr 127.0.0.1:0`, with `config` (YAML)
    /// as `-c` when given, and waits for the bound address it prints.
    ///
    /// # Panics
    /// When it does not start within 20 s; the message holds its stderr.
    pub fn start(runtime: &str, config: Option<&str>) -> Self {
        Self::start_with(runtime, config, &["--diag-addr", "127.0.0.1:0"])
    }

    /// Like [`start`](Self::start) with explicit extra arguments instead of `--diag-addr`.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_with(runtime: &str, config: Option<&str>, args: &[&str]) -> Self {
        let dir = TempDir::new("diagd");
        let mut cmd = Command::new(diagd_path());
        cmd.args(["start", "--runtime", runtime]).args(args);
        // Tests stop diagd often: no drain delay unless a test asks for one.
        if !args.iter().any(|a| a.starts_with("--shutdown-delay"))
            && !config.is_some_and(|c| c.contains("shutdown_delay"))
        {
            cmd.args(["--shutdown-delay", "0s"]);
        }
        if let Some(yaml) = config {
            let path = dir.path().join("diagd.yaml");
            std::fs::write(&path, yaml).expect("write config");
            cmd.arg("-c").arg(path);
        }
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn diagd");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("diagd: serving diagnostics on http://") {
                    let _ = tx.send(addr.parse::<SocketAddr>().expect("printed address"));
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Self { child, addr, stderr, _dir: dir },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!("diagd did not start (exit {status:?}); stderr:\n{}", stderr.lock().unwrap());
            }
        }
    }

    /// `GET path`, closing the connection after the response.
    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[])
    }

    /// What diagd wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `TERM`) and waits up to 20 s for the exit.
    ///
    /// # Panics
    /// When it does not exit in time.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} failed");
        wait_timeout(&mut self.child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("diagd did not exit after SIG{signal}; stderr:\n{}", self.stderr()))
    }
}

impl Drop for Diagd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` up to `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `diagd` with `args` to completion (at most 60 s) and returns its exit status and
/// stderr; see [`run_diagd_output`].
///
/// # Panics
/// When it does not exit in time.
pub fn run_diagd(args: &[&str]) -> (ExitStatus, String) {
    let (status, _, stderr) = run_diagd_output(args);
    (status, stderr)
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked (not decompressed).
    pub body: Vec<u8>,
    /// The sizes of the body's chunks, when it came chunked.
    pub chunks: Vec<usize>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    ///
    /// # Panics
    /// When it is not UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    /// The body, gunzipped.
    ///
    /// # Panics
    /// When it is not gzip.
    pub fn gunzip(&self) -> String {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&self.body[..]).read_to_string(&mut out).expect("gzip body");
        out
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
///
/// # Panics
/// On a connection error or a response that does not parse.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let bytes = exchange(addr, raw.as_bytes());
    parse_response(&bytes, method == "HEAD").unwrap_or_else(|| panic!("unparsable response: {bytes:?}"))
}

/// Sends raw bytes and reads until the server closes (at most 30 s).
///
/// # Panics
/// On a connection error.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(raw).expect("send");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read until close");
    out
}

/// Parses one HTTP/1.1 response; `head_only` for answers to `HEAD`.
pub fn parse_response(bytes: &[u8], head_only: bool) -> Option<Response> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or((l, ""));
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    let mut chunks = Vec::new();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked && !head_only {
        let (mut out, mut rest) = (Vec::new(), &body[..]);
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?, 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            chunks.push(size);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(Response { status, headers, body, chunks })
}

/// A port free on 127.0.0.1 at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `timeout`.
///
/// # Panics
/// On timeout, with `what` and the last value seen by `describe`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("timed out waiting for {what}; last: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The path of an external tool, or a panic naming the package that provides it.
///
/// # Panics
/// When the tool is not installed.
pub fn require_tool(name: &str, install: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("`{name}` is required by this test and not installed: {install}"))
}

/// Python 3 with `prometheus_client` importable.
///
/// # Panics
/// When either is missing, with the install command.
pub fn require_python_prometheus_client() -> PathBuf {
    let python = require_tool("python3", "apt-get install python3 python3-pip");
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client.parser, prometheus_client.openmetrics.parser"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "Python's prometheus_client is required and not importable: pip install prometheus_client");
    python
}

/// The directory of this package (for its `python/` scripts).
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system temp dir.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn new(prefix: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends one request with `Connection: close` over the unix socket at `socket` and reads the
/// whole response (at most 60 s).
///
/// # Panics
/// On a connection error or a response that does not parse.
pub fn request_unix(socket: &Path, method: &str, path: &str, body: &[u8]) -> Response {
    use std::os::unix::net::UnixStream;
    let mut stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect to {}: {e}", socket.display()));
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    // The server may answer (413) before reading all of a large body.
    let _ = stream.write_all(body);
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read until close");
    parse_response(&out, method == "HEAD").unwrap_or_else(|| panic!("unparsable response: {out:?}"))
}

/// Runs `diagd` with `args` to completion (at most 60 s) and returns its exit status, stdout
/// and stderr. Both pipes are drained while it runs, so a chatty diagd never blocks on a full
/// pipe; one that does not exit in time is killed.
///
/// # Panics
/// When it does not exit in time.
pub fn run_diagd_output(args: &[&str]) -> (ExitStatus, Vec<u8>, String) {
    let mut child = Command::new(diagd_path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn diagd");
    fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    }
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_timeout(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    (status.unwrap_or_else(|| panic!("diagd {args:?} did not exit within 60 s; stderr:\n{stderr}")), stdout, stderr)
}

/// `go tool pprof <args> <file>` (profiles are read as they are: `-symbolize=none`); its
/// stdout, or a panic with its stderr when it cannot read the file.
///
/// # Panics
/// When `go` is missing or pprof fails.
pub fn go_tool_pprof(args: &[&str], file: &Path) -> String {
    let go = require_tool("go", "apt-get install golang-go");
    let out = Command::new(go)
        .args(["tool", "pprof", "-symbolize=none"])
        .args(args)
        .arg(file)
        .output()
        .expect("run go tool pprof");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof {args:?} {} failed:\n{}\n{stdout}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A `diagd start` with a data dir and config file of its own, for the debug service tests.
#[derive(Debug)]
pub struct DebugAgent {
    /// The running agent (its diagnostic address is `diagd.addr`).
    pub diagd: Diagd,
    /// The config file (`data_dir` plus the extra YAML given to [`start`](Self::start)).
    pub config: PathBuf,
    /// The data dir, `<temp>/data` (diagd creates it).
    pub data_dir: PathBuf,
    /// `<data_dir>/debug.sock`.
    pub socket: PathBuf,
    /// The temporary directory holding the config and data dir.
    pub dir: TempDir,
}

impl DebugAgent {
    /// Starts `diagd start --runtime <runtime> --diag-addr 127.0.0.1:0 -c <config> <args>`,
    /// the config being `data_dir: <temp>/data` followed by `yaml`.
    ///
    /// # Panics
    /// As [`Diagd::start`].
    pub fn start(runtime: &str, yaml: &str, args: &[&str]) -> Self {
        let dir = TempDir::new("diagd-debug");
        let data_dir = dir.path().join("data");
        let config = dir.path().join("diagd.yaml");
        std::fs::write(&config, format!("data_dir: {}\n{yaml}", data_dir.display())).expect("write config");
        let config_arg = config.to_str().expect("UTF-8 temp path");
        let mut all = vec!["--diag-addr", "127.0.0.1:0", "-c", config_arg];
        all.extend_from_slice(args);
        let diagd = Diagd::start_with(runtime, None, &all);
        let socket = data_dir.join("debug.sock");
        Self { diagd, config, data_dir, socket, dir }
    }

    /// A request over the debug socket.
    pub fn socket_request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        request_unix(&self.socket, method, path, body)
    }

    /// Runs `diagd debug -c <config> <args>`: exit status, stdout, stderr.
    pub fn debug(&self, args: &[&str]) -> (ExitStatus, Vec<u8>, String) {
        let mut all = vec!["debug", "-c", self.config.to_str().expect("UTF-8 temp path")];
        all.extend_from_slice(args);
        run_diagd_output(&all)
    }
}

/// Sends `request` on the keep-alive connection `c` and reads one response: the head
/// (lower-cased) and a `Content-Length` body; at most 5 s for the whole response.
///
/// # Panics
/// When the connection fails or closes before a whole response.
pub fn ask(c: &mut TcpStream, request: &str) -> (String, String) {
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("set a read timeout");
    c.write_all(request.as_bytes()).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = c.read(&mut buf).expect("read a response within 5 s");
        assert!(n > 0, "closed before a whole response: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        if let Some(at) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if out.len() >= at + 4 + len {
                return (head, String::from_utf8_lossy(&out[at + 4..at + 4 + len]).into_owned());
            }
        }
    }
}

/// Runs `program args` with `input` on stdin; returns (exit code, stdout, stderr).
///
/// # Panics
/// When the program cannot be run.
pub fn pipe(program: &Path, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// Parses `exposition` with Python prometheus_client's reference parser for `format`
/// (`prometheus` or `openmetrics`): family name → `{"type", "samples": [[name, labels, value]]}`.
///
/// # Panics
/// When the parser rejects it (with its error and the text), or Python or the package is
/// missing.
pub fn python_parse(format: &str, exposition: &str) -> serde_json::Value {
    let python = require_python_prometheus_client();
    let script = package_dir().join("python/parse_metrics.py");
    let (code, out, err) = pipe(&python, &[script.to_str().expect("UTF-8 path"), format], exposition);
    assert_eq!(code, 0, "prometheus_client's {format} parser rejects the exposition:\n{err}\n{exposition}");
    serde_json::from_str(&out).expect("the parser's JSON")
}

/// Checks `exposition` with `promtool check metrics`: a 0.0.4 exposition must pass clean. An
/// OpenMetrics one (ending in `# EOF`) must parse, and the only lint allowed is the one the
/// format difference implies: an OpenMetrics counter family is named without `_total`, so
/// promtool's 0.0.4 linter finds its `_total` samples without HELP, and the `_created`
/// samples of counters and histograms likewise.
///
/// # Panics
/// When promtool rejects it or is not installed.
pub fn promtool_check(exposition: &str) {
    let promtool = require_tool("promtool", "apt-get install prometheus (Debian package, provides promtool)");
    // promtool lints with the 0.0.4 parser, which reads an exemplar (` # {…} v ts`, OpenMetrics
    // only) as a bad timestamp: it gets the samples without them. The exemplars themselves are
    // checked by prometheus_client's OpenMetrics parser and by Prometheus (prometheus_exemplars).
    let without_exemplars: String = if exposition.ends_with("# EOF\n") {
        exposition
            .lines()
            .map(|l| if l.starts_with('#') { l } else { l.split_once(" # {").map_or(l, |(sample, _)| sample) })
            .flat_map(|l| [l, "\n"])
            .collect()
    } else {
        exposition.to_owned()
    };
    let (code, out, err) = pipe(&promtool, &["check", "metrics"], &without_exemplars);
    if !exposition.ends_with("# EOF\n") {
        assert_eq!(code, 0, "promtool rejects the 0.0.4 exposition:\n{out}{err}\n{exposition}");
        return;
    }
    assert_ne!(code, 1, "promtool cannot parse the OpenMetrics exposition:\n{out}{err}\n{exposition}");
    let typed = |kind: &str| -> Vec<String> {
        let suffix = format!(" {kind}");
        exposition
            .lines()
            .filter_map(|l| Some(l.strip_prefix("# TYPE ")?.strip_suffix(suffix.as_str())?.to_owned()))
            .collect()
    };
    let (counters, histograms) = (typed("counter"), typed("histogram"));
    for problem in format!("{out}{err}").lines().filter(|l| !l.trim().is_empty()) {
        let explained = counters.iter().any(|c| problem == format!("{c}_total no help text"))
            || counters.iter().chain(&histograms).any(|f| problem == format!("{f}_created no help text"));
        assert!(explained, "unexpected promtool finding on OpenMetrics: {problem:?}\n{exposition}");
    }
}
