//! `metrics::counter!`, `gauge!` and `histogram!` with runtime labels, recorded by
//! diag-recorder installed as the global recorder, served by diag-tokio on 127.0.0.1 and
//! scraped over HTTP in both formats: checked by Python prometheus_client's parsers and
//! `promtool check metrics`.

use std::net::SocketAddr;
use std::sync::LazyLock;

use diag_core::http::{Limits, Service};
use diag_core::{Collect, Registry, StateTable};
use diag_recorder::Recorder;
use diag_tests::{promtool_check, python_parse, request};
use diag_tokio::Server;
use serde_json::Value;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

static RECORDER: LazyLock<Recorder> =
    LazyLock::new(|| Recorder::new().with_buckets_for("app_payload", &[100.0, 1000.0]));
static STATES: StateTable<4> = StateTable::new();
static REGISTRY: Registry<'static, 4> = Registry::new();
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

/// The samples of `family` whose sample name is `name`, as `(labels, value)`.
fn samples(families: &Value, family: &str, name: &str) -> Vec<(Value, Value)> {
    let all = families[family]["samples"].as_array().unwrap_or_else(|| panic!("no family {family}: {families}"));
    all.iter().filter(|s| s[0] == name).map(|s| (s[1].clone(), s[2].clone())).collect()
}

fn serve() -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut limits = Limits::DEFAULT;
    limits.chunk_bytes = 1024; // the recorder's series span many chunks
    limits.chunk_pool_bytes = 0;
    let server = Server::new(Service::new(&STATES, &SOURCES, 1)).with_limits(limits);
    rt.spawn(server.serve(listener, std::future::pending()));
    (rt, addr)
}

#[test]
fn metrics_macros_with_runtime_labels_appear_on_diags_metrics_in_both_formats() {
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let recorder: &'static Recorder = &RECORDER;
    REGISTRY.register_collector(recorder).unwrap();
    metrics::set_global_recorder(recorder).unwrap();
    STATES.heartbeat_ok("app", 0).unwrap();
    let (_rt, addr) = serve();

    metrics::describe_counter!("app.requests", "Requests by user and status.\nSecond line, back\\slash.");
    metrics::describe_histogram!("app_latency_seconds", metrics::Unit::Seconds, "Request latency.");
    metrics::describe_gauge!("app_workers", "Workers by pool.");
    metrics::describe_histogram!("app_payload_bytes", metrics::Unit::Bytes, "Payload sizes.");
    for i in 0..300 {
        let user = format!("user-{}", i % 100);
        let status = if i % 3 == 0 { "500" } else { "200" };
        metrics::counter!("app.requests", "user" => user, "status" => status).increment(1);
    }
    // Label order does not make another series; odd label values are escaped.
    metrics::counter!("app.requests", "status" => "200", "user" => "user-1").increment(10);
    metrics::counter!("app.requests", "user" => "quote\"back\\slash\nnewline", "status" => "200").increment(1);
    let workers = metrics::gauge!("app_workers", "pool" => "io");
    workers.set(8.0);
    workers.decrement(2.5);
    metrics::gauge!("app_workers", "pool" => "cpu").increment(3.0);
    for v in [0.003, 0.2, 0.2, 7.0, 30.0] {
        metrics::histogram!("app_latency_seconds", "route" => "/users").record(v);
    }
    metrics::histogram!("app_payload_bytes").record(500.0);
    // A name taken by another type records nothing and is counted.
    metrics::gauge!("app.requests_total").set(1.0);
    assert_eq!(RECORDER.rejected(), 1);

    let plain = request(addr, "GET", "/metrics", &[]);
    assert_eq!(plain.status, 200);
    assert!(plain.chunks.len() > 5, "streamed in chunks: {:?}", plain.chunks);
    let text = plain.text();
    assert!(text.contains("# HELP app_latency_seconds Request latency. (unit: seconds)\n"), "{text}");
    promtool_check(&text);
    let families = python_parse("prometheus", &text);
    let requests = samples(&families, "app_requests", "app_requests_total");
    assert_eq!(requests.len(), 201, "users × statuses seen, plus the escaped one: {requests:?}");
    let value = |user: &str, status: &str| {
        requests.iter().find(|(l, _)| l["user"] == user && l["status"] == status).map(|(_, v)| v.as_f64().unwrap())
    };
    assert_eq!(value("user-1", "200"), Some(12.0), "two by the loop, ten in the other label order");
    assert_eq!(value("user-0", "500"), Some(1.0));
    assert_eq!(value("quote\"back\\slash\nnewline", "200"), Some(1.0));
    assert_eq!(families["app_requests"]["type"], "counter");
    let workers = samples(&families, "app_workers", "app_workers");
    assert!(workers.iter().any(|(l, v)| l["pool"] == "io" && v.as_f64() == Some(5.5)), "{workers:?}");
    assert!(workers.iter().any(|(l, v)| l["pool"] == "cpu" && v.as_f64() == Some(3.0)), "{workers:?}");
    let buckets = samples(&families, "app_latency_seconds", "app_latency_seconds_bucket");
    assert_eq!(buckets.len(), 12, "client_golang's 11 default buckets and +Inf: {buckets:?}");
    let le = |le: &str| buckets.iter().find(|(l, _)| l["le"] == le).map(|(_, v)| v.as_f64().unwrap());
    assert_eq!((le("0.005"), le("0.25"), le("10.0"), le("+Inf")), (Some(1.0), Some(3.0), Some(4.0), Some(5.0)));
    let count = samples(&families, "app_latency_seconds", "app_latency_seconds_count");
    assert_eq!(count[0].1.as_f64(), Some(5.0));
    let payload = samples(&families, "app_payload_bytes", "app_payload_bytes_bucket");
    assert_eq!(payload.len(), 3, "the buckets configured for the prefix: {payload:?}");
    let rejected = samples(&families, "diag_recorder_rejected", "diag_recorder_rejected_total");
    assert_eq!(rejected[0].1.as_f64(), Some(1.0));

    let om = request(addr, "GET", "/metrics", &[("Accept", OPENMETRICS)]);
    let text = om.text();
    assert!(text.ends_with("# EOF\n"));
    promtool_check(&text);
    let families = python_parse("openmetrics", &text);
    let requests = samples(&families, "app_requests", "app_requests_total");
    assert_eq!(requests.len(), 201, "{requests:?}");
    assert_eq!(families["app_latency_seconds"]["type"], "histogram");
    assert_eq!(samples(&families, "app_workers", "app_workers").len(), 2);
    // Start timestamps: each counter and histogram series' first use, none for gauges.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let created = samples(&families, "app_requests", "app_requests_created");
    assert_eq!(created.len(), 201, "{created:?}");
    assert!(created.iter().all(|(_, v)| v.as_f64().is_some_and(|t| t >= started - 1.0 && t <= now)), "{created:?}");
    assert_eq!(samples(&families, "app_latency_seconds", "app_latency_seconds_created").len(), 1);
    assert!(!text.contains("app_workers_created"), "gauges have no start time");

    // Updates through a kept handle show on the next scrape.
    let handle = metrics::counter!("app.requests", "user" => "user-0", "status" => "500");
    handle.increment(41);
    let families = python_parse("prometheus", &request(addr, "GET", "/metrics", &[]).text());
    let requests = samples(&families, "app_requests", "app_requests_total");
    let v = requests.iter().find(|(l, _)| l["user"] == "user-0" && l["status"] == "500").map(|(_, v)| v.as_f64());
    assert_eq!(v, Some(Some(42.0)));
}
