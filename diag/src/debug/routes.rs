//! [`DebugRoutes`]: the debug service's own routes, mounted through the server's
//! [`Routes`] hook before the core routes: `/log-level` and `/debug/pprof/…` on the socket,
//! `/debug/pprof/…` alone on the diagnostic address with `--debug`, and on a socket whose
//! `debug_service.enabled` is false, everything but the health routes answered 404.
//!
//! `HEAD` is answered on every route with the head `GET` would get and no body. A profile is
//! not collected for `HEAD` (a CPU profile takes its whole duration): the request is checked
//! as for `GET` (an unknown profile is 404, a bad `seconds` 400) and answered with the
//! `Content-Type` and `Content-Disposition` of the profile, without `Content-Length`.

use diag_core::server::{DiagBody, RouteBody, RouteFuture, Routes};
use http_body_util::{BodyExt as _, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

#[cfg(feature = "profiling")]
use super::cpu::{self, CpuError};
use super::log_level;
use super::profiles::{self, MAX_SECONDS, Profile};
#[cfg(feature = "profiling")]
use super::{heap, threads};

/// Largest `PUT /log-level` body accepted.
const MAX_LEVEL_BODY: usize = 1024;

/// CPU profile length when a request to `/debug/pprof/profile` has no `seconds` (or `0`): 30 s,
/// as Go's `net/http/pprof`. (`diagd debug profile` always sends its own, 10 s for `-s 0`.)
pub(crate) const ROUTE_DEFAULT_SECONDS: u64 = 30;

/// Which routes a server mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The debug socket: `/log-level` and profiles.
    Socket,
    /// The debug socket with `debug_service.enabled: false`: health routes only.
    HealthOnly,
    /// The diagnostic address with `--debug`: profiles.
    Profiles,
    /// The diagnostic address without `--debug`: nothing (the core routes answer everything).
    Off,
}

/// The debug service's routes; see the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct DebugRoutes {
    mode: Mode,
}

impl DebugRoutes {
    /// The debug socket's routes: all of them, or (when `enabled` is false) none but health.
    pub fn socket(enabled: bool) -> Self {
        Self { mode: if enabled { Mode::Socket } else { Mode::HealthOnly } }
    }

    /// The diagnostic address's routes: `/debug/pprof/…` with `--debug` (`debug`), else none.
    pub fn diag_addr(debug: bool) -> Self {
        Self { mode: if debug { Mode::Profiles } else { Mode::Off } }
    }
}

/// Whether a server in `mode` answers `path` itself (rather than the core routes).
fn claims_path(mode: Mode, path: &str) -> bool {
    match mode {
        Mode::Socket => path == "/log-level" || is_pprof(path),
        Mode::HealthOnly => !is_health(path),
        Mode::Profiles => is_pprof(path),
        Mode::Off => false,
    }
}

fn is_pprof(path: &str) -> bool {
    path == "/debug/pprof" || path.starts_with("/debug/pprof/")
}

fn is_health(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz") || path.starts_with("/readyz/")
}

impl Routes for DebugRoutes {
    fn claims(&self, request: &Request<RouteBody>) -> bool {
        claims_path(self.mode, request.uri().path())
    }

    fn serve(&self, request: Request<RouteBody>) -> RouteFuture {
        let mode = self.mode;
        Box::pin(async move {
            tracing::debug!(method = %request.method(), path = request.uri().path(), "debug route");
            let head = request.method() == Method::HEAD;
            let response = match mode {
                Mode::HealthOnly => text(StatusCode::NOT_FOUND, "404 page not found\n"),
                _ if request.uri().path() == "/log-level" => level(request).await,
                _ => pprof(request).await,
            };
            if head { without_body(response) } else { response }
        })
    }
}

