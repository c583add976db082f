//! `/metrics` scrapes per second over loopback on the large workload, measured with `wrk`.
//!
//! Each server runs on its own multi-threaded tokio runtime in a background thread; `wrk`
//! (Debian package `wrk`) drives it with keep-alive connections for a fixed time.
//! `DIAG_SERVE_ONLY=<part of a server's name>` measures only the servers whose name contains it
//! (for quick comparisons; the report then lacks the others).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::workload::{LARGE, PromClient};
use diag_bench_report::report::ServeResult;

/// How long `wrk` drives each server in each round.
pub const DURATION: Duration = Duration::from_secs(5);
/// Rounds: servers take turns, and each keeps its best round, so that a burst of load from
/// other processes on the machine does not decide the comparison.
pub const ROUNDS: usize = 2;
/// `wrk` connections (and 1 `wrk` thread: the machine has 2 cores).
pub const CONNECTIONS: usize = 4;

pub use diag_bench_report::rows::{CEILING, PEER};

/// A server running on a background runtime until dropped.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts `serve(listener, shutdown)` on a new multi-threaded runtime.
fn spawn<F, Fut>(serve: F) -> std::io::Result<Running>
where
    F: FnOnce(tokio::net::TcpListener, tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || rt.block_on(serve(listener, rx)));
    Ok(Running { addr, stop: Some(tx), thread: Some(thread) })
}

/// Starts `run(listener, shutdown)` on a new thread, with a bound loopback listener.
fn spawn_thread<F>(run: F) -> std::io::Result<Running>
where
    F: FnOnce(std::net::TcpListener, tokio::sync::oneshot::Receiver<()>) + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || run(listener, rx));
    Ok(Running { addr, stop: Some(tx), thread: Some(thread) })
}

/// How diag-smol runs in the serve benchmark.
#[derive(Clone, Copy)]
enum SmolMode {
    /// `serve` under `smol::block_on`: every connection on that one thread.
    OneThread,
    /// `serve_spawning` onto an `async_executor::Executor` run by two threads, smol's pattern:
    /// the thread that runs the accept loop (inside `executor.run`) and one more.
    TwoThreads,
    /// `serve_spawning` onto async-std's global executor, under `async_std::task::block_on`.
    AsyncStdSpawn,
}

/// diag's smol frontend, run as `mode` says.
fn serve_diag_smol(
    listener: std::net::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
    registry: &'static dyn diag_core::Collect,
    mode: SmolMode,
) {
    let Ok(listener) = diag_smol::TcpListener::try_from(listener) else { return };
    // No drain delay: the bench stops servers between runs.
    let mut limits = diag_core::http::Limits::DEFAULT;
    limits.shutdown_delay_ms = 0;
    let server = diag_smol::Server::new(diag_service(registry)).with_limits(limits);
    let shutdown = async move {
        let _ = stop.await;
    };
    let served = match mode {
        SmolMode::OneThread => smol::block_on(server.serve(listener, shutdown)),
        SmolMode::AsyncStdSpawn => async_std::task::block_on(server.serve_spawning(listener, shutdown, |c| {
            drop(async_std::task::spawn(c));
        })),
        SmolMode::TwoThreads => {
            let executor = Arc::new(async_executor::Executor::new());
            let (done, finished) = async_channel::bounded::<()>(1);
            let workers: Vec<_> = (0..1)
                .map(|_| {
                    let (executor, finished) = (Arc::clone(&executor), finished.clone());
                    std::thread::spawn(move || smol::block_on(executor.run(finished.recv())))
                })
                .collect();
            let served =
                smol::block_on(executor.run(server.serve_spawning(listener, shutdown, |c| executor.spawn(c).detach())));
            done.close();
            workers.into_iter().for_each(|w| drop(w.join()));
            served
        }
    };
    if let Err(e) = served {
        eprintln!("diag-smol: {e}");
    }
}

