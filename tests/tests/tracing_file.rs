//! The `file://DIR?limit=BYTES` exporter of a real diagd: the directory is created 0700,
//! files are `<unixnano>-<random>.trace` 0600, every line parses as one OTLP JSON
//! `ResourceSpans`, files rotate by the rule `written + len(line) >= limit && written > 0`, and
//! no span is lost or split across a rotation.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use diag_tests::otlp::{hex, new_ids, traceparent};
use diag_tests::{Diagd, TempDir, request, wait_for};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

const LIMIT: usize = 3000;

/// The trace files in `dir`, oldest first, with their lines (newline included).
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    // Names start with the creation time in nanoseconds, all of one length here.
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let lines = text.split_inclusive('\n').map(str::to_owned).collect();
            (p, lines)
        })
        .collect()
}

#[test]
fn rotating_files_of_otlp_json_lines() {
    let tmp = TempDir::new("diagd-traces");
    let dir = tmp.path().join("traces");
    let config = format!(
        "tracing_service:\n  enabled: true\n  exporter_url: 'file://{}?limit={LIMIT}'\n  sampling_rate_per_million: 0\n",
        dir.display()
    );
    let mut diagd = Diagd::start("tokio", Some(&config));
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "trace dir mode");

    // One sampled request per export, so each line holds one span (about 1.3 KB) and the files
    // rotate every two or three lines; then a burst of requests exported together.
    let mut sent = Vec::new();
    for i in 0..6 {
        let (trace_id, parent) = new_ids();
        let path = if i % 2 == 0 { "/healthz" } else { "/metrics" };
        assert_eq!(request(diagd.addr, "GET", path, &[("traceparent", &traceparent(&trace_id, &parent))]).status, 200);
        sent.push(trace_id);
        wait_for("the span's line", Duration::from_secs(20), || {
            let lines: usize = files(&dir).iter().map(|(_, l)| l.len()).sum();
            if lines > i { Ok(()) } else { Err(format!("{lines} lines")) }
        });
    }
    for _ in 0..10 {
        let (trace_id, parent) = new_ids();
        assert_eq!(
            request(diagd.addr, "GET", "/healthz", &[("traceparent", &traceparent(&trace_id, &parent))]).status,
            200
        );
        sent.push(trace_id);
    }
    // SIGTERM flushes what is queued.
    assert!(diagd.signal_and_wait("TERM").success(), "{}", diagd.stderr());

    let files = files(&dir);
    assert!(
        files.len() >= 3,
        "expected rotation at {LIMIT} bytes: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (k, (path, lines)) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (nanos, random) = name.strip_suffix(".trace").and_then(|n| n.split_once('-')).expect(name);
        assert!(nanos.parse::<u128>().is_ok() && u64::from_str_radix(random, 16).is_ok(), "file name {name}");
        assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600, "{name} mode");
        // The rule, line by line: a line that would take a non-empty file to the limit starts
        // the next file.
        let mut written = 0;
        for line in lines {
            assert!(line.ends_with('\n'), "{name}: a split line {line:?}");
            assert!(written == 0 || written + line.len() < LIMIT, "{name}: should have rotated before {line:?}");
            written += line.len();
            let rs: ResourceSpans =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: not OTLP JSON ({e}): {line}"));
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                *seen.entry(hex(&span.trace_id)).or_default() += 1;
            }
        }
        if let Some((_, next)) = files.get(k + 1) {
            assert!(written + next[0].len() >= LIMIT, "{name} was rotated early ({written} + {})", next[0].len());
        }
    }
    for trace_id in &sent {
        assert_eq!(seen.get(trace_id), Some(&1), "trace {trace_id}: exported once");
    }
}
