//! The runtime-free HTTP logic every frontend shares: a parsed request head in; status,
//! headers and a body that fills caller buffers out. Frontends only move bytes.
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz`, `/livez` | 200 `{"status":"ok"}` |
//! | `GET /readyz` | 200/400/503 `{"status":…,"pid":N}` by process state; 503 when shutting down |
//! | `GET /readyz?verbose` | same code, one `[+]name ok` / `[-]name degraded` line per component |
//! | `GET /readyz/<component>` | that component's state alone; 404 if unknown; the name percent-decoded (400 if malformed) |
//! | `GET /metrics` | 0.0.4 or OpenMetrics by `Accept`; gzip allowed by `Accept-Encoding` |
//! | `/debug/pprof/…` | [`Route::Debug`]: 404 here; a frontend may serve it |
//! | anything else | 404; a method other than GET/HEAD on a known route: 405 with `Allow` |

mod ascii;
#[cfg(feature = "async")]
mod connection;
mod negotiate;
mod percent;
mod response;
mod service;

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use connection::{Closed, Connection, ConnectionError, MAX_HEADERS, NoTimeouts, Timer};
pub use negotiate::{Escaping, Negotiated, accepts_gzip, negotiate, negotiate_format};
pub use percent::{DecodedBytes, PercentDecoded, PercentError};
pub use response::{Body, Response};
pub use service::{BuildInfo, Readiness, Service};

/// The parts of a request head the routes depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request target: path and optional `?query`.
    pub target: &'a str,
    /// The `Accept` header, if any.
    pub accept: Option<&'a str>,
    /// The `Accept-Encoding` header, if any.
    pub accept_encoding: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A `GET` of `target` without content negotiation headers.
    pub const fn get(target: &'a str) -> Self {
        Self { method: "GET", target, accept: None, accept_encoding: None }
    }

    /// The path, without the query.
    pub fn path(&self) -> &'a str {
        ascii::split_once(self.target, b'?').map_or(self.target, |(p, _)| p)
    }

    /// The query string, without `?`.
    pub fn query(&self) -> Option<&'a str> {
        ascii::split_once(self.target, b'?').map(|(_, q)| q)
    }

    /// Whether the method is `HEAD`.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route<'a> {
    /// `/healthz` or `/livez`.
    Healthz,
    /// `/readyz`, verbose when the query has `verbose` (not `verbose=0`/`false`).
    Readyz {
        /// Kubernetes-style per-component text.
        verbose: bool,
    },
    /// `/readyz/<component>`: everything after `/readyz/`, percent-decoded. A `/` in a name
    /// may be sent as is or as `%2F` (nothing else lives under `/readyz/`, so `/readyz/a/b`
    /// can only mean the component `a/b`); a space, `%`, `?`, `#` or non-ASCII must be
    /// percent-encoded, as in any URL. No other normalisation happens: `.` and `..` segments
    /// are names like any other (send them encoded, e.g. `%2E%2E`, to clients that rewrite
    /// dot segments).
    Component(PercentDecoded<'a>),
    /// `/readyz/<component>` whose percent-encoding is malformed: answered with 400.
    BadComponent(PercentError),
    /// `/metrics`.
    Metrics,
    /// `/debug/pprof` and below; the rest of the path after `/debug/pprof`.
    Debug(&'a str),
    /// Anything else.
    NotFound,
}

impl<'a> Route<'a> {
    /// Routes a request target (path and optional query).
    ///
    /// # Examples
    /// ```
    /// use diag_core::http::{PercentError, Route};
    /// assert_eq!(Route::parse("/readyz?verbose"), Route::Readyz { verbose: true });
    /// assert!(matches!(Route::parse("/readyz/auth"), Route::Component(name) if name == "auth"));
    /// assert!(matches!(Route::parse("/readyz/caf%C3%A9"), Route::Component(name) if name == "café"));
    /// assert_eq!(Route::parse("/readyz/50%"), Route::BadComponent(PercentError::BadEscape { at: 2 }));
    /// assert_eq!(Route::parse("/debug/pprof/heap"), Route::Debug("/heap"));
    /// assert_eq!(Route::parse("/nope"), Route::NotFound);
    /// ```
    pub fn parse(target: &'a str) -> Self {
        let (path, query) = ascii::split_once(target, b'?').unwrap_or((target, ""));
        match path {
            "/healthz" | "/livez" => Self::Healthz,
            "/readyz" => Self::Readyz { verbose: query_flag(query, "verbose") },
            "/metrics" => Self::Metrics,
            _ => {
                if let Some(rest) = path.strip_prefix("/debug/pprof") {
                    if rest.is_empty() || rest.starts_with('/') {
                        return Self::Debug(rest);
                    }
                }
                match path.strip_prefix("/readyz/") {
                    None | Some("") => Self::NotFound,
                    Some(name) => match PercentDecoded::new(name) {
                        Ok(name) => Self::Component(name),
                        Err(e) => Self::BadComponent(e),
                    },
                }
            }
        }
    }
}

/// Whether `query` sets flag `name` (present without value, or with a value other than
/// `0`/`false`).
fn query_flag(query: &str, name: &str) -> bool {
    ascii::split(query, b'&').any(|pair| {
        let (k, v) = ascii::split_once(pair, b'=').unwrap_or((pair, ""));
        k == name && !matches!(v, "0" | "false")
    })
}

/// Limits every frontend applies, with the defaults of docs/endpoints.md#errors-and-limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request head in bytes; larger gets 431.
    pub max_head_bytes: usize,
    /// Time allowed to receive a whole request head, in milliseconds; then the connection closes.
    pub header_timeout_ms: u64,
    /// Time an idle keep-alive connection is kept, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Concurrent connections served. At the cap, a new connection takes the place of the
    /// connection that has waited longest without a request in flight (an idle keep-alive
    /// one first, else one still sending its head), which is closed; when every connection
    /// has a request in flight, the new one gets a quick `503` and is closed. So a probe is
    /// answered at once however many idle connections are open.
    pub max_connections: usize,
    /// Size of the buffer `/metrics` is encoded into, chunk by chunk, when no larger pooled
    /// chunk is free (see `chunk_pool_bytes`): the memory such a scrape holds, and the largest
    /// series a scrape is sure to send.
    pub chunk_bytes: usize,
    /// Memory the std frontends keep for larger (2 MiB) chunks, shared by all connections and
    /// reused across scrapes: a streamed plain response is encoded into them, with fewer writes
    /// to the socket. A scrape holds one or two at a time; when all are in use, scrapes go on
    /// in their own `chunk_bytes` chunks. Less than 2 MiB turns the pool off; so does a
    /// `chunk_bytes` of 2 MiB or more. Not used by `http::Connection`.
    pub chunk_pool_bytes: usize,
    /// How long a server keeps serving after its shutdown begins, in milliseconds: `/readyz`
    /// answers 503 "process is shutting down" while `/healthz` stays 200, so load balancers
    /// and probes see the process leave before it stops accepting.
    pub shutdown_delay_ms: u64,
    /// Once a server stops accepting, how long requests in flight may take to finish, in
    /// milliseconds; connections still open then are closed.
    pub drain_timeout_ms: u64,
}

