//! A one-request HTTP/1.1 client over the debug socket (hyper on async-io), for `diagd debug`.

use std::path::Path;

use anyhow::{Context as _, anyhow};
use async_net::unix::UnixStream;
use futures_lite::future;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header;
use smol_hyper::rt::FuturesIo;

/// A response: status and whole body.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy), without surrounding whitespace.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// Sends `method path` (with `body`) to the debug socket at `socket` and reads the answer.
///
/// # Errors
/// When the socket cannot be reached (diagd not running, another data_dir, no permission) or
/// the exchange fails.
pub fn request(socket: &Path, method: &str, path: &str, body: &str) -> anyhow::Result<Reply> {
    async_io::block_on(async {
        let stream = UnixStream::connect(socket).await.with_context(|| {
            format!("cannot reach the debug service at {} (is diagd running with this data_dir?)", socket.display())
        })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(FuturesIo::new(stream))
            .await
            .context("debug service handshake failed")?;
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::USER_AGENT, concat!("diagd/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
            .context("cannot build the request")?;
        let exchange = async {
            let response = sender.send_request(request).await.context("debug service request failed")?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.context("cannot read the debug service's answer")?;
            Ok::<_, anyhow::Error>(Reply { status, body: body.to_bytes().to_vec() })
        };
        let connection = async {
            connection.await.context("debug service connection failed")?;
            Err::<Reply, _>(anyhow!("the debug service closed the connection before answering"))
        };
        future::or(exchange, connection).await
    })
}
