//! The whole walk starting -> ok -> degraded -> recovering -> ok, driven by a `tcp` heartbeat
//! check against a listener this test opens, closes and reopens.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use diag_tests::{Diagd, each_runtime, wait_for};

const MESSAGES: [(&str, u16, &str); 4] = [
    ("ok", 200, "ok"),
    ("recovering", 400, "process is recovering from a degraded state, check logs for details"),
    ("degraded", 503, "process is in a degraded state, check logs for details"),
    ("starting", 400, "process is starting and hasn't joined the cluster yet"),
];

fn expect_state(diagd: &Diagd, state: &str, timeout: Duration) {
    let (_, code, message) = MESSAGES.iter().copied().find(|(s, _, _)| *s == state).unwrap();
    let want = format!(r#"{{"status":"{message}","pid":{}}}"#, diagd.pid());
    wait_for(&format!("/readyz {state}"), timeout, || {
        let r = diagd.get("/readyz");
        let component = diagd.get("/readyz/db");
        let verbose = diagd.get("/readyz?verbose").text();
        let metrics = diagd.get("/metrics").text();
        let gauge = MESSAGES.iter().position(|(s, _, _)| *s == state).unwrap();
        let seen = format!("{} {} | db {} | {verbose:?}", r.status, r.text(), component.status);
        let mark = if state == "ok" { "[+]" } else { "[-]" };
        (r.status == code
            && r.text() == want
            && component.status == code
            && verbose.contains(&format!("{mark}db {state}\n"))
            && metrics.contains(&format!("\nprocess_state {gauge}\n"))
            && metrics.contains(&format!("diag_component_state{{component=\"db\"}} {gauge}\n")))
        .then_some(())
        .ok_or(seen)
    });
}

#[test]
fn starting_ok_degraded_recovering_ok() {
    each_runtime(|runtime| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let config = format!(
            "log: {{severity: debug}}\ncomponents:\n  - name: db\n    tcp: \"{target}\"\n    \
             heartbeat_period: 1500ms\n    recovery_window: 2s\n"
        );
        let diagd = Diagd::start(runtime, Some(&config));
        // The first check runs one period after start.
        let r = diagd.get("/readyz");
        assert_eq!(r.status, 400, "{runtime}: starting first: {}", r.text());
        expect_state(&diagd, "starting", Duration::ZERO);

        expect_state(&diagd, "ok", Duration::from_secs(10));

        drop(listener);
        expect_state(&diagd, "degraded", Duration::from_secs(10));

        let listener = TcpListener::bind(target).expect("rebind the same port");
        expect_state(&diagd, "recovering", Duration::from_secs(10));
        let recovering_since = Instant::now();

        expect_state(&diagd, "ok", Duration::from_secs(15));
        assert!(recovering_since.elapsed() >= Duration::from_millis(1500), "recovery window honoured");
        drop(listener);
        let log = diagd.stderr();
        for change in [
            "from=\"starting\" to=\"ok\"",
            "from=\"ok\" to=\"degraded\"",
            "from=\"degraded\" to=\"recovering\"",
            "from=\"recovering\" to=\"ok\"",
        ] {
            assert!(log.contains(change), "{runtime}: log lacks {change}:\n{log}");
        }
    });
}
