//! Prometheus 3 name negotiation, end to end: a diag-tokio server on 127.0.0.1 whose registry
//! holds UTF-8 metric names (`café_total`, `http.server.duration`) and UTF-8 label names
//! (`http.method`, `région`) beside legacy ones, asked with each `Accept` header Prometheus 3
//! sends (OpenMetrics, text 1.0.0, protobuf; `escaping=allow-utf-8`, `underscores`, `dots`,
//! `values`, and none). Checked: the echoed `Content-Type`; under `allow-utf-8`, Python
//! prometheus_client's parsers read the original names back; under the other schemes (and by
//! default, underscores), the names are exactly what prometheus/common's `EscapeName` gives
//! (the expected strings below are written by hand from its rules, not computed by diag), and
//! legacy names stay as they are. Protobuf bodies are read with a small decoder of their own.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use diag_core::{Collect, Counter, Family, Histogram, Registry, unix_time_ms};
use diag_tests::{fixtures, package_dir, pipe, request, require_python_prometheus_client};
use serde_json::Value;

static BOUNDS: [f64; 2] = [0.1, 1.0];
static CAFE: Counter = Counter::new();
static DURATION: Family<Histogram<2>, (&'static str,), 4> = Family::new(["http.method"], &BOUNDS);
static REQUESTS: Family<Counter, (&'static str, &'static str), 4> = Family::new(["code", "région"], ());
static REGISTRY: Registry<'static, 4> = Registry::new().with_clock(unix_time_ms);
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

const OM: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_V1: &str = "text/plain; version=1.0.0; charset=utf-8";
const PROTOBUF: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The `Accept` headers Prometheus 3 sends for its scrape protocols, with `escaping` from
/// its name validation and escaping settings (`{e}`).
fn accept(format: &str, e: &str) -> String {
    let p = if e.is_empty() { String::new() } else { format!(";escaping={e}") };
    match format {
        "openmetrics" => format!(
            "application/openmetrics-text;version=1.0.0{p};q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,\
             text/plain;version=1.0.0{p};q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
        ),
        "text" => format!("text/plain;version=1.0.0{p};q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"),
        _ => format!(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited{p};q=0.5,\
             application/openmetrics-text;version=1.0.0{p};q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,\
             text/plain;version=1.0.0{p};q=0.2,text/plain;version=0.0.4;q=0.1,*/*;q=0.05"
        ),
    }
}

/// Names, as a scheme writes them (by hand, from `model.EscapeName`).
struct Expected {
    scheme: &'static str,
    /// `café_total`, `http.server.duration`, `http.method`, `région`.
    cafe: &'static str,
    duration: &'static str,
    method: &'static str,
    region: &'static str,
    /// The OpenMetrics family of `café_total`: the escaped name without `_total`.
    cafe_family: &'static str,
}

const SCHEMES: [Expected; 5] = [
    Expected {
        scheme: "allow-utf-8",
        cafe: "café_total",
        duration: "http.server.duration",
        method: "http.method",
        region: "région",
        cafe_family: "café",
    },
    Expected {
        scheme: "underscores",
        cafe: "caf__total",
        duration: "http_server_duration",
        method: "http_method",
        region: "r_gion",
        cafe_family: "caf_",
    },
    // `dots` escapes `_` as `__` in the names it escapes; legacy names (`requests_total`,
    // `code`, `le`) are kept, as client_golang's EscapeMetricFamily keeps them.
    Expected {
        scheme: "dots",
        cafe: "caf____total",
        duration: "http_dot_server_dot_duration",
        method: "http_dot_method",
        region: "r__gion",
        cafe_family: "caf___",
    },
    Expected {
        scheme: "values",
        cafe: "U__caf_e9___total",
        duration: "U__http_2e_server_2e_duration",
        method: "U__http_2e_method",
        region: "U__r_e9_gion",
        cafe_family: "U__caf_e9__",
    },
    // No scheme named: client_golang's default, underscores; nothing echoed.
    Expected {
        scheme: "",
        cafe: "caf__total",
        duration: "http_server_duration",
        method: "http_method",
        region: "r_gion",
        cafe_family: "caf_",
    },
];

fn setup() {
    REGISTRY.register("café_total", "Visits to the café.", &CAFE).unwrap();
    REGISTRY.register("http.server.duration", "Request duration.", &DURATION).unwrap();
    REGISTRY.register("requests_total", "Requests.", &REQUESTS).unwrap();
    CAFE.inc_by(3);
    DURATION.get_or_create(("GET",)).unwrap().observe(0.5);
    REQUESTS.get_or_create(("200", "eu-\"west\"")).unwrap().inc();
}

/// The samples of the families from the test's registry, parsed by prometheus_client:
/// `(family, sample name, label names)`.
fn parsed(format: &str, text: &str, keep: &[&str]) -> BTreeSet<(String, String, Vec<String>)> {
    let python = require_python_prometheus_client();
    let script = package_dir().join("python/parse_metrics.py");
    let (code, out, err) = pipe(&python, &[script.to_str().unwrap(), format], text);
    assert_eq!(code, 0, "prometheus_client's {format} parser rejects:\n{err}\n{text}");
    let families: serde_json::Map<String, Value> = serde_json::from_str(&out).unwrap();
    let mut samples = BTreeSet::new();
    for (family, body) in families {
        if !keep.contains(&family.as_str()) {
            continue;
        }
        for s in body["samples"].as_array().unwrap() {
            let labels = s[1].as_object().unwrap().keys().cloned().collect();
            samples.insert((family.clone(), s[0].as_str().unwrap().to_owned(), labels));
        }
    }
    samples
}

/// The family prometheus_client reads `café_total` into: OpenMetrics' family (the escaped
/// name without `_total`), which its 0.0.4 parser also names a counter's family.
fn cafe_family(e: &Expected, openmetrics: bool) -> &'static str {
    if openmetrics { e.cafe_family } else { e.cafe.strip_suffix("_total").unwrap() }
}

/// What the text formats must hold: `(family, sample, label names)`.
fn expected_samples(e: &Expected, openmetrics: bool) -> BTreeSet<(String, String, Vec<String>)> {
    let s = |x: &str| x.to_owned();
    let cafe_family = s(cafe_family(e, openmetrics));
    let requests_family = "requests";
    let mut want = BTreeSet::new();
    want.insert((cafe_family.clone(), s(e.cafe), vec![]));
    let method = vec![s(e.method)];
    let (mut sorted_requests, mut bucket) = (vec![s("code"), s(e.region)], vec![s(e.method), s("le")]);
    sorted_requests.sort();
    bucket.sort();
    for suffix in ["_bucket", "_sum", "_count"] {
        let labels = if suffix == "_bucket" { bucket.clone() } else { method.clone() };
        want.insert((s(e.duration), format!("{}{suffix}", e.duration), labels));
    }
    want.insert((s(requests_family), s("requests_total"), sorted_requests.clone()));
    if openmetrics {
        want.insert((cafe_family.clone(), format!("{cafe_family}_created"), vec![]));
        want.insert((s(e.duration), format!("{}_created", e.duration), method));
        want.insert((s(requests_family), s("requests_created"), sorted_requests));
    }
    want
}

fn check_text(addr: SocketAddr, format: &str, e: &Expected) {
    let openmetrics = format == "openmetrics";
    let response = request(addr, "GET", "/metrics", &[("Accept", &accept(format, e.scheme))]);
    assert_eq!(response.status, 200);
    let base = if openmetrics { OM } else { TEXT_V1 };
    let content_type = if e.scheme.is_empty() { base.to_owned() } else { format!("{base}; escaping={}", e.scheme) };
    assert_eq!(response.header("content-type"), Some(content_type.as_str()), "{format} {}", e.scheme);
    let text = response.text();
    // Quoted names where (and only where) the name is not legacy, under allow-utf-8 only.
    let quoted = text.contains("{\"http.server.duration_bucket\",\"http.method\"=\"GET\",le=\"0.1\"}");
    assert_eq!(quoted, e.scheme == "allow-utf-8", "{format} {}:\n{text}", e.scheme);
    assert!(text.contains("requests_total{code=\"200\","), "legacy names stay unquoted:\n{text}");
    let parser = if openmetrics { "openmetrics" } else { "prometheus" };
    let got = parsed(parser, &text, &[cafe_family(e, openmetrics), e.duration, "requests"]);
    let mut want = expected_samples(e, openmetrics);
    // Label names compare sorted (prometheus_client keeps them in a dict).
    want = want
        .into_iter()
        .map(|(f, n, mut l)| {
            l.sort();
            (f, n, l)
        })
        .collect();
    let got: BTreeSet<_> = got
        .into_iter()
        .map(|(f, n, mut l)| {
            l.sort();
            (f, n, l)
        })
        .collect();
    assert_eq!(got, want, "{format} escaping={}:\n{text}", e.scheme);
}

/// A varint at the front of `b`: the value and its length.
fn varint(b: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    panic!("truncated varint");
}

/// The fields of a protobuf message: `(field number, length-delimited bytes)`; other wire
/// types are skipped.
fn fields(mut b: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (key, n) = varint(b);
        b = &b[n..];
        match key & 7 {
            0 => b = &b[varint(b).1..],
            1 => b = &b[8..],
            5 => b = &b[4..],
            2 => {
                let (len, n) = varint(b);
                let len = len as usize;
                out.push((key >> 3, &b[n..n + len]));
                b = &b[n + len..];
            }
            t => panic!("wire type {t}"),
        }
    }
    out
}

/// Family names and the label names of their metrics, from a delimited protobuf body.
fn protobuf_names(mut body: &[u8]) -> BTreeSet<(String, Vec<String>)> {
    let mut out = BTreeSet::new();
    while !body.is_empty() {
        let (len, n) = varint(body);
        let family = &body[n..n + len as usize];
        body = &body[n + len as usize..];
        let f = fields(family);
        let name = f.iter().find(|(k, _)| *k == 1).map(|(_, v)| String::from_utf8(v.to_vec()).unwrap()).unwrap();
        for (_, metric) in f.iter().filter(|(k, _)| *k == 4) {
            let labels = fields(metric)
                .into_iter()
                .filter(|(k, _)| *k == 1)
                .map(|(_, pair)| {
                    let name = fields(pair).into_iter().find(|(k, _)| *k == 1).unwrap().1;
                    String::from_utf8(name.to_vec()).unwrap()
                })
                .collect();
            out.insert((name.clone(), labels));
        }
    }
    out
}

fn check_protobuf(addr: SocketAddr, e: &Expected) {
    let response = request(addr, "GET", "/metrics", &[("Accept", &accept("protobuf", e.scheme))]);
    assert_eq!(response.status, 200);
    let content_type =
        if e.scheme.is_empty() { PROTOBUF.to_owned() } else { format!("{PROTOBUF}; escaping={}", e.scheme) };
    assert_eq!(response.header("content-type"), Some(content_type.as_str()));
    let names = protobuf_names(&response.body);
    let s = |x: &str| x.to_owned();
    // Protobuf families keep `_total` (no OpenMetrics family naming).
    for want in
        [(s(e.cafe), vec![]), (s(e.duration), vec![s(e.method)]), (s("requests_total"), vec![s("code"), s(e.region)])]
    {
        assert!(names.contains(&want), "escaping={}: {want:?} not in {names:?}", e.scheme);
    }
    if e.scheme != "allow-utf-8" {
        for (family, labels) in &names {
            for name in std::iter::once(family).chain(labels) {
                assert!(
                    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
                    "escaping={}: {name:?} is not a legacy name",
                    e.scheme
                );
            }
        }
    }
}

#[test]
fn utf8_names_per_negotiated_escaping_scheme() {
    setup();
    let served = fixtures::serve(&SOURCES, Some(512));
    for e in &SCHEMES {
        check_text(served.addr, "openmetrics", e);
        check_text(served.addr, "text", e);
        check_protobuf(served.addr, e);
    }
    // Old clients (text 0.0.4, no escaping) get underscores too: nothing they cannot read.
    let old = request(served.addr, "GET", "/metrics", &[("Accept", "text/plain;version=0.0.4")]);
    assert_eq!(old.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = old.text();
    assert!(text.contains("\nhttp_server_duration_bucket{http_method=\"GET\",le=\"0.1\"} 0\n"), "{text}");
    assert!(!text.contains("{\"") && !text.contains("région"), "{text}");
    drop(served);
}
