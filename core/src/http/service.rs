//! [`Service`]: the routes of docs/endpoints.md over a readiness source and metric sources, plus
//! the families every std frontend exposes (`process_state`, `promhttp_*`, `diag_build_info`).

use core::fmt;

use serde::Serialize;

use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
use crate::http::response::{Body, Inline, JSON, Response, TEXT};
use crate::http::{PercentDecoded, Request, Route, accepts_gzip, negotiate};
use crate::registry::{Collect, Scrape, Sources};
use crate::state::{State, StateTable};
use crate::{Counter, Gauge};

/// What `/readyz` reports on; implemented by [`StateTable`].
pub trait Readiness: Sync {
    /// The aggregate state.
    fn state(&self) -> State;
    /// Whether shutdown has begun.
    fn is_shutting_down(&self) -> bool;
    /// Begins shutdown for good: from now on [`is_shutting_down`](Self::is_shutting_down) is
    /// true. A server calls it when its drain begins (see `diag_core::server`).
    fn begin_shutdown(&self);
    /// One component's state, if known.
    fn component(&self, name: &str) -> Option<State>;
    /// Number of component slots in use (an upper bound on the components; never shrinks).
    fn slots(&self) -> usize;
    /// The component in slot `index`, if that slot holds one.
    fn component_at(&self, index: usize) -> Option<(&str, State)>;
    /// State changes so far.
    fn transitions(&self) -> u64;
}

impl<const N: usize, const NAME: usize> Readiness for StateTable<N, NAME> {
    fn state(&self) -> State {
        StateTable::state(self)
    }

    fn is_shutting_down(&self) -> bool {
        StateTable::is_shutting_down(self)
    }

    fn begin_shutdown(&self) {
        StateTable::begin_shutdown(self);
    }

    fn component(&self, name: &str) -> Option<State> {
        StateTable::component(self, name)
    }

    fn slots(&self) -> usize {
        StateTable::component_slots(self)
    }

    fn component_at(&self, index: usize) -> Option<(&str, State)> {
        StateTable::component_at(self, index)
    }

    fn transitions(&self) -> u64 {
        StateTable::transitions(self)
    }
}

/// The `diag_build_info` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo<'a> {
    /// Version of the program.
    pub version: &'a str,
    /// Git revision it was built from.
    pub gitref: &'a str,
    /// Version of rustc that built it.
    pub rustversion: &'a str,
}

/// Readiness messages, exactly as the reference words them.
const STARTING: &str = "process is starting and hasn't joined the cluster yet";
const RECOVERING: &str = "process is recovering from a degraded state, check logs for details";
const DEGRADED: &str = "process is in a degraded state, check logs for details";
const SHUTTING_DOWN: &str = "process is shutting down";
const UNKNOWN_COMPONENT: &str = "unknown component";

/// The status code and message for a state.
fn readiness(state: State, shutting_down: bool) -> (u16, &'static str) {
    if shutting_down {
        return (503, SHUTTING_DOWN);
    }
    match state {
        State::Ok => (200, "ok"),
        State::Recovering => (400, RECOVERING),
        State::Degraded => (503, DEGRADED),
        State::Starting => (400, STARTING),
    }
}

#[derive(Serialize)]
struct StatusBody<'s> {
    status: &'s str,
    pid: u32,
}

/// The state of the component `name` names once decoded, comparing as it decodes (no buffer).
fn component(readiness: &dyn Readiness, name: PercentDecoded<'_>) -> Option<State> {
    (0..readiness.slots()).filter_map(|i| readiness.component_at(i)).find(|(stored, _)| name == *stored).map(|(_, s)| s)
}

/// Codes `promhttp_metric_handler_requests_total` is pre-created with, as in client_golang.
const CODES: [&str; 3] = ["200", "500", "503"];

/// The routes of docs/endpoints.md over `readiness` and `sources`, and the always-present families.
///
/// # Examples
/// ```
/// use diag_core::http::{Request, Service};
/// use diag_core::StateTable;
/// static STATES: StateTable<4> = StateTable::new();
/// let service = Service::new(&STATES, &[], 42);
///
/// STATES.heartbeat_ok("agent", 0).unwrap();
/// let response = service.respond(&Request::get("/readyz"));
/// assert_eq!(response.status(), 200);
/// let mut body = [0u8; 64];
/// let n = response.into_body().fill(&mut body).unwrap();
/// assert_eq!(&body[..n], br#"{"status":"ok","pid":42}"#);
/// ```
pub struct Service<'a> {
    builtin: Builtin<'a>,
    sources: SourceList<'a>,
    pid: u32,
}

