//! Teleport's own words work: `log.severity` in any case (its files write `DEBUG`), `-d` for
//! `--debug`, `/debug/pprof/profile` taking 30 s when `seconds` is absent (as Go's), and `HEAD`
//! answered on every debug route with the head `GET` gets and no body.

use std::time::Duration;

use diag_tests::{DebugAgent, Diagd, RUNTIMES, Response, request, request_unix, run_diagd};

#[test]
fn log_severity_in_any_case() {
    for (severity, level) in [
        ("DEBUG", "DEBUG"),
        ("Info", "INFO"),
        ("WARN", "WARN"),
        ("WARNING", "WARN"),
        ("warning", "WARN"),
        ("ERROR", "ERROR"),
    ] {
        let agent = DebugAgent::start("tokio", &format!("log:\n  severity: {severity}\n"), &[]);
        let level_now = agent.socket_request("GET", "/log-level", b"");
        assert_eq!((level_now.status, level_now.text().as_str()), (200, level), "log.severity: {severity}");
    }
    let dir = diag_tests::TempDir::new("diagd-severity");
    let path = dir.path().join("loud.yaml");
    std::fs::write(&path, "log:\n  severity: LOUD\n").unwrap();
    let (status, err) = run_diagd(&["start", "-c", path.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("log.severity: unknown variant `LOUD`") && err.contains("`warning`"), "{err}");
}

#[test]
fn dash_d_is_debug() {
    for runtime in RUNTIMES {
        let with = Diagd::start_with(runtime, None, &["--diag-addr", "127.0.0.1:0", "-d"]);
        let index = with.get("/debug/pprof/");
        assert_eq!(index.status, 200, "{runtime}: -d serves the profiles");
        assert!(index.text().contains("/debug/pprof/heap"), "{}", index.text());
        let without = Diagd::start(runtime, None);
        assert_eq!(without.get("/debug/pprof/").status, 404, "{runtime}");
    }
}

/// `HEAD path` and `GET path` agree on the head; the `HEAD` answer has no body.
fn same_head(runtime: &str, path: &str, head: &Response, get: &Response) {
    assert_eq!(head.status, get.status, "{runtime} HEAD {path}");
    assert!(head.body.is_empty(), "{runtime} HEAD {path}: {:?}", head.body);
    for name in ["content-type", "content-length", "content-disposition", "cache-control", "x-content-type-options"] {
        assert_eq!(head.header(name), get.header(name), "{runtime} HEAD {path}: {name}");
    }
}

#[test]
fn head_is_answered_on_every_debug_route_under_every_runtime() {
    for runtime in RUNTIMES {
        let agent = DebugAgent::start(runtime, "", &["--debug"]);
        let addr = agent.diagd.addr;
        // The diagnostic address: heads that need no profile compare with GET's.
        for path in ["/debug/pprof/", "/debug/pprof", "/debug/pprof/nope", "/debug/pprof/profile?seconds=x"] {
            same_head(runtime, path, &request(addr, "HEAD", path, &[]), &request(addr, "GET", path, &[]));
        }
        // Profiles are not collected for HEAD: the same type and file name, no length.
        for (path, name) in [("/debug/pprof/heap", "heap"), ("/debug/pprof/profile", "profile")] {
            let head = request(addr, "HEAD", path, &[]);
            assert_eq!(head.status, 200, "{runtime} HEAD {path}");
            assert!(head.body.is_empty());
            assert_eq!(head.header("content-type"), Some("application/octet-stream"), "{runtime} HEAD {path}");
            let disposition = format!("attachment; filename=\"{name}.pprof\"");
            assert_eq!(head.header("content-disposition"), Some(disposition.as_str()), "{runtime} HEAD {path}");
            assert_eq!(head.header("content-length"), None, "{runtime} HEAD {path}");
        }
        let get_heap = request(addr, "GET", "/debug/pprof/heap", &[]);
        assert_eq!(get_heap.header("content-disposition"), Some("attachment; filename=\"heap.pprof\""));
        let post = request(addr, "POST", "/debug/pprof/heap", &[]);
        assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")), "{runtime}");

        // The debug socket: the log level and the profiles' index too.
        for path in ["/log-level", "/debug/pprof/", "/debug/pprof/nope", "/healthz", "/readyz", "/metrics"] {
            let head = request_unix(&agent.socket, "HEAD", path, b"");
            let get = request_unix(&agent.socket, "GET", path, b"");
            if path == "/metrics" {
                // Streamed: no length either way.
                assert_eq!((head.status, head.header("content-type")), (get.status, get.header("content-type")));
                assert!(head.body.is_empty());
            } else {
                same_head(runtime, path, &head, &get);
            }
        }
        assert_eq!(request_unix(&agent.socket, "HEAD", "/log-level", b"").header("content-length"), Some("4"), "INFO");
    }
}

/// A CPU profile asked for without `seconds` lasts 30 s: after 11 s (longer than the 10 s the
/// debug CLI defaults to) it is still being collected, so a second one is refused as busy.
#[test]
fn the_cpu_profile_defaults_to_30_seconds_on_the_diagnostic_address() {
    let diagd = Diagd::start_with("tokio", None, &["--diag-addr", "127.0.0.1:0", "--debug"]);
    let addr = diagd.addr;
    let first = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        use std::io::{Read, Write};
        stream.write_all(b"GET /debug/pprof/profile HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 64];
        // Nothing arrives before the profile is done.
        stream.read(&mut buf)
    });
    std::thread::sleep(Duration::from_secs(11));
    let second = diagd.get("/debug/pprof/profile?seconds=1");
    assert_eq!(second.status, 409, "the first profile still runs after 11 s: {}", second.text());
    assert!(!first.is_finished(), "no answer yet to the first");
}
