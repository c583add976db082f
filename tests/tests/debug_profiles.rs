//! Profiles a person can act on, each taken from a program doing known work (diagd's example
//! `profile_workload`: `spin_known` on threads `busy-1` and `busy-2`, 64 MiB kept by
//! `retain_known`, 256 MiB allocated and freed by `churn_known`) with `diagd debug profile`
//! over its debug socket, and read with `go tool pprof`.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use diag_tests::{TempDir, cargo_build_for_profiles, go_tool_pprof, request_unix, run_diagd_output};

/// The example built into this test's target directory (once per test process).
fn workload_path() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build_for_profiles(&["-p", "diagd", "--example", "profile_workload"], "examples/profile_workload")
        })
        .clone()
}

/// The running example, with a config naming its data dir for `diagd debug -c`.
struct Workload {
    child: Child,
    config: PathBuf,
    socket: PathBuf,
    dir: TempDir,
}

impl Workload {
    fn start() -> Self {
        let dir = TempDir::new("diag-profiles");
        let data = dir.path().join("data");
        let config = dir.path().join("diagd.yaml");
        std::fs::write(&config, format!("data_dir: {}\n", data.display())).unwrap();
        let mut child = Command::new(workload_path())
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the example");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("ready "), "the example did not start: {line:?}");
        Self { child, config, socket: data.join("debug.sock"), dir }
    }

    /// `diagd debug -c <config> profile <args>`, unpacked: the `tar tvzf` listing.
    fn profile(&self, args: &[&str]) -> String {
        let mut all = vec!["debug", "-c", self.config.to_str().unwrap(), "profile"];
        all.extend_from_slice(args);
        let (status, out, err) = run_diagd_output(&all);
        assert!(status.success(), "diagd debug profile {args:?}: {err}");
        let tarball = self.dir.path().join("p.tar.gz");
        std::fs::write(&tarball, out).unwrap();
        let list = Command::new("tar").arg("tvzf").arg(&tarball).output().unwrap();
        assert!(list.status.success(), "not a gzip tarball");
        let unpack = Command::new("tar").arg("xzf").arg(&tarball).arg("-C").arg(self.dir.path()).status().unwrap();
        assert!(unpack.success());
        String::from_utf8(list.stdout).unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// utime + stime of the process, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The function names of `go tool pprof -top`'s table, hottest (by flat) first.
fn top_functions(top: &str) -> Vec<String> {
    top.lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(5).map(|_| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" ")))
        .collect()
}

/// The number before `unit` in `text` after `prefix`, e.g. `Total samples = 2050ms`.
fn number_after(text: &str, prefix: &str, unit: &str) -> u64 {
    let rest = text.split_once(prefix).unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}")).1;
    rest.split_once(unit).and_then(|(n, _)| n.trim().parse().ok()).unwrap_or_else(|| panic!("no number in {rest:?}"))
}

#[test]
fn cpu_samples_cover_the_cpu_time_of_every_thread_and_name_the_busy_function() {
    let workload = Workload::start();
    let before = workload.cpu_ticks();
    let listing = workload.profile(&["profile", "-s", "3"]);
    let after = workload.cpu_ticks();
    assert!(listing.trim_end().ends_with(" profile.pprof"), "{listing}");
    let file = workload.file("profile.pprof");

    let top = go_tool_pprof(&["-top", "-unit=ms"], &file);
    assert!(top.contains("Type: cpu"), "{top}");
    assert_eq!(top_functions(&top).first().map(String::as_str), Some("profile_workload::spin_known"), "{top}");
    let sampled = number_after(&top, "Total samples = ", "ms");

    // The process's own CPU time over the sampling window, read by the profiler from
    // /proc/self/stat as the window opened and closed.
    let comments = go_tool_pprof(&["-comments"], &file);
    let used = number_after(&comments, "process CPU time over the window: ", " ms");
    assert!(used > 0, "{comments}");
    assert!(
        sampled * 10 >= used * 9,
        "samples cover {sampled} ms of {used} ms of CPU time (< 90%):\n{comments}\n{top}"
    );
    assert!(sampled <= used + 100, "no more samples than CPU time (+ one period per thread): {sampled} > {used}");
    // Seen from outside, the request's window holds the sampling window.
    let outside_ms = (after - before) * 10;
    assert!(outside_ms + 20 >= used, "outside {outside_ms} ms < inside {used} ms");

    // Every busy thread is there, each with about half of the samples.
    let tags = go_tool_pprof(&["-tags", "-unit=ms"], &file);
    for thread in ["busy-1", "busy-2"] {
        assert!(tags.contains(&format!(": {thread}")), "{thread} missing:\n{tags}");
    }
}

