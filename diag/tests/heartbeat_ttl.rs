//! A component with a TTL whose heartbeat task is killed: `/readyz`, over real TCP, turns 503
//! within the TTL (plus the sweep and a margin for a loaded machine), never before the TTL has
//! passed since the last report; when reports resume it goes through `recovering` and back to
//! 200 once the recovery window has passed. Under tokio and smol.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diag::{Component, Diagnostics, State};

const TTL: Duration = Duration::from_millis(1000);
const EVERY: Duration = Duration::from_millis(100);
const WINDOW: Duration = Duration::from_millis(300);
/// Room for a loaded 2-core machine beyond the TTL and the sweep period.
const MARGIN: Duration = Duration::from_secs(3);

/// `GET path` over a fresh connection: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{response:?}"));
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Polls `/readyz` until it answers `want`, within `limit`; returns how long it took.
fn wait_for(addr: SocketAddr, want: u16, limit: Duration) -> (Duration, String) {
    let start = Instant::now();
    loop {
        let (status, body) = get(addr, "/readyz");
        if status == want {
            return (start.elapsed(), body);
        }
        assert!(start.elapsed() < limit, "/readyz still {status} {body} after {limit:?}, want {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn diagnostics() -> Diagnostics {
    Diagnostics::builder()
        .component(Component::new("worker").ttl(TTL).recovery_window(WINDOW))
        .shutdown_delay(Duration::ZERO)
        .build()
        .expect("valid diagnostics")
}

/// When the heartbeating task last began a report.
type Last = Arc<Mutex<Instant>>;

/// What both runtimes check, given a way to start the heartbeating task (which records when it
/// reports in `Last`) and to kill it.
fn killed_heartbeat_task_turns_readyz_503(
    addr: SocketAddr,
    diag: &Diagnostics,
    spawn: impl Fn(Last) -> Box<dyn FnOnce()>,
) {
    let last: Last = Arc::new(Mutex::new(Instant::now()));
    let kill = spawn(Arc::clone(&last));
    wait_for(addr, 200, Duration::from_secs(10));
    kill();
    let (took, body) = wait_for(addr, 503, TTL + Duration::from_millis(250) + MARGIN);
    assert!(body.contains("process is in a degraded state"), "{body}");
    // Never before the TTL has passed since the last report (whenever the task died).
    let silent = last.lock().unwrap().elapsed();
    assert!(silent > TTL, "503 after {took:?}, only {silent:?} after the last report (TTL {TTL:?})");
    assert_eq!(diag.component("worker"), Some(State::Degraded));
    let (status, verbose) = get(addr, "/readyz?verbose");
    assert_eq!(status, 503);
    assert!(verbose.contains("[-]worker degraded"), "{verbose}");

    // Reports resume: recovering first (the first report after an expiry), then ok once the
    // recovery window has passed.
    assert_eq!(diag.heartbeat("worker").unwrap().ok(), State::Recovering);
    let (status, body) = get(addr, "/readyz");
    assert!(status == 400 && body.contains("recovering"), "{status} {body}");
    let kill = spawn(last);
    wait_for(addr, 200, WINDOW + MARGIN);
    kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_killed_heartbeat_task() {
    let diag = diagnostics();
    let serving = diag.serve_tokio("127.0.0.1:0".parse().unwrap()).await.expect("bind");
    let addr = serving.local_addr();
    let runtime = tokio::runtime::Handle::current();
    let check = diag.clone();
    tokio::task::spawn_blocking(move || {
        killed_heartbeat_task_turns_readyz_503(addr, &check, |last| {
            let worker = check.heartbeat("worker").unwrap();
            let task = runtime.spawn(async move {
                loop {
                    *last.lock().unwrap() = Instant::now();
                    worker.ok();
                    tokio::time::sleep(EVERY).await;
                }
            });
            Box::new(move || task.abort())
        });
    })
    .await
    .expect("the checks pass");
    serving.shutdown().await.expect("clean shutdown");
}

#[test]
fn smol_killed_heartbeat_task() {
    let diag = diagnostics();
    let serving = smol::block_on(diag.serve_smol("127.0.0.1:0".parse().unwrap())).expect("bind");
    let addr = serving.local_addr();
    killed_heartbeat_task_turns_readyz_503(addr, &diag, |last| {
        let worker = diag.heartbeat("worker").unwrap();
        let task = smol::spawn(async move {
            loop {
                *last.lock().unwrap() = Instant::now();
                worker.ok();
                smol::Timer::after(EVERY).await;
            }
        });
        // Dropping a smol task cancels it.
        Box::new(move || drop(task))
    });
    smol::block_on(serving.shutdown()).expect("clean shutdown");
}