/// The diag service over `registry`, as a frontend serves it.
fn diag_service(registry: &'static dyn diag_core::Collect) -> diag_core::http::Service<'static> {
    let table: &'static diag_core::StateTable<4> = Box::leak(Box::new(diag_core::StateTable::new()));
    let sources: &'static [&'static dyn diag_core::Collect] = Box::leak(Box::new([registry]));
    diag_core::http::Service::new(table, sources, std::process::id())
}

/// prometheus-client served the way its examples do: hyper 1 over tokio, encoding the
/// registry into a fresh `String` per request. With `prebuilt`, the body is that string encoded
/// once, beforehand, and every request gets a reference to it: no encoding at all, the most
/// any server can do on this machine with responses this large (the ceiling row).
async fn serve_prom_client(
    listener: tokio::net::TcpListener,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    registry: Arc<prometheus_client::registry::Registry>,
    prebuilt: bool,
) {
    let prebuilt = prebuilt.then(|| {
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &registry).map(|()| hyper::body::Bytes::from(body))
    });
    use http_body_util::Full;
    use hyper::body::Bytes;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let registry = registry.clone();
        let prebuilt = prebuilt.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
                let registry = registry.clone();
                let prebuilt = prebuilt.clone();
                async move {
                    let (status, body) = match prebuilt {
                        Some(Ok(body)) => (200, body),
                        Some(Err(_)) => (500, Bytes::new()),
                        None => {
                            let mut body = String::new();
                            match prometheus_client::encoding::text::encode(&mut body, &registry) {
                                Ok(()) => (200, Bytes::from(body)),
                                Err(_) => (500, Bytes::new()),
                            }
                        }
                    };
                    let response = hyper::Response::builder()
                        .status(status)
                        .header(
                            hyper::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )
                        .body(Full::new(body));
                    Ok::<_, Infallible>(response.unwrap_or_default())
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
        });
    }
}

/// diag's tokio frontend serving the same workload (registry behind a default `Service`),
/// with the default [`Limits`](diag_core::http::Limits) or, unless `pool`, without the pool
/// of larger chunks.
async fn serve_diag_tokio(
    listener: tokio::net::TcpListener,
    stop: tokio::sync::oneshot::Receiver<()>,
    registry: &'static dyn diag_core::Collect,
    pool: bool,
) {
    let service = diag_service(registry);
    let shutdown = async move {
        let _ = stop.await;
    };
    // No drain delay: the bench stops servers between runs.
    let mut limits = diag_core::http::Limits::DEFAULT;
    limits.shutdown_delay_ms = 0;
    if !pool {
        limits.chunk_pool_bytes = 0;
    }
    if let Err(e) = diag_tokio::Server::new(service).with_limits(limits).serve(listener, shutdown).await {
        eprintln!("diag-tokio: {e}");
    }
}

/// Fetches `/metrics` once and returns the body size, to check the server answers.
fn probe(addr: SocketAddr) -> std::io::Result<usize> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |p| p + 4);
    if !out.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "/metrics answered {}",
            String::from_utf8_lossy(&out[..head_end.min(64)])
        )));
    }
    Ok(out.len() - head_end)
}

