//! What the frontends' tests of serving from an application's own server share: a registry
//! with many labelled series, a ready state table, and limits that stream a scrape in small
//! chunks; and, for the tests that hand a chosen registry to Prometheus or a parser, a
//! diag-tokio server of those sources ([`serve`]).

use std::net::SocketAddr;

use diag_core::http::{Limits, Service};
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

/// A diag-tokio server on 127.0.0.1 with a runtime of its own; stopped when dropped (also when
/// the test panics).
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<Box<dyn FnOnce()>>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// Serves `sources` (an empty state table, no shutdown delay) with `chunk_bytes` chunks and no
/// pool of larger ones, or the default chunks with `None`.
///
/// # Panics
/// When the runtime cannot start or the port cannot be bound.
pub fn serve(sources: &'static [&'static dyn Collect], chunk_bytes: Option<usize>) -> Served {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let mut limits = Limits::DEFAULT;
    limits.shutdown_delay_ms = 0;
    if let Some(bytes) = chunk_bytes {
        limits.chunk_bytes = bytes;
        limits.chunk_pool_bytes = 0;
    }
    let server = diag_tokio::Server::owning(StateTable::<2>::new(), |states| Service::new(states, sources, 7))
        .with_limits(limits);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(server.serve(listener, async {
        stopped.await.ok();
    }));
    Served {
        addr,
        stop: Some(Box::new(move || {
            let _ = stop.send(());
            let _ = runtime.block_on(task);
        })),
    }
}
