//! The `diagd start` command line: clear errors for bad input, and a clean exit on signals.

use std::net::TcpListener;

use diag_tests::{Diagd, RUNTIMES, TempDir, each_runtime, run_diagd};

#[test]
fn bad_address_port_in_use_missing_file_bad_config() {
    let (status, err) = run_diagd(&["start", "--diag-addr", "not-an-address"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--diag-addr") && err.contains("not-an-address") && err.contains("IP:PORT"), "{err}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, err) = run_diagd(&["start", "--diag-addr", &addr]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot serve diagnostics on {addr}")) && err.contains("in use"), "{err}");

    let (status, err) = run_diagd(&["start", "-c", "/nonexistent/diagd.yaml"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("cannot read config file /nonexistent/diagd.yaml") && err.contains("No such file"), "{err}");

    let dir = TempDir::new("diagd-cli");
    for (yaml, key) in [
        ("diag_addr: 127.0.0.1:0\nlogg: {}\n", "logg: unknown field `logg`"),
        ("components:\n  - name: db\n    tcp: 127.0.0.1:1\n    period: 1s\n", "components[0].period: unknown field"),
        (
            "components:\n  - name: db\n    tcp: 127.0.0.1:1\n    heartbeat_period: often\n",
            "components[0].heartbeat_period",
        ),
        ("log:\n  severity: chatty\n", "log.severity: unknown variant `chatty`"),
        ("components: [\n", "did not find expected node content"),
    ] {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, yaml).unwrap();
        let (status, err) = run_diagd(&["start", "-c", path.to_str().unwrap()]);
        assert_eq!(status.code(), Some(1), "{yaml}: {err}");
        assert!(err.contains("invalid config file") && err.contains(key), "{yaml}: want {key:?} in {err}");
    }

    let (status, err) = run_diagd(&["start", "--runtime", "fibers"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("fibers") && err.contains("tokio"), "{err}");
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    each_runtime(|runtime| {
        for signal in ["TERM", "INT"] {
            let mut diagd = Diagd::start(runtime, None);
            assert_eq!(diagd.get("/healthz").status, 200);
            let status = diagd.signal_and_wait(signal);
            assert_eq!(status.code(), Some(0), "{runtime} SIG{signal}: {}", diagd.stderr());
            assert!(diagd.stderr().contains("shutting down"), "{}", diagd.stderr());
        }
    });
}

#[test]
fn config_file_diag_addr_and_flag_override() {
    for runtime in RUNTIMES {
        let dir = TempDir::new("diagd-cfg");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "diag_addr: 127.0.0.1:0\nlog: {severity: warn}\n").unwrap();
        let diagd = Diagd::start_with(runtime, None, &["-c", path.to_str().unwrap()]);
        assert_eq!(diagd.get("/healthz").status, 200, "{runtime}: diag_addr from the file");
        assert!(!diagd.stderr().contains(" INFO "), "log.severity warn hides INFO: {}", diagd.stderr());
    }
}
