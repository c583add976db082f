//! [`Diagnostics`]: the builder, the handle a service keeps, its heartbeats and its server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diag_core::http::{BuildInfo, Service};
use diag_core::process::ProcessCollector;
use diag_core::{Collect, State};

use crate::config::{Check, Config, Log, Severity, TracingService};
use crate::debug::{DataDir, DebugSocket};
use crate::heartbeat::{Clock, States};
use crate::push::RemoteWrite;

mod embed;
use crate::sources::{Scraped, Source, Static};
use crate::telemetry::Tracing;

/// How long in-flight requests may take to finish once the diagnostic address stops
/// accepting, after the shutdown delay.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Fewest milliseconds between two TTL sweeps (and most: [`MAX_SWEEP`]).
const MIN_SWEEP: Duration = Duration::from_millis(10);
/// Longest time between two TTL sweeps: a silent component is degraded at most this late.
const MAX_SWEEP: Duration = Duration::from_millis(250);

/// One component of the state table, as the builder takes it: a name, its recovery window, an
/// optional time to live, and optionally a check diag runs itself.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use diag::Component;
/// let db = Component::new("db").ttl(Duration::from_secs(15)).recovery_window(Duration::from_secs(30));
/// # let _ = db;
/// ```
#[derive(Debug, Clone)]
pub struct Component {
    name: String,
    recovery_window: Duration,
    ttl: Option<Duration>,
    check: Option<(Check, Duration)>,
}

impl Component {
    /// A component named `name` (any name the state table accepts: not empty, at most 64
    /// bytes, no control characters), with the default 10 s recovery window and no TTL. The
    /// service reports it with [`Diagnostics::heartbeat`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            recovery_window: Duration::from_millis(diag_core::state::DEFAULT_RECOVERY_WINDOW_MS),
            ttl: None,
            check: None,
        }
    }

    /// Time to live: when the component has not reported for longer than `ttl`, it turns
    /// degraded (and recovers through `recovering` when reports resume).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How long a degraded component must keep reporting success before it is ok again
    /// (strictly longer than this; default 10 s).
    pub fn recovery_window(mut self, window: Duration) -> Self {
        self.recovery_window = window;
        self
    }

    /// Lets diag report the component itself: run `check` every `period` (each run bounded
    /// by it), as diagd does for its configured components.
    pub fn check(mut self, check: Check, period: Duration) -> Self {
        self.check = Some((check, period));
        self
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn from_config(c: &crate::config::Component) -> Self {
        Self {
            name: c.name.clone(),
            recovery_window: c.recovery_window,
            ttl: c.ttl,
            check: Some((c.check(), c.heartbeat_period)),
        }
    }
}

impl From<&str> for Component {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for Component {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Sets up a [`Diagnostics`]; from [`Diagnostics::builder`] or [`Builder::from_config`].
pub struct Builder {
    components: Vec<Component>,
    sources: Vec<Source>,
    process_metrics: bool,
    debug_dir: Option<DataDir>,
    debug_enabled: bool,
    log: Option<Log>,
    tracing: Option<TracingService>,
    service_name: Option<String>,
    trace_targets: Vec<(String, tracing::Level)>,
    shutdown_delay: Duration,
    drain_timeout: Duration,
    profiles_on_diag_addr: bool,
    build_info: Option<BuildInfo<'static>>,
    diag_addr: Option<SocketAddr>,
    remote_write: Option<RemoteWrite>,
    #[cfg(feature = "otlp")]
    trace_exemplars: bool,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("components", &self.components)
            .field("sources", &self.sources.len())
            .field("debug_dir", &self.debug_dir)
            .field("shutdown_delay", &self.shutdown_delay)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            components: Vec::new(),
            sources: Vec::new(),
            process_metrics: true,
            debug_dir: None,
            debug_enabled: true,
            log: None,
            tracing: None,
            service_name: None,
            trace_targets: Vec::new(),
            shutdown_delay: crate::config::DEFAULT_SHUTDOWN_DELAY,
            drain_timeout: DRAIN_TIMEOUT,
            profiles_on_diag_addr: false,
            build_info: None,
            diag_addr: None,
            remote_write: None,
            #[cfg(feature = "otlp")]
            trace_exemplars: false,
        }
    }
}

