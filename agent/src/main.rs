//! `diagd`: the diag agent. `diagd start` watches the configured components with heartbeat
//! checks and serves `/healthz`, `/readyz` and `/metrics` on `--diag-addr`.

// One item needs `unsafe`: the jemalloc options symbol in debug/allocator.rs.
#![deny(unsafe_code)]

mod check;
mod config;
mod debug;
mod heartbeat;
mod runtime;
mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use diag_core::http::{BuildInfo, Limits, Service};
use diag_core::process::ProcessCollector;
use diag_core::{Collect, Sources};
use futures_lite::StreamExt as _;

use crate::config::Config;
use crate::heartbeat::{Clock, States};
use crate::runtime::{Runtime, RuntimeMetrics};

/// How long in-flight requests may take to finish once the diagnostic address stops
/// accepting, after SIGTERM/SIGINT and the shutdown delay.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

static STATES: States = States::new();
static PROCESS: ProcessCollector = ProcessCollector::new();
const BUILD: BuildInfo<'static> = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    gitref: env!("DIAG_GITREF"),
    rustversion: env!("DIAG_RUSTVERSION"),
};

#[derive(Debug, Parser)]
#[command(name = "diagd", version, about = "The diag agent: heartbeat checks, health, readiness and metrics endpoints")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the agent.
    Start(Start),
    /// Talk to a running agent through its debug socket (<data_dir>/debug.sock).
    Debug(debug::cli::DebugArgs),
}

#[derive(Debug, clap::Args)]
struct Start {
    /// Serve the diagnostic endpoints on this address (IP:PORT; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", value_parser = config::parse_addr)]
    diag_addr: Option<SocketAddr>,
    /// Serve profiles under /debug/pprof/ on the diagnostic address.
    #[arg(short = 'd', long)]
    debug: bool,
    /// After SIGTERM/SIGINT, keep answering on the diagnostic address for this long (/readyz
    /// 503, /healthz 200) before draining: 500ms, 5s, 1m; overrides `shutdown_delay` [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    shutdown_delay: Option<Duration>,
    /// YAML configuration file.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The async runtime to run on.
    #[arg(long, value_enum, default_value = runtime::DEFAULT)]
    runtime: Runtime,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Start(start) => run(start).map(|()| ExitCode::SUCCESS),
        Command::Debug(args) => debug::cli::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("diagd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(start: Start) -> anyhow::Result<()> {
    let config = match &start.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let exporting = init_logging(&config)?;
    let runtime = start.runtime;
    let served = runtime.block_on(serve(start, config))?;
    if let Some(exporting) = exporting {
        exporting.shutdown();
    }
    served
}

/// Logs to stderr and, when `tracing_service` is enabled, exports spans (see `telemetry`).
fn init_logging(config: &Config) -> anyhow::Result<Option<telemetry::Tracing>> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIAGD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.log.severity.as_filter()));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(debug::log_level::reloadable(filter));
    let (spans, tracing) = telemetry::start(&config.tracing_service)?.unzip();
    tracing_subscriber::registry().with(logs).with(spans).init();
    Ok(tracing)
}

/// What every service of diagd scrapes after its own families: the process metrics, the
/// runtime's gauges and, with `tracing_service`, the exporter's counts. Owned by the servers
/// (the diagnostic address and the debug socket share it), nothing leaked.
#[derive(Debug)]
struct AgentSources {
    runtime: RuntimeMetrics,
    tracing: bool,
}

impl Sources for AgentSources {
    fn source(&self, index: usize) -> Option<&dyn Collect> {
        let tracing = self.tracing.then(|| telemetry::metrics() as &dyn Collect);
        [Some(&PROCESS as &dyn Collect), Some(&self.runtime), tracing].into_iter().flatten().nth(index)
    }
}

/// diagd's service over `sources`.
fn service(sources: &AgentSources) -> Service<'_> {
    Service::from_sources(&STATES, sources, std::process::id()).with_build_info(BUILD)
}

async fn serve(start: Start, config: Config) -> anyhow::Result<()> {
    let runtime = start.runtime;
    let diag_addr = start.diag_addr.or(config.diag_addr);
    // Bind first: a bad or busy address is an error before anything else runs.
    let listener = match diag_addr {
        Some(addr) => Some(runtime.bind(addr).await.with_context(|| format!("cannot serve diagnostics on {addr}"))?),
        None => None,
    };

    let clock = Clock::start();
    for component in config.watched() {
        runtime.spawn(heartbeat::watch(&STATES, &component, clock)?);
    }

    let shutdown = async move {
        let signal = shutdown_signal().await;
        if let Err(e) = &signal {
            tracing::error!(error = %e, "cannot wait for signals; shutting down");
        }
        tracing::info!("shutting down: /readyz now answers 503");
        STATES.begin_shutdown();
    };
    let sources = Arc::new(AgentSources { runtime: runtime.metrics(), tracing: config.tracing_service.enabled });
    // The debug socket (removed again when this returns).
    let _debug_socket = debug::start(&config, Arc::clone(&sources), |s| service(s))?;
    match listener {
        Some(listener) => {
            let addr = listener.local_addr().context("cannot read the bound address")?;
            let delay = start.shutdown_delay.or(config.shutdown_delay).unwrap_or(config::DEFAULT_SHUTDOWN_DELAY);
            let mut limits = Limits::DEFAULT;
            limits.shutdown_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            limits.drain_timeout_ms = u64::try_from(DRAIN_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
            tracing::info!(%addr, ?runtime, shutdown_delay = ?delay, "serving diagnostics");
            // On stdout for scripts and tests: the address actually bound (port 0 resolved).
            println!("diagd: serving diagnostics on http://{addr}");
            // `--debug`: the profiles under /debug/pprof/ too.
            let routes = debug::DebugRoutes::diag_addr(start.debug);
            let metrics = &sources.runtime;
            let served = listener.serve(Arc::clone(&sources), |s| service(s), metrics, routes, limits, shutdown).await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "server ended with an error");
            }
        }
        None => {
            tracing::info!("no --diag-addr or diag_addr: diagnostic endpoints are off");
            shutdown.await;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// A `--shutdown-delay` value: `500ms`, `5s`, `1m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?} ({e}): expected e.g. 500ms, 5s or 1m"))
}

/// Waits for SIGTERM or SIGINT.
async fn shutdown_signal() -> anyhow::Result<()> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Term, Signal::Int]).context("cannot listen for SIGTERM and SIGINT")?;
    let signal = signals.next().await.context("signal stream ended")?.context("cannot read a signal")?;
    tracing::info!(?signal, "signal received");
    Ok(())
}