/// Runs `wrk` against `addr` and returns requests per second.
///
/// # Errors
/// When `wrk` cannot run or prints no `Requests/sec` line, or saw errors.
pub fn wrk(addr: SocketAddr) -> Result<f64, String> {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{}s", DURATION.as_secs()),
            "--timeout",
            "10s",
            &format!("http://{addr}/metrics"),
        ])
        .output()
        .map_err(|e| format!("wrk: {e} (install it: apt-get install -y wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(format!("wrk saw errors:\n{text}"));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))
}

fn measure(server: &str, running: std::io::Result<Running>) -> Result<ServeResult, String> {
    let running = running.map_err(|e| format!("{server}: {e}"))?;
    let bytes = probe(running.addr).map_err(|e| format!("{server}: {e}"))?;
    let rps = wrk(running.addr).map_err(|e| format!("{server}: {e}"))?;
    eprintln!("serve {server}: {rps:.0} scrapes/s, {bytes} bytes each");
    Ok(ServeResult { server: server.to_owned(), rps, bytes })
}

/// Keeps the better of two rounds of one server.
fn best(a: Option<ServeResult>, b: ServeResult) -> Option<ServeResult> {
    match a {
        Some(a) if a.rps >= b.rps => Some(a),
        _ => Some(b),
    }
}

/// Measures every server; returns the results and a note on how (or why not) they were taken.
pub fn run_all() -> (Vec<ServeResult>, String) {
    let mut results = Vec::new();
    let mut problems = Vec::new();
    let registry = Arc::new(PromClient::new(LARGE).into_registry());
    let ceiling_registry = Arc::clone(&registry);
    let diag = crate::workload::Diag::new(LARGE).registry();
    type Start = Box<dyn Fn() -> std::io::Result<Running>>;
    let candidates: Vec<(&str, Start)> = vec![
        ("diag-tokio (default limits)", Box::new(move || spawn(move |l, stop| serve_diag_tokio(l, stop, diag, true)))),
        (
            "diag-tokio (64 KiB chunks only: chunk_pool_bytes 0)",
            Box::new(move || spawn(move |l, stop| serve_diag_tokio(l, stop, diag, false))),
        ),
        (
            "diag-smol on smol (serve, one thread)",
            Box::new(move || spawn_thread(move |l, stop| serve_diag_smol(l, stop, diag, SmolMode::OneThread))),
        ),
        (
            "diag-smol on smol (serve_spawning, executor on 2 threads)",
            Box::new(move || spawn_thread(move |l, stop| serve_diag_smol(l, stop, diag, SmolMode::TwoThreads))),
        ),
        (
            "diag-smol on async-std (serve_spawning, task::spawn)",
            Box::new(move || spawn_thread(move |l, stop| serve_diag_smol(l, stop, diag, SmolMode::AsyncStdSpawn))),
        ),
        (
            PEER,
            Box::new(move || {
                let registry = Arc::clone(&registry);
                spawn(move |l, stop| serve_prom_client(l, stop, registry, false))
            }),
        ),
        (
            CEILING,
            Box::new(move || {
                let registry = Arc::clone(&ceiling_registry);
                spawn(move |l, stop| serve_prom_client(l, stop, registry, true))
            }),
        ),
    ];
    // One server at a time: each is stopped (dropped) before the next starts.
    let mut best_of: Vec<Option<ServeResult>> = vec![None; candidates.len()];
    for _ in 0..ROUNDS {
        for ((name, start), kept) in candidates.iter().zip(&mut best_of) {
            if std::env::var("DIAG_SERVE_ONLY").is_ok_and(|only| !name.contains(&only)) {
                continue;
            }
            match measure(name, start()) {
                Ok(r) => *kept = best(kept.take(), r),
                Err(e) => problems.push(e),
            }
        }
    }
    results.extend(best_of.into_iter().flatten());
    problems.dedup();
    let mut note = format!(
        "Large workload, `wrk -t1 -c{CONNECTIONS} -d{}s` over loopback with keep-alive, each server on a \
         multi-threaded tokio runtime (2 workers; diag-smol: `serve` on one `block_on` thread, or \
         `serve_spawning` onto an executor run by 2 threads, one of them also accepting, or async-std's global executor) on the same 2 cores as wrk; {ROUNDS} rounds with the \
         servers taking turns, best round of each kept. Every response is about 2.3 MB, so the kernel's \
         loopback copies and wrk's parsing, the same for every server, take a large share of the CPU. \
         The `{CEILING}` row measures that share: hyper answering every request with a body of the \
         same size encoded once beforehand: a reference without any encoding.",
        DURATION.as_secs()
    );
    for p in problems {
        note.push_str(&format!("\n\nNot measured: {p}"));
    }
    (results, note)
}
