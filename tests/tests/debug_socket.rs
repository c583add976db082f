//! The debug socket `<data_dir>/debug.sock`: permissions, stale and live sockets, the routes,
//! the live log level, and the health-only socket of `debug_service.enabled: false`.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::time::Duration;

use diag_tests::{DebugAgent, TempDir, run_diagd, wait_for};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn data_dir_0700_socket_0600_stale_socket_replaced_live_one_kept() {
    let agent = DebugAgent::start("tokio", "", &[]);
    assert_eq!(mode(&agent.data_dir), 0o700, "data dir created 0700");
    assert!(std::fs::symlink_metadata(&agent.socket).unwrap().file_type().is_socket());
    assert_eq!(mode(&agent.socket), 0o600, "socket 0600");
    assert_eq!(agent.socket_request("GET", "/healthz", b"").text(), "{\"status\":\"ok\"}");

    // A second agent on the same data dir refuses to take a live socket, naming data_dir.
    let config = agent.config.to_str().unwrap();
    let (status, err) = run_diagd(&["start", "-c", config]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("data_dir") && err.contains("served by another process"), "{err}");
    assert_eq!(agent.socket_request("GET", "/healthz", b"").status, 200, "first agent's socket untouched");

    // Killed hard, the agent leaves a stale socket file; the next start replaces it.
    let pid = agent.diagd.pid().to_string();
    std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    wait_for("the killed agent to stop answering", Duration::from_secs(10), || {
        match std::os::unix::net::UnixStream::connect(&agent.socket) {
            Ok(_) => Err("still answering".into()),
            Err(_) => Ok(()),
        }
    });
    assert!(agent.socket.exists(), "stale socket file left behind");
    let next = diag_tests::Diagd::start_with("tokio", None, &["--diag-addr", "127.0.0.1:0", "-c", config]);
    // Served at once; ready (200) once the new agent's first heartbeat has landed.
    wait_for("the replaced socket to answer ready", Duration::from_secs(10), || {
        match agent.socket_request("GET", "/readyz", b"").status {
            200 => Ok(()),
            status => Err(format!("/readyz {status}")),
        }
    });
    wait_for("the replacement logged", Duration::from_secs(5), || {
        let err = next.stderr();
        if err.contains("replaced a stale debug socket") { Ok(()) } else { Err(err) }
    });
    assert_eq!(mode(&agent.socket), 0o600);

    // A clean exit removes the socket.
    let mut next = next;
    assert!(next.signal_and_wait("TERM").success());
    assert!(!agent.socket.exists(), "socket removed at exit");
}

#[test]
fn a_data_dir_that_cannot_hold_the_socket_is_an_error_naming_data_dir() {
    let dir = TempDir::new("diagd-debug-bad");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let config = dir.path().join("diagd.yaml");
    std::fs::write(&config, format!("data_dir: {}\n", file.display())).unwrap();
    let (status, err) = run_diagd(&["start", "-c", config.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("data_dir") && err.contains("cannot create"), "{err}");

    // A regular file where the socket goes is left alone.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("debug.sock"), "mine").unwrap();
    std::fs::write(&config, format!("data_dir: {}\n", data.display())).unwrap();
    let (status, err) = run_diagd(&["start", "-c", config.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("data_dir") && err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(data.join("debug.sock")).unwrap(), "mine");
}

#[test]
fn routes_and_the_live_log_level() {
    let agent = DebugAgent::start("smol", "", &[]);
    let get = |path: &str| agent.socket_request("GET", path, b"");
    assert_eq!(get("/healthz").status, 200);
    wait_for("ready", Duration::from_secs(10), || match get("/readyz") {
        r if r.status == 200 => Ok(()),
        r => Err(r.text()),
    });
    let metrics = get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.text().contains("process_state 0\n"), "{}", metrics.text());
    let index = get("/debug/pprof/");
    assert_eq!(index.status, 200);
    assert!(index.text().contains("/debug/pprof/profile") && index.text().contains("/debug/pprof/heap"));

    // The level, then a change seen at once in what diagd logs: each debug route logs at
    // debug level, so nothing before the change and a line after it.
    assert_eq!(get("/log-level").text(), "INFO");
    assert!(!agent.diagd.stderr().contains("debug route"), "{}", agent.diagd.stderr());
    let put = |body: &[u8]| agent.socket_request("PUT", "/log-level", body);
    let changed = put(b"DEBUG");
    assert_eq!((changed.status, changed.text().as_str()), (200, "Changed log level from \"INFO\" to \"DEBUG\"."));
    assert_eq!(get("/log-level").text(), "DEBUG");
    wait_for("a debug line", Duration::from_secs(5), || {
        let err = agent.diagd.stderr();
        if err.contains("DEBUG") && err.contains("debug route") { Ok(()) } else { Err(err) }
    });
    let again = put(b"debug\n");
    assert_eq!((again.status, again.text().as_str()), (200, "Log level already set to \"DEBUG\"."));

    // Bad input: clear errors, nothing changed, the service stays up.
    let invalid = put(b"LOUD");
    assert_eq!((invalid.status, invalid.text().as_str()), (422, "Invalid log level."));
    let big = put(&[b'A'; 2000]);
    assert_eq!(big.status, 413, "{}", big.text());
    assert!(big.text().contains("at most 1024 bytes"), "{}", big.text());
    let post = agent.socket_request("POST", "/log-level", b"INFO");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD, PUT"));
    assert_eq!(get("/log-level").text(), "DEBUG");
    let back = put(b"warn");
    assert_eq!(back.text(), "Changed log level from \"DEBUG\" to \"WARN\".");
    let unknown = get("/debug/pprof/nope");
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("supported profiles: goroutine, heap, profile, allocs"), "{}", unknown.text());
}

#[test]
fn disabled_debug_service_answers_health_routes_only() {
    let agent = DebugAgent::start("async-std", "debug_service: {enabled: false}\n", &[]);
    assert_eq!(mode(&agent.socket), 0o600);
    let get = |path: &str| agent.socket_request("GET", path, b"");
    assert_eq!(get("/healthz").status, 200);
    wait_for("ready", Duration::from_secs(10), || match get("/readyz") {
        r if r.status == 200 => Ok(()),
        r => Err(r.text()),
    });
    for path in ["/metrics", "/log-level", "/debug/pprof/", "/debug/pprof/heap"] {
        assert_eq!(get(path).status, 404, "{path}");
    }
    assert_eq!(agent.socket_request("PUT", "/log-level", b"DEBUG").status, 404);
    // The diagnostic address still serves metrics.
    assert_eq!(agent.diagd.get("/metrics").status, 200);
}