impl Builder {
    /// The builder of a `config` read from diagd's YAML: its components with their checks (or,
    /// with none, one component `agent` reporting itself), `data_dir` for the debug socket
    /// (default `/var/lib/diagd`, skipped with a warning when it cannot be used),
    /// `debug_service`, `log`, `tracing_service`, `shutdown_delay`, `diag_addr`
    /// ([`Diagnostics::diag_addr`]) and `remote_write`. Installs diag's log subscriber at
    /// [`build`](Self::build).
    pub fn from_config(config: &Config) -> Self {
        Self {
            components: config.watched().iter().map(Component::from_config).collect(),
            debug_dir: Some(match &config.data_dir {
                Some(dir) => DataDir::Chosen(dir.clone()),
                None => DataDir::Default(PathBuf::from(crate::debug::DEFAULT_DATA_DIR)),
            }),
            debug_enabled: config.debug_service.enabled,
            log: Some(config.log.clone()),
            tracing: Some(config.tracing_service.clone()),
            shutdown_delay: config.shutdown_delay.unwrap_or(crate::config::DEFAULT_SHUTDOWN_DELAY),
            diag_addr: config.diag_addr,
            remote_write: config.remote_write.clone(),
            ..Self::default()
        }
    }

    /// Adds a component (a name, or a [`Component`] with a TTL, a recovery window or a check).
    /// It is `starting` until its first report, so the process is not ready before it.
    pub fn component(mut self, component: impl Into<Component>) -> Self {
        self.components.push(component.into());
        self
    }

