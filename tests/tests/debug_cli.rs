//! `diagd debug …` against a running diagd: every command, its words and exit codes, and the
//! profile tarball read by `go tool pprof` (the done-when).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diag_tests::{DebugAgent, RUNTIMES, TempDir, go_tool_pprof, request_unix, run_diagd_output};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn log_level_readyz_and_metrics_commands_under_every_runtime() {
    for runtime in RUNTIMES {
        let agent = DebugAgent::start(runtime, "", &[]);
        let (status, out, err) = agent.debug(&["get-log-level"]);
        assert!(status.success(), "{runtime}: {err}");
        assert_eq!(text(&out), "Current log level \"INFO\"\n", "{runtime}");

        let (status, out, err) = agent.debug(&["set-log-level", "DEBUG"]);
        assert!(status.success(), "{runtime}: {err}");
        assert_eq!(text(&out), "Changed log level from \"INFO\" to \"DEBUG\".\n", "{runtime}");
        let (status, out, _) = agent.debug(&["set-log-level", "debug"]);
        assert!(status.success());
        assert_eq!(text(&out), "Log level already set to \"DEBUG\".\n", "{runtime}");
        let (_, out, _) = agent.debug(&["get-log-level"]);
        assert_eq!(text(&out), "Current log level \"DEBUG\"\n", "{runtime}");

        let (status, out, err) = agent.debug(&["set-log-level", "LOUD"]);
        assert_eq!(status.code(), Some(1), "{runtime}: {err}");
        assert!(out.is_empty());
        assert!(
            err.contains("Invalid log level.") && err.contains("TRACE, DEBUG, INFO, WARN, ERROR"),
            "{runtime}: {err}"
        );

        let pid = agent.diagd.pid();
        let readyz = diag_tests::wait_for("readyz to succeed", Duration::from_secs(10), || {
            let (status, out, err) = agent.debug(&["readyz"]);
            if status.success() { Ok(text(&out)) } else { Err(format!("{status}: {}{err}", text(&out))) }
        });
        assert_eq!(readyz, format!("Ready (PID {pid}, status: ok)\n"), "{runtime}");

        let (status, out, err) = agent.debug(&["metrics"]);
        assert!(status.success(), "{runtime}: {err}");
        let metrics = text(&out);
        assert!(metrics.contains("# TYPE process_state gauge\nprocess_state 0\n"), "{runtime}: {metrics}");
        assert!(metrics.contains("diag_build_info{"), "{runtime}");
    }
}

