//! `#[derive(LabelSet)]` and `#[derive(LabelValue)]` (feature `derive`): a service labelling
//! requests by a typed method, a status and a user known only at run time, scraped as
//! Prometheus text with the label names the struct gives, in field order, values escaped.

use diag_core::encoding::parse::{Event, Parser, validate};
use diag_core::{Counter, Family, Format, LabelSet, LabelValue, Overflow, Registry, Scrape, SeriesError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, LabelValue)]
#[diag(rename_all = "UPPERCASE")]
enum Method {
    Get,
    Post,
    #[diag(rename = "M-SEARCH")]
    MSearch,
}

#[derive(Debug, Clone, Copy, LabelSet)]
struct Request<'a> {
    method: Method,
    #[diag(rename = "code")]
    status: u16,
    user: &'a str,
}

fn scrape(registry: &Registry<'_, 8>) -> String {
    let mut buf = vec![0u8; 16 * 1024];
    let n = Scrape::new(Format::Prometheus, registry).fill(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// Every live series of `family`: label text and count, sorted.
fn series<S: LabelSet, const N: usize, const B: usize>(family: &Family<Counter, S, N, B>) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    family.for_each(|labels, c| out.push((labels.text().to_owned(), c.get())));
    out.sort();
    out
}

/// The service's handler: counts one request; a runtime `&str` goes straight into the key.
fn handle(family: &Family<Counter, Request<'static>, 16>, method: Method, status: u16, user: &str) {
    family.get_or_create(Request { method, status, user }).unwrap().inc();
}

#[test]
fn scrape_shows_renamed_labels_in_field_order_with_escaped_runtime_values() {
    static REQUESTS: Family<Counter, Request<'static>, 16> = Family::typed(());
    let registry: Registry<'_, 8> = Registry::new();
    registry.register("app_requests_total", "Requests served.", &REQUESTS).unwrap();
    assert_eq!(REQUESTS.label_names(), ["method", "code", "user"]);

    // Users as a URL would give them, each a `String` dropped before the scrape.
    for _ in 0..2 {
        let user = String::from("ada \"the\" admin\\root\nx");
        handle(&REQUESTS, Method::Get, 200, &user);
    }
    let bob = format!("b{}", "ob");
    handle(&REQUESTS, Method::Post, 201, &bob);
    handle(&REQUESTS, Method::MSearch, 404, &bob);
    drop(bob);

    let text = scrape(&registry);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("app_requests_total{")).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            r#"app_requests_total{method="GET",code="200",user="ada \"the\" admin\\root\nx"} 2"#,
            r#"app_requests_total{method="M-SEARCH",code="404",user="bob"} 1"#,
            r#"app_requests_total{method="POST",code="201",user="bob"} 1"#,
        ],
        "{text}"
    );

    // The strict parser reads it back, values unescaped to what the handler was given.
    validate(Format::Prometheus, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ada = Parser::new(Format::Prometheus, &text)
        .filter_map(|e| match e.unwrap() {
            Event::Sample { family: "app_requests_total", sample, .. } if sample.value.as_f64() == 2.0 => Some(sample),
            _ => None,
        })
        .next()
        .expect("ada's sample");
    let labels: Vec<_> = ada.labels.iter().collect();
    assert_eq!(labels.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["method", "code", "user"]);
    assert!(labels[2].1.eq_str("ada \"the\" admin\\root\nx"));
}

#[test]
fn typed_lookup_finds_removes_and_matches_the_positional_form() {
    let typed: Family<Counter, Request<'static>, 16> = Family::typed(());
    let positional: Family<Counter, (Method, u16, &'static str), 16> = Family::new(["method", "code", "user"], ());
    for (method, status, user) in [(Method::Get, 200, "a\"b"), (Method::Post, 500, "c"), (Method::Get, 200, "a\"b")] {
        let user = user.to_owned();
        typed.get_or_create(Request { method, status, user: &user }).unwrap().inc();
        positional.get_or_create((method, status, user.as_str())).unwrap().inc();
    }
    let from_typed = series(&typed);
    let from_positional = series(&positional);
    assert_eq!(from_typed, from_positional);
    assert_eq!(from_typed[0], (r#"method="GET",code="200",user="a\"b""#.to_owned(), 2));

    let key = String::from("a\"b");
    let found = typed.get(Request { method: Method::Get, status: 200, user: &key }).unwrap();
    assert_eq!((found.get(), found.is_overflow()), (2, false));
    drop(found);
    assert!(typed.get(Request { method: Method::Post, status: 200, user: &key }).is_none());
    assert!(typed.remove(Request { method: Method::Get, status: 200, user: &key }));
    assert!(typed.get(Request { method: Method::Get, status: 200, user: &key }).is_none());
    assert_eq!(typed.len(), 1);
}

#[test]
fn a_label_text_beyond_the_family_capacity_is_an_error_never_truncated() {
    // `method="GET",code="200",user=""` is 31 bytes: room for a 4-byte user and no more.
    let family: Family<Counter, Request<'static>, 4, 35> = Family::typed(()).with_overflow(Overflow::Error);
    let long = "x".repeat(5);
    assert_eq!(
        family.get_or_create(Request { method: Method::Get, status: 200, user: &long }).unwrap_err(),
        SeriesError::TooLong { capacity: 35 }
    );
    family.get_or_create(Request { method: Method::Get, status: 200, user: &long[..4] }).unwrap().inc();
    assert_eq!(family.refused(), 1);
    assert_eq!(family.len(), 1);
}

/// What a facade that re-exports the core looks like to the derives.
mod facade {
    pub(crate) use diag_core::*;
}

#[derive(Clone, Copy, LabelValue)]
#[diag(crate = "crate::facade", rename_all = "kebab-case")]
enum Queue {
    HighPriority,
    Bulk,
}

/// Several lifetimes, a raw identifier, no field renamed, paths through the facade.
#[derive(LabelSet)]
#[diag(crate = "crate::facade")]
struct Job<'q, 't> {
    queue: Queue,
    r#type: &'t str,
    tenant: &'q str,
    retried: bool,
}

#[derive(LabelSet)]
struct NoLabels {}

#[test]
fn several_lifetimes_raw_names_a_facade_path_and_no_labels() {
    let jobs: Family<Counter, Job<'static, 'static>, 8, 128> = Family::typed(());
    assert_eq!(jobs.label_names(), ["queue", "type", "tenant", "retried"]);
    let (kind, tenant) = (String::from("resize"), String::from("acme"));
    jobs.get_or_create(Job { queue: Queue::HighPriority, r#type: &kind, tenant: &tenant, retried: false })
        .unwrap()
        .inc_by(3);
    jobs.get_or_create(Job { queue: Queue::Bulk, r#type: "x", tenant: "y", retried: true }).unwrap().inc();
    assert_eq!(
        series(&jobs),
        [
            (r#"queue="bulk",type="x",tenant="y",retried="true""#.to_owned(), 1),
            (r#"queue="high-priority",type="resize",tenant="acme",retried="false""#.to_owned(), 3),
        ]
    );

    let plain: Family<Counter, NoLabels, 2> = Family::typed(());
    plain.get_or_create(NoLabels {}).unwrap().inc();
    let registry: Registry<'_, 8> = Registry::new();
    registry.register("plain_total", "", &plain).unwrap();
    registry.register("jobs_total", "", &jobs).unwrap();
    let text = scrape(&registry);
    assert!(text.contains("\nplain_total 1\n"), "{text}");
    assert!(
        text.contains("\njobs_total{queue=\"high-priority\",type=\"resize\",tenant=\"acme\",retried=\"false\"} 3\n"),
        "{text}"
    );
}
