//! Helpers of the socket-level tests: a diag-smol server run by one runtime on its own
//! thread, and blocking std clients, so the client side depends on no runtime at all.

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use async_io::Timer;
use diag_core::http::{Limits, Service};
use diag_core::{Collect, Counter, Family, Registry, StateTable};
use diag_smol::RouteBody;
use diag_smol::{DiagBody, RouteFuture, Routes, Server, SmolMetrics};
use diag_tests::fixtures::tight_limits;

/// The runtime that drives the server.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Runtime {
    /// `serve` under `smol::block_on`.
    Smol,
    /// `serve` under `async_std::task::block_on`.
    AsyncStd,
    /// `serve_spawning` onto an `async_executor::Executor` run by two threads.
    SmolThreads,
    /// `serve_spawning` onto async-std's global executor (`async_std::task::spawn`).
    AsyncStdSpawn,
}

impl Runtime {
    pub(crate) fn block_on<F: Future>(self, future: F) -> F::Output {
        match self {
            Self::Smol | Self::SmolThreads => smol::block_on(future),
            Self::AsyncStd | Self::AsyncStdSpawn => async_std::task::block_on(future),
        }
    }

    /// Serves until `shutdown` completes and every connection has closed.
    fn serve(
        self,
        server: Server,
        listener: diag_smol::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        match self {
            Self::Smol | Self::AsyncStd => self.block_on(server.serve(listener, shutdown)),
            Self::AsyncStdSpawn => {
                self.block_on(server.serve_spawning(listener, shutdown, |c| drop(async_std::task::spawn(c))))
            }
            Self::SmolThreads => {
                let executor = std::sync::Arc::new(async_executor::Executor::new());
                let (done, finished) = async_channel::bounded::<()>(1);
                let workers: Vec<_> = (0..2)
                    .map(|_| {
                        let (executor, finished) = (executor.clone(), finished.clone());
                        std::thread::spawn(move || smol::block_on(executor.run(finished.recv())))
                    })
                    .collect();
                let served = self.block_on(server.serve_spawning(listener, shutdown, |c| executor.spawn(c).detach()));
                done.close();
                workers.into_iter().for_each(|w| drop(w.join()));
                served
            }
        }
    }
}

static PATHS: Family<Counter, [&'static str; 1], 2048> = Family::new(["path"], ());
static REGISTRY: Registry<'static, 4> = Registry::new();
static SOURCES: [&dyn Collect; 1] = [&REGISTRY];

/// Extra routes: `/hello` answers at once, `/slow` after 600 ms (longer than the header
/// timeout), both with an async-io timer so they run under either runtime.
struct Extra;

impl Routes for Extra {
    fn claims(&self, request: &hyper::Request<RouteBody>) -> bool {
        matches!(request.uri().path(), "/hello" | "/slow")
    }

    fn serve(&self, request: hyper::Request<RouteBody>) -> RouteFuture {
        let slow = request.uri().path() == "/slow";
        Box::pin(async move {
            if slow {
                Timer::after(Duration::from_millis(600)).await;
                return hyper::Response::new(DiagBody::full("slow\n"));
            }
            hyper::Response::new(DiagBody::full("hello\n"))
        })
    }
}

/// A server running on its own thread.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    /// A clone of the server serving (for `begin_shutdown` and its connection counts).
    pub(crate) server: Server,
    /// The gauges linked to it.
    pub(crate) metrics: SmolMetrics,
    /// The state table it owns (shared with the server's service).
    pub(crate) states: std::sync::Arc<StateTable<4>>,
    stop: async_channel::Sender<()>,
    thread: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Begins shutdown and returns the thread serving, which ends once drained.
    pub(crate) fn stop(self) -> JoinHandle<std::io::Result<()>> {
        self.stop.close();
        self.thread
    }

    /// The thread serving, without beginning shutdown.
    pub(crate) fn thread(self) -> JoinHandle<std::io::Result<()>> {
        self.thread
    }
}

/// Starts a server on 127.0.0.1 driven by `runtime`, with the test [`limits`].
pub(crate) fn start(runtime: Runtime) -> Running {
    start_with(runtime, tight_limits())
}

/// Starts a server on 127.0.0.1 driven by `runtime`, with `limits`; it owns its state table,
/// so that shutting it down leaves the other tests' servers ready.
pub(crate) fn start_with(runtime: Runtime, limits: Limits) -> Running {
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| {
        REGISTRY.register("paths_total", "Requests by path.", &PATHS).unwrap();
        for i in 0..2000 {
            let path = format!("/a/fairly/long/request/path/{i}");
            PATHS.get_or_create([&path]).unwrap().inc();
        }
    });
    let listener = diag_smol::TcpListener::try_from(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let states = std::sync::Arc::new(StateTable::<4>::new());
    states.heartbeat_ok("app", 0).unwrap();
    let metrics = SmolMetrics::new();
    let server = Server::owning(std::sync::Arc::clone(&states), |states| Service::new(&**states, &SOURCES, 99))
        .with_limits(limits)
        .with_routes(Extra)
        .with_metrics(&metrics);
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let serving = server.clone();
    let thread = std::thread::spawn(move || {
        runtime.serve(serving, listener, async move {
            let _ = stopped.recv().await;
        })
    });
    Running { addr, server, metrics, states, stop, thread }
}

/// A connected client that gives up reading after 10 s.
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

pub(crate) use diag_tests::exchange;

pub(crate) fn status_line(response: &[u8]) -> String {
    String::from_utf8_lossy(response).lines().next().unwrap_or("").to_owned()
}

pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Splits a response into its lower-cased head and its (de-chunked) body.
pub(crate) fn split(response: &[u8]) -> (String, Vec<u8>) {
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8(response[..at].to_vec()).unwrap().to_ascii_lowercase();
    // Nothing after the head: an answer to HEAD (or an empty body), whatever the framing says.
    let parsed = diag_tests::parse_response(response, response.len() == at).expect("a well-formed response");
    (head, parsed.body)
}

/// The sizes of the chunks of a chunked response.
pub(crate) fn chunk_sizes(response: &[u8]) -> Vec<usize> {
    diag_tests::parse_response(response, false).expect("a response").chunks
}
