//! Push instead of scrape: the metrics of `/metrics`, sent to a Prometheus remote write 1.0
//! receiver every `interval` (docs/metrics.md#remote-write-the-sender).
//!
//! The [`Sender`] runs as one task on the thread that drives diag's own checks (async-io),
//! so it pushes the same whichever runtime serves the endpoints, and even when none does.
//! Every `interval` it reads the sources into requests with the core's
//! [`Push`](diag_core::remote_write::Push) (split at series boundaries), compresses them
//! with the core's [`snappy`](diag_core::snappy), and appends them to a bounded [`queue`];
//! then it sends the queue's oldest request until none is left, retrying with [`backoff`]
//! after a failure. A read of the sources waits for an attempt in progress (at most
//! `timeout`), and requests are sent in the order they were made, so a receiver gets every
//! series' samples in time order, as Prometheus requires.

mod backoff;
mod client;
mod config;
mod metrics;
mod queue;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use diag_core::Sources;
use diag_core::http::Service;
use diag_core::remote_write::{Push, PushError};
use diag_core::snappy::{Compressor, max_compressed_len};

pub use config::{BasicAuth, DEFAULT_INTERVAL, DEFAULT_QUEUE_SIZE, DEFAULT_TIMEOUT, MAX_QUEUE_SIZE, RemoteWrite};
pub(crate) use metrics::Metrics;

use backoff::Backoff;
use client::{Client, Outcome};
use metrics::{Attempt, Dropped};
use queue::{Queue, Request};

/// Bytes of exposition text read at a time: the largest series with all its lines (a
/// histogram's buckets) must fit.
const TEXT_BUFFER: usize = 32 * 1024;
/// Bytes of one uncompressed request; more series make more requests.
const REQUEST_BUFFER: usize = 128 * 1024;

/// The remote write task's state: its settings, client, queue, buffers and metrics.
pub(crate) struct Sender {
    client: Client,
    interval: Duration,
    external: Vec<(String, String)>,
    queue: Queue,
    backoff: Backoff,
    metrics: Arc<Metrics>,
    snappy: Box<Compressor>,
    text: Vec<u8>,
    request: Vec<u8>,
    wire: Vec<u8>,
    /// Whether the last attempt failed (a failure is logged once, then counted).
    failing: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("client", &self.client)
            .field("interval", &self.interval)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender as `config` says, labelling series `job="<service>"` and
    /// `instance="<host name>"` unless the config sets them.
    ///
    /// # Errors
    /// A bad setting or an unreadable file, naming its key.
    pub(crate) fn new(config: &RemoteWrite, service: &str) -> Result<Self, crate::Error> {
        config.check()?;
        let client = Client::new(config)?;
        let mut labels = config.external_labels.clone();
        labels.entry("job".into()).or_insert_with(|| service.to_owned());
        if let Some(host) = host_name() {
            labels.entry("instance".into()).or_insert(host);
        }
        Ok(Self {
            client,
            interval: config.interval,
            external: labels.into_iter().collect(),
            queue: Queue::new(config.queue_size),
            backoff: Backoff::default(),
            metrics: Arc::new(Metrics::new(config.queue_size)),
            snappy: Box::new(Compressor::new()),
            text: Vec::new(),
            request: Vec::new(),
            wire: Vec::new(),
            failing: false,
        })
    }

    /// The sender's metrics, for `/metrics`.
    pub(crate) fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Pushes the sources `sources` makes of `owner` every interval (the first at once), for
    /// ever: drop the task to stop it.
    pub(crate) async fn run<O>(mut self, owner: Arc<O>, sources: impl for<'a> Fn(&'a O) -> Service<'a>) {
        tracing::info!(url = %self.client.uri(), interval = %humantime::format_duration(self.interval), "pushing metrics with remote write");
        let mut next_push = Instant::now();
        let mut retry_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now >= next_push {
                self.push(&sources(&owner));
                // A push delayed past the next one's time skips it rather than bursting.
                next_push = (next_push + self.interval).max(now);
                continue;
            }
            if !self.queue.is_empty() && retry_at.is_none_or(|at| now >= at) {
                retry_at = self.send_oldest().await;
                continue;
            }
            let wake = match retry_at {
                Some(at) if !self.queue.is_empty() => at.min(next_push),
                _ => next_push,
            };
            async_io::Timer::at(wake).await;
        }
    }

    /// Reads `sources` into requests at the end of the queue, counting what does not fit.
    fn push(&mut self, sources: &dyn Sources) {
        self.metrics.push();
        if self.text.is_empty() {
            self.text = vec![0; TEXT_BUFFER];
            self.request = vec![0; REQUEST_BUFFER];
            self.wire = vec![0; max_compressed_len(REQUEST_BUFFER)];
        }
        let now_ms = i64::try_from(unix_ms()).unwrap_or(i64::MAX);
        let external: Vec<(&str, &str)> = self.external.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut push = Push::new(sources, &external, now_ms, &mut self.text);
        loop {
            match push.next_request(&mut self.request) {
                Ok(Some(len)) => {
                    let request = &self.request[..len];
                    let n = match self.snappy.compress(request, &mut self.wire) {
                        Ok(n) => n,
                        // The wire buffer is sized for the largest request.
                        Err(e) => {
                            tracing::error!(error = %e, "cannot compress a remote write request");
                            self.metrics.dropped(Dropped::Encoding, series_in(request));
                            continue;
                        }
                    };
                    let queued = Request { body: Bytes::copy_from_slice(&self.wire[..n]), samples: series_in(request) };
                    if let Some(oldest) = self.queue.push(queued) {
                        self.metrics.dropped(Dropped::QueueFull, oldest.samples);
                    }
                }
                Ok(None) => break,
                Err(e @ (PushError::SeriesTooLarge { .. } | PushError::TooManyLabels)) => {
                    tracing::warn!(error = %e, "a series cannot be pushed; skipping it");
                    self.metrics.dropped(Dropped::Encoding, 1);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the metrics for remote write");
                    break;
                }
            }
        }
        self.metrics.queue_length(self.queue.len());
    }

    /// Sends the oldest request once; returns when to retry it after a failure.
    async fn send_oldest(&mut self) -> Option<Instant> {
        let request = self.queue.front()?.clone();
        let outcome = self.client.send(request.body).await;
        let retry_at = match outcome {
            Outcome::Sent => {
                self.metrics.attempt(Attempt::Sent, request.samples, unix_ms());
                self.queue.pop();
                self.backoff.reset();
                if std::mem::take(&mut self.failing) {
                    tracing::info!(url = %self.client.uri(), queued = self.queue.len(), "remote write receiver accepts requests again");
                }
                None
            }
            Outcome::Retry { reason, after } => {
                self.metrics.attempt(Attempt::Failed, request.samples, 0);
                let wait = self.backoff.next(after, fastrand::f64());
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(url = %self.client.uri(), %reason, retry_in = ?wait, "remote write failed; retrying (further failures are counted in diag_remote_write_requests_total{{result=\"failed\"}})");
                } else {
                    tracing::debug!(url = %self.client.uri(), %reason, retry_in = ?wait, "remote write failed again");
                }
                Some(Instant::now() + wait)
            }
            Outcome::Rejected { status, message } => {
                self.metrics.attempt(Attempt::Rejected, request.samples, 0);
                self.metrics.dropped(Dropped::Rejected, request.samples);
                self.queue.pop();
                self.backoff.reset();
                tracing::warn!(url = %self.client.uri(), status, %message, samples = request.samples, "remote write request rejected; dropping it");
                None
            }
        };
        self.metrics.queue_length(self.queue.len());
        retry_at
    }
}

