//! A flood of idle keep-alive connections does not starve a probe: with 10,000 of them open, a
//! new `/healthz` is answered in under 100 ms under every runtime. At the cap (1024) each new
//! connection takes the place of the longest-idle one, which diagd closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use diag_tests::{Diagd, RUNTIMES, request};

/// Idle keep-alive connections opened before the probes.
const IDLE: usize = 10_000;
/// Threads opening them.
const OPENERS: usize = 8;
/// diagd's default connection cap.
const CAP: usize = 1024;

/// Raises this process's soft limit on open files to what the flood needs (children, diagd
/// among them, inherit it).
fn raise_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = (IDLE + 1_000) as u64;
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|soft| soft >= want) {
        return;
    }
    let hard = limit.maximum;
    assert!(
        hard.is_none_or(|hard| hard >= want),
        "this test needs {want} open files; the hard limit is {hard:?}: raise it (ulimit -Hn, /etc/security/limits.conf)"
    );
    setrlimit(Resource::Nofile, Rlimit { current: Some(want), maximum: hard }).expect("raise RLIMIT_NOFILE");
}

/// Opens a keep-alive connection and has one request answered on it, so it sits idle.
fn idle_connection(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: flood\r\n\r\n").expect("send");
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    // The head and the 15-byte body `{"status":"ok"}`.
    while !got.ends_with(br#"{"status":"ok"}"#) {
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0, "closed before the answer: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    c
}

/// Whether the server has closed `c`.
fn closed(c: &TcpStream) -> bool {
    c.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    matches!((&*c).read(&mut buf), Ok(0))
}

#[test]
fn ten_thousand_idle_keep_alive_connections_do_not_delay_a_probe() {
    raise_file_limit();
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, None);
        let addr = diagd.addr;
        let started = Instant::now();
        let openers: Vec<_> = (0..OPENERS)
            .map(|_| std::thread::spawn(move || (0..IDLE / OPENERS).map(|_| idle_connection(addr)).collect::<Vec<_>>()))
            .collect();
        let idle: Vec<TcpStream> = openers.into_iter().flat_map(|t| t.join().expect("opener")).collect();
        assert_eq!(idle.len(), IDLE);
        let opened_in = started.elapsed();

        // Each probe on a new connection: connect, request, whole answer, close.
        let mut took = Vec::new();
        for _ in 0..5 {
            let probe = Instant::now();
            let response = request(addr, "GET", "/healthz", &[]);
            took.push(probe.elapsed());
            assert_eq!(response.status, 200, "{runtime}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let fast = took.iter().filter(|t| **t < Duration::from_millis(100)).count();
        // One slow probe is forgiven on a loaded machine; a probe stuck behind the idle
        // connections (until their 30 s idle timeout) is not.
        assert!(fast >= 4 && took.iter().all(|t| *t < Duration::from_secs(1)), "{runtime}: probes took {took:?}");

        // diagd kept at most its cap open: the connections idle longest were closed for the new ones.
        let closed_by_diagd = idle.iter().filter(|c| closed(c)).count();
        assert!(
            (IDLE - CAP..IDLE).contains(&closed_by_diagd),
            "{runtime}: {closed_by_diagd} of {IDLE} idle connections closed by diagd"
        );
        if *runtime != "tokio" {
            let metrics = diagd.get("/metrics").text();
            let open: usize = metrics
                .lines()
                .find_map(|l| l.strip_prefix("diag_smol_open_connections "))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{runtime}: no diag_smol_open_connections in\n{metrics}"));
            assert!(open <= CAP, "{runtime}: {open} connections open");
        }
        eprintln!("{runtime}: {IDLE} idle connections opened in {opened_in:?}; probes took {took:?}");
    }
}