#[test]
fn heap_names_the_allocating_function_and_allocs_counts_freed_memory() {
    let workload = Workload::start();
    let listing = workload.profile(&["heap,allocs"]);
    let names: Vec<&str> = listing.lines().filter_map(|l| l.split_whitespace().last()).collect();
    assert_eq!(names, ["heap.pprof", "allocs.pprof"], "{listing}");

    let heap = go_tool_pprof(&["-top"], &workload.file("heap.pprof"));
    assert!(heap.contains("Type: inuse_space"), "{heap}");
    assert_eq!(top_functions(&heap).first().map(String::as_str), Some("profile_workload::retain_known"), "{heap}");
    let functions = top_functions(&heap).join("\n");
    for allocator in ["prof_backtrace_impl", "__rust_alloc", "malloc", "alloc::raw_vec", "tikv_jemallocator"] {
        assert!(!functions.contains(allocator), "{allocator} not trimmed:\n{heap}");
    }
    // 64 MiB kept: jemalloc samples every block of 1 MiB (far above its 16 KiB sample rate).
    // The small allocations beside them (the vector holding the blocks) are sampled by chance,
    // each scaled up to about the sample rate: allow a few of those, never less than 64 MiB.
    let retained = go_tool_pprof(&["-top", "-unit=B", "-focus=retain_known"], &workload.file("heap.pprof"));
    let bytes = number_after(&retained, "Showing nodes accounting for ", "B");
    assert!((64 << 20..(64 << 20) + (1 << 20)).contains(&bytes), "{retained}");
    let churn_live = go_tool_pprof(&["-top", "-focus=churn_known"], &workload.file("heap.pprof"));
    assert!(top_functions(&churn_live).is_empty(), "freed memory is not live:\n{churn_live}");

    let allocs = go_tool_pprof(&["-top"], &workload.file("allocs.pprof"));
    assert!(allocs.contains("Type: alloc_space"), "{allocs}");
    assert_eq!(top_functions(&allocs).first().map(String::as_str), Some("profile_workload::churn_known"), "{allocs}");
    let churned = go_tool_pprof(&["-top", "-unit=B", "-focus=churn_known"], &workload.file("allocs.pprof"));
    assert!(churned.contains(&format!("{}B", 256 << 20)), "256 MiB allocated and freed:\n{churned}");
    // The same file holds the live view too, as Go's does.
    let live = go_tool_pprof(&["-top", "-sample_index=inuse_space"], &workload.file("allocs.pprof"));
    assert_eq!(top_functions(&live).first().map(String::as_str), Some("profile_workload::retain_known"), "{live}");
}

#[test]
fn goroutine_holds_the_stack_of_every_thread() {
    let workload = Workload::start();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", workload.child.id()))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("comm")).unwrap().trim_end().to_owned())
        .collect();
    workload.profile(&["goroutine"]);
    let file = workload.file("goroutine.pprof");
    let tags = go_tool_pprof(&["-tags"], &file);
    // Every thread that was there before (the dump adds its own).
    for thread in &threads {
        assert!(tags.contains(&format!(": {thread}")), "{thread} missing:\n{tags}");
    }
    assert!(tags.contains(": R") && tags.contains(": S"), "thread states:\n{tags}");
    assert!(!tags.contains("unavailable"), "every thread answered:\n{tags}");
    // Each busy thread is inside the busy loop, started by std's thread start.
    let traces = go_tool_pprof(&["-traces"], &file);
    for thread in ["busy-1", "busy-2"] {
        let trace = traces
            .split("-----------+-------------------------------------------------------")
            .find(|t| t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["thread:", thread]))
            .unwrap_or_else(|| panic!("no trace of {thread}:\n{traces}"));
        assert!(trace.contains("profile_workload::spin_known"), "{thread}:\n{trace}");
        assert!(trace.contains("thread_start"), "{thread} walked to its start:\n{trace}");
    }
    // The main thread waits in the socket server's poller.
    let top = go_tool_pprof(&["-top", "-tagfocus=thread=profile_workloa"], &file);
    assert!(top.contains("profile_workload::run"), "{top}");
}

#[test]
fn teleports_names_the_default_set_and_the_index() {
    let workload = Workload::start();
    // Teleport's default: goroutine, heap and profile, in that order.
    let listing = workload.profile(&["-s", "1"]);
    let names: Vec<&str> = listing.lines().filter_map(|l| l.split_whitespace().last()).collect();
    assert_eq!(names, ["goroutine.pprof", "heap.pprof", "profile.pprof"], "{listing}");
    for line in listing.lines() {
        assert!(line.starts_with("-rw-------"), "{line}");
    }
    for name in names {
        let top = go_tool_pprof(&["-top"], &workload.file(name));
        assert!(top.contains("Type: "), "{name}:\n{top}");
    }

    // Go's names with no counterpart are refused before anything is collected.
    let config = workload.config.to_str().unwrap();
    for list in ["trace", "goroutine,mutex", "block", "threadcreate"] {
        let (status, out, err) = run_diagd_output(&["debug", "-c", config, "profile", list]);
        assert_eq!(status.code(), Some(1), "{list}: {err}");
        assert!(out.is_empty(), "{list}");
        assert!(err.contains("which diag has no counterpart for"), "{list}: {err}");
        assert!(err.contains("supported profiles: goroutine, heap, profile, allocs"), "{list}: {err}");
    }

    let index = request_unix(&workload.socket, "GET", "/debug/pprof/", b"");
    assert_eq!(index.status, 200);
    for name in ["goroutine", "heap", "profile", "allocs"] {
        assert!(index.text().contains(&format!("/debug/pprof/{name}")), "{name}:\n{}", index.text());
    }
    let mutex = request_unix(&workload.socket, "GET", "/debug/pprof/mutex", b"");
    assert_eq!(mutex.status, 404);
    assert!(mutex.text().contains("no counterpart"), "{}", mutex.text());
}
