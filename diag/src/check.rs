//! The heartbeat checks: `tcp` connects, `http` expects a 2xx answer to `GET`, `exec` expects
//! exit status 0. Each attempt is bounded by a timeout (the component's period).
//!
//! Written once over smol's runtime-independent crates (async-net, async-process, async-io's
//! timer), so the checks run the same under every `--runtime`: async-io drives its own
//! reactor when the executor is not smol's.

use std::process::Stdio;
use std::time::Duration;

use async_net::TcpStream;
use async_process::Command;
use diag_core::server::DiagBody;
use futures_lite::future;
use hyper::header;
use smol_hyper::rt::FuturesIo;

use crate::config::Check;

/// Runs `check` once.
///
/// # Errors
/// Why the check failed, for the log.
pub async fn run(check: &Check, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        match check {
            Check::Itself => Ok(()),
            Check::Tcp(addr) => {
                TcpStream::connect(addr.as_str()).await.map(drop).map_err(|e| format!("cannot connect to {addr}: {e}"))
            }
            Check::Http(uri) => http(uri).await,
            Check::Exec(argv) => exec(argv).await,
        }
    };
    let expired = async {
        async_io::Timer::after(timeout).await;
        Err(format!("no answer within {}", humantime::format_duration(timeout)))
    };
    future::or(attempt, expired).await
}

async fn http(uri: &hyper::Uri) -> Result<(), String> {
    let host = uri.host().ok_or_else(|| format!("{uri}: no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, DiagBody>(FuturesIo::new(stream))
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let request = hyper::Request::get(uri.path_and_query().map_or("/", |pq| pq.as_str()))
        .header(header::HOST, authority)
        .header(header::USER_AGENT, concat!("diagd/", env!("CARGO_PKG_VERSION")))
        .body(DiagBody::empty())
        .map_err(|e| format!("{uri}: {e}"))?;
    let exchange = async {
        match sender.send_request(request).await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("GET {uri}: status {}", response.status())),
            Err(e) => Err(format!("GET {uri}: {e}")),
        }
    };
    // The connection future drives the IO. It may end first even on success (the server closes
    // right after answering); the answer has then been handed to `exchange` already.
    let (mut exchange, mut conn) = (std::pin::pin!(exchange), std::pin::pin!(conn));
    let first = future::or(async { Some((&mut exchange).await) }, async {
        (&mut conn).await.err().map(|e| Err(format!("GET {uri}: {e}")))
    })
    .await;
    match first {
        Some(result) => result,
        None => exchange.await,
    }
}

async fn exec(argv: &[String]) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| format!("cannot run {program:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{program:?} exited with {status}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_succeed_and_fail() {
        future::block_on(async {
            let t = Duration::from_secs(5);
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            assert_eq!(run(&Check::Tcp(addr.clone()), t).await, Ok(()));
            drop(listener);
            assert!(run(&Check::Tcp(addr), t).await.unwrap_err().contains("cannot connect"));
            assert_eq!(run(&Check::Exec(vec!["true".into()]), t).await, Ok(()));
            assert!(run(&Check::Exec(vec!["false".into()]), t).await.unwrap_err().contains("exited"));
            assert!(run(&Check::Exec(vec!["/nonexistent/x".into()]), t).await.unwrap_err().contains("cannot run"));
            let slow = Check::Exec(vec!["sleep".into(), "5".into()]);
            assert!(run(&slow, Duration::from_millis(100)).await.unwrap_err().contains("no answer"));
            assert_eq!(run(&Check::Itself, t).await, Ok(()));
        });
    }

    #[test]
    fn http_check_wants_2xx() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for status in ["200 OK", "500 Internal Server Error"] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap();
                assert!(buf[..n].starts_with(b"GET /health HTTP/1.1\r\n"));
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        let check = Check::Http(format!("http://{addr}/health").parse().unwrap());
        future::block_on(async {
            assert_eq!(run(&check, Duration::from_secs(5)).await, Ok(()));
            assert!(run(&check, Duration::from_secs(5)).await.unwrap_err().contains("500"));
        });
        server.join().unwrap();
    }
}
