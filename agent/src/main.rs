//! `diagd`: the diag agent. `diagd start` watches the configured components with heartbeat
//! checks and serves `/healthz`, `/readyz` and `/metrics` on `--diag-addr`.

#![forbid(unsafe_code)]

mod check;
mod config;
mod heartbeat;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use diag_core::Collect;
use diag_core::http::{BuildInfo, Service};
use diag_core::process::ProcessCollector;
use diag_tokio::{Server, TokioMetrics};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::heartbeat::{Clock, States};

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
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    runtime: Runtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runtime {
    Tokio,
}

fn main() -> ExitCode {
    let Command::Start(start) = Cli::parse().command;
    match run(start) {
        Ok(()) => ExitCode::SUCCESS,
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
    init_logging(&config);
    if start.debug {
        tracing::warn!(
            "--debug: profiles under /debug/pprof/ are not served by this build yet; those routes answer 404"
        );
    }
    match start.runtime {
        Runtime::Tokio => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the tokio runtime")?;
            runtime.block_on(serve(start, config))
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIAGD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.log.severity.as_filter()));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
}

async fn serve(start: Start, config: Config) -> anyhow::Result<()> {
    let diag_addr = start.diag_addr.or(config.diag_addr);
    // Bind first: a bad or busy address is an error before anything else runs.
    let listener = match diag_addr {
        Some(addr) => {
            Some(TcpListener::bind(addr).await.with_context(|| format!("cannot serve diagnostics on {addr}"))?)
        }
        None => None,
    };

    let clock = Clock::start();
    let mut checks = tokio::task::JoinSet::new();
    for component in config.watched() {
        checks.spawn(heartbeat::watch(&STATES, &component, clock)?);
    }

    let server = match listener {
        Some(listener) => {
            let addr = listener.local_addr().context("cannot read the bound address")?;
            let runtime: &'static TokioMetrics = Box::leak(Box::new(TokioMetrics::current()));
            let sources: &'static [&'static dyn Collect] = Box::leak(Box::new([&PROCESS as &dyn Collect, runtime]));
            let service = Service::new(&STATES, sources, std::process::id()).with_build_info(BUILD);
            let server = Server::new(service);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(server.serve(listener, async {
                stopped.await.ok();
            }));
            tracing::info!(%addr, "serving diagnostics");
            // On stdout for scripts and tests: the address actually bound (port 0 resolved).
            println!("diagd: serving diagnostics on http://{addr}");
            Some((stop, task))
        }
        None => {
            tracing::info!("no --diag-addr or diag_addr: diagnostic endpoints are off");
            None
        }
    };

    shutdown_signal().await?;
    tracing::info!("shutting down: /readyz now answers 503 while connections drain");
    STATES.begin_shutdown();
    checks.abort_all();
    if let Some((stop, task)) = server {
        let _ = stop.send(());
        match tokio::time::timeout(DRAIN_TIMEOUT, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server ended with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
            Err(_) => tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; exiting anyway"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or SIGINT.
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
