//! The protobuf exposition, decoded by Prometheus' reference decoder (prometheus/common
//! `expfmt` with client_model, Debian's Go packages, `tests/go/promdecode`) and printed as
//! text by client_golang's writer, agrees series for series with diag's own text exposition:
//! from diag-tokio and diag-smol servers holding every kind of source (counters, integer and
//! float gauges, histograms, labelled families with escaped values, the overflow series and its
//! counter, native histograms), streamed in chunks small enough to split families, and from
//! `diagd` itself. Native histograms' schema, zero bucket, spans and deltas, as Go rebuilds
//! them, are the buckets of diag's own snapshot; exemplars of counters and buckets decode to
//! the labels, values and timestamps attached.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use diag_core::encoding::parse::{Event, Parser};
use diag_core::http::{Limits, Service};
use diag_core::{
    Collect, Counter, ExemplarCounter, ExemplarHistogram, Family, Format, Gauge, GaugeF64, Histogram, NativeBucket,
    NativeConfig, NativeHistogram, Registry, StateTable,
};
use diag_tests::{Diagd, RUNTIMES, TempDir, request, require_tool};

/// What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
const PROMETHEUS_NATIVE_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                                        encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,\
                                        application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;\
                                        q=0.5,*/*;q=0.1";
const PROTOBUF: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// `tests/go/promdecode`, built once per test process in GOPATH mode over Debian's packages.
fn promdecode() -> PathBuf {
    static BUILT: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let go = require_tool("go", "apt-get install golang-go");
            let gopath = PathBuf::from("/usr/share/gocode");
            assert!(
                gopath.join("src/github.com/prometheus/common/expfmt").is_dir(),
                "prometheus/common is required: apt-get install golang-github-prometheus-common-dev \
                 golang-github-prometheus-client-model-dev"
            );
            let dir = TempDir::new("promdecode");
            let exe = dir.path().join("promdecode");
            let source = diag_tests::package_dir().join("go/promdecode");
            let out = Command::new(go)
                .args(["build", "-o"])
                .arg(&exe)
                .arg(".")
                .current_dir(&source)
                .env("GO111MODULE", "off")
                .env("GOPATH", &gopath)
                .output()
                .expect("run go build");
            assert!(out.status.success(), "go build promdecode:\n{}", String::from_utf8_lossy(&out.stderr));
            (dir, exe)
        })
        .1
        .clone()
}

/// Go's text rendering of a delimited protobuf body, and the number of messages it held.
fn go_decode(body: &[u8]) -> (String, usize) {
    go_decode_with(body, &[])
}

/// [`go_decode`] with arguments for promdecode (`native`: its native histogram lines).
fn go_decode_with(body: &[u8], args: &[&str]) -> (String, usize) {
    let mut child = Command::new(promdecode())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promdecode");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "Go's decoder refused diag's protobuf: {stderr}");
    let messages = stderr.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("message count");
    (String::from_utf8(out.stdout).unwrap(), messages)
}

/// Every series of a 0.0.4 text exposition: `name{sorted labels}` to value, and each family's
/// help and type.
#[derive(Debug, Default, PartialEq)]
struct Exposition {
    series: BTreeMap<String, f64>,
    families: BTreeMap<String, (String, String)>,
}

fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for event in Parser::new(Format::Prometheus, text) {
        match event.unwrap_or_else(|err| panic!("{err}\n{text}")) {
            Event::Help { family, help } => {
                e.families.entry(family.to_owned()).or_default().0 = help.chars().collect();
            }
            Event::Type { family, family_type } => {
                e.families.entry(family.to_owned()).or_default().1 = format!("{family_type:?}");
            }
            Event::Sample { sample, .. } => {
                // Bucket bounds as numbers: Go writes `1`, diag `1.0`.
                let value = |k: &str, v: String| match v.parse::<f64>() {
                    Ok(bound) if k == "le" => format!("{bound:?}"),
                    _ => v,
                };
                let mut labels: Vec<String> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={:?}", value(k, v.chars().collect::<String>())))
                    .collect();
                labels.sort();
                let key = format!("{}{{{}}}", sample.name, labels.join(","));
                assert!(e.series.insert(key.clone(), sample.value.as_f64()).is_none(), "{key} twice");
            }
            _ => {}
        }
    }
    e
}

/// Asserts the two expositions hold the same families and series; values equal except for the
/// series `moving` (counted between the two scrapes), which must differ by at most `slack`.
fn assert_agree(from_go: &Exposition, from_diag: &Exposition, moving: &[(&str, f64)]) {
    assert_eq!(from_go.families, from_diag.families);
    let keys = |e: &Exposition| e.series.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(from_go), keys(from_diag));
    for (key, go) in &from_go.series {
        let diag = from_diag.series[key];
        match moving.iter().find(|(m, _)| key.starts_with(m)) {
            Some((_, slack)) => assert!((diag - go).abs() <= *slack, "{key}: Go {go}, diag {diag}"),
            None => assert!(go == &diag || go.is_nan() && diag.is_nan(), "{key}: Go {go}, diag {diag}"),
        }
    }
}

static BOUNDS: [f64; 4] = [0.005, 0.1, 1.0, 10.0];
static REQUESTS: Family<Counter, [&'static str; 2], 3> = Family::new(["method", "path"], ());
static LATENCY: Family<Histogram<4>, (&'static str,), 4> = Family::new(["route"], &BOUNDS);
static PLAIN: Histogram<4> = Histogram::new(&BOUNDS);
static NATIVE: Family<NativeHistogram<12>, (&'static str,), 4> =
    Family::new(["route"], NativeConfig::new(3).with_max_zero_threshold(0.001));
static NATIVE_PLAIN: NativeHistogram<4> = NativeHistogram::new(NativeConfig::new(0).with_zero_threshold(0.0));
static TRACED: Family<ExemplarCounter, (&'static str,), 2> = Family::new(["code"], ());
static TRACED_LATENCY: ExemplarHistogram<4> = ExemplarHistogram::new(&BOUNDS);
static UP: Counter = Counter::new();
static TEMPERATURE: GaugeF64 = GaugeF64::new();
static QUEUE: Gauge = Gauge::new();
// Start times, written as created_timestamp (unknown to client_model 0.3, which skips them).
static REGISTRY: Registry<'static, 12> = Registry::new().with_clock(diag_core::unix_time_ms);
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

fn fill_registry() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        REGISTRY.register("app_requests_total", "Requests by \"method\"\nand \\path.", &REQUESTS).unwrap();
        REGISTRY.register("app_latency_seconds", "Latency.", &LATENCY).unwrap();
        REGISTRY.register("app_plain_seconds", "", &PLAIN).unwrap();
        REGISTRY.register("app_up_total", "Ups.", &UP).unwrap();
        REGISTRY.register("app_native_seconds", "Native latency.", &NATIVE).unwrap();
        REGISTRY.register("app_native_plain", "", &NATIVE_PLAIN).unwrap();
        REGISTRY.register("app_traced_total", "Traced.", &TRACED).unwrap();
        REGISTRY.register("app_traced_seconds", "", &TRACED_LATENCY).unwrap();
        let t = 1_700_000_000_123;
        TRACED
            .get_or_create(("200",))
            .unwrap()
            .inc_by_with_exemplar(5, &[("trace_id", "t\"1"), ("span_id", "s1")], Some(t))
            .unwrap();
        TRACED.get_or_create(("500",)).unwrap().inc();
        TRACED_LATENCY.observe_with_exemplar(0.05, &[("trace_id", "t2")], None).unwrap();
        TRACED_LATENCY.observe_with_exemplar(99.0, &[("trace_id", "t3")], Some(t + 1000)).unwrap();
        TRACED_LATENCY.observe(0.5);
        REGISTRY.register("app_temperature_celsius", "Temperature.", &TEMPERATURE).unwrap();
        REGISTRY.register("app_queue", "Queue length.", &QUEUE).unwrap();
        for (i, labels) in [["GET", "/a"], ["PUT", "q\"uote \\ back\nslash"], ["", "é ü ✓"], ["DELETE", "/overflow"]]
            .into_iter()
            .enumerate()
        {
            REQUESTS.get_or_create(labels).unwrap().inc_by(10u64.pow(i as u32 * 4) + 3);
        }
        for (i, route) in ["/", "/api/v1/query", "/x\"y"].into_iter().enumerate() {
            let h = LATENCY.get_or_create((route,)).unwrap();
            for k in 0..(50 * (i + 1)) {
                h.observe(k as f64 * 0.013 * (i + 1) as f64);
            }
        }
        // Route "/": few values; "/spread": more buckets than slots, so the zero bucket
        // widens and the resolution drops; negative values and zeros too.
        for v in [0.003, 0.0031, 0.2, 0.21, 0.5, -0.2, 0.0, -0.0] {
            NATIVE.get_or_create(("/",)).unwrap().observe(v);
        }
        let spread = NATIVE.get_or_create(("/spread",)).unwrap();
        for k in 0..400 {
            spread.observe(f64::from(k) * 0.0173 - 0.5);
        }
        PLAIN.observe(1e6);
        PLAIN.observe(-2.5);
        UP.inc_by(u64::from(u32::MAX) * 3);
        TEMPERATURE.set(-12.375);
        QUEUE.set(-7);
    });
}

/// A server's `/metrics` as Go decodes it from protobuf, and as diag writes it as text.
fn scrape_both(addr: SocketAddr) -> (Exposition, usize, Exposition) {
    let pb = request(addr, "GET", "/metrics", &[("Accept", PROMETHEUS_NATIVE_ACCEPT)]);
    assert_eq!(pb.status, 200);
    assert_eq!(pb.header("content-type"), Some(PROTOBUF));
    let (text_from_go, messages) = go_decode(&pb.body);
    let text = request(addr, "GET", "/metrics", &[("Accept", "text/plain;version=0.0.4")]);
    (parse(&text_from_go), messages, parse(&text.text()))
}

fn limits() -> Limits {
    let mut limits = Limits::DEFAULT;
    // Small chunks: families are split across chunks (and so across messages).
    limits.chunk_bytes = 512;
    limits.chunk_pool_bytes = 0;
    limits.shutdown_delay_ms = 0;
    limits
}

fn check_rich(addr: SocketAddr) {
    let (from_go, messages, from_diag) = scrape_both(addr);
    // The protobuf scrape was counted by the text scrape that followed it.
    assert_agree(&from_go, &from_diag, &[("promhttp_metric_handler_requests_total{code=\"200\"}", 1.0)]);
    assert!(messages > from_go.families.len(), "families split across chunks: {messages} messages");
    for needle in [
        "app_requests_total{method=\"PUT\",path=\"q\\\"uote \\\\ back\\nslash\"}",
        "app_requests_total{otel_metric_overflow=\"true\"}",
        "app_latency_seconds_bucket{le=\"inf\",route=\"/x\\\"y\"}",
        "app_plain_seconds_sum{}",
        "diag_series_overflow_total{family=\"app_requests_total\"}",
    ] {
        assert!(from_go.series.contains_key(needle), "{needle} missing from {:#?}", from_go.series.keys());
    }
    assert_eq!(from_go.series["app_up_total{}"], (u64::from(u32::MAX) * 3) as f64);
    assert_eq!(from_go.series["app_plain_seconds_count{}"], 2.0);
    assert_eq!(from_go.families["app_latency_seconds"].1, "Histogram");
    assert_eq!(from_go.families["app_native_seconds"].1, "Histogram");
    assert_eq!(from_go.series["app_native_seconds_count{route=\"/spread\"}"], 400.0);
    // An empty native histogram with a zero threshold of 0: the no-op span keeps it native.
    assert_eq!(from_go.series["app_native_plain_count{}"], 0.0);
}

/// `name{labels} schema=… positive=k:n,…` as promdecode's `native` mode prints a series.
fn native_line(name: &str, labels: &str, s: &diag_core::NativeSnapshot<12>) -> String {
    let buckets = |b: &[NativeBucket]| b.iter().map(|b| format!("{}:{}", b.key, b.count)).collect::<Vec<_>>().join(",");
    format!(
        "{name}{{{labels}}} schema={} zero_threshold={} zero_count={} count={} sum={} negative={} positive={}",
        s.schema,
        go_float(s.zero_threshold),
        s.zero_count,
        s.count,
        go_float(s.sum),
        buckets(s.negative()),
        buckets(s.positive())
    )
}

/// `v` as [`normalise_native`] rewrites Go's `%g`.
fn go_float(v: f64) -> String {
    format!("{v:e}")
}

#[test]
fn go_rebuilds_native_buckets_from_spans_and_deltas() {
    fill_registry();
    let mut buf = vec![0u8; 64 * 1024];
    let n = diag_core::Scrape::new(Format::Protobuf, &REGISTRY).fill(&mut buf).unwrap();
    let (lines, _) = go_decode_with(&buf[..n], &["native"]);
    let mut got: Vec<String> = lines.lines().map(normalise_native).collect();
    got.sort();
    let mut want = vec![
        native_line("app_native_seconds", "route=\"/\"", &NATIVE.get(("/",)).unwrap().snapshot()),
        native_line("app_native_seconds", "route=\"/spread\"", &NATIVE.get(("/spread",)).unwrap().snapshot()),
    ];
    let plain = NATIVE_PLAIN.snapshot();
    let plain: String = format!(
        "app_native_plain{{}} schema=0 zero_threshold={} zero_count=0 count=0 sum={} negative= positive=",
        go_float(plain.zero_threshold),
        go_float(plain.sum)
    );
    want.push(plain);
    want.sort();
    assert_eq!(got, want);
    let spread = NATIVE.get(("/spread",)).unwrap().snapshot();
    assert!(spread.schema < 3 && spread.count == 400, "{spread:?}");
}

#[test]
fn go_decodes_diag_exemplars() {
    fill_registry();
    let mut buf = vec![0u8; 64 * 1024];
    let n = diag_core::Scrape::new(Format::Protobuf, &REGISTRY).fill(&mut buf).unwrap();
    let (lines, _) = go_decode_with(&buf[..n], &["exemplars"]);
    let got: Vec<&str> = lines.lines().collect();
    assert_eq!(
        got,
        [
            "app_traced_total{code=\"200\"} le= {span_id=\"s1\",trace_id=\"t\\\"1\"} 5 1700000000123",
            "app_traced_seconds{} le=0.1 {trace_id=\"t2\"} 0.05 -1",
            "app_traced_seconds{} le=+Inf {trace_id=\"t3\"} 99 1700000001123",
        ]
    );
}

static UTF8_DURATION: Family<Histogram<4>, (&'static str,), 2> = Family::new(["http.method"], &BOUNDS);
static UTF8_CAFE: Counter = Counter::new();
static UTF8_REGISTRY: Registry<'static, 2> = Registry::new();
static UTF8_SOURCES: [&dyn Collect; 1] = [&UTF8_REGISTRY];

/// UTF-8 names over protobuf, from a server on 127.0.0.1, under the escaping schemes that
/// write legacy names: Go's decoder (Debian's prometheus/common, which still checks names
/// against the legacy charset and refuses `http.server.duration` as such) reads them, escaped
/// exactly as `EscapeName` writes them (by hand). `allow-utf-8` is covered by
/// tests/utf8_names.rs.
#[test]
fn go_decodes_utf8_names_per_escaping() {
    UTF8_REGISTRY.register("http.server.duration", "", &UTF8_DURATION).unwrap();
    UTF8_REGISTRY.register("café_total", "", &UTF8_CAFE).unwrap();
    UTF8_DURATION.get_or_create(("GET",)).unwrap().observe(0.2);
    let served = diag_tests::fixtures::serve(&UTF8_SOURCES, None);
    for (scheme, want) in [
        ("dots", ["http_dot_server_dot_duration\thttp_dot_method", "caf____total\t"]),
        ("values", ["U__http_2e_server_2e_duration\tU__http_2e_method", "U__caf_e9___total\t"]),
        ("", ["http_server_duration\thttp_method", "caf__total\t"]),
    ] {
        let param = if scheme.is_empty() { String::new() } else { format!(";escaping={scheme}") };
        let accept = format!("{}{param}", PROTOBUF.replace(' ', ""));
        let response = request(served.addr, "GET", "/metrics", &[("Accept", &accept)]);
        let echoed = if scheme.is_empty() { PROTOBUF.to_owned() } else { format!("{PROTOBUF}; escaping={scheme}") };
        assert_eq!(response.header("content-type"), Some(echoed.as_str()));
        let (lines, _) = go_decode_with(&response.body, &["names"]);
        for line in want {
            assert!(lines.lines().any(|l| l == line), "{scheme}: {line:?} not in\n{lines}");
        }
    }
}

/// Go's `%g` floats in a native line, rewritten as Rust's `{:e}`, so both sides compare.
fn normalise_native(line: &str) -> String {
    line.split(' ')
        .map(|field| match field.split_once('=') {
            Some((k @ ("zero_threshold" | "sum"), v)) => format!("{k}={:e}", v.parse::<f64>().unwrap()),
            _ => field.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn go_decodes_diag_tokio_protobuf_like_its_text() {
    fill_registry();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = diag_tokio::Server::owning(StateTable::<2>::new(), |states| Service::new(states, &SOURCES, 7))
        .with_limits(limits());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(server.serve(listener, async {
        stopped.await.ok();
    }));
    let result = std::panic::catch_unwind(|| check_rich(addr));
    let _ = stop.send(());
    let _ = runtime.block_on(task);
    result.unwrap();
}

#[test]
fn go_decodes_diag_smol_protobuf_like_its_text() {
    fill_registry();
    let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = diag_smol::Server::owning(StateTable::<2>::new(), |states| Service::new(states, &SOURCES, 7))
        .with_limits(limits());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let task = std::thread::spawn(move || {
        smol::block_on(server.serve(listener, async {
            stopped.recv().await.ok();
        }))
    });
    let result = std::panic::catch_unwind(|| check_rich(addr));
    drop(stop);
    let _ = task.join();
    result.unwrap();
}

/// `diagd` under every runtime: the same series; values equal except those that move on their
/// own (CPU, memory, file descriptors, runtime gauges, the scrape counters and durations).
#[test]
fn go_decodes_diagd_protobuf_like_its_text() {
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, None);
        // Once ready: the agent's own component goes from starting to ok after its first
        // heartbeat, which would otherwise fall between the two scrapes.
        diag_tests::wait_for("/readyz 200", std::time::Duration::from_secs(10), || {
            let r = diag_tests::request(diagd.addr, "GET", "/readyz", &[]);
            (r.status == 200).then_some(()).ok_or_else(|| r.text())
        });
        let (from_go, _, from_diag) = scrape_both(diagd.addr);
        let moving = [
            ("promhttp_metric_handler_requests_total{code=\"200\"}", 1.0),
            // The second scrape counts one more `/metrics` request (a bucket, the count, under
            // a second more in the sum).
            ("diag_http_request_duration_seconds", 1.0),
            ("process_", f64::INFINITY),
            ("tokio_runtime_", f64::INFINITY),
            ("smol_", f64::INFINITY),
            ("async_", f64::INFINITY),
        ];
        assert_agree(&from_go, &from_diag, &moving);
        assert_eq!(from_go.series["process_state{}"], 0.0, "{runtime}");
        assert!(from_go.series.keys().any(|k| k.starts_with("diag_build_info{")), "{runtime}");
    }
}