/// The sources a [`Service`] scrapes after its own families.
#[derive(Clone, Copy)]
enum SourceList<'a> {
    /// A slice of collectors (`Service::new`).
    Slice(&'a [&'a dyn Collect]),
    /// Any [`Sources`] (`Service::from_sources`).
    Dyn(&'a dyn Sources),
}

impl SourceList<'_> {
    fn get(&self, index: usize) -> Option<&dyn Collect> {
        match self {
            Self::Slice(slice) => slice.get(index).copied(),
            Self::Dyn(sources) => sources.source(index),
        }
    }
}

/// The always-present families, and the counters behind the `promhttp_*` ones.
struct Builtin<'a> {
    readiness: &'a dyn Readiness,
    build: Option<BuildInfo<'a>>,
    requests: [Counter; 3],
    in_flight: Gauge,
}

impl<'a> Service<'a> {
    /// A service answering for `readiness`, scraping its own families and then `sources`, and
    /// reporting `pid` in readiness bodies.
    pub fn new(readiness: &'a dyn Readiness, sources: &'a [&'a dyn Collect], pid: u32) -> Self {
        Self::with_source_list(readiness, SourceList::Slice(sources), pid)
    }

    /// Like [`new`](Self::new), scraping any [`Sources`] after its own families: a type of
    /// yours that holds its collectors, chosen at run time, and hands them out by index.
    ///
    /// # Examples
    /// ```
    /// use diag_core::http::{Request, Service};
    /// use diag_core::{Collect, Encoder, Format, Scrape, Sources, StateTable, Stop};
    /// # use diag_core::{Desc, Labels, MetricType, Value};
    /// # struct Workers(i64);
    /// # impl Collect for Workers {
    /// #     fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
    /// #         let desc = Desc { name: "workers", help: "Workers.", metric_type: MetricType::Gauge };
    /// #         enc.header(&desc)?;
    /// #         enc.sample(&desc, &Labels::EMPTY, Value::I64(self.0))
    /// #     }
    /// # }
    /// /// Collectors decided at start-up.
    /// struct Mine {
    ///     workers: Option<Workers>,
    /// }
    ///
    /// impl Sources for Mine {
    ///     fn source(&self, index: usize) -> Option<&dyn Collect> {
    ///         self.workers.as_ref().filter(|_| index == 0).map(|w| w as &dyn Collect)
    ///     }
    /// }
    ///
    /// static STATES: StateTable<4> = StateTable::new();
    /// let mine = Mine { workers: Some(Workers(4)) };
    /// let service = Service::from_sources(&STATES, &mine, 1);
    /// let mut body = service.respond(&Request::get("/metrics")).into_body();
    /// let mut buf = [0u8; 4096];
    /// let n = body.fill(&mut buf).unwrap();
    /// assert!(std::str::from_utf8(&buf[..n]).unwrap().contains("\nworkers 4\n"));
    /// ```
    pub fn from_sources(readiness: &'a dyn Readiness, sources: &'a dyn Sources, pid: u32) -> Self {
        Self::with_source_list(readiness, SourceList::Dyn(sources), pid)
    }

    fn with_source_list(readiness: &'a dyn Readiness, sources: SourceList<'a>, pid: u32) -> Self {
        let builtin = Builtin {
            readiness,
            build: None,
            requests: [Counter::new(), Counter::new(), Counter::new()],
            in_flight: Gauge::new(),
        };
        Self { builtin, sources, pid }
    }

    /// Adds `diag_build_info{version,gitref,rustversion} 1` to the metrics.
    pub fn with_build_info(mut self, build: BuildInfo<'a>) -> Self {
        self.builtin.build = Some(build);
        self
    }

    /// The readiness source.
    pub fn readiness(&self) -> &'a dyn Readiness {
        self.builtin.readiness
    }

