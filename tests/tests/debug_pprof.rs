//! `/debug/pprof/` on the diagnostic address: 404 without `--debug`; with it, the index and
//! every profile (goroutine, heap, allocs, CPU) `go tool pprof` reads, under every runtime; a
//! CPU profile longer than the server's timeouts completes, and a second one meanwhile gets 409.

use std::time::Duration;

use diag_tests::{DebugAgent, RUNTIMES, TempDir, go_tool_pprof};

const PATHS: [&str; 4] = ["/debug/pprof/", "/debug/pprof", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"];

#[test]
fn without_debug_the_profiles_are_404() {
    for runtime in RUNTIMES {
        let agent = DebugAgent::start(runtime, "", &[]);
        for path in PATHS {
            assert_eq!(agent.diagd.get(path).status, 404, "{runtime} {path}");
        }
        // The debug socket serves them regardless.
        assert_eq!(agent.socket_request("GET", "/debug/pprof/", b"").status, 200, "{runtime}");
    }
}

#[test]
fn with_debug_index_cpu_and_heap_profiles_under_every_runtime() {
    let dir = TempDir::new("diagd-pprof");
    for runtime in RUNTIMES {
        let agent = DebugAgent::start(runtime, "", &["--debug"]);
        let index = agent.diagd.get("/debug/pprof/");
        assert_eq!(index.status, 200, "{runtime}");
        for name in ["goroutine", "heap", "profile", "allocs"] {
            assert!(index.text().contains(&format!("/debug/pprof/{name}")), "{runtime} {name}");
        }
        assert_eq!(agent.diagd.get("/debug/pprof").status, 200, "{runtime}");

        for (path, kind) in [
            ("/debug/pprof/heap", "Type: inuse_space"),
            ("/debug/pprof/allocs", "Type: alloc_space"),
            ("/debug/pprof/goroutine", "Type: threads"),
            ("/debug/pprof/profile?seconds=1", "Type: cpu"),
        ] {
            let response = agent.diagd.get(path);
            assert_eq!(response.status, 200, "{runtime} {path}: {}", String::from_utf8_lossy(&response.body));
            assert_eq!(response.header("content-type"), Some("application/octet-stream"));
            assert_eq!(response.header("cache-control"), Some("no-store"), "common headers added");
            let file = dir.path().join(format!("{runtime}.pprof"));
            std::fs::write(&file, &response.body).unwrap();
            let top = go_tool_pprof(&["-top"], &file);
            assert!(top.contains(kind), "{runtime} {path}:\n{top}");
        }

        let unknown = agent.diagd.get("/debug/pprof/mutex");
        assert_eq!(unknown.status, 404, "{runtime}");
        assert!(
            unknown.text().contains("supported profiles: goroutine, heap, profile, allocs"),
            "{runtime}: {}",
            unknown.text()
        );
        let bad = agent.diagd.get("/debug/pprof/profile?seconds=many");
        assert_eq!(bad.status, 400, "{runtime}");
        assert!(bad.text().contains("invalid seconds"), "{}", bad.text());
        let post = diag_tests::request(agent.diagd.addr, "POST", "/debug/pprof/heap", &[]);
        assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")), "{runtime}");
        // The core routes are still there, and the log level is the socket's alone.
        assert_eq!(agent.diagd.get("/healthz").status, 200);
        assert_eq!(agent.diagd.get("/log-level").status, 404);
    }
}

#[test]
fn a_cpu_profile_longer_than_the_timeouts_completes_and_a_second_one_gets_409() {
    // 12 s: longer than the 10 s header timeout; one agent per runtime, side by side.
    let agents: Vec<_> = RUNTIMES.iter().map(|rt| (*rt, DebugAgent::start(rt, "", &["--debug"]))).collect();
    let dir = TempDir::new("diagd-pprof-long");
    std::thread::scope(|s| {
        for (runtime, agent) in &agents {
            let dir = dir.path();
            s.spawn(move || {
                let addr = agent.diagd.addr;
                let long = std::thread::spawn(move || {
                    diag_tests::request(addr, "GET", "/debug/pprof/profile?seconds=12", &[])
                });
                // Once the first profile runs (diagd logs it), a second one is refused.
                diag_tests::wait_for("the CPU profile to start", Duration::from_secs(10), || {
                    let err = agent.diagd.stderr();
                    if err.contains("collecting a CPU profile") { Ok(()) } else { Err(err) }
                });
                let second = agent.diagd.get("/debug/pprof/profile?seconds=1");
                assert_eq!(second.status, 409, "{runtime}: {}", String::from_utf8_lossy(&second.body));
                assert!(second.text().contains("a CPU profile is already being collected"), "{}", second.text());
                // The socket shares the one profiler.
                let third = agent.socket_request("GET", "/debug/pprof/profile?seconds=1", b"");
                assert_eq!(third.status, 409, "{runtime}: {}", String::from_utf8_lossy(&third.body));
                let first = long.join().unwrap();
                assert_eq!(first.status, 200, "{runtime}: {}", String::from_utf8_lossy(&first.body));
                let file = dir.join(format!("{runtime}-long.pprof"));
                std::fs::write(&file, &first.body).unwrap();
                let top = go_tool_pprof(&["-top"], &file);
                assert!(top.contains("Type: cpu") && top.contains("Duration: 12"), "{runtime}:\n{top}");
                // Free again afterwards.
                assert_eq!(agent.diagd.get("/debug/pprof/profile?seconds=1").status, 200, "{runtime}");
            });
        }
    });
}