impl Limits {
    /// The defaults: 8 KiB head, 10 s header timeout, 30 s idle, 1024 connections, 64 KiB
    /// chunks, an 8 MiB pool of 2 MiB chunks, a 5 s shutdown delay and a 10 s drain.
    ///
    /// Why 5 s of shutdown delay: it lets a prober that polls `/readyz` every second or two
    /// see several 503s, and gives Kubernetes time to take the pod out of its endpoints
    /// (usually a second or two) before the address stops answering; with the 10 s drain
    /// it ends well within Kubernetes' default 30 s termination grace period.
    pub const DEFAULT: Self = Self {
        max_head_bytes: 8 * 1024,
        header_timeout_ms: 10_000,
        idle_timeout_ms: 30_000,
        max_connections: 1024,
        chunk_bytes: 64 * 1024,
        chunk_pool_bytes: 8 * 1024 * 1024,
        shutdown_delay_ms: 5_000,
        drain_timeout_ms: 10_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::parse("/healthz"), Route::Healthz);
        assert_eq!(Route::parse("/livez?x=1"), Route::Healthz);
        assert_eq!(Route::parse("/readyz"), Route::Readyz { verbose: false });
        assert_eq!(Route::parse("/readyz?verbose=1"), Route::Readyz { verbose: true });
        assert_eq!(Route::parse("/readyz?a=b&verbose"), Route::Readyz { verbose: true });
        assert_eq!(Route::parse("/readyz?verbose=false"), Route::Readyz { verbose: false });
        assert_eq!(Route::parse("/readyz/"), Route::NotFound);
        assert_eq!(Route::parse("/readyz?x/y"), Route::Readyz { verbose: false });
        assert_eq!(Route::parse("/metrics"), Route::Metrics);
        assert_eq!(Route::parse("/metrics/"), Route::NotFound);
        assert_eq!(Route::parse("/debug/pprof"), Route::Debug(""));
        assert_eq!(Route::parse("/debug/pprofx"), Route::NotFound);
        assert_eq!(Route::parse(""), Route::NotFound);
        assert_eq!(Route::parse("*"), Route::NotFound);
    }

    fn component(target: &str) -> Option<PercentDecoded<'_>> {
        match Route::parse(target) {
            Route::Component(name) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn component_names_are_percent_decoded() {
        for (target, name) in [
            ("/readyz/auth", "auth"),
            ("/readyz/a%2Fb", "a/b"),
            ("/readyz/a%2fb", "a/b"),
            ("/readyz/a/b", "a/b"),
            ("/readyz/my%20db", "my db"),
            ("/readyz/caf%C3%A9", "café"),
            ("/readyz/a%2Fb?verbose", "a/b"),
            ("/readyz/100%25", "100%"),
            ("/readyz/%3F%23", "?#"),
            ("/readyz/a+b", "a+b"),
            ("/readyz//", "/"),
            ("/readyz/readyz", "readyz"),
        ] {
            let got = component(target);
            assert!(got.is_some_and(|n| n == name), "{target}: {got:?}, want {name:?}");
        }
    }

    #[test]
    fn malformed_component_names_are_bad_requests() {
        assert_eq!(Route::parse("/readyz/%"), Route::BadComponent(PercentError::BadEscape { at: 0 }));
        assert_eq!(Route::parse("/readyz/a%2"), Route::BadComponent(PercentError::BadEscape { at: 1 }));
        assert_eq!(Route::parse("/readyz/a%zzb?verbose"), Route::BadComponent(PercentError::BadEscape { at: 1 }));
        assert_eq!(Route::parse("/readyz/caf%C3"), Route::BadComponent(PercentError::NotUtf8));
        assert_eq!(Route::parse("/readyz/%FF"), Route::BadComponent(PercentError::NotUtf8));
    }
}
