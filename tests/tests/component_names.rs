//! Component names beyond `[a-z-]`: `a/b`, `my db` and `café` from diagd's YAML are each
//! reachable at `/readyz/<percent-encoded name>`, appear as one line each in `/readyz?verbose`
//! and as label values in `/metrics`; malformed percent-encoding is a 400 that says so; a name
//! with a control character is refused at start with an error naming the key.

use std::time::Duration;

use diag_tests::{Diagd, RUNTIMES, TempDir, run_diagd, wait_for};

/// Three components in three states: `a/b` ok, `my db` degraded, `café` still starting (its
/// first check is an hour away).
const CONFIG: &str = "components:
  - name: a/b
    exec: [\"true\"]
    heartbeat_period: 200ms
  - name: my db
    exec: [\"false\"]
    heartbeat_period: 200ms
  - name: \"caf\\u00e9\"
    exec: [\"true\"]
    heartbeat_period: 1h
";

const OK: &str = r#"{"status":"ok","pid":PID}"#;
const DEGRADED: &str = r#"{"status":"process is in a degraded state, check logs for details","pid":PID}"#;
const STARTING: &str = r#"{"status":"process is starting and hasn't joined the cluster yet","pid":PID}"#;
const UNKNOWN: &str = r#"{"status":"unknown component","pid":PID}"#;
const BAD_ESCAPE: &str =
    "400 malformed percent-encoding in the component name: every '%' must be followed by two hex digits\n";
const NOT_UTF8: &str = "400 the percent-decoded component name is not UTF-8\n";

#[test]
fn names_with_slash_space_and_accent_are_reachable_percent_encoded() {
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, Some(CONFIG));
        let pid = diagd.pid().to_string();
        let json = |body: &str| body.replace("PID", &pid);
        wait_for(&format!("{runtime}: a/b ok and my db degraded"), Duration::from_secs(15), || {
            let (ab, db) = (diagd.get("/readyz/a%2Fb"), diagd.get("/readyz/my%20db"));
            let seen = format!("a/b {} {} | my db {} {}", ab.status, ab.text(), db.status, db.text());
            (ab.status == 200 && db.status == 503).then_some(()).ok_or(seen)
        });
        for (target, status, body) in [
            ("/readyz/a%2Fb", 200, json(OK)),
            ("/readyz/a%2fb", 200, json(OK)),
            ("/readyz/a/b", 200, json(OK)),
            ("/readyz/my%20db", 503, json(DEGRADED)),
            ("/readyz/caf%C3%A9", 400, json(STARTING)),
            ("/readyz/caf%c3%a9?verbose", 400, json(STARTING)),
            ("/readyz/cafe", 404, json(UNKNOWN)),
            ("/readyz/my+db", 404, json(UNKNOWN)),
            ("/readyz/a", 404, json(UNKNOWN)),
            ("/readyz/a%2F", 404, json(UNKNOWN)),
            ("/readyz/my%g0db", 400, BAD_ESCAPE.into()),
            ("/readyz/my%2db", 404, json(UNKNOWN)),
            ("/readyz/100%", 400, BAD_ESCAPE.into()),
            ("/readyz/caf%C3", 400, NOT_UTF8.into()),
        ] {
            let r = diagd.get(target);
            assert_eq!((r.status, r.text()), (status, body), "{runtime}: GET {target}");
        }

        let verbose = diagd.get("/readyz?verbose");
        assert_eq!(verbose.status, 503, "{runtime}");
        assert_eq!(
            verbose.text(),
            "[+]a/b ok\n[-]my db degraded\n[-]café starting\nreadyz check failed\n",
            "{runtime}: one line per component"
        );

        let metrics = diagd.get("/metrics").text();
        for line in [
            "diag_component_state{component=\"a/b\"} 0\n",
            "diag_component_state{component=\"my db\"} 2\n",
            "diag_component_state{component=\"café\"} 3\n",
        ] {
            assert!(metrics.contains(line), "{runtime}: {line:?} missing from /metrics:\n{metrics}");
        }
    }
}

#[test]
fn names_with_control_characters_or_too_long_are_refused_naming_the_key() {
    let dir = TempDir::new("diagd-names");
    let long = "n".repeat(65);
    for (name, key, reason) in [
        ("\"db\\n[+]fake ok\"", "components[1].name", "control character U+000A at byte 2"),
        ("\"tab\\tbed\"", "components[1].name", "control character U+0009 at byte 3"),
        ("\"nel\\x85\"", "components[1].name", "control character U+0085 at byte 3"),
        ("''", "components[1].name", "component name is empty"),
        (long.as_str(), "components[1].name", "65 bytes long, more than the 64 bytes allowed"),
    ] {
        let yaml =
            format!("components:\n  - name: fine\n    exec: [\"true\"]\n  - name: {name}\n    exec: [\"true\"]\n");
        let path = dir.path().join("names.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let (status, err) = run_diagd(&["start", "-c", path.to_str().unwrap()]);
        assert_eq!(status.code(), Some(1), "{yaml}: {err}");
        assert!(err.contains("invalid config file") && err.contains(key) && err.contains(reason), "{yaml}: {err}");
    }
}