    /// Adds a `'static` metrics source to `/metrics`, such as a `static` [`Registry`](crate::Registry).
    pub fn registry<R: Collect + Sync + 'static>(mut self, registry: &'static R) -> Self {
        self.sources.push(Box::new(Static(registry)));
        self
    }

    /// Adds an owned metrics source to `/metrics` (kept until the last handle is dropped).
    pub fn metrics(mut self, source: impl Collect + Send + 'static) -> Self {
        self.sources.push(Box::new(source));
        self
    }

    /// Whether `/metrics` has the Linux `process_*` families (default true).
    pub fn process_metrics(mut self, on: bool) -> Self {
        self.process_metrics = on;
        self
    }

    /// Serves the debug service on `<dir>/debug.sock` (the dir created 0700, the socket 0600):
    /// health, metrics, the log level and profiles of this process, for `diagd debug`.
    pub fn debug_socket(mut self, dir: impl AsRef<Path>) -> Self {
        self.debug_dir = Some(DataDir::Chosen(dir.as_ref().to_owned()));
        self
    }

    /// `false` leaves the debug socket only the health routes (`debug_service.enabled`).
    pub fn debug_service(mut self, enabled: bool) -> Self {
        self.debug_enabled = enabled;
        self
    }

    /// Installs diag's log subscriber (stderr at `severity`, changed live by the debug
    /// service's `/log-level`) at [`build`](Self::build).
    pub fn log(mut self, severity: Severity) -> Self {
        self.log = Some(Log { severity });
        self
    }

    /// Exports spans as `config` says (feature `otlp`): spans of diag and of the targets
    /// added with [`trace_target`](Self::trace_target). Installs diag's log subscriber too.
    pub fn tracing(mut self, config: TracingService) -> Self {
        self.tracing = Some(config);
        self
    }

    /// Exemplars from traces (feature `otlp`): every update of an `ExemplarCounter` or
    /// `ExemplarHistogram` in the program, made inside a sampled span, carries that span's
    /// `trace_id` and `span_id` as its exemplar (OpenMetrics and protobuf show it), so a
    /// slow bucket links to the trace that filled it. See
    /// [`exemplars_from_traces`](crate::telemetry::exemplars_from_traces).
    #[cfg(feature = "otlp")]
    pub fn trace_exemplars(mut self, on: bool) -> Self {
        self.trace_exemplars = on;
        self
    }

    /// Exports the spans of `target` (a crate or module path) at `level` and above.
    pub fn trace_target(mut self, target: impl Into<String>, level: tracing::Level) -> Self {
        self.trace_targets.push((target.into(), level));
        self
    }

    /// The `service.name` of exported spans (default: the executable's name).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// After shutdown begins, keep answering on the diagnostic address for this long
    /// (`/readyz` 503, `/healthz` 200) before draining (default 5 s).
    pub fn shutdown_delay(mut self, delay: Duration) -> Self {
        self.shutdown_delay = delay;
        self
    }

    /// How long requests in flight may take to finish once the server stops accepting
    /// (default 10 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Serves the profiles under `/debug/pprof/` on the diagnostic address too (diagd's
    /// `--debug`); off by default.
    pub fn profiles_on_diag_addr(mut self, on: bool) -> Self {
        self.profiles_on_diag_addr = on;
        self
    }

    /// The `diag_build_info` labels of `/metrics`.
    pub fn build_info(mut self, build: BuildInfo<'static>) -> Self {
        self.build_info = Some(build);
        self
    }

    /// Pushes the metrics of `/metrics` to a Prometheus remote write receiver as `config`
    /// says (diagd's `remote_write`), from diag's own task thread, whichever runtime serves.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> Result<(), diag::Error> {
    /// use std::time::Duration;
    /// use diag::{Diagnostics, RemoteWrite};
    /// let diag = Diagnostics::builder()
    ///     .remote_write(RemoteWrite::new("http://prometheus:9090/api/v1/write").interval(Duration::from_secs(30)))
    ///     .build()?;
    /// # let _ = diag; Ok(()) }
    /// ```
    pub fn remote_write(mut self, config: RemoteWrite) -> Self {
        self.remote_write = Some(config);
        self
    }

    /// The address [`Diagnostics::diag_addr`] returns (diagd's `diag_addr`).
    pub fn diag_addr(mut self, addr: SocketAddr) -> Self {
        self.diag_addr = Some(addr);
        self
    }

    /// Registers the components, starts the log subscriber and tracing (when asked), the
    /// debug socket (when asked) and the task thread running the checks and the TTL sweep.
    ///
    /// # Errors
    /// A refused or duplicate component name, a TTL not longer than the component's check
    /// period, more than 64 components; a debug socket that cannot be made in a chosen dir;
    /// a tracing pipeline that cannot start; another global log subscriber; a bad
    /// `remote_write` setting or one of its files unreadable.
    pub fn build(self) -> Result<Diagnostics, crate::Error> {
        let states = Arc::new(States::new());
        let clock = Clock::start();
        for (i, c) in self.components.iter().enumerate() {
            let key = format!("components[{i}]");
            let ttl = c.ttl.map_or(0, |t| millis(t).max(1));
            if let Some((_, period)) = &c.check {
                if c.ttl.is_some_and(|t| t <= *period) {
                    return Err(crate::Error::msg(format!(
                        "{key}.ttl: must be longer than the check period ({})",
                        humantime::format_duration(*period)
                    )));
                }
            }
            if states.component(&c.name).is_some() {
                return Err(crate::Error::msg(format!("{key}.name: duplicate component name {:?}", c.name)));
            }
            states
                .expect_with_ttl(&c.name, millis(c.recovery_window), ttl)
                .map_err(|e| crate::Error::msg(format!("{key}.name: cannot watch {:?}: {e}", c.name)))?;
        }

        let service_name = self.service_name.clone().unwrap_or_else(default_service_name);
        let push = self.remote_write.as_ref().map(|c| crate::push::Sender::new(c, &service_name)).transpose()?;
        let tracing_enabled = self.tracing.as_ref().is_some_and(|t| t.enabled);
        let tracing = if self.log.is_some() || self.tracing.is_some() {
            let config = Config {
                log: self.log.clone().unwrap_or_default(),
                tracing_service: self.tracing.clone().unwrap_or_default(),
                ..Config::default()
            };
            crate::telemetry::init(&config, &service_name, &self.trace_targets)?
        } else {
            None
        };
        let tracing = TracingGuard(Mutex::new(tracing));
        #[cfg(feature = "otlp")]
        if self.trace_exemplars {
            crate::telemetry::exemplars_from_traces();
        }

        let shared = Arc::new(Shared {
            states,
            clock,
            sources: Scraped {
                process: self.process_metrics.then(ProcessCollector::new),
                #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
                runtime: std::sync::OnceLock::new(),
                http: Arc::new(diag_core::server::RequestDurations::new()),
                tracing: tracing_enabled,
                push: push.as_ref().map(crate::push::Sender::metrics),
                user: self.sources,
            },
            build_info: self.build_info,
            shutdown_delay: self.shutdown_delay,
            drain_timeout: self.drain_timeout,
            profiles_on_diag_addr: self.profiles_on_diag_addr,
            diag_addr: self.diag_addr,
        });

        let tasks = Tasks::start(&shared, &self.components, push)?;
        let debug_socket = match &self.debug_dir {
            Some(dir) => crate::debug::start(dir, self.debug_enabled, Arc::clone(&shared), |s| s.service())?,
            None => None,
        };
        Ok(Diagnostics { shared, owned: Arc::new(Owned { debug_socket, tasks, tracing }) })
    }
}