#[test]
fn readyz_of_an_agent_not_ready_exits_non_zero() {
    // A component whose first check is an hour away stays `starting`.
    let agent =
        DebugAgent::start("tokio", "components:\n  - {name: db, tcp: '127.0.0.1:1', heartbeat_period: 1h}\n", &[]);
    let (status, out, err) = agent.debug(&["readyz"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(
        text(&out),
        format!(
            "Not ready (PID {}, status: process is starting and hasn't joined the cluster yet)\n",
            agent.diagd.pid()
        )
    );
}

/// Unpacks a `.tar.gz` into `dir` with the system `tar` and returns `tar tvzf`'s listing.
fn untar(tarball: &std::path::Path, dir: &std::path::Path) -> String {
    let list = Command::new("tar").arg("tvzf").arg(tarball).output().expect("run tar");
    assert!(list.status.success(), "not a gzip tarball: {}", text(&list.stderr));
    let unpack = Command::new("tar").arg("xzf").arg(tarball).arg("-C").arg(dir).status().expect("run tar");
    assert!(unpack.success());
    text(&list.stdout)
}

#[test]
fn profile_tarball_holds_cpu_and_heap_profiles_go_tool_pprof_reads() {
    let agent = DebugAgent::start("tokio", "", &[]);
    // Work for the CPU profile to sample: requests served by diagd's debug socket, from two
    // threads until the profile is written, so that diagd stays busy for the whole window even
    // when other tests load the machine.
    let done = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (socket, done) = (agent.socket.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    assert_eq!(request_unix(&socket, "GET", "/metrics", b"").status, 200);
                }
            })
        })
        .collect();
    // `diagd debug profile -s 2 > p.tar.gz`
    let started = Instant::now();
    let (status, out, err) = agent.debug(&["profile", "-s", "2"]);
    done.store(true, Ordering::Relaxed);
    assert!(status.success(), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(2), "the CPU profile lasts the seconds asked");
    for thread in load {
        thread.join().expect("a load thread (its requests all answered 200)");
    }
    let dir = TempDir::new("diagd-profile");
    let tarball = dir.path().join("p.tar.gz");
    std::fs::write(&tarball, &out).unwrap();
    let listing = untar(&tarball, dir.path());
    let entries: Vec<&str> = listing.lines().collect();
    // Teleport's default set, in its order.
    assert_eq!(entries.len(), 3, "{listing}");
    assert!(entries[0].starts_with("-rw-------") && entries[0].ends_with(" goroutine.pprof"), "{listing}");
    assert!(entries[1].starts_with("-rw-------") && entries[1].ends_with(" heap.pprof"), "{listing}");
    assert!(entries[2].starts_with("-rw-------") && entries[2].ends_with(" profile.pprof"), "{listing}");

    let cpu = go_tool_pprof(&["-top"], &dir.path().join("profile.pprof"));
    assert!(cpu.contains("Type: cpu"), "{cpu}");
    // diagd is a thin binary over the diag library: its functions are `diagd::` and `diag::`.
    assert!(cpu.contains("diagd::") || cpu.contains("diag::"), "the CPU profile names diagd's functions:\n{cpu}");
    assert!(!cpu.contains("libunwind::trace"), "samples are charged to what they interrupted, not the sampler:\n{cpu}");
    let heap = go_tool_pprof(&["-top"], &dir.path().join("heap.pprof"));
    assert!(heap.contains("Type: inuse_space"), "{heap}");
    // jemalloc_pprof names functions by their short DWARF names and locations by file: diagd's
    // own allocations are located in agent/src.
    let raw = go_tool_pprof(&["-raw"], &dir.path().join("heap.pprof"));
    assert!(raw.contains("/agent/src/"), "the heap profile names diagd's functions:\n{raw}");

    // One profile by name, `-s 0` meaning the default: heap needs no seconds.
    let (status, out, err) = agent.debug(&["profile", "heap", "-s", "0"]);
    assert!(status.success(), "{err}");
    std::fs::write(&tarball, &out).unwrap();
    let listing = untar(&tarball, dir.path());
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.trim_end().ends_with(" heap.pprof"), "{listing}");
}

#[test]
fn unknown_profiles_and_unreachable_services_are_clear_errors() {
    let agent = DebugAgent::start("tokio", "", &[]);
    for list in ["nope", "heap,trace", ""] {
        let (status, out, err) = agent.debug(&["profile", list]);
        assert_eq!(status.code(), Some(1), "{list:?}: {err}");
        assert!(out.is_empty(), "{list:?}: nothing on stdout");
        assert!(err.contains("supported profiles: goroutine, heap, profile, allocs"), "{list:?}: {err}");
    }
    let (status, _, err) = agent.debug(&["profile", "nope"]);
    assert!(err.contains("unknown profile \"nope\""), "{status}: {err}");
    let (status, _, err) = agent.debug(&["profile", "-s", "601"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("invalid seconds") && err.contains("0 to 600"), "{err}");
    let (status, _, err) = agent.debug(&["set-log-level"]);
    assert_eq!(status.code(), Some(2), "{err}");

    // No diagd behind the data dir.
    let dir = TempDir::new("diagd-debug-none");
    let config = dir.path().join("diagd.yaml");
    std::fs::write(&config, format!("data_dir: {}\n", dir.path().display())).unwrap();
    let (status, out, err) = run_diagd_output(&["debug", "-c", config.to_str().unwrap(), "readyz"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("cannot reach the debug service") && err.contains("debug.sock"), "{err}");

    // The debug service disabled: health answers, the rest is refused with a hint.
    let off = DebugAgent::start("tokio", "debug_service: {enabled: false}\n", &[]);
    let (status, _, err) = off.debug(&["get-log-level"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("404") && err.contains("debug_service.enabled"), "{err}");
}
