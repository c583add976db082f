//! [`RemoteWrite`]: the `remote_write:` section of diagd's YAML, and the same settings for
//! [`Builder::remote_write`](crate::Builder::remote_write), checked with errors that name the
//! key (`remote_write.interval: must be greater than zero`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::config::KeyPair;

/// How often the metrics are pushed by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
/// How long one attempt may take by default (connect, TLS, send, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests kept waiting by default while the receiver is away: 60 pushes of a service
/// whose metrics fit one request, 15 minutes at the default interval.
pub const DEFAULT_QUEUE_SIZE: usize = 60;
/// The most requests a queue may hold (each up to about 150 KiB compressed).
pub const MAX_QUEUE_SIZE: usize = 100_000;

/// Pushes the metrics of `/metrics` to a Prometheus remote write 1.0 receiver (Prometheus
/// with `--web.enable-remote-write-receiver`, Mimir, Thanos, VictoriaMetrics, …): every
/// `interval`, each attempt bounded by `timeout`, retried with backoff on no answer, 429 and
/// 5xx (honouring `Retry-After`), dropped and counted on other statuses, at most
/// `queue_size` requests waiting (the oldest dropped and counted). See docs/metrics.md.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use diag::RemoteWrite;
/// let push = RemoteWrite::new("http://prometheus:9090/api/v1/write")
///     .interval(Duration::from_secs(30))
///     .external_label("job", "sensors")
///     .bearer_token_file("/run/secrets/push-token");
/// # let _ = push;
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWrite {
    /// The receiver: `http://` or `https://host[:port]/path` (Prometheus:
    /// `/api/v1/write`).
    pub url: String,
    /// How often the metrics are read and queued (default 15 s).
    #[serde(default = "default_interval", deserialize_with = "crate::config::duration")]
    pub interval: Duration,
    /// The longest one attempt may take (default 10 s).
    #[serde(default = "default_timeout", deserialize_with = "crate::config::duration")]
    pub timeout: Duration,
    /// Labels added to every series (a series' own label of the same name wins). `job`
    /// defaults to the service name and `instance` to the host name.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// `Authorization: Basic`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: Bearer` with this token.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// `Authorization: Bearer` with the token in this file (read again for every request, so
    /// it may be rotated).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// PEM files of the CAs that verify an `https://` receiver (default: the system's roots).
    #[serde(default)]
    pub ca_certs: Vec<PathBuf>,
    /// The client certificate for mTLS (at most one).
    #[serde(default)]
    pub https_keypairs: Vec<KeyPair>,
    /// The most requests kept waiting while the receiver fails (default 60); when full, the
    /// oldest is dropped and its samples counted.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
}

/// `remote_write.basic_auth`: a username and a password, or a file holding it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The username.
    pub username: String,
    /// The password.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (read again for every request; one trailing newline is
    /// not part of it).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl fmt::Debug for RemoteWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWrite")
            .field("url", &self.url)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("external_labels", &self.external_labels)
            .field("basic_auth", &self.basic_auth)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<redacted>"))
            .field("bearer_token_file", &self.bearer_token_file)
            .field("ca_certs", &self.ca_certs)
            .field("https_keypairs", &self.https_keypairs)
            .field("queue_size", &self.queue_size)
            .finish()
    }
}