/// The executable's file name, the default `service.name`.
fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown_service".into())
}

/// What the servers, the debug socket, the tasks and the heartbeats share.
#[derive(Debug)]
#[cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "async-std")),
    allow(dead_code, reason = "the server settings are read by the runtime features' servers")
)]
pub(crate) struct Shared {
    states: Arc<States>,
    clock: Clock,
    sources: Scraped,
    build_info: Option<BuildInfo<'static>>,
    shutdown_delay: Duration,
    drain_timeout: Duration,
    profiles_on_diag_addr: bool,
    diag_addr: Option<SocketAddr>,
}

impl Shared {
    /// The core service over this table and these sources.
    fn service(&self) -> Service<'_> {
        let service = Service::from_sources(&*self.states, &self.sources, std::process::id());
        match self.build_info {
            Some(build) => service.with_build_info(build),
            None => service,
        }
    }
}

/// Flushes the tracing pipeline when the last handle goes.
#[derive(Debug)]
struct TracingGuard(Mutex<Option<Tracing>>);

impl Drop for TracingGuard {
    fn drop(&mut self) {
        let taken = self.0.get_mut().map(Option::take).unwrap_or_else(|e| e.into_inner().take());
        if let Some(tracing) = taken {
            // On a thread of its own: the gRPC exporter's runtime cannot be shut down from
            // inside another runtime's task.
            let _ = std::thread::Builder::new()
                .name("diag-tracing-flush".into())
                .spawn(move || tracing.shutdown())
                .map(std::thread::JoinHandle::join);
        }
    }
}

/// What only the handles own: dropping the last one stops the debug socket and the tasks and
/// flushes tracing.
#[derive(Debug)]
#[allow(dead_code, reason = "the fields are held for their Drop")]
struct Owned {
    debug_socket: Option<DebugSocket>,
    tasks: Option<Tasks>,
    tracing: TracingGuard,
}

