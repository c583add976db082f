//! The debug socket `<data_dir>/debug.sock`: the data dir is created 0700 (an existing one
//! that group or others may reach is tightened to 0700 when it holds nothing but diagd's
//! socket, and refused otherwise: see [`private_dir`]), the socket is made 0600, a stale socket file (no process answers on it) is
//! replaced, and a live one is left to the process serving it. Served on a thread of its own by async-io, so it works the same
//! whichever `--runtime` serves the diagnostic address.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use async_executor::Executor;
use async_lock::Semaphore;
use async_net::unix::{UnixListener, UnixStream};
use diag_core::http::Service;
use diag_core::server::{Handler, serve_connection};
use smol_hyper::rt::{FuturesIo, SmolTimer};

use super::DebugRoutes;
use crate::config::Config;

/// The data dir when `data_dir` is not configured.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/diagd";

/// The socket's file name inside the data dir.
pub const SOCKET_NAME: &str = "debug.sock";

/// Most connections served at once (further ones wait in the backlog: the socket is local).
const MAX_CONNECTIONS: usize = 64;

/// Where the debug socket of `config` is: `<data_dir>/debug.sock`.
pub fn socket_path(config: &Config) -> PathBuf {
    config.data_dir.as_deref().unwrap_or(Path::new(DEFAULT_DATA_DIR)).join(SOCKET_NAME)
}

/// Where a debug socket goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataDir {
    /// A data dir the user chose: a problem with it is an error.
    Chosen(PathBuf),
    /// The default data dir: a problem with it is logged and the service runs without the
    /// socket, so `diagd start` works for a user who cannot write `/var/lib/diagd`.
    Default(PathBuf),
}

/// The running debug socket; dropping it stops the service (its thread ends) and removes the
/// socket file.
#[derive(Debug)]
pub(crate) struct DebugSocket {
    path: PathBuf,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DebugSocket {
    fn drop(&mut self) {
        // Closing the channel ends the accept loop; connections in flight end with it.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `<dir>/debug.sock` and serves the service `service` builds from `owner` (plus the
/// debug routes, or only the health routes when `enabled` is false) on a thread of its own.
///
/// # Errors
/// With [`DataDir::Chosen`]: when the dir cannot be created, the socket cannot be bound or
/// another process serves it; the message names `data_dir`. With [`DataDir::Default`] the same
/// problems are logged as a warning and the service runs without the socket (`Ok(None)`).
pub(crate) fn start<O: Send + Sync + 'static>(
    dir: &DataDir,
    enabled: bool,
    owner: O,
    service: impl for<'a> FnOnce(&'a O) -> Service<'a>,
) -> anyhow::Result<Option<DebugSocket>> {
    let (dir, configured) = match dir {
        DataDir::Chosen(dir) => (dir, true),
        DataDir::Default(dir) => (dir, false),
    };
    let path = dir.join(SOCKET_NAME);
    let listener = match bind(dir, &path) {
        Ok(listener) => listener,
        Err(e) if configured => return Err(e.context("data_dir")),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "debug service off; set data_dir to a writable directory");
            return Ok(None);
        }
    };
    let handler = Handler::owning(owner, service).with_routes(DebugRoutes::socket(enabled));
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name("diagd-debug".into())
        .spawn(move || {
            async_io::block_on(futures_lite::future::or(serve(listener, Arc::new(handler)), async move {
                let _ = stopped.recv().await;
            }))
        })
        .context("cannot start the debug service thread")?;
    tracing::info!(socket = %path.display(), enabled, "debug service listening");
    Ok(Some(DebugSocket { path, stop: Some(stop), thread: Some(thread) }))
}

/// Creates `dir` (0700) if missing or tightens it to 0700, replaces a stale socket at `path`,
/// binds it and makes it 0600.
fn bind(dir: &Path, path: &Path) -> anyhow::Result<UnixListener> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    private_dir(dir)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!("{} is served by another process (another diagd with this data_dir?)", path.display());
            }
            std::fs::remove_file(path).with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
            tracing::info!(socket = %path.display(), "replaced a stale debug socket");
        }
        Ok(_) => bail!("{} exists and is not a socket; remove it or choose another data_dir", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    }
    let listener =
        std::os::unix::net::UnixListener::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} 0600", path.display()))?;
    UnixListener::try_from(listener).with_context(|| format!("cannot serve {}", path.display()))
}

/// Makes `dir` private to diagd's user. A directory group or others have any permission on is
/// tightened to 0700 when it holds nothing but diagd's own socket (a dedicated data dir made
/// with a loose umask); one that holds anything else is shared with other programs (`/tmp`,
/// `/var/lib`) and changing its mode could break them, so that is an error saying what to do,
/// as is a mode diagd may not change (a directory of another user).
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot inspect {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "{} has mode {mode:04o}: other users may reach the debug socket inside, and {why}; \
             run `chmod 0700 {}` or choose a data_dir of diagd's own",
            dir.display(),
            dir.display()
        )
    };
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_name() != SOCKET_NAME {
            return Err(refuse("it holds other files than diagd's, so diagd leaves its mode alone"));
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| refuse(&format!("diagd cannot make it 0700 ({e})")))?;
    tracing::warn!(dir = %dir.display(), was = %format!("{mode:04o}"), "data_dir was open to other users; tightened to 0700");
    Ok(())
}

/// Accepts connections until the process exits, each served by the core's connection driver.
async fn serve(listener: UnixListener, handler: Arc<Handler>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let executor = Executor::new();
    executor
        .run(async {
            loop {
                let permit = permits.acquire_arc().await;
                match listener.accept().await {
                    Ok((stream, _)) => {
                        executor.spawn(connection(Arc::clone(&handler), stream, permit)).detach();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "debug socket: accept failed; retrying");
                        async_io::Timer::after(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        })
        .await;
}

async fn connection(handler: Arc<Handler>, stream: UnixStream, _permit: async_lock::SemaphoreGuardArc) {
    serve_connection(handler, FuturesIo::new(stream), SmolTimer::new(), std::future::pending()).await;
}
