//! SIGTERM and SIGINT: for `shutdown_delay` the diagnostic address keeps answering, to a
//! keep-alive client and to new ones, `/readyz` 503 "process is shutting down" and `/healthz`
//! 200; then diagd stops accepting, lets the request in flight finish, and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diag_tests::{RUNTIMES, TempDir, diagd_path, parse_response, request, wait_for, wait_timeout};

/// `diagd start --debug` under `runtime` with `args`, and the address it serves.
fn start(runtime: &str, dir: &TempDir, args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(diagd_path())
        .args(["start", "--runtime", runtime, "--diag-addr", "127.0.0.1:0", "--debug"])
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn diagd");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read diagd's stdout");
    let addr = line
        .trim()
        .strip_prefix("diagd: serving diagnostics on http://")
        .unwrap_or_else(|| panic!("{runtime}: unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (child, addr)
}

/// Sends `request` on the keep-alive connection `c` and reads one response with a
/// `Content-Length` body: status and body.
fn ask(c: &mut TcpStream, path: &str) -> (u16, String) {
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0, "closed before a whole response: {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        if let Some(at) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let response = parse_response(&out[..at + 4], true).expect("a head");
            let len: usize = response.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            if out.len() >= at + 4 + len {
                return (response.status, String::from_utf8_lossy(&out[at + 4..at + 4 + len]).into_owned());
            }
        }
    }
}

/// Under `runtime`: a keep-alive client and a new one during the 3 s delay, a CPU profile in
/// flight when the address stops accepting, then exit 0.
fn drains(runtime: &str, signal: &str, config: &str, args: &[&str]) {
    let dir = TempDir::new("diagd-drain");
    let path = dir.path().join("diagd.yaml");
    std::fs::write(&path, format!("data_dir: {}\n{config}", dir.path().join("data").display())).unwrap();
    let mut all = vec!["-c", path.to_str().expect("UTF-8 temp path")];
    all.extend_from_slice(args);
    let (mut child, addr) = start(runtime, &dir, &all);
    let pid = child.id();
    wait_for(&format!("{runtime}: ready"), Duration::from_secs(10), || match request(addr, "GET", "/readyz", &[]) {
        r if r.status == 200 => Ok(()),
        r => Err(r.text()),
    });
    let mut keep_alive = TcpStream::connect(addr).expect("connect");
    keep_alive.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(ask(&mut keep_alive, "/readyz").0, 200, "{runtime}");

    let sent = Instant::now();
    let killed = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -{signal}");
    std::thread::sleep(Duration::from_millis(300));

    let shutting_down = format!(r#"{{"status":"process is shutting down","pid":{pid}}}"#);
    assert_eq!(ask(&mut keep_alive, "/readyz"), (503, shutting_down.clone()), "{runtime}: keep-alive client");
    assert_eq!(ask(&mut keep_alive, "/healthz"), (200, r#"{"status":"ok"}"#.to_owned()), "{runtime}");
    let fresh = request(addr, "GET", "/readyz", &[]);
    assert_eq!((fresh.status, fresh.text()), (503, shutting_down), "{runtime}: new client");
    assert_eq!(request(addr, "GET", "/healthz", &[]).status, 200, "{runtime}: new client");
    assert!(child.try_wait().expect("try_wait").is_none(), "{runtime}: still running during the delay");

    // A request still in flight when the delay ends: a 2 s CPU profile begun 1.5 s into it.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(sent.elapsed()));
    let profile = std::thread::spawn(move || request(addr, "GET", "/debug/pprof/profile?seconds=2", &[]));

    let status = wait_timeout(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("{runtime}: diagd did not exit after SIG{signal}");
    });
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    assert_eq!(status.code(), Some(0), "{runtime}: exit status; stderr:\n{stderr}");
    assert!(sent.elapsed() >= Duration::from_secs(3), "{runtime}: exited before the 3 s delay: {:?}", sent.elapsed());
    let profile = profile.join().expect("the profile request");
    assert_eq!(
        profile.status,
        200,
        "{runtime}: the request in flight finished: {}",
        String::from_utf8_lossy(&profile.body)
    );
    assert!(!profile.body.is_empty(), "{runtime}: a whole profile");
    let mut buf = [0u8; 16];
    assert!(matches!(keep_alive.read(&mut buf), Ok(0) | Err(_)), "{runtime}: the keep-alive connection is closed");
    assert!(TcpStream::connect(addr).is_err(), "{runtime}: nothing listens any more");
    assert!(stderr.contains("shutting down") && stderr.contains("draining"), "{runtime}: {stderr}");
}

// The runtimes one after the other: a CPU profile (and its symbolization) per process at once
// is enough on two cores.

#[test]
fn sigterm_keeps_answering_for_the_configured_delay_then_drains_and_exits_0() {
    for runtime in RUNTIMES {
        drains(runtime, "TERM", "shutdown_delay: 3s\n", &[]);
    }
}

/// Signals and flags are handled the same way under every runtime: one is enough here.
#[test]
fn sigint_with_the_shutdown_delay_flag_overriding_the_config() {
    drains("smol", "INT", "shutdown_delay: 1m\n", &["--shutdown-delay", "3s"]);
}