/// The thread running the checks diag runs itself, the TTL sweep and the remote write
/// sender, on async-io (so under any runtime, and on after a runtime's tasks are gone).
#[derive(Debug)]
struct Tasks {
    stop: Option<async_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tasks {
    fn start(
        shared: &Arc<Shared>,
        components: &[Component],
        push: Option<crate::push::Sender>,
    ) -> Result<Option<Self>, crate::Error> {
        let checks: Vec<_> = components
            .iter()
            .filter_map(|c| c.check.clone().map(|(check, period)| (c.name.clone(), check, period)))
            .collect();
        let ttls: Vec<Duration> = components.iter().filter_map(|c| c.ttl).collect();
        // Dynamic components may get a TTL later only through the builder, so without one now
        // there is nothing to sweep.
        if checks.is_empty() && ttls.is_empty() && push.is_none() {
            return Ok(None);
        }
        let sweep = ttls.iter().min().map(|&t| (t / 4).clamp(MIN_SWEEP, MAX_SWEEP));
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let states = Arc::clone(&shared.states);
        let clock = shared.clock;
        let pushed = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("diag-heartbeats".into())
            .spawn(move || {
                let executor = async_executor::Executor::new();
                for (name, check, period) in checks {
                    executor.spawn(crate::heartbeat::watch(Arc::clone(&states), name, check, period, clock)).detach();
                }
                if let Some(every) = sweep {
                    executor.spawn(sweep_ttls(Arc::clone(&states), clock, every)).detach();
                }
                if let Some(sender) = push {
                    executor.spawn(sender.run(pushed, |s: &Shared| s.service())).detach();
                }
                async_io::block_on(executor.run(async move {
                    let _ = stopped.recv().await;
                }));
            })
            .map_err(|e| crate::Error::msg(format!("cannot start the heartbeat thread: {e}")))?;
        Ok(Some(Self { stop: Some(stop), thread: Some(thread) }))
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Degrades the components silent for longer than their TTL, every `every`.
async fn sweep_ttls(states: Arc<States>, clock: Clock, every: Duration) {
    let mut next = Instant::now();
    loop {
        next += every;
        async_io::Timer::at(next).await;
        next = next.max(Instant::now());
        let before: Vec<(String, State)> =
            states.components().filter(|(n, _)| states.ttl_ms(n).is_some()).map(|(n, s)| (n.to_owned(), s)).collect();
        if states.expire(clock.now_ms()) > 0 {
            for (name, was) in before {
                if states.component(&name) == Some(State::Degraded) && was != State::Degraded {
                    let ttl = Duration::from_millis(states.ttl_ms(&name).unwrap_or(0));
                    tracing::warn!(component = name.as_str(), from = was.as_str(), ttl = %humantime::format_duration(ttl), "no heartbeat within the TTL: degraded");
                }
            }
        }
    }
}

/// A service's diagnostics: the state table its heartbeats feed, its metrics sources, the
/// debug socket and tracing. Cheap to clone; the debug socket, the check and TTL thread and
/// the tracing pipeline stop when the last clone (and the last [`Serving`]) is dropped.
///
/// See the [crate docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    shared: Arc<Shared>,
    #[allow(dead_code, reason = "held for its Drop: the last handle stops what it owns")]
    owned: Arc<Owned>,
}

impl Diagnostics {
    /// A builder with no components, no debug socket, no log subscriber, the process metrics,
    /// a 5 s shutdown delay and a 10 s drain.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Reads diagd's YAML at `path` and builds it (see [`Builder::from_config`]).
    ///
    /// # Errors
    /// A file that cannot be read, malformed YAML, an unknown key or a bad value (the message
    /// names the file and the key); then as [`Builder::build`].
    pub fn from_config(path: impl AsRef<Path>) -> Result<Self, crate::Error> {
        Builder::from_config(&Config::load(path.as_ref())?).build()
    }

    /// The reporter of component `name`, registered (as `starting`) if it is not yet.
    ///
    /// # Errors
    /// A name the state table refuses, or a full table (64 components).
    pub fn heartbeat(&self, name: &str) -> Result<Heartbeat, crate::Error> {
        self.shared.states.expect(name).map_err(|e| crate::Error::msg(format!("component {name:?}: {e}")))?;
        Ok(Heartbeat { shared: Arc::clone(&self.shared), name: name.into() })
    }

    /// The process's state, as `/readyz` reports it (before shutdown).
    pub fn state(&self) -> State {
        self.shared.states.state()
    }

    /// One component's state, if it is registered.
    pub fn component(&self, name: &str) -> Option<State> {
        self.shared.states.component(name)
    }

    /// The state table.
    pub fn states(&self) -> &States {
        &self.shared.states
    }

    /// Turns `/readyz` to 503 "process is shutting down" at once (`/healthz` stays 200);
    /// servers then keep answering for the shutdown delay, drain and stop.
    pub fn begin_shutdown(&self) {
        self.shared.states.begin_shutdown();
    }

    /// The configured diagnostic address (`diag_addr`), if any.
    pub fn diag_addr(&self) -> Option<SocketAddr> {
        self.shared.diag_addr
    }

    /// Binds `addr` and serves the endpoints on `runtime` in a task of its own; call from
    /// within that runtime.
    ///
    /// # Errors
    /// When the address cannot be bound.
    #[cfg(any(feature = "tokio", feature = "smol", feature = "async-std"))]
    pub async fn serve(&self, runtime: crate::runtime::Runtime, addr: SocketAddr) -> Result<Serving, crate::Error> {
        use anyhow::Context as _;
        let listener = runtime.bind(addr).await.with_context(|| format!("cannot serve diagnostics on {addr}"))?;
        let local_addr = listener.local_addr().context("cannot read the bound address")?;
        let _ = self.shared.sources.runtime.set(runtime.metrics());
        let mut limits = diag_core::http::Limits::DEFAULT;
        limits.shutdown_delay_ms = millis(self.shared.shutdown_delay);
        limits.drain_timeout_ms = millis(self.shared.drain_timeout);
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let (done, finished) = async_channel::bounded(1);
        let shared = Arc::clone(&self.shared);
        let routes = crate::debug::DebugRoutes::diag_addr(shared.profiles_on_diag_addr);
        runtime.spawn(async move {
            let shutdown = {
                let shared = Arc::clone(&shared);
                async move {
                    let _ = stopped.recv().await;
                    tracing::info!("shutting down: /readyz now answers 503");
                    shared.states.begin_shutdown();
                }
            };
            let counted = crate::runtime::Counted {
                metrics: shared.sources.runtime.get(),
                durations: Arc::clone(&shared.sources.http),
            };
            let served = listener.serve(Arc::clone(&shared), |s| s.service(), counted, routes, limits, shutdown).await;
            if let Err(e) = &served {
                tracing::warn!(error = %e, "server ended with an error");
            }
            let _ = done.send(served).await;
        });
        Ok(Serving { addr: local_addr, stop: Some(stop), finished, _diagnostics: self.clone() })
    }

    /// [`serve`](Self::serve) on tokio. With the `tokio-taskdump` feature, this runtime's tasks
    /// are listed in the `goroutine` profile (unless
    /// `profiling::dump_tokio_tasks` chose another).
    ///
    /// # Errors
    /// When the address cannot be bound.
    #[cfg(feature = "tokio")]
    pub async fn serve_tokio(&self, addr: SocketAddr) -> Result<Serving, crate::Error> {
        // The runtime whose tasks the `goroutine` profile lists, unless the program chose one.
        #[cfg(feature = "tokio-taskdump")]
        crate::debug::tasks::served_on_current();
        self.serve(crate::runtime::Runtime::Tokio, addr).await
    }

    /// [`serve`](Self::serve) on smol.
    ///
    /// # Errors
    /// When the address cannot be bound.
    #[cfg(feature = "smol")]
    pub async fn serve_smol(&self, addr: SocketAddr) -> Result<Serving, crate::Error> {
        self.serve(crate::runtime::Runtime::Smol, addr).await
    }

    /// [`serve`](Self::serve) on async-std.
    ///
    /// # Errors
    /// When the address cannot be bound.
    #[cfg(feature = "async-std")]
    pub async fn serve_async_std(&self, addr: SocketAddr) -> Result<Serving, crate::Error> {
        self.serve(crate::runtime::Runtime::AsyncStd, addr).await
    }

    #[cfg(test)]
    fn owned(&self) -> &Arc<Owned> {
        &self.owned
    }
}

/// The endpoints served by [`Diagnostics::serve`]. Dropping it begins the shutdown too (the
/// server then drains in the background).
#[derive(Debug)]
pub struct Serving {
    addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    finished: async_channel::Receiver<std::io::Result<()>>,
    _diagnostics: Diagnostics,
}

impl Serving {
    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Begins the shutdown (`/readyz` 503 at once), keeps answering for the shutdown delay,
    /// stops accepting, lets requests in flight finish within the drain timeout, and returns.
    ///
    /// # Errors
    /// When accepting had failed for good.
    pub async fn shutdown(mut self) -> Result<(), crate::Error> {
        drop(self.stop.take());
        self.stopped().await
    }

    /// Waits until the server stops (after a shutdown begun elsewhere, such as
    /// [`Diagnostics::begin_shutdown`]).
    ///
    /// # Errors
    /// When accepting had failed for good.
    pub async fn stopped(&self) -> Result<(), crate::Error> {
        match self.finished.recv().await {
            Ok(result) => Ok(result?),
            // The task is gone (its runtime shut down): nothing is served any more.
            Err(_) => Ok(()),
        }
    }
}

/// Reports one component from the service's own code, with the time taken from a monotonic
/// clock. Cheap to clone; holds no lock.
///
/// # Examples
/// ```
/// # fn main() -> Result<(), diag::Error> {
/// use diag::{Diagnostics, State};
/// let diag = Diagnostics::builder().component("db").build()?;
/// let db = diag.heartbeat("db")?;
/// assert_eq!(diag.state(), State::Starting);
/// db.ok();
/// assert_eq!(diag.state(), State::Ok);
/// let attempt = db.start(); // times an operation; dropped without a verdict it counts as failed
/// attempt.failed();
/// assert_eq!(diag.component("db"), Some(State::Degraded));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Heartbeat {
    shared: Arc<Shared>,
    name: String,
}

impl Heartbeat {
    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component works: `starting`/`ok` → `ok`, `degraded` → `recovering`, `recovering`
    /// → `ok` once the recovery window has passed. Returns the new state.
    pub fn ok(&self) -> State {
        self.report(true)
    }

