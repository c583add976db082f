//! The strict exposition parser (`encoding::parse`) against the core's own encoders, and its
//! verdicts cross-checked with Python `prometheus_client`'s OpenMetrics parser.

use std::process::Command;

use diag_core::encoding::parse::{Event, FamilyType, ParseErrorKind, Parser, validate};
use diag_core::{Counter, Family, Format, Gauge, GaugeF64, Histogram, Registry, Scrape};

fn scrape(format: Format, registry: &Registry<'_, 16>) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let n = Scrape::new(format, registry).fill(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// Samples as `(family, suffix, labels "k=v,…" unescaped, value text)`.
fn samples(format: Format, text: &str) -> Vec<(String, String, String, String)> {
    Parser::new(format, text)
        .filter_map(|e| match e.unwrap_or_else(|e| panic!("{format:?}: {e}\n{text}")) {
            Event::Sample { family, suffix, sample, .. } => {
                let labels: Vec<String> = sample.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                Some((family.into(), suffix.into(), labels.join(","), sample.value.raw().into()))
            }
            _ => None,
        })
        .collect()
}

fn s(family: &str, suffix: &str, labels: &str, value: &str) -> (String, String, String, String) {
    (family.into(), suffix.into(), labels.into(), value.into())
}

#[test]
fn openmetrics_histogram_with_nan_or_negative_sum_omits_sum_and_count() {
    static NAN: Histogram<2> = Histogram::new(&[1.0, 2.0]);
    static NEGATIVE: Histogram<2> = Histogram::new(&[1.0, 2.0]);
    static NEGATIVE_BOUND: Histogram<2> = Histogram::new(&[-1.0, 2.0]);
    static FINE: Histogram<2> = Histogram::new(&[1.0, 2.0]);
    let registry: Registry<'_, 16> = Registry::new();
    registry.register("nan_seconds", "", &NAN).unwrap();
    registry.register("negative_seconds", "", &NEGATIVE).unwrap();
    registry.register("negative_bound", "", &NEGATIVE_BOUND).unwrap();
    registry.register("fine_seconds", "", &FINE).unwrap();
    NAN.observe(f64::NAN);
    NEGATIVE.observe(-5.0);
    NEGATIVE_BOUND.observe(1.5);
    FINE.observe(1.5);

    let om = scrape(Format::OpenMetrics, &registry);
    validate(Format::OpenMetrics, &om).unwrap_or_else(|e| panic!("{e}\n{om}"));
    let suffixes = |family: &str| -> Vec<String> {
        samples(Format::OpenMetrics, &om).into_iter().filter(|x| x.0 == family).map(|x| x.1).collect()
    };
    assert_eq!(suffixes("nan_seconds"), ["_bucket"; 3]);
    assert_eq!(suffixes("negative_seconds"), ["_bucket"; 3]);
    assert_eq!(suffixes("negative_bound"), ["_bucket"; 3]);
    assert_eq!(suffixes("fine_seconds"), ["_bucket", "_bucket", "_bucket", "_sum", "_count"]);
    // 0.0.4 has no such rule: every series keeps its `_sum` and `_count`.
    let text = scrape(Format::Prometheus, &registry);
    assert!(text.contains("nan_seconds_sum NaN\nnan_seconds_count 1\n"), "{text}");
    assert!(text.contains("negative_seconds_sum -5.0\n"), "{text}");
}

#[test]
fn hostile_registry_round_trips_in_both_formats() {
    static JOBS: Counter = Counter::new();
    static TEMP: GaugeF64 = GaugeF64::new();
    static DEPTH: Gauge = Gauge::new();
    static BY_PATH: Family<Counter, [&'static str; 2], 8> = Family::new(["path", "code"], ());
    static LATENCY: Histogram<3> = Histogram::new(&[0.005, 0.5, 1e21]);
    let registry: Registry<'_, 16> = Registry::new();
    registry.register("jobs_total", "Jobs \"done\" \\ so far\nsecond line", &JOBS).unwrap();
    registry.register("temp_celsius", "", &TEMP).unwrap();
    registry.register("queue_depth", "  leading blanks", &DEPTH).unwrap();
    registry.register("requests_total", "", &BY_PATH).unwrap();
    registry.register("latency_seconds", "ü", &LATENCY).unwrap();
    JOBS.inc_by(u64::MAX);
    TEMP.set(f64::NEG_INFINITY);
    DEPTH.set(i64::MIN);
    BY_PATH.get_or_create(["/a\"b\\c\nd", ""]).unwrap().inc();
    BY_PATH.get_or_create(["日本", "200"]).unwrap().inc_by(2);
    LATENCY.observe(0.1);
    LATENCY.observe(f64::INFINITY);

    let om = scrape(Format::OpenMetrics, &registry);
    assert_eq!(
        samples(Format::OpenMetrics, &om),
        [
            s("jobs", "_total", "", "18446744073709551615"),
            s("temp_celsius", "", "", "-Inf"),
            s("queue_depth", "", "", "-9223372036854775808"),
            s("requests", "_total", "path=/a\"b\\c\nd,code=", "1"),
            s("requests", "_total", "path=日本,code=200", "2"),
            s("latency_seconds", "_bucket", "le=0.005", "0"),
            s("latency_seconds", "_bucket", "le=0.5", "1"),
            s("latency_seconds", "_bucket", "le=1e21", "1"),
            s("latency_seconds", "_bucket", "le=+Inf", "2"),
            s("latency_seconds", "_sum", "", "+Inf"),
            s("latency_seconds", "_count", "", "2"),
        ]
    );
    let mut helps = Parser::new(Format::OpenMetrics, &om).filter_map(|e| match e.unwrap() {
        Event::Help { family, help } => Some((family, help.to_string())),
        _ => None,
    });
    assert_eq!(helps.next(), Some(("jobs", "Jobs \"done\" \\ so far\nsecond line".into())));
    assert_eq!(helps.next(), Some(("queue_depth", "  leading blanks".into())));

    let text = scrape(Format::Prometheus, &registry);
    let got = samples(Format::Prometheus, &text);
    assert_eq!(got[0], s("jobs_total", "", "", "18446744073709551615"));
    assert_eq!(got[3], s("requests_total", "", "path=/a\"b\\c\nd,code=", "1"));
    let types: Vec<(&str, FamilyType)> = Parser::new(Format::Prometheus, &text)
        .filter_map(|e| match e.unwrap() {
            Event::Type { family, family_type } => Some((family, family_type)),
            _ => None,
        })
        .collect();
    assert_eq!(types[0], ("jobs_total", FamilyType::Counter));
    assert_eq!(types[4], ("latency_seconds", FamilyType::Histogram));
}

#[test]
fn chunked_scrape_is_valid_chunk_by_chunk_concatenated() {
    static FAMILY: Family<Gauge, [&'static str; 1], 32> = Family::new(["id"], ());
    let registry: Registry<'_, 16> = Registry::new();
    registry.register("items", "Items.", &FAMILY).unwrap();
    const IDS: [&str; 32] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
        "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
    ];
    for (i, id) in IDS.iter().enumerate() {
        FAMILY.get_or_create([id]).unwrap().set(i as i64);
    }
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let mut scrape = Scrape::new(format, &registry);
        let (mut out, mut buf) = (Vec::new(), [0u8; 40]);
        loop {
            match scrape.fill(&mut buf).unwrap() {
                0 => break,
                n => out.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(validate(format, &text).unwrap().samples, 32, "{text}");
    }
}

/// Hand-written OpenMetrics inputs: `(text, whether valid)`.
const OPENMETRICS_CASES: &[(&str, bool)] = &[
    ("# EOF\n", true),
    ("a 1\n", false),
    ("a 1\n# EOF\n\n", false),
    ("# EOF\na 1\n", false),
    ("# TYPE c counter\nc_total 1\n# EOF\n", true),
    ("# TYPE c counter\nc_total -1\n# EOF\n", false),
    ("# TYPE c counter\nc_total NaN\n# EOF\n", false),
    ("# TYPE c counter\nc_total 1 # {id=\"x\"} 2\n# EOF\n", true),
    ("# HELP a x\\\"y\\\\z\\n\n# EOF\n", true),
    ("a{l=\"x\\\"y\\\\z\\n\"} 1\n# EOF\n", true),
    ("a{l=\"v\",l=\"w\"} 1\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.0\nh_count 2\n# EOF\n", true),
    ("# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_sum 3.0\nh_count 1\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_bucket{le=\"1.0\"} 1\nh_sum 3.0\nh_count 2\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"1.0\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.0\nh_count 2\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.0\nh_count 3\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum NaN\nh_count 2\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum -1\nh_count 2\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\n# EOF\n", true),
    ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n# EOF\n", false),
    ("# TYPE h histogram\nh_bucket{le=\"Inf\"} 2\n# EOF\n", false),
    ("# TYPE a gauge\na 1\n# TYPE a gauge\n# EOF\n", false),
    ("a 1\n# TYPE a gauge\n# EOF\n", false),
    ("# TYPE a gauge\n# TYPE a gauge\na 1\n# EOF\n", false),
    ("# TYPE a untyped\n# EOF\n", false),
    ("# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n# EOF\n", true),
    ("# TYPE a_seconds gauge\n# UNIT a_seconds bytes\na_seconds 1\n# EOF\n", false),
    ("a{a=\"1\"} 1\na{a=\"2\"} 1\na{a=\"1\"} 1\n# EOF\n", false),
    ("a +Inf\nb -Inf\nc NaN\n# EOF\n", true),
    ("a{__name__=\"b\"} 1\n# EOF\n", false),
    ("a{_x=\"b\"} 1\n# EOF\n", true),
    ("# TYPE c counter\nc_total{a=\"1\"} 1\nc_total{a=\"2\"} 1\nc_created{a=\"1\"} 1\n# EOF\n", false),
    ("a_total 1\n# TYPE a counter\n# EOF\n", false),
    ("# TYPE s summary\ns{quantile=\"0.5\"} -1\n# EOF\n", false),
    ("# TYPE h histogram\nh_count 1\nh_sum 1\nh_bucket{le=\"+Inf\"} 1\n# EOF\n", true),
    ("# TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n", true),
    ("# TYPE st stateset\nst{st=\"a\"} 2\n# EOF\n", false),
    ("# TYPE g gaugehistogram\ng_bucket{le=\"-1\"} 0\ng_bucket{le=\"+Inf\"} 1\ng_gsum -1\ng_gcount 1\n# EOF", true),
    ("# TYPE g gaugehistogram\ng_bucket{le=\"+Inf\"} 1\ng_gsum -1\ng_gcount 1\n# EOF\n", false),
    ("# TYPE c counter\nc_total 1 # {id=\"x\"} 1 1.5\n# EOF\n", true),
    ("# TYPE g gauge\ng 1 # {id=\"x\"} 1\n# EOF\n", false),
];

fn python_verdicts(cases: &[(&str, bool)]) -> Vec<bool> {
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for text in json.load(sys.stdin):
    try:
        list(text_string_to_metric_families(text))
        out.append(True)
    except Exception:
        out.append(False)
print(json.dumps(out))
"#;
    let input = format!("[{}]", cases.iter().map(|(t, _)| json_string(t)).collect::<Vec<_>>().join(","));
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client is needed (pip install prometheus_client)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python failed: is prometheus_client installed?");
    let line = String::from_utf8(output.stdout).unwrap();
    line.trim().trim_matches(['[', ']']).split(", ").map(|v| v == "true").collect()
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn openmetrics_verdicts_match_python_prometheus_client() {
    let python = python_verdicts(OPENMETRICS_CASES);
    assert_eq!(python.len(), OPENMETRICS_CASES.len());
    for ((text, want), py) in OPENMETRICS_CASES.iter().zip(python) {
        let ours = validate(Format::OpenMetrics, text);
        assert_eq!(ours.is_ok(), *want, "ours: {ours:?} for {text:?}");
        assert_eq!(py, *want, "python disagrees with the expected verdict for {text:?}");
    }
}

#[test]
fn errors_name_the_line_and_what_is_wrong() {
    let e = validate(Format::OpenMetrics, "# TYPE c counter\nc 1\n# EOF\n").unwrap_err();
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::InvalidSampleName));
    assert_eq!(e.to_string(), "line 2: sample name not allowed for the family's type");
}
