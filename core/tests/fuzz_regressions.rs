//! Regression tests for what the fuzz targets in `fuzz/` found, each named after what broke.

use diag_core::{State, StateTable};

/// The recovery start is stored in 62 bits and saturated; `now_ms` was not, so a success at a
/// timestamp beyond 2^62 saw a huge difference to the saturated start and ended the recovery
/// at once, although no time had passed since the component degraded and recovered.
#[test]
fn recovery_start_beyond_62_bits_does_not_end_recovery_early() {
    let t: StateTable<1> = StateTable::new();
    let late = 17_868_031_107_658_676_215; // > 2^62, from the fuzz artifact
    t.heartbeat_failed("proxy", late).unwrap();
    assert_eq!(t.heartbeat_ok("proxy", late), Ok(State::Recovering));
    assert_eq!(t.heartbeat_ok("proxy", late), Ok(State::Recovering), "no time has passed");
    assert_eq!(t.heartbeat_ok("proxy", u64::MAX), Ok(State::Recovering), "saturated: no time passes");
    // Below the limit the window works as always.
    let t: StateTable<1> = StateTable::new();
    let start = (u64::MAX >> 2) - 20_000;
    t.heartbeat_failed("proxy", start).unwrap();
    t.heartbeat_ok("proxy", start).unwrap();
    assert_eq!(t.heartbeat_ok("proxy", start + 10_000), Ok(State::Recovering));
    assert_eq!(t.heartbeat_ok("proxy", start + 10_001), Ok(State::Ok));
}

/// `Service::respond` promises HEAD an empty body, but a HEAD of an unknown path got the 404
/// body (the 404 answer returned before the HEAD handling).
#[test]
fn head_of_unknown_path_has_no_body() {
    use diag_core::http::{Request, Service};
    let states: StateTable<1> = StateTable::new();
    let service = Service::new(&states, &[], 1);
    for target in ["", "/nope", "/debug/pprof/heap"] {
        let get = service.respond(&Request::get(target));
        let head = service.respond(&Request { method: "HEAD", ..Request::get(target) });
        assert_eq!((head.status(), head.content_length()), (404, get.content_length()), "{target:?}");
        let mut buf = [0u8; 64];
        assert_eq!(head.into_body().fill(&mut buf), Ok(0), "HEAD {target:?} has a body");
    }
}

/// A collector registered in a `Registry` numbers its entries from 0, which overwrote the
/// registry's own entry in the resume position: a chunk boundary inside such a collector made
/// the next chunk restart the scrape from the top (an endless `/metrics` stream) or skip the
/// rest of the registry (lost series).
#[test]
fn collector_registered_in_a_registry_resumes_across_chunks() {
    use diag_core::{Collect, Counter, Desc, Encoder, Format, Labels, MetricType, Registry, Scrape, Stop, Value};

    /// Two families in entries of its own, and a sample outside any entry.
    struct Nested;
    impl Collect for Nested {
        fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
            let loose = Desc { name: "loose", help: "", metric_type: MetricType::Gauge };
            enc.header(&loose)?;
            enc.sample(&loose, &Labels::EMPTY, Value::I64(-1))?;
            for (i, name) in ["nested_a", "nested_b"].into_iter().enumerate() {
                enc.entry(i, |enc| {
                    let desc =
                        Desc { name, help: "A family in a registered collector.", metric_type: MetricType::Gauge };
                    enc.header(&desc)?;
                    for v in 0..3 {
                        enc.sample(&desc, &Labels::new(&["v"], &[["0", "1", "2"][v]]), Value::I64(v as i64))?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        }
    }
    static FIRST: Counter = Counter::new();
    static LAST: Counter = Counter::new();
    let registry: Registry<'_, 4> = Registry::new();
    registry.register("first_total", "Before the collector.", &FIRST).unwrap();
    registry.register_collector(&Nested).unwrap();
    registry.register("last_total", "After the collector.", &LAST).unwrap();
    let other: Registry<'_, 1> = Registry::new();
    other.register_collector(&Nested).unwrap();
    let sources: [&dyn Collect; 2] = [&registry, &other];

    for format in [Format::Prometheus, Format::OpenMetrics] {
        let mut whole = vec![0u8; 8192];
        let n = Scrape::new(format, &sources).fill(&mut whole).unwrap();
        whole.truncate(n);
        for size in 100..300 {
            let mut scrape = Scrape::new(format, &sources);
            let (mut out, mut buf) = (Vec::new(), vec![0u8; size]);
            for _ in 0..1000 {
                match scrape.fill(&mut buf).unwrap() {
                    0 => break,
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
            assert!(scrape.is_done(), "{format:?}: no end with {size}-byte chunks");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&whole),
                "{format:?}, {size}-byte chunks"
            );
        }
    }
}
