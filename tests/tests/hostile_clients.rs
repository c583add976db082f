//! Oversized, malformed and slow requests get a 4xx or are closed, while other clients keep
//! being served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use diag_tests::{Diagd, RUNTIMES, each_runtime, exchange, parse_response};

fn status(bytes: &[u8]) -> u16 {
    parse_response(bytes, false).map_or(0, |r| r.status)
}

/// An error answer in the same form as every other response: common headers, plain-text
/// body, and the connection closed.
fn assert_error(bytes: &[u8], code: u16, body: &str, what: &str) {
    let r = parse_response(bytes, false).unwrap_or_else(|| panic!("{what}: no response in {bytes:?}"));
    assert_eq!((r.status, r.text().as_str()), (code, body), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"), "{what}");
    assert_eq!(r.header("connection"), Some("close"), "{what}");
}

#[test]
fn oversized_and_malformed_requests() {
    for runtime in RUNTIMES {
        let diagd = Diagd::start(runtime, None);
        let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n", "a".repeat(9 * 1024));
        let too_large = "431 request header fields too large\n";
        assert_error(&exchange(diagd.addr, big.as_bytes()), 431, too_large, &format!("{runtime}: head over 8 KiB"));
        let many = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
        let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_error(&exchange(diagd.addr, many.as_bytes()), 431, too_large, &format!("{runtime}: 200 header fields"));
        for garbage in [
            &b"NOT HTTP AT ALL\r\n\r\n"[..],
            b"GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"\x00\x01\x02\r\n\r\n",
        ] {
            assert_error(&exchange(diagd.addr, garbage), 400, "400 bad request\n", &format!("{runtime}: {garbage:?}"));
        }
        // Pipelined after a good request: the good one is answered, then the 400.
        let pipelined = exchange(diagd.addr, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n");
        let first = parse_response(&pipelined, false).unwrap();
        assert_eq!((first.status, first.header("content-length")), (200, Some("15")));
        let at = pipelined.windows(15).position(|w| w == br#"{"status":"ok"}"#).unwrap() + 15;
        assert_error(&pipelined[at..], 400, "400 bad request\n", &format!("{runtime}: pipelined garbage"));
        assert_eq!(diagd.get("/healthz").status, 200, "{runtime}: still serving");
    }
}

#[test]
fn a_slow_client_is_closed_while_others_are_served() {
    each_runtime(|runtime| {
        let diagd = Diagd::start(runtime, None);
        let started = Instant::now();
        // Slowloris: a head that never completes, and a connection that says nothing.
        let mut slow = TcpStream::connect(diagd.addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
        let mut silent = TcpStream::connect(diagd.addr).unwrap();
        // Meanwhile others are served, many times over.
        for _ in 0..50 {
            assert_eq!(diagd.get("/healthz").status, 200, "{runtime}");
        }
        for stream in [&mut slow, &mut silent] {
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buf = Vec::new();
            let read = stream.read_to_end(&mut buf);
            assert!(read.is_ok() && matches!(status(&buf), 0 | 408), "{runtime}: closed, got {read:?} {buf:?}");
        }
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(9), "{runtime}: the 10 s header timeout, not earlier: {waited:?}");
        assert_eq!(diagd.get("/healthz").status, 200, "{runtime}: still serving");
    });
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_30_seconds() {
    each_runtime(|runtime| {
        let diagd = Diagd::start(runtime, None);
        let mut conn = TcpStream::connect(diagd.addr).unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"), "{runtime}: {:?}", String::from_utf8_lossy(&buf[..n]));
        let idle_since = Instant::now();
        conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        assert_eq!(conn.read(&mut buf).unwrap(), 0, "{runtime}: closed by the server");
        let idle = idle_since.elapsed();
        // The idle timeout (30 s) applies between requests, not the header timeout (10 s).
        assert!(idle >= Duration::from_secs(29), "{runtime}: closed after {idle:?}");
        assert_eq!(diagd.get("/healthz").status, 200);
    });
}