fn default_interval() -> Duration {
    DEFAULT_INTERVAL
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_queue_size() -> usize {
    DEFAULT_QUEUE_SIZE
}

impl RemoteWrite {
    /// Pushes to `url` with the defaults: every 15 s, 10 s per attempt, 60 requests of queue,
    /// no auth, `job` and `instance` labels from the service and host names.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            external_labels: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            ca_certs: Vec::new(),
            https_keypairs: Vec::new(),
            queue_size: DEFAULT_QUEUE_SIZE,
        }
    }

    /// How often the metrics are read and queued.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The longest one attempt may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds the label `name="value"` to every series (`job` and `instance` replace the
    /// defaults).
    pub fn external_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.external_labels.insert(name.into(), value.into());
        self
    }

    /// `Authorization: Basic` with `username` and `password`.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth =
            Some(BasicAuth { username: username.into(), password: Some(password.into()), password_file: None });
        self
    }

    /// `Authorization: Bearer` with `token`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// `Authorization: Bearer` with the token in `path`, read for every request.
    pub fn bearer_token_file(mut self, path: impl AsRef<Path>) -> Self {
        self.bearer_token_file = Some(path.as_ref().to_owned());
        self
    }

    /// Verifies an `https://` receiver with the CAs in this PEM file (may be given several
    /// times) instead of the system's roots.
    pub fn ca_cert(mut self, path: impl AsRef<Path>) -> Self {
        self.ca_certs.push(path.as_ref().to_owned());
        self
    }

    /// Presents this client certificate (PEM chain and key) to an `https://` receiver (mTLS).
    pub fn client_cert(mut self, cert_file: impl AsRef<Path>, key_file: impl AsRef<Path>) -> Self {
        self.https_keypairs =
            vec![KeyPair { cert_file: cert_file.as_ref().to_owned(), key_file: key_file.as_ref().to_owned() }];
        self
    }

    /// The most requests kept waiting while the receiver fails.
    pub fn queue_size(mut self, requests: usize) -> Self {
        self.queue_size = requests;
        self
    }

    /// The URL, parsed: `(tls, uri)`.
    pub(crate) fn uri(&self) -> anyhow::Result<(bool, hyper::Uri)> {
        let url = &self.url;
        let uri: hyper::Uri = url.parse().with_context(|| format!("remote_write.url: invalid URL {url:?}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => bail!("remote_write.url: expected an http:// or https:// URL, got {url:?}"),
        };
        if uri.host().is_none_or(str::is_empty) {
            bail!("remote_write.url: no host in {url:?}");
        }
        Ok((tls, uri))
    }

    /// Checks every key but the files' contents (read when the sender starts).
    ///
    /// # Errors
    /// The first problem, naming its key.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let (tls, _) = self.uri()?;
        if tls && !cfg!(feature = "tls") {
            bail!("remote_write.url: https:// needs diag's `tls` feature, which this build lacks");
        }
        if self.interval.is_zero() {
            bail!("remote_write.interval: must be greater than zero");
        }
        if self.timeout.is_zero() {
            bail!("remote_write.timeout: must be greater than zero");
        }
        if !(1..=MAX_QUEUE_SIZE).contains(&self.queue_size) {
            bail!("remote_write.queue_size: {} is not between 1 and {MAX_QUEUE_SIZE}", self.queue_size);
        }
        for (name, value) in &self.external_labels {
            let valid = name
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
            if name.is_empty() || !valid || name.starts_with("__") {
                bail!(
                    "remote_write.external_labels: {name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                );
            }
            if value.is_empty() {
                bail!("remote_write.external_labels.{name}: the value is empty (an empty label is no label)");
            }
        }
        if let Some(auth) = &self.basic_auth {
            if self.bearer_token.is_some() || self.bearer_token_file.is_some() {
                bail!("remote_write.basic_auth: give basic_auth or a bearer token, not both");
            }
            if auth.username.is_empty() {
                bail!("remote_write.basic_auth.username: must not be empty");
            }
            if auth.username.contains(':') {
                bail!("remote_write.basic_auth.username: must not contain ':'");
            }
            match (&auth.password, &auth.password_file) {
                (Some(_), Some(_)) => bail!("remote_write.basic_auth: give password or password_file, not both"),
                (None, None) => bail!("remote_write.basic_auth.password: required (or password_file)"),
                _ => {}
            }
        }
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            bail!("remote_write.bearer_token: give bearer_token or bearer_token_file, not both");
        }
        if !tls && !self.ca_certs.is_empty() {
            bail!("remote_write.ca_certs: only used with an https:// url");
        }
        if !tls && !self.https_keypairs.is_empty() {
            bail!("remote_write.https_keypairs: only used with an https:// url");
        }
        if self.https_keypairs.len() > 1 {
            bail!(
                "remote_write.https_keypairs: {} keypairs given; one client certificate is supported",
                self.https_keypairs.len()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(rw: &RemoteWrite) -> String {
        format!("{:#}", rw.check().unwrap_err())
    }

    #[test]
    fn builder_defaults_and_checks() {
        let rw = RemoteWrite::new("http://127.0.0.1:9090/api/v1/write");
        rw.check().unwrap();
        assert_eq!((rw.interval, rw.timeout, rw.queue_size), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_QUEUE_SIZE));
        let rw = rw.bearer_token("secret").external_label("job", "x");
        assert!(!format!("{rw:?}").contains("secret"), "the token is redacted: {rw:?}");
        let base = || RemoteWrite::new("http://h/w");
        assert!(err(&base().interval(Duration::ZERO)).starts_with("remote_write.interval:"));
        assert!(err(&base().timeout(Duration::ZERO)).starts_with("remote_write.timeout:"));
        assert!(err(&base().queue_size(0)).starts_with("remote_write.queue_size: 0 is not between 1"));
        assert!(err(&RemoteWrite::new("ftp://h/w")).starts_with("remote_write.url: expected an http://"));
        assert!(err(&RemoteWrite::new("not a url")).starts_with("remote_write.url: invalid URL"));
        assert!(err(&RemoteWrite::new("/api/v1/write")).starts_with("remote_write.url:"));
        assert!(err(&base().external_label("1job", "x")).starts_with("remote_write.external_labels: \"1job\""));
        assert!(err(&base().external_label("__name__", "x")).starts_with("remote_write.external_labels:"));
        assert!(err(&base().external_label("a-b", "x")).starts_with("remote_write.external_labels:"));
        assert!(err(&base().external_label("env", "")).starts_with("remote_write.external_labels.env:"));
        base().external_label("_env2", "prod").check().unwrap();
        let e = err(&base().basic_auth("u", "p").bearer_token("t"));
        assert!(e.starts_with("remote_write.basic_auth: give basic_auth or a bearer token"), "{e}");
        let e = err(&base().bearer_token("t").bearer_token_file("/t"));
        assert!(e.starts_with("remote_write.bearer_token:"), "{e}");
        assert!(err(&base().basic_auth("", "p")).starts_with("remote_write.basic_auth.username:"));
        assert!(err(&base().ca_cert("/ca.pem")).starts_with("remote_write.ca_certs: only used with an https://"));
        assert!(err(&base().client_cert("/c", "/k")).starts_with("remote_write.https_keypairs:"));
    }
}
