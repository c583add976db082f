//! `diagd debug [-c FILE] get-log-level | set-log-level LEVEL | readyz | metrics |
//! profile [PROFILES] [-s SECONDS]`: the debug service's commands, with the reference's words.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use diag::config::Config;
use diag::debug::client::{self, Reply};
use diag::debug::profiles::{self, DEFAULT_SECONDS};
use diag::debug::{log_level, socket_path, tarball};

/// `diagd debug`.
#[derive(Debug, clap::Args)]
pub(crate) struct DebugArgs {
    /// YAML configuration file of the running diagd (its data_dir holds debug.sock).
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: DebugCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DebugCommand {
    /// Print the current log level.
    GetLogLevel,
    /// Change the log level of the running diagd (TRACE, DEBUG, INFO, WARN, ERROR).
    SetLogLevel {
        /// The new level.
        level: String,
    },
    /// Print whether diagd is ready; exit 0 only when it is.
    Readyz,
    /// Print the metrics (Prometheus text format).
    Metrics,
    /// Collect profiles: a gzip tarball with one <name>.pprof per profile on stdout.
    Profile {
        /// Comma-separated profiles: goroutine (thread stacks), heap, profile (CPU), allocs.
        #[arg(value_name = "PROFILES", default_value = profiles::DEFAULT_LIST)]
        profiles: String,
        /// CPU profile length in seconds (0: 10 seconds).
        #[arg(short = 's', long = "seconds", value_name = "SECONDS", default_value_t = 0)]
        seconds: u64,
    },
}

/// Runs a `diagd debug` command.
///
/// # Errors
/// A bad config, an unreachable debug service, a refused request (e.g. an invalid level), an
/// unknown profile name; each with a message saying what to do.
pub(crate) fn run(args: DebugArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(diag::Error::into_anyhow)?,
        None => Config::default(),
    };
    let socket = socket_path(&config);
    let call = |method: &str, path: &str, body: &str| client::request(&socket, method, path, body);
    match args.command {
        DebugCommand::GetLogLevel => {
            let reply = ok(call("GET", "/log-level", "")?)?;
            println!("Current log level {:?}", reply.text());
        }
        DebugCommand::SetLogLevel { level } => {
            let reply = call("PUT", "/log-level", &level)?;
            if reply.status == 422 {
                bail!("{} Supported levels: {}.", reply.text(), log_level::SUPPORTED);
            }
            println!("{}", ok(reply)?.text());
        }
        DebugCommand::Readyz => {
            let reply = call("GET", "/readyz", "")?;
            let body: serde_json::Value = serde_json::from_slice(&reply.body)
                .with_context(|| format!("unexpected /readyz answer ({}): {}", reply.status, reply.text()))?;
            let pid = body["pid"].as_u64().map_or_else(|| "unknown".into(), |p| p.to_string());
            let status = body["status"].as_str().unwrap_or("unknown");
            if reply.status == 200 {
                println!("Ready (PID {pid}, status: {status})");
            } else {
                println!("Not ready (PID {pid}, status: {status})");
                return Ok(ExitCode::FAILURE);
            }
        }
        DebugCommand::Metrics => {
            let reply = ok(call("GET", "/metrics", "")?)?;
            std::io::stdout().write_all(&reply.body).context("cannot write to stdout")?;
        }
        DebugCommand::Profile { profiles, seconds } => {
            let wanted = profiles::parse_list(&profiles).map_err(anyhow::Error::msg)?;
            let seconds = if seconds == 0 { DEFAULT_SECONDS } else { seconds };
            let mut files = Vec::new();
            for profile in wanted {
                let path = profile.path(seconds);
                let reply =
                    ok(call("GET", &path, "")?).with_context(|| format!("cannot collect {:?}", profile.name()))?;
                files.push((format!("{}.pprof", profile.name()), reply.body));
            }
            let stdout = std::io::stdout().lock();
            tarball::write(stdout, &files).context("cannot write the profiles to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `reply` if it is a 200, else an error with the service's message.
fn ok(reply: Reply) -> anyhow::Result<Reply> {
    match reply.status {
        200 => Ok(reply),
        404 => bail!("the debug service answered: {} (is debug_service.enabled false?)", reply.text()),
        _ => bail!("the debug service answered: {}", reply.text()),
    }
}