/// A plain-text response.
fn text(status: StatusCode, body: impl Into<String>) -> Response<DiagBody> {
    let mut response = Response::new(DiagBody::full(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// An error in the core's form: `<status> <message>\n`.
fn error(status: StatusCode, message: &str) -> Response<DiagBody> {
    text(status, format!("{} {message}\n", status.as_u16()))
}

fn method_not_allowed(allow: &'static str) -> Response<DiagBody> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The head of `response` for a `HEAD` request: the same status and headers, with the
/// `Content-Length` the body would have had, and no body. An empty body stands for one whose
/// length is not known (a profile not collected): no `Content-Length` then.
fn without_body(response: Response<DiagBody>) -> Response<DiagBody> {
    use hyper::body::Body as _;
    let (mut parts, body) = response.into_parts();
    if let Some(len @ 1..) = body.size_hint().exact() {
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, DiagBody::empty())
}

/// `GET /log-level` (the level, e.g. `INFO`) and `PUT /log-level` (body: the new level).
async fn level(request: Request<RouteBody>) -> Response<DiagBody> {
    match *request.method() {
        Method::GET | Method::HEAD => match log_level::current() {
            Ok(level) => text(StatusCode::OK, log_level::name(level)),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        },
        Method::PUT => {
            let body = match Limited::new(request.into_body(), MAX_LEVEL_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("request body too large: at most {MAX_LEVEL_BODY} bytes"),
                    );
                }
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("cannot read the request body: {e}")),
            };
            let Some(level) = std::str::from_utf8(&body).ok().and_then(log_level::parse) else {
                return text(StatusCode::UNPROCESSABLE_ENTITY, "Invalid log level.");
            };
            match log_level::set(level) {
                Ok(change) => text(StatusCode::OK, change.message()),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
            }
        }
        _ => method_not_allowed("GET, HEAD, PUT"),
    }
}

/// `seconds=N` from a query; [`ROUTE_DEFAULT_SECONDS`] when absent or 0.
fn seconds(query: Option<&str>) -> Result<u64, String> {
    let Some(value) = query.into_iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("seconds=")) else {
        return Ok(ROUTE_DEFAULT_SECONDS);
    };
    match value.parse::<u64>() {
        Ok(0) => Ok(ROUTE_DEFAULT_SECONDS),
        Ok(n) if n <= MAX_SECONDS => Ok(n),
        _ => Err(format!("invalid seconds {value:?}: expected a whole number from 0 to {MAX_SECONDS}")),
    }
}

/// `/debug/pprof/` (the index), `/debug/pprof/profile?seconds=N`, `heap`, `allocs`, `goroutine`.
async fn pprof(request: Request<RouteBody>) -> Response<DiagBody> {
    let head = match *request.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return method_not_allowed("GET, HEAD"),
    };
    let name = request.uri().path().trim_start_matches("/debug/pprof").trim_start_matches('/');
    if name.is_empty() {
        return text(StatusCode::OK, profiles::index());
    }
    let Some(profile) = Profile::from_name(name) else {
        return error(StatusCode::NOT_FOUND, &profiles::unknown(name));
    };
    let seconds = match profile {
        Profile::Cpu => match seconds(request.uri().query()) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        },
        _ => 0,
    };
    if head {
        return attachment(name, DiagBody::empty());
    }
    #[cfg(not(feature = "profiling"))]
    {
        let _ = (profile, seconds);
        error(StatusCode::NOT_FOUND, "profiles are off: this program was built without diag's `profiling` feature")
    }
    #[cfg(feature = "profiling")]
    {
        let collected = match profile {
            Profile::Cpu => match cpu::collect(seconds).await {
                Ok(profile) => Ok(profile),
                Err(CpuError::Busy) => {
                    return error(
                        StatusCode::CONFLICT,
                        "a CPU profile is already being collected; one runs at a time, try again when it ends",
                    );
                }
                Err(CpuError::Failed(e)) => Err(e),
            },
            Profile::Heap => heap::collect(heap::View::InUse).await,
            Profile::Allocs => heap::collect(heap::View::Allocs).await,
            Profile::Goroutine => threads::collect().await,
        };
        match collected {
            Ok(profile) => attachment(name, DiagBody::full(profile)),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }
}

/// A profile `<name>.pprof` as an attachment.
fn attachment(name: &str, body: DiagBody) -> Response<DiagBody> {
    let mut response = Response::new(body);
    let disposition = format!("attachment; filename=\"{name}.pprof\"");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_default_and_bounds() {
        assert_eq!(seconds(None), Ok(30), "Go's default");
        assert_eq!(seconds(Some("debug=1")), Ok(30));
        assert_eq!(seconds(Some("seconds=0")), Ok(30));
        assert_eq!(seconds(Some("gc=1&seconds=3")), Ok(3));
        assert!(seconds(Some("seconds=601")).unwrap_err().contains("0 to 600"));
        assert!(seconds(Some("seconds=-1")).is_err());
        assert!(seconds(Some("seconds=abc")).is_err());
    }

    #[test]
    fn each_mode_claims_its_paths() {
        use Mode::{HealthOnly, Off, Profiles, Socket};
        // The health-only socket leaves health to the core and answers everything else 404.
        for path in ["/healthz", "/livez", "/readyz", "/readyz/db"] {
            assert!(!claims_path(HealthOnly, path), "{path}");
        }
        for path in ["/metrics", "/log-level", "/debug/pprof/profile"] {
            assert!(claims_path(HealthOnly, path), "{path}");
        }
        assert!(claims_path(Socket, "/log-level") && claims_path(Socket, "/debug/pprof/heap"));
        assert!(!claims_path(Socket, "/metrics") && !claims_path(Socket, "/debug/pprofx"));
        assert!(claims_path(Profiles, "/debug/pprof") && !claims_path(Profiles, "/log-level"));
        assert!(["/debug/pprof/heap", "/log-level", "/metrics"].iter().all(|p| !claims_path(Off, p)));
    }
}