    /// Answers a request. HEAD gets the same status and headers as GET and an empty body;
    /// [`Route::Debug`] gets 404 (a frontend serving profiles routes it before calling this).
    pub fn respond(&self, req: &Request<'_>) -> Response<'_> {
        self.respond_route(Route::parse(req.target), req)
    }

    /// Answers a request already routed.
    pub fn respond_route(&self, route: Route<'_>, req: &Request<'_>) -> Response<'_> {
        let early = match route {
            Route::NotFound | Route::Debug(_) => Some((404, "page not found")),
            Route::BadComponent(e) => Some((400, e.message())),
            _ => None,
        };
        if let Some((code, message)) = early {
            let response = Response::plain(code, message);
            return if req.is_head() { response.head() } else { response };
        }
        if !matches!(req.method, "GET" | "HEAD") {
            return Response::method_not_allowed();
        }
        let response = match route {
            Route::Healthz => Response::new(200, JSON, Body::fixed(br#"{"status":"ok"}"#)),
            Route::Readyz { verbose: false } => {
                let (code, message) = readiness(self.readiness().state(), self.readiness().is_shutting_down());
                self.status_response(code, message)
            }
            Route::Readyz { verbose: true } => {
                let (code, _) = readiness(self.readiness().state(), self.readiness().is_shutting_down());
                Response::new(code, TEXT, Body::verbose(self.readiness()))
            }
            Route::Component(name) => match component(self.readiness(), name) {
                Some(state) => {
                    let (code, message) = readiness(state, self.readiness().is_shutting_down());
                    self.status_response(code, message)
                }
                None => self.status_response(404, UNKNOWN_COMPONENT),
            },
            Route::Metrics => {
                self.builtin.requests[0].inc();
                let negotiated = negotiate(req.accept);
                let scrape = Scrape::new(negotiated.format, self).with_escaping(negotiated.name_escaping());
                Response::new(200, negotiated.content_type(), Body::metrics(scrape, &self.builtin.in_flight))
                    .with_metrics_headers(accepts_gzip(req.accept_encoding))
            }
            // Answered above.
            Route::NotFound | Route::Debug(_) | Route::BadComponent(_) => Response::plain(404, "page not found"),
        };
        if req.is_head() { response.head() } else { response }
    }

    fn status_response(&self, code: u16, status: &str) -> Response<'_> {
        let mut inline = Inline::default();
        // The messages are fixed and short, so they always fit the inline buffer.
        let len = serde_json_core::to_slice(&StatusBody { status, pid: self.pid }, inline.buffer()).unwrap_or(0);
        inline.set_len(len);
        Response::new(code, JSON, Body::inline(inline))
    }
}

impl fmt::Debug for Service<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service").field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl Sources for Service<'_> {
    fn source(&self, index: usize) -> Option<&dyn Collect> {
        match index {
            0 => Some(&self.builtin),
            i => self.sources.get(i - 1),
        }
    }
}

const PROCESS_STATE: Desc<'static> = Desc {
    name: "process_state",
    help: "State of the process: 0 - ok, 1 - recovering, 2 - degraded, 3 - starting.",
    metric_type: MetricType::Gauge,
};
const TRANSITIONS: Desc<'static> = Desc {
    name: "process_state_transitions_total",
    help: "Number of component state changes since start.",
    metric_type: MetricType::Counter,
};
const COMPONENT_STATE: Desc<'static> = Desc {
    name: "diag_component_state",
    help: "State of each component: 0 - ok, 1 - recovering, 2 - degraded, 3 - starting.",
    metric_type: MetricType::Gauge,
};
const BUILD_INFO: Desc<'static> =
    Desc { name: "diag_build_info", help: "Build information of the running program.", metric_type: MetricType::Gauge };
const REQUESTS: Desc<'static> = Desc {
    name: "promhttp_metric_handler_requests_total",
    help: "Total number of scrapes by HTTP status code.",
    metric_type: MetricType::Counter,
};
const IN_FLIGHT: Desc<'static> = Desc {
    name: "promhttp_metric_handler_requests_in_flight",
    help: "Current number of scrapes being served.",
    metric_type: MetricType::Gauge,
};

