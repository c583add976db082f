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
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use diag_core::Collect;
use diag_core::http::{BuildInfo, Service};
use diag_core::process::ProcessCollector;
use futures_lite::{StreamExt as _, future};

use crate::config::Config;
use crate::heartbeat::{Clock, States};
use crate::runtime::Runtime;

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
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
    #[arg(long)]
    debug: bool,
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

    // The signal ends the wait below (no endpoints) or starts the drain (endpoints).
    let (signalled, on_signal) = async_channel::bounded::<()>(1);
    let shutdown = async move {
        let signal = shutdown_signal().await;
        if let Err(e) = &signal {
            tracing::error!(error = %e, "cannot wait for signals; shutting down");
        }
        tracing::info!("shutting down: /readyz now answers 503 while connections drain");
        STATES.begin_shutdown();
        let _ = signalled.send(()).await;
    };
    let mut sources: Vec<&'static dyn Collect> = vec![&PROCESS];
    sources.extend(runtime.metrics());
    if config.tracing_service.enabled {
        sources.push(telemetry::metrics());
    }
    let sources: &'static [&'static dyn Collect] = sources.leak();
    let service = || Service::new(&STATES, sources, std::process::id()).with_build_info(BUILD);
    // The debug socket (removed again when this returns).
    let _debug_socket = debug::start(&config, service())?;
    match listener {
        Some(listener) => {
            let addr = listener.local_addr().context("cannot read the bound address")?;
            let service = service();
            tracing::info!(%addr, ?runtime, "serving diagnostics");
            // On stdout for scripts and tests: the address actually bound (port 0 resolved).
            println!("diagd: serving diagnostics on http://{addr}");
            let drain_deadline = async {
                let _ = on_signal.recv().await;
                async_io::Timer::after(DRAIN_TIMEOUT).await;
                Err(None)
            };
            // `--debug`: the profiles under /debug/pprof/ too.
            let routes = debug::DebugRoutes::diag_addr(start.debug);
            match future::or(async { listener.serve(service, routes, shutdown).await.map_err(Some) }, drain_deadline)
                .await
            {
                Ok(()) => {}
                Err(Some(e)) => tracing::warn!(error = %e, "server ended with an error"),
                Err(None) => tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; exiting anyway"),
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

/// Waits for SIGTERM or SIGINT.
async fn shutdown_signal() -> anyhow::Result<()> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Term, Signal::Int]).context("cannot listen for SIGTERM and SIGINT")?;
    let signal = signals.next().await.context("signal stream ended")?.context("cannot read a signal")?;
    tracing::info!(?signal, "signal received");
    Ok(())
}
