//! [`Client`]: one remote write attempt, a `POST` of a compressed `WriteRequest` with the
//! protocol's headers and the configured auth, over plain TCP or TLS (CA, mTLS), bounded by
//! the timeout, and what its answer means for the request ([`Outcome`]).
//!
//! Written over async-net, futures-rustls and hyper's client through smol-hyper, like the
//! heartbeat checks, so it runs on the thread that drives diag's own tasks under any runtime.
//! Each attempt opens its own connection: a push every few seconds gains little from keeping
//! one, and a fresh connection is what recovers after the receiver restarts.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite, future};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header;
use smol_hyper::rt::FuturesIo;

use super::RemoteWrite;
use super::backoff::retry_after;

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("diag/", env!("CARGO_PKG_VERSION"));
/// Most bytes of an error answer kept for the log.
const ERROR_BODY: usize = 512;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx: the receiver has the samples.
    Sent,
    /// No connection, no answer in time, 429 or 5xx: worth a retry, after `after` when the
    /// receiver said (`Retry-After`).
    Retry {
        /// Why, for the log.
        reason: String,
        /// The receiver's `Retry-After`.
        after: Option<Duration>,
    },
    /// Any other status: the receiver will never take this request.
    Rejected {
        /// The status.
        status: u16,
        /// The start of the answer's body, for the log.
        message: String,
    },
}

/// A secret given in the config or read from a file for every request.
#[derive(Clone)]
enum Secret {
    Value(String),
    File { key: &'static str, path: PathBuf },
}

impl Secret {
    fn read(&self) -> Result<String, String> {
        match self {
            Self::Value(v) => Ok(v.clone()),
            Self::File { key, path } => std::fs::read_to_string(path)
                .map(|s| s.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&s).to_owned())
                .map_err(|e| format!("remote_write.{key}: cannot read {}: {e}", path.display())),
        }
    }
}

/// The `Authorization` header's source.
#[derive(Clone)]
enum Auth {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

impl Auth {
    fn header(&self) -> Result<Option<String>, String> {
        Ok(match self {
            Self::None => None,
            Self::Basic { username, password } => {
                let pair = format!("{username}:{}", password.read()?);
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
            }
            Self::Bearer(token) => Some(format!("Bearer {}", token.read()?.trim())),
        })
    }
}

/// Sends requests to one receiver.
pub(crate) struct Client {
    uri: hyper::Uri,
    host: String,
    port: u16,
    authority: String,
    auth: Auth,
    timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<(futures_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("uri", &self.uri).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Client {
    /// The client `config` describes (checked already): its TLS configuration loaded, its
    /// secret files readable.
    ///
    /// # Errors
    /// A file that cannot be read, a bad certificate or key; naming the key.
    pub(crate) fn new(config: &RemoteWrite) -> anyhow::Result<Self> {
        let (tls, uri) = config.uri()?;
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = uri.authority().map_or_else(|| host.clone(), |a| a.as_str().to_owned());
        let auth = match (&config.basic_auth, &config.bearer_token, &config.bearer_token_file) {
            (Some(basic), _, _) => Auth::Basic {
                username: basic.username.clone(),
                password: match (&basic.password, &basic.password_file) {
                    (Some(p), _) => Secret::Value(p.clone()),
                    (None, Some(path)) => Secret::File { key: "basic_auth.password_file", path: path.clone() },
                    (None, None) => Secret::Value(String::new()),
                },
            },
            (None, Some(token), _) => Auth::Bearer(Secret::Value(token.clone())),
            (None, None, Some(path)) => Auth::Bearer(Secret::File { key: "bearer_token_file", path: path.clone() }),
            (None, None, None) => Auth::None,
        };
        auth.header().map_err(anyhow::Error::msg)?;
        #[cfg(feature = "tls")]
        let tls = if tls {
            let config =
                crate::telemetry::tls::client_config("remote_write", &config.ca_certs, &config.https_keypairs)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| anyhow::anyhow!("remote_write.url: {host:?} is not a TLS server name: {e}"))?;
            Some((futures_rustls::TlsConnector::from(std::sync::Arc::new(config)), name))
        } else {
            None
        };
        #[cfg(not(feature = "tls"))]
        anyhow::ensure!(!tls, "remote_write.url: https:// needs diag's `tls` feature, which this build lacks");
        Ok(Self {
            uri,
            host,
            port,
            authority,
            auth,
            timeout: config.timeout,
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// The receiver's URL.
    pub(crate) fn uri(&self) -> &hyper::Uri {
        &self.uri
    }

    /// POSTs `body` (a snappy-compressed `WriteRequest`) once, within the timeout.
    pub(crate) async fn send(&self, body: Bytes) -> Outcome {
        let attempt = self.attempt(body);
        let expired = async {
            async_io::Timer::after(self.timeout).await;
            Err(format!("no answer within {}", humantime::format_duration(self.timeout)))
        };
        match future::or(attempt, expired).await {
            Ok(outcome) => outcome,
            Err(reason) => Outcome::Retry { reason, after: None },
        }
    }

    async fn attempt(&self, body: Bytes) -> Result<Outcome, String> {
        let mut request = hyper::Request::post(self.uri.path_and_query().map_or("/", |pq| pq.as_str()))
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::CONTENT_LENGTH, body.len());
        if let Some(value) = self.auth.header()? {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Full::new(body)).map_err(|e| format!("cannot make the request: {e}"))?;
        let stream = async_net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
        #[cfg(feature = "tls")]
        if let Some((connector, name)) = &self.tls {
            let stream = connector
                .connect(name.clone(), stream)
                .await
                .map_err(|e| format!("TLS with {}: {e}", self.authority))?;
            return exchange(stream, request).await;
        }
        exchange(stream, request).await
    }
}

/// Sends `request` on a fresh connection over `stream` and reads what the answer means.
async fn exchange<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<Outcome, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(FuturesIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let exchange = async {
        let response = sender.send_request(request).await.map_err(|e| format!("POST: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Outcome::Sent);
        }
        let after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        let message = match Limited::new(response.into_body(), ERROR_BODY).collect().await {
            Ok(body) => String::from_utf8_lossy(&body.to_bytes()).trim().to_owned(),
            Err(_) => String::new(),
        };
        let code = status.as_u16();
        Ok(if code == 429 || status.is_server_error() {
            Outcome::Retry { reason: format!("status {code}: {message}"), after }
        } else {
            Outcome::Rejected { status: code, message }
        })
    };
    // The connection future drives the IO; it may end first even on success (the receiver
    // closes right after answering), the answer then being with `exchange` already.
    let (mut exchange, mut conn) = (std::pin::pin!(exchange), std::pin::pin!(conn));
    let first = future::or(async { Some((&mut exchange).await) }, async {
        (&mut conn).await.err().map(|e| Err(format!("HTTP connection: {e}")))
    })
    .await;
    match first {
        Some(result) => result,
        None => exchange.await,
    }
}