    /// The component does not work: → `degraded`. Returns the new state.
    pub fn failed(&self) -> State {
        self.report(false)
    }

    /// Starts timing an operation; report its outcome with [`Timed::ok`] or [`Timed::failed`].
    pub fn start(&self) -> Timed {
        Timed { heartbeat: Some(self.clone()), started: Instant::now() }
    }

    fn report(&self, ok: bool) -> State {
        let states = &self.shared.states;
        let before = states.component(&self.name);
        let now = self.shared.clock.now_ms();
        let result = if ok { states.heartbeat_ok(&self.name, now) } else { states.heartbeat_failed(&self.name, now) };
        match result {
            Ok(after) => {
                if before != Some(after) {
                    let from = before.map_or("unknown", State::as_str);
                    tracing::info!(
                        component = self.name.as_str(),
                        from,
                        to = after.as_str(),
                        "component state changed"
                    );
                }
                after
            }
            // Registered by `Diagnostics::heartbeat`, so the name is valid and has a slot.
            Err(e) => {
                tracing::error!(component = self.name.as_str(), error = %e, "cannot record heartbeat");
                states.state()
            }
        }
    }
}

/// An operation being timed ([`Heartbeat::start`]); dropped without [`ok`](Self::ok) or
/// [`failed`](Self::failed) (an error returned early, a panic, a cancelled task) it reports a
/// failure.
#[derive(Debug)]
pub struct Timed {
    heartbeat: Option<Heartbeat>,
    started: Instant,
}

impl Timed {
    /// How long the operation has taken so far.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The operation succeeded; reports it and returns the component's new state.
    pub fn ok(mut self) -> State {
        self.finish(true)
    }