impl Collect for Builtin<'_> {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        let s = self;
        let r = s.readiness;
        enc.entry(0, |enc| {
            enc.header(&PROCESS_STATE)?;
            enc.sample(&PROCESS_STATE, &Labels::EMPTY, Value::I64(r.state().gauge()))
        })?;
        enc.entry(1, |enc| {
            enc.header(&TRANSITIONS)?;
            enc.sample(&TRANSITIONS, &Labels::EMPTY, Value::U64(r.transitions()))
        })?;
        enc.entry(2, |enc| {
            let slots = r.slots();
            if slots == 0 {
                return Ok(());
            }
            enc.header(&COMPONENT_STATE)?;
            for i in 0..slots {
                if enc.skip_item() {
                    continue;
                }
                match r.component_at(i) {
                    Some((name, state)) => {
                        enc.sample(&COMPONENT_STATE, &Labels::new(&["component"], &[name]), Value::I64(state.gauge()))?
                    }
                    None => enc.empty_item(),
                }
            }
            Ok(())
        })?;
        if let Some(b) = &s.build {
            enc.entry(3, |enc| {
                enc.header(&BUILD_INFO)?;
                let values = [b.version, b.gitref, b.rustversion];
                let labels = Labels::new(&["version", "gitref", "rustversion"], &values);
                enc.sample(&BUILD_INFO, &labels, Value::I64(1))
            })?;
        }
        enc.entry(4, |enc| {
            enc.header(&REQUESTS)?;
            for (code, counter) in CODES.iter().zip(&s.requests) {
                enc.sample(&REQUESTS, &Labels::new(&["code"], &[code]), Value::U64(counter.get()))?;
            }
            Ok(())
        })?;
        enc.entry(5, |enc| {
            enc.header(&IN_FLIGHT)?;
            enc.sample(&IN_FLIGHT, &Labels::EMPTY, Value::I64(s.in_flight.get()))
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn get(service: &Service<'_>, target: &str) -> (u16, String) {
        respond(service, &Request::get(target))
    }

    fn respond(service: &Service<'_>, req: &Request<'_>) -> (u16, String) {
        let response = service.respond(req);
        let status = response.status();
        let mut body = response.into_body();
        let (mut out, mut buf) = (Vec::new(), [0u8; 256]);
        while let Ok(n @ 1..) = body.fill(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        (status, String::from_utf8(out).unwrap())
    }

    fn table() -> StateTable<8> {
        let states = StateTable::new();
        states.heartbeat_ok("a/b", 0).unwrap();
        states.heartbeat_failed("my db", 0).unwrap();
        states.expect("café").unwrap();
        states.heartbeat_ok("100%", 0).unwrap();
        states
    }

    #[test]
    fn every_accepted_name_is_reachable_percent_decoded() {
        let states = table();
        let service = Service::new(&states, &[], 7);
        const OK: &str = r#"{"status":"ok","pid":7}"#;
        const DEGRADED: &str = r#"{"status":"process is in a degraded state, check logs for details","pid":7}"#;
        const STARTING: &str = r#"{"status":"process is starting and hasn't joined the cluster yet","pid":7}"#;
        for (target, status, body) in [
            ("/readyz/a%2Fb", 200, OK),
            ("/readyz/a%2fb", 200, OK),
            ("/readyz/a/b", 200, OK),
            ("/readyz/my%20db", 503, DEGRADED),
            ("/readyz/caf%C3%A9", 400, STARTING),
            ("/readyz/caf%c3%a9?verbose", 400, STARTING),
            ("/readyz/100%25", 200, OK),
        ] {
            assert_eq!(get(&service, target), (status, body.into()), "{target}");
        }
    }

    #[test]
    fn unknown_and_malformed_names() {
        let states = table();
        let service = Service::new(&states, &[], 7);
        let unknown = (404, String::from(r#"{"status":"unknown component","pid":7}"#));
        for target in ["/readyz/a", "/readyz/a%2F", "/readyz/b", "/readyz/my+db", "/readyz/cafe", "/readyz/100%2525"] {
            assert_eq!(get(&service, target), unknown, "{target}");
        }
        let bad_escape =
            "400 malformed percent-encoding in the component name: every '%' must be followed by two hex digits\n";
        for target in ["/readyz/100%", "/readyz/my%g0db", "/readyz/%zz?verbose"] {
            assert_eq!(get(&service, target), (400, bad_escape.into()), "{target}");
        }
        let not_utf8 = "400 the percent-decoded component name is not UTF-8\n";
        for target in ["/readyz/caf%C3", "/readyz/%FF"] {
            assert_eq!(get(&service, target), (400, not_utf8.into()), "{target}");
        }
        // HEAD: the same status and length, no body; other methods get the same 400.
        let head = Request { method: "HEAD", ..Request::get("/readyz/%") };
        let response = service.respond(&head);
        assert_eq!((response.status(), response.content_length()), (400, Some(bad_escape.len())));
        assert_eq!(respond(&service, &head), (400, String::new()));
        let post = Request { method: "POST", ..Request::get("/readyz/%") };
        assert_eq!(respond(&service, &post).0, 400);
    }

    #[test]
    fn verbose_has_one_line_per_component_whatever_the_names() {
        let states = table();
        for name in ["evil\n[+]fake ok", "cr\r[+]x ok", "nel\u{85}x"] {
            assert!(matches!(states.expect(name), Err(crate::ComponentError::InvalidName(_))), "{name:?}");
        }
        let service = Service::new(&states, &[], 7);
        let (status, body) = get(&service, "/readyz?verbose");
        assert_eq!(status, 503);
        assert_eq!(body, "[+]a/b ok\n[-]my db degraded\n[-]café starting\n[+]100% ok\nreadyz check failed\n");
    }

    #[test]
    fn component_state_metric_carries_the_names() {
        let states = table();
        let service = Service::new(&states, &[], 7);
        let (status, body) = get(&service, "/metrics");
        assert_eq!(status, 200);
        for line in [
            "diag_component_state{component=\"a/b\"} 0\n",
            "diag_component_state{component=\"my db\"} 2\n",
            "diag_component_state{component=\"café\"} 3\n",
            "diag_component_state{component=\"100%\"} 0\n",
        ] {
            assert!(body.contains(line), "{line} missing from\n{body}");
        }
    }
}
