//! `diagd`: the diag agent, a thin binary over the `diag` library. `diagd start` watches the
//! configured components with heartbeat checks and serves `/healthz`, `/readyz` and `/metrics`
//! on `--diag-addr`; `diagd debug` talks to a running agent's (or any diag service's) debug socket.

// No unsafe code of its own; `deny` rather than `forbid` so the jemalloc macro may export
// jemalloc's options symbol.
#![deny(unsafe_code)]

mod debug_cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use diag::config::Config;
use diag::http::BuildInfo;
use diag::runtime::Runtime;
use diag::{Builder, Diagnostics};

// Heap profiles of diagd itself: jemalloc with its profiler, as the global allocator.
diag::profiling::jemalloc!();

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
    Debug(debug_cli::DebugArgs),
}

#[derive(Debug, clap::Args)]
struct Start {
    /// Serve the diagnostic endpoints on this address (IP:PORT; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", value_parser = diag::config::parse_addr)]
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
    #[arg(long, value_enum, default_value = RuntimeArg::DEFAULT)]
    runtime: RuntimeArg,
}

/// `--runtime`: the runtimes this diagd was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RuntimeArg {
    /// tokio's multi-threaded runtime, serving with diag-tokio.
    #[cfg(feature = "tokio")]
    Tokio,
    /// smol, serving with diag-smol.
    #[cfg(feature = "smol")]
    Smol,
    /// async-std, serving with diag-smol.
    #[cfg(feature = "async-std")]
    #[value(name = "async-std")]
    AsyncStd,
}

#[cfg(not(any(feature = "tokio", feature = "smol", feature = "async-std")))]
compile_error!("diagd needs at least one runtime feature: tokio, smol or async-std");

impl RuntimeArg {
    /// The runtime used when `--runtime` is not given: the first one built in.
    const DEFAULT: &str = diag::runtime::DEFAULT.name();

    fn runtime(self) -> Runtime {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => Runtime::Tokio,
            #[cfg(feature = "smol")]
            Self::Smol => Runtime::Smol,
            #[cfg(feature = "async-std")]
            Self::AsyncStd => Runtime::AsyncStd,
        }
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Start(start) => run(start).map(|()| ExitCode::SUCCESS),
        Command::Debug(args) => debug_cli::run(args),
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
        Some(path) => Config::load(path).map_err(diag::Error::into_anyhow)?,
        None => Config::default(),
    };
    let runtime = start.runtime.runtime();
    // With tracing on, exemplars (diagd's own request durations) name the request's trace.
    let mut builder = Builder::from_config(&config)
        .service_name("diagd")
        .build_info(BUILD)
        .profiles_on_diag_addr(start.debug)
        .trace_exemplars(config.tracing_service.enabled);
    if let Some(delay) = start.shutdown_delay {
        builder = builder.shutdown_delay(delay);
    }
    let diag_addr = start.diag_addr.or(config.diag_addr);
    // The log subscriber, tracing, the checks and the debug socket start here, outside any
    // runtime; they stop when `diag` is dropped, after the runtime has ended.
    let diag = builder.build().map_err(diag::Error::into_anyhow)?;
    let served = runtime.block_on(serve(&diag, diag_addr, runtime)).map_err(diag::Error::into_anyhow)?;
    served.map_err(diag::Error::into_anyhow)
}

async fn serve(diag: &Diagnostics, diag_addr: Option<SocketAddr>, runtime: Runtime) -> Result<(), diag::Error> {
    // Watched before anything answers: a SIGTERM sent once /healthz answers shuts down cleanly.
    let signal = diag::shutdown_signal();
    let serving = match diag_addr {
        // Bind before anything waits: a bad or busy address is an error at once.
        Some(addr) => Some(diag.serve(runtime, addr).await?),
        None => None,
    };
    if let Some(serving) = &serving {
        let addr = serving.local_addr();
        tracing::info!(%addr, runtime = runtime.name(), "serving diagnostics");
        // On stdout for scripts and tests: the address actually bound (port 0 resolved).
        println!("diagd: serving diagnostics on http://{addr}");
    } else {
        tracing::info!("no --diag-addr or diag_addr: diagnostic endpoints are off");
    }
    if let Err(e) = signal.await {
        tracing::error!(error = %e, "cannot wait for signals; shutting down");
    }
    match serving {
        Some(serving) => serving.shutdown().await?,
        None => {
            tracing::info!("shutting down: /readyz now answers 503");
            diag.begin_shutdown();
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// A `--shutdown-delay` value: `500ms`, `5s`, `1m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?} ({e}): expected e.g. 500ms, 5s or 1m"))
}