    /// The operation failed; reports it and returns the component's new state.
    pub fn failed(mut self) -> State {
        self.finish(false)
    }

    fn finish(&mut self, ok: bool) -> State {
        match self.heartbeat.take() {
            Some(heartbeat) => {
                tracing::debug!(component = heartbeat.name.as_str(), ok, took = ?self.started.elapsed(), "heartbeat");
                heartbeat.report(ok)
            }
            None => State::Starting,
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        if self.heartbeat.is_some() {
            self.finish(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_components_are_errors_naming_the_key() {
        let e = Diagnostics::builder().component("a").component("a").build().unwrap_err().to_string();
        assert!(e.starts_with("components[1].name: duplicate component name \"a\""), "{e}");
        let e = Diagnostics::builder().component("bad\nname").build().unwrap_err().to_string();
        assert!(e.starts_with("components[0].name: cannot watch") && e.contains("control character"), "{e}");
        let c = Component::new("x").ttl(Duration::from_secs(1)).check(Check::Itself, Duration::from_secs(1));
        let e = Diagnostics::builder().component(c).build().unwrap_err().to_string();
        assert!(e.starts_with("components[0].ttl: must be longer than the check period (1s)"), "{e}");
        let diag = Diagnostics::builder().build().unwrap();
        assert!(diag.heartbeat("").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn a_dropped_attempt_counts_as_failed() {
        let diag = Diagnostics::builder().component("job").build().unwrap();
        let job = diag.heartbeat("job").unwrap();
        assert_eq!(job.ok(), State::Ok);
        drop(job.start());
        assert_eq!(diag.component("job"), Some(State::Degraded));
        assert_eq!(job.start().ok(), State::Recovering);
    }

    #[test]
    fn the_last_handle_stops_the_tasks() {
        let diag =
            Diagnostics::builder().component(Component::new("db").ttl(Duration::from_millis(50))).build().unwrap();
        let tasks = diag.owned().tasks.as_ref().and_then(|t| t.thread.as_ref()).map(|t| t.thread().id());
        assert!(tasks.is_some(), "a TTL starts the sweep");
        let heartbeat = diag.heartbeat("db").unwrap();
        heartbeat.ok();
        let weak = Arc::downgrade(&diag.owned);
        drop(diag);
        assert!(weak.upgrade().is_none(), "the handle's parts are gone");
        // A heartbeat outliving the handle still reports (into the table it keeps).
        assert_eq!(heartbeat.ok(), State::Ok);
    }
}
