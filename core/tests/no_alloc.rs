//! Proves the core allocates nothing: state updates, increments, observations, family
//! insertion, registration, full encodes in both formats, and HTTP responses with their
//! bodies run under a global allocator that counts every allocation.
//!
//! `harness = false`: the test runs alone on the main thread, so nothing else allocates
//! while the counter is armed. It answers the test runners' `--list` (cargo-nextest lists a
//! binary's tests first), by hand rather than through libtest-mimic: one test needs no
//! argument parser in every cold build.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use diag_core::http::{Request, Service};
use diag_core::{Collect, Counter, DEFAULT_BUCKETS, Family, Format, GaugeF64, Histogram, Registry, Scrape, StateTable};

struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static STATES: StateTable<8> = StateTable::new();
static HITS: Counter = Counter::new();
static TEMPERATURE: GaugeF64 = GaugeF64::new();
static REQUESTS: Family<Counter, [&'static str; 2], 64> = Family::new(["method", "code"], ());
static LATENCY: Family<Histogram<11>, [&'static str; 1], 8> = Family::new(["route"], &DEFAULT_BUCKETS);
static REGISTRY: Registry<'static, 8> = Registry::new();

/// Runs `f` with the counter armed and returns how many allocations it made.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    f();
    ARMED.store(false, Ordering::Relaxed);
    ALLOCATIONS.load(Ordering::Relaxed)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // The terse listing: one `name: test` line; none of its tests is ignored.
        if !args.iter().any(|a| a == "--ignored") {
            println!("no_alloc: test");
        }
        return;
    }
    let mut chunk = [0u8; 2048];
    let mut failures = Vec::new();
    let mut check = |what: &str, n: usize| {
        if n != 0 {
            failures.push(format!("{what}: {n} allocations"));
        }
    };

    check(
        "state updates",
        allocations(|| {
            STATES.expect("auth").unwrap();
            // Names that are not literals and not `'static` are copied in, without allocating.
            let stack = *b"caf\xc3\xa9/my db";
            STATES.heartbeat_ok(core::str::from_utf8(&stack).unwrap(), 0).unwrap();
            assert!(STATES.expect("bad\nname").is_err());
            for t in 0..1000 {
                STATES.heartbeat_ok("auth", t).unwrap();
                STATES.heartbeat_failed("db", t).unwrap();
                STATES.heartbeat_ok("db", t + 1).unwrap();
            }
            STATES.state();
        }),
    );
    check(
        "registration",
        allocations(|| {
            REGISTRY.register("hits_total", "Hits.", &HITS).unwrap();
            REGISTRY.register("temperature_celsius", "Temperature.", &TEMPERATURE).unwrap();
            REGISTRY.register("requests_total", "Requests.", &REQUESTS).unwrap();
            REGISTRY.register("latency_seconds", "Latency.", &LATENCY).unwrap();
        }),
    );
    check(
        "increments, observations and family inserts",
        allocations(|| {
            for i in 0..10_000u32 {
                HITS.inc();
                TEMPERATURE.add(0.5);
                let code = ["200", "404", "500"][(i % 3) as usize];
                REQUESTS.get_or_create(["GET", code]).unwrap().inc();
                LATENCY.get_or_create(["/a"]).unwrap().observe(f64::from(i) / 1000.0);
            }
        }),
    );
    let formats = [
        Format::Prometheus,
        Format::OpenMetrics,
        #[cfg(feature = "protobuf")]
        Format::Protobuf,
    ];
    for format in formats {
        let mut total = 0;
        check(
            "a full encode",
            allocations(|| {
                let mut scrape = Scrape::new(format, &REGISTRY);
                while let n @ 1.. = scrape.fill(&mut chunk).unwrap() {
                    total += n;
                }
            }),
        );
        assert!(total > 400, "the encode wrote {total} bytes");
    }
    let sources: [&dyn Collect; 1] = [&REGISTRY];
    let service = Service::new(&STATES, &sources, 7);
    for target in [
        "/healthz",
        "/readyz",
        "/readyz?verbose",
        "/readyz/auth",
        "/readyz/caf%C3%A9%2Fmy%20db",
        "/readyz/caf%C3",
        "/metrics",
        "/nope",
    ] {
        check(
            target,
            allocations(|| {
                let mut body = service.respond(&Request::get(target)).into_body();
                while body.fill(&mut chunk).unwrap() > 0 {}
            }),
        );
    }

    // The decoded name was found (200), the malformed one refused (400).
    assert_eq!(service.respond(&Request::get("/readyz/caf%C3%A9%2Fmy%20db")).status(), 200);
    assert_eq!(service.respond(&Request::get("/readyz/caf%C3")).status(), 400);

    if failures.is_empty() {
        println!("no_alloc: 1 passed, 0 failed");
    } else {
        println!("no_alloc: 0 passed, 1 failed");
        for f in &failures {
            eprintln!("allocated during {f}");
        }
        std::process::exit(1);
    }
}
