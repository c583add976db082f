//! What the frontends' tests of serving from an application's own server share: a registry
//! with many labelled series, a ready state table, and limits that stream a scrape in small
//! chunks.

use diag_core::http::Limits;
use diag_core::{Collect, Counter, Family, Registry, StateTable};

/// Series in [`labelled_sources`].
pub const PATH_SERIES: usize = 300;

static PATHS: Family<Counter, [&'static str; 1], 512> = Family::new(["path"], ());
static REGISTRY: Registry<'static, 4> = Registry::new();
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

/// A registry holding `paths_total{path="/a/fairly/long/request/path/<i>"}` for
/// [`PATH_SERIES`] paths, each at 1 (registered on first call).
pub fn labelled_sources() -> &'static [&'static dyn Collect] {
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| {
        REGISTRY.register("paths_total", "Requests by path.", &PATHS).expect("register paths_total");
        for i in 0..PATH_SERIES {
            PATHS.get_or_create([&format!("/a/fairly/long/request/path/{i}")]).expect("capacity").inc();
        }
    });
    &SOURCES
}

/// A state table whose one component, `app`, is ok.
pub fn ready_states() -> StateTable<4> {
    let states = StateTable::<4>::new();
    states.heartbeat_ok("app", 0).expect("a free component slot");
    states
}

/// The default limits with every chunk 1 KiB (no pool of larger ones): a scrape of
/// [`labelled_sources`] streams in many chunks.
pub fn small_chunks() -> Limits {
    let mut limits = Limits::DEFAULT;
    limits.chunk_bytes = 1024;
    limits.chunk_pool_bytes = 0;
    limits
}

/// The frontends' server tests' limits: short timeouts (400 ms for a head, 1 s idle), three
/// connections, 1 KiB chunks with a pool of one 2 MiB chunk, no shutdown delay.
pub fn tight_limits() -> Limits {
    let mut limits = Limits::DEFAULT;
    limits.header_timeout_ms = 400;
    limits.idle_timeout_ms = 1_000;
    limits.max_connections = 3;
    limits.chunk_bytes = 1024;
    limits.chunk_pool_bytes = 2 * 1024 * 1024;
    limits.shutdown_delay_ms = 0;
    limits
}