/// Milliseconds since the Unix epoch, from the wall clock (the samples' timestamps).
fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The host name, for the default `instance` label (Linux; elsewhere `$HOSTNAME`).
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// The `TimeSeries` of a serialized `WriteRequest` (field 1, length-delimited, at top
/// level): its samples, one per series in remote write 1.0.
fn series_in(request: &[u8]) -> u64 {
    fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    let (mut at, mut series) = (0, 0);
    while at < request.len() {
        let Some(tag) = varint(request, &mut at) else { break };
        if tag & 7 != 2 {
            break; // the writer puts nothing but length-delimited series at top level
        }
        let Some(len) = varint(request, &mut at).and_then(|l| usize::try_from(l).ok()) else { break };
        at = at.saturating_add(len);
        series += u64::from(tag >> 3 == 1);
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;
    use diag_core::{Collect, Counter, Registry};

    #[test]
    fn series_are_counted_in_a_request() {
        let names: Vec<String> = (0..5).map(|i| format!("c{i}_total")).collect();
        let counters: Vec<Counter> = (0..5).map(|_| Counter::new()).collect();
        let registry: Registry<'_, 8> = Registry::new();
        for (name, c) in names.iter().zip(&counters) {
            registry.register(name, "A counter.", c).unwrap();
        }
        let sources: [&dyn Collect; 1] = [&registry];
        let (mut text, mut request) = (vec![0u8; 4096], vec![0u8; 4096]);
        let mut push = Push::new(&sources, &[("job", "j")], 1, &mut text);
        let len = push.next_request(&mut request).unwrap().unwrap();
        assert_eq!(series_in(&request[..len]), 5);
        assert_eq!(series_in(&[]), 0);
        assert_eq!(series_in(&[0x0a, 0x05, 1, 2]), 1, "a truncated series still counts once");
    }

    #[test]
    fn unreadable_files_are_errors_naming_the_key_at_start() {
        let e = |rw: RemoteWrite| Sender::new(&rw, "svc").unwrap_err().to_string();
        let base = || RemoteWrite::new("http://127.0.0.1:1/api/v1/write");
        let msg = e(base().bearer_token_file("/nonexistent/token"));
        assert!(msg.starts_with("remote_write.bearer_token_file: cannot read /nonexistent/token"), "{msg}");
        let mut rw = base();
        rw.basic_auth =
            Some(BasicAuth { username: "u".into(), password: None, password_file: Some("/nonexistent/pw".into()) });
        let msg = e(rw);
        assert!(msg.starts_with("remote_write.basic_auth.password_file: cannot read"), "{msg}");
        let msg = e(RemoteWrite::new("https://127.0.0.1:1/w").ca_cert("/nonexistent/ca.pem"));
        assert!(msg.starts_with("remote_write.ca_certs[0]: ") || !cfg!(feature = "tls"), "{msg}");
        let msg = e(base().queue_size(0));
        assert!(msg.starts_with("remote_write.queue_size"), "{msg}");
        let sender = Sender::new(&base().external_label("job", "mine"), "svc").unwrap();
        assert!(sender.external.iter().any(|(n, v)| n == "job" && v == "mine"), "{:?}", sender.external);
        let sender = Sender::new(&base(), "svc").unwrap();
        assert!(sender.external.iter().any(|(n, v)| n == "job" && v == "svc"), "{:?}", sender.external);
    }
}
