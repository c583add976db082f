//! The `goroutine` profile with tokio's task dump (feature `tokio-taskdump`, built with
//! `RUSTFLAGS="--cfg tokio_unstable"` in a target dir of its own, as `.ci/run` does): a service
//! on a tokio runtime serves diag with `serve_tokio` and a debug socket while one of its tasks
//! is parked in `waits_for_the_test`; the profile, fetched over the socket with `diagd debug`'s
//! client and read by `go tool pprof`, holds that function in a sample labelled `kind: task`
//! with the task's id, and the threads in samples labelled `kind: thread`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diag::Diagnostics;

/// The task the test looks for: says it runs, then parks on a tokio channel until the test ends.
async fn waits_for_the_test(started: tokio::sync::oneshot::Sender<()>, done: tokio::sync::oneshot::Receiver<()>) {
    let _ = started.send(());
    let _ = done.await;
}

/// A fresh private directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("diag-taskdump-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `go tool pprof -symbolize=none <args> <file>`: its output.
fn pprof(args: &[&str], file: &Path) -> String {
    let out = Command::new("go")
        .args(["tool", "pprof", "-symbolize=none"])
        .args(args)
        .arg(file)
        .env("GOCACHE", std::env::var_os("GOCACHE").unwrap_or_else(|| std::env::temp_dir().join("go-build").into()))
        .output()
        .expect("run `go tool pprof` (the Go toolchain must be installed: apt-get install golang-go)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "go tool pprof {args:?} failed:\n{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `-traces` output cut into samples (pprof separates them with `-----------+---…` lines).
fn samples(traces: &str) -> Vec<&str> {
    traces.split("-----------+").skip(1).filter(|s| !s.trim_start_matches('-').trim().is_empty()).collect()
}

#[test]
fn the_goroutine_profile_shows_a_parked_task_at_its_await_point() {
    // Not a compile_error!: `--all-features --all-targets` builds (clippy) compile this test too.
    if !cfg!(tokio_unstable) {
        panic!(
            "tokio's task dump needs RUSTFLAGS=\"--cfg tokio_unstable\": run this test as .ci/run does \
             (RUSTFLAGS=\"--cfg tokio_unstable\" CARGO_TARGET_DIR=target/taskdump cargo test -p diag \
             --features tokio-taskdump --test taskdump)"
        );
    }
    let dir = TempDir::new();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let diagnostics = Diagnostics::builder().debug_socket(&dir.0).shutdown_delay(Duration::ZERO).build().unwrap();
    let serving = runtime.block_on(diagnostics.serve_tokio("127.0.0.1:0".parse().unwrap())).unwrap();
    let (done, parked_until) = tokio::sync::oneshot::channel();
    let (started, running) = tokio::sync::oneshot::channel();
    let parked = runtime.spawn(waits_for_the_test(started, parked_until));
    // tokio leaves a task that runs at the instant of the dump out: let it reach its await first.
    runtime.block_on(running).unwrap();

    let socket = dir.0.join(diag::debug::SOCKET_NAME);
    let reply = diag::debug::client::request(&socket, "GET", "/debug/pprof/goroutine", "").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let file = dir.0.join("goroutine.pprof");
    std::fs::write(&file, &reply.body).unwrap();

    let comments = pprof(&["-comments"], &file);
    assert!(comments.contains("tokio tasks (MultiThread runtime)"), "{comments}");

    // Only the tasks (`-tagfocus`): one of them is parked in `waits_for_the_test`, with its id.
    let tasks = pprof(&["-tagfocus=kind=task", "-traces"], &file);
    let samples_of_tasks = samples(&tasks);
    assert!(samples_of_tasks.iter().all(|s| s.contains("kind:  task") && !s.contains("kind:  thread")), "{tasks}");
    let ours = samples_of_tasks
        .iter()
        .find(|s| s.contains("waits_for_the_test"))
        .unwrap_or_else(|| panic!("no task parked in waits_for_the_test:\n{tasks}\n{comments}"));
    assert!(ours.contains(&format!("task:  {}", parked.id())), "{ours}");
    // Its stack runs from tokio's channel up to the task's own function.
    assert!(ours.contains("tokio::sync::oneshot"), "{ours}");

    // Only the threads: every one labelled as such, none of them a task.
    let threads = pprof(&["-tagfocus=kind=thread", "-traces"], &file);
    let samples_of_threads = samples(&threads);
    assert!(!samples_of_threads.is_empty(), "{threads}");
    assert!(samples_of_threads.iter().all(|s| s.contains("thread:  ") && !s.contains("task:  ")), "{threads}");
    assert!(!threads.contains("waits_for_the_test"), "{threads}");

    done.send(()).unwrap();
    runtime.block_on(async {
        parked.await.unwrap();
        serving.shutdown().await.unwrap();
    });
}
