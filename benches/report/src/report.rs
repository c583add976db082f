//! Turns one run's measurements into BENCHMARKS.md and a chart of the peer/diag ratios.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Implementation ids used as criterion function names, with their display names.
pub const IMPLS: [(&str, &str); 6] = [
    ("diag", "diag"),
    ("diag_sharded", "diag (sharded)"),
    ("atomic", "bare atomic"),
    ("prometheus", "prometheus 0.14"),
    ("prometheus_client", "prometheus-client 0.25"),
    ("metrics", "metrics 0.24 + exporter 0.18"),
];

/// The peers, in table order.
pub const PEERS: [&str; 3] = ["prometheus", "prometheus_client", "metrics"];

/// The display name of an implementation id.
pub fn display(id: &str) -> &str {
    IMPLS.iter().find(|(i, _)| *i == id).map_or(id, |(_, d)| d)
}

/// One benchmark group: the same workload on several implementations.
#[derive(Debug, Clone)]
pub struct Group {
    /// The criterion group name.
    pub id: String,
    /// What the group measures, for the table.
    pub title: String,
    /// `(implementation id, median time per operation in ns)`.
    pub times: Vec<(String, f64)>,
}

impl Group {
    /// The median time of `id`, if measured.
    pub fn time(&self, id: &str) -> Option<f64> {
        self.times.iter().find(|(i, _)| i == id).map(|(_, t)| *t)
    }

    /// The fastest peer's time.
    pub fn best_peer(&self) -> Option<(&str, f64)> {
        PEERS.iter().filter_map(|p| self.time(p).map(|t| (*p, t))).min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Reads the median of every implementation in `group` from criterion's output directory.
pub fn read_group(criterion_dir: &Path, id: &str, title: &str) -> Group {
    read_group_of(criterion_dir, id, title, &IMPLS)
}

/// Reads the median of each of `impls` in `group` from criterion's output directory.
pub fn read_group_of(criterion_dir: &Path, id: &str, title: &str, impls: &[(&str, &str)]) -> Group {
    let mut times = Vec::new();
    for (imp, _) in impls {
        let path = criterion_dir.join(id).join(imp).join("new").join("estimates.json");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        if let Some(ns) = json["median"]["point_estimate"].as_f64() {
            times.push(((*imp).to_owned(), ns));
        }
    }
    Group { id: id.to_owned(), title: title.to_owned(), times }
}

/// Allocations and output size of one encode.
#[derive(Debug, Clone)]
pub struct EncodeFacts {
    /// Workload name.
    pub workload: &'static str,
    /// Implementation id.
    pub imp: &'static str,
    /// Allocator calls during one steady-state encode (buffer reused).
    pub allocations: u64,
    /// Bytes of output.
    pub bytes: usize,
}

/// Scrapes per second of one server.
#[derive(Debug, Clone)]
pub struct ServeResult {
    /// What was served (e.g. `diag-tokio`).
    pub server: String,
    /// Requests per second reported by the load generator.
    pub rps: f64,
    /// Bytes per response.
    pub bytes: usize,
}

/// The machine the run happened on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `nproc`.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub model: String,
    /// `rustc -V`.
    pub rustc: String,
    /// The date, UTC.
    pub date: String,
    /// `/proc/loadavg` when the run started and when it ended.
    pub load: (String, String),
}

impl Machine {
    /// Reads the machine's facts.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let cmd = |c: &str, args: &[&str]| {
            std::process::Command::new(c)
                .args(args)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model,
            rustc: cmd("rustc", &["-V"]),
            date: cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            load: (load_average(), String::new()),
        }
    }

    /// Records the load average at the end of the run.
    pub fn finish(mut self) -> Self {
        self.load.1 = load_average();
        self
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// The machine.
    pub machine: Machine,
    /// Hot-path groups: `(group, which diag implementations to compare)`.
    pub hot: Vec<Group>,
    /// Labelled lookup groups (`get_or_create` + `inc` at 4…1,024 series, 1 and 2 threads) and
    /// the creation group.
    pub lookup: Vec<Group>,
    /// Memory per series, `(implementation, bytes)`.
    pub memory: Vec<(&'static str, f64)>,
    /// Encode groups.
    pub encode: Vec<Group>,
    /// Protobuf encode groups (diag and prometheus-client).
    pub protobuf: Vec<Group>,
    /// Native histogram observe ([`crate::rows::NATIVE`]), if measured.
    pub native: Option<Group>,
    /// Go's client_golang observe in the same run (`(name, ns)`), or why not measured.
    pub go_native: Result<Vec<(&'static str, f64)>, String>,
    /// Encode allocations and sizes, text and protobuf.
    pub facts: Vec<EncodeFacts>,
    /// `(workload, ns)`: a `memcpy` of the bytes diag writes for each encode workload, the
    /// floor any encoder writing them into memory stands on.
    pub memcpy: Vec<(String, f64)>,
    /// Serve results (empty when not measured), with a note on how.
    pub serve: Vec<ServeResult>,
    /// How serving was measured, or why it was not.
    pub serve_note: String,
}

/// One row of the ratio table: a workload on one diag implementation.
#[derive(Debug, Clone)]
pub struct Row {
    /// The label.
    pub label: String,
    /// Diag's time (ns) or, for serving, diag's requests per second.
    pub diag: f64,
    /// `(peer, peer/diag ratio)`: above 1 means diag is faster.
    pub ratios: Vec<(String, f64)>,
}

impl Run {
    /// The ratio rows, in table order.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for g in self.hot.iter().chain(&self.lookup).chain(&self.encode).chain(&self.protobuf) {
            for diag in ["diag", "diag_sharded"] {
                let Some(d) = g.time(diag) else { continue };
                let ratios = ["atomic"]
                    .iter()
                    .chain(&PEERS)
                    .filter_map(|p| g.time(p).map(|t| (display(p).to_owned(), t / d)))
                    .collect();
                rows.push(Row { label: format!("{} — {}", g.title, display(diag)), diag: d, ratios });
            }
        }
        let peer = self.serve.iter().find(|s| s.server == crate::rows::PEER);
        for s in self.serve.iter().filter(|s| s.server.starts_with("diag")) {
            let ratios = peer.map(|p| vec![(p.server.clone(), s.rps / p.rps)]).unwrap_or_default();
            rows.push(Row { label: format!("/metrics scrapes/s, large — {}", s.server), diag: s.rps, ratios });
        }
        rows
    }

    /// Each target of issue 8 with whether it was met and the figures that say so.
    pub fn targets(&self) -> Vec<(String, bool, String)> {
        let mut out = Vec::new();
        let group = |id: &str| self.hot.iter().chain(&self.encode).find(|g| g.id == id);
        if let Some(g) = group("counter_inc_1t")
            && let (Some(d), Some(a)) = (g.time("diag"), g.time("atomic"))
        {
            out.push((
                "counter inc within 1.1× of a bare `AtomicU64::fetch_add`".to_owned(),
                d <= 1.1 * a,
                format!("diag {d:.2} ns vs atomic {a:.2} ns: {:.2}×", d / a),
            ));
        }
        if let Some(g) = group("counter_inc_2t")
            && let (Some(d), Some(a)) = (g.time("diag_sharded"), g.time("atomic"))
        {
            out.push((
                "contended counter cheaper than one shared atomic".to_owned(),
                d < a,
                format!("2 threads: ShardedCounter {d:.2} ns vs shared AtomicU64 {a:.2} ns ({:.1}× cheaper)", a / d),
            ));
        }
        for (id, what) in [("histogram_observe_1t", "single-threaded"), ("histogram_observe_2t", "2 threads")] {
            let Some(g) = group(id) else { continue };
            let Some((peer, p)) = g.best_peer() else { continue };
            for diag in ["diag", "diag_sharded"] {
                let Some(d) = g.time(diag) else { continue };
                out.push((
                    format!("histogram observe ≥ 1.33× faster than every peer, {what}, {}", display(diag)),
                    d <= 0.75 * p,
                    format!("{} {d:.2} ns vs fastest peer {} {p:.2} ns ({:.2}×)", display(diag), display(peer), p / d),
                ));
            }
        }
        for g in self.lookup.iter().filter(|g| g.id.starts_with("lookup_")) {
            let (Some(d), Some((peer, p))) = (g.time("diag"), g.best_peer()) else { continue };
            out.push((
                format!("{}: at least as fast as the fastest peer", g.title),
                d <= p,
                format!("diag {d:.1} ns vs {} {p:.1} ns ({:.2}×)", display(peer), p / d),
            ));
        }
        for id in ["encode_small", "encode_large"] {
            let Some(g) = group(id) else { continue };
            let (Some(d), Some(p)) = (g.time("diag"), g.time("prometheus_client")) else { continue };
            let workload = id.trim_start_matches("encode_");
            let allocs = self.facts.iter().find(|f| f.imp == "diag" && f.workload == workload).map(|f| f.allocations);
            let goal = if workload == "large" { 10.0 } else { 3.0 };
            let memcpy = self.memcpy.iter().find(|(w, _)| w == workload).map_or_else(String::new, |(_, m)| {
                format!("; a memcpy of diag's bytes {:.1} µs (diag: {:.1}× it)", m / 1e3, d / m)
            });
            out.push((
                format!("encode {workload}: ≥ {goal}× faster than prometheus-client, zero allocations"),
                p / d >= goal && allocs == Some(0),
                format!(
                    "diag {:.1} µs vs prometheus-client {:.1} µs: {:.2}×; diag allocations per encode: {}{memcpy}",
                    d / 1e3,
                    p / 1e3,
                    p / d,
                    allocs.map_or_else(|| "not measured".to_owned(), |a| a.to_string())
                ),
            ));
        }
        for g in &self.protobuf {
            let (Some(d), Some(p)) = (g.time("diag"), g.time("prometheus_client")) else { continue };
            let workload = g.id.trim_start_matches("protobuf_");
            let allocs = self
                .facts
                .iter()
                .find(|f| f.imp == "diag" && f.workload.starts_with(workload) && f.workload.ends_with("protobuf"))
                .map(|f| f.allocations);
            out.push((
                format!("protobuf encode {workload}: ≥ 3× faster than prometheus-client, zero allocations"),
                p / d >= 3.0 && allocs == Some(0),
                format!(
                    "diag {:.1} µs vs prometheus-client {:.1} µs: {:.2}×; diag allocations per encode: {}",
                    d / 1e3,
                    p / 1e3,
                    p / d,
                    allocs.map_or_else(|| "not measured".to_owned(), |a| a.to_string())
                ),
            ));
        }
        if let Some(g) = &self.native
            && let (Some(n), Some(c)) = (g.time("diag_native"), g.time("diag_classic"))
        {
            out.push((
                "native histogram observe no slower than diag's classic observe (1 thread)".to_owned(),
                n <= c,
                format!("`NativeHistogram<32>` {n:.2} ns vs `Histogram<11>` {c:.2} ns ({:.2}×)", c / n),
            ));
        }
        let peer = self.serve.iter().find(|s| s.server == crate::rows::PEER);
        let ceiling = self.serve.iter().find(|s| s.server == crate::rows::CEILING);
        for s in self.serve.iter().filter(|s| s.server.starts_with("diag")) {
            if let Some(p) = peer {
                out.push((
                    format!("/metrics large ≥ 4× prometheus-client + hyper ({})", s.server),
                    s.rps >= 4.0 * p.rps,
                    format!("{} {:.0}/s vs {} {:.0}/s: {:.2}×", s.server, s.rps, p.server, p.rps, s.rps / p.rps),
                ));
            }
            if let Some(c) = ceiling {
                out.push((
                    format!("/metrics large ≥ 70% of the ceiling ({})", s.server),
                    s.rps >= 0.7 * c.rps,
                    format!("{} {:.0}/s vs {:.0}/s: {:.0}%", s.server, s.rps, c.rps, 100.0 * s.rps / c.rps),
                ));
            }
        }
        out
    }

    /// BENCHMARKS.md.
    pub fn markdown(&self, chart_file: &str) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "diag side by side with the crates a Rust service would use instead, measured in one run of \
             `cargo bench -p diag-benches` ({}). This file and `{chart_file}` are written by that run \
             (`benches/benches/peers.rs`); do not edit them by hand.\n",
            m.date
        );
        let _ = writeln!(s, "## Machine\n");
        let _ = writeln!(s, "- CPU: {} — `nproc` = {}", m.model, m.cpus);
        let _ = writeln!(s, "- {}", m.rustc);
        let _ = writeln!(
            s,
            "- Load average (1, 5, 15 min) at the start of the run: {}; at the end: {}",
            m.load.0, m.load.1
        );
        let _ = writeln!(
            s,
            "- A shared 2-core virtual machine: other engineers' builds and tests ran at the same time, so \
             absolute figures move between runs; the ratios come from one run and are steadier.\n"
        );
        let _ = writeln!(s, "## Commands\n");
        let _ = writeln!(s, "```sh");
        let _ = writeln!(s, "apt-get install -y wrk        # load generator for the /metrics part");
        let _ =
            writeln!(s, "cargo bench -p diag-benches   # all of it, about 5 minutes; rewrites this file and the chart");
        let _ = writeln!(s, "cargo bench -p diag-benches -- encode_large   # one group (does not rewrite this file)");
        let _ = writeln!(s, "```\n");
        let _ = writeln!(s, "## Targets\n");
        let _ = writeln!(s, "| target | met | figures |\n| --- | --- | --- |");
        for (what, met, figures) in self.targets() {
            let _ = writeln!(s, "| {what} | {} | {figures} |", if met { "yes" } else { "**no**" });
        }
        let _ = writeln!(s, "\n## Ratios (peer time / diag time; above 1 means diag is faster)\n");
        let _ = writeln!(s, "![peer/diag ratios]({chart_file})\n");
        let _ = writeln!(s, "| workload — diag type | diag | bare atomic | prometheus | prometheus-client | metrics |");
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
        for row in self.rows() {
            let cell = |name: &str| {
                row.ratios.iter().find(|(p, _)| p == name).map_or_else(|| "–".to_owned(), |(_, r)| format!("{r:.2}×"))
            };
            let diag = if row.label.contains("scrapes/s") { format!("{:.0}/s", row.diag) } else { human(row.diag) };
            if row.label.contains("scrapes/s") {
                let peer = row.ratios.first().map_or_else(|| "–".to_owned(), |(_, r)| format!("{r:.2}× (diag/peer)"));
                let _ = writeln!(s, "| {} | {diag} | – | – | {peer} | – |", row.label);
            } else {
                let _ = writeln!(
                    s,
                    "| {} | {diag} | {} | {} | {} | {} |",
                    row.label,
                    cell(display("atomic")),
                    cell(display("prometheus")),
                    cell(display("prometheus_client")),
                    cell(display("metrics"))
                );
            }
        }
        let _ = writeln!(s, "\n## Measured times (median per operation)\n");
        let _ = writeln!(s, "| group | {} |", IMPLS.map(|(_, d)| d).join(" | "));
        let _ = writeln!(s, "| --- |{}", " --- |".repeat(IMPLS.len()));
        for g in self.hot.iter().chain(&self.encode).chain(&self.protobuf) {
            let cells: Vec<String> =
                IMPLS.iter().map(|(id, _)| g.time(id).map_or_else(|| "–".to_owned(), human)).collect();
            let _ = writeln!(s, "| {} | {} |", g.title, cells.join(" | "));
        }
        let _ = writeln!(s, "\n## Labelled lookups (median per operation)\n");
        let _ = writeln!(
            s,
            "Each operation looks a series of `requests_total{{method, user}}` up by values known only at run \
             time (`\"GET\"` and a `String` user name, cycling through the series present) and increments it: \
             diag `Family::get_or_create((method, &user))?.inc()`, prometheus `with_label_values(&[..]).inc()`, \
             prometheus-client `get_or_create(&labels).inc()` (label sets built beforehand: its lookup takes \
             an owned set), metrics `register_counter(&Key::from_parts(..))` as `counter!` does. *create*: each \
             operation removes the series made 1,024 operations earlier and creates one with new values. \
             What each finds a series by differs: prometheus keys its map by an unseeded 64-bit FNV hash of \
             the values alone and never compares them, so `(\"ab\", \"c\")` and `(\"a\", \"bc\")` share one \
             series (checked at the start of every run, `benches/src/lookup.rs`) and values can be chosen to collide; diag hashes \
             with a per-process seed, then compares the values with the series' stored text.\n"
        );
        let _ = writeln!(s, "| group | {} |", IMPLS.map(|(_, d)| d).join(" | "));
        let _ = writeln!(s, "| --- |{}", " --- |".repeat(IMPLS.len()));
        for g in &self.lookup {
            let cells: Vec<String> =
                IMPLS.iter().map(|(id, _)| g.time(id).map_or_else(|| "–".to_owned(), human)).collect();
            let _ = writeln!(s, "| {} | {} |", g.title, cells.join(" | "));
        }
        if !self.memory.is_empty() {
            let _ = writeln!(
                s,
                "\nMemory per series (1,024 series; diag: its fixed storage for capacity 1,024 and 64-byte label text, index included; peers: heap growth):\n"
            );
            let _ = writeln!(s, "| implementation | bytes per series |\n| --- | --- |");
            for (imp, bytes) in &self.memory {
                let _ = writeln!(s, "| {} | {bytes:.0} |", display(imp));
            }
        }
        if let Some(g) = &self.native {
            let _ = writeln!(s, "\n## Native histograms: observe, 1 thread (median per operation)\n");
            let _ = writeln!(
                s,
                "One series of each, schema 3 (client_golang's default bucket factor 1.1), the hot-path values; \
                 classic buckets: the default 11. metrics buffers observations and folds them into buckets at \
                 upkeep (untimed, between samples); `prometheus` has no native histograms.\n"
            );
            let _ = writeln!(s, "| implementation | time |\n| --- | --- |");
            for (id, name) in crate::rows::NATIVE {
                let _ = writeln!(s, "| {name} | {} |", g.time(id).map_or_else(|| "–".to_owned(), human));
            }
            match &self.go_native {
                Ok(times) => {
                    for (name, ns) in times {
                        let _ = writeln!(s, "| {name} | {} |", human(*ns));
                    }
                    let _ = writeln!(
                        s,
                        "\nclient_golang: Debian's 1.14 in GOPATH mode, `go test -bench` in `benches/go/native` \
                         (wall time per operation, one goroutine, GOMAXPROCS = CPUs)."
                    );
                }
                Err(why) => {
                    let _ = writeln!(s, "\nclient_golang (Go): not measured in this run: {why}.");
                }
            }
        }
        let _ = writeln!(s, "\n## Encode: allocations per encode (steady state, reused buffer) and output size\n");
        let _ = writeln!(s, "| workload | implementation | allocations | bytes |\n| --- | --- | --- | --- |");
        for f in &self.facts {
            let _ = writeln!(s, "| {} | {} | {} | {} |", f.workload, display(f.imp), f.allocations, f.bytes);
        }
        let _ = writeln!(s, "\n## Serving /metrics\n\n{}\n", self.serve_note);
        if !self.serve.is_empty() {
            let _ = writeln!(s, "| server | scrapes/s | bytes per scrape |\n| --- | --- | --- |");
            for r in &self.serve {
                let _ = writeln!(s, "| {} | {:.0} | {} |", r.server, r.rps, r.bytes);
            }
        }
        let _ = writeln!(s, "\n## What is measured\n\n{}", WORKLOADS);
        s
    }
}

const WORKLOADS: &str = "\
- **Time**: single-threaded work (1-thread hot path, encode) is timed by the thread's CPU time \
  (`CLOCK_THREAD_CPUTIME_ID`): nothing can block it, and time the shared machine gives to other \
  processes is not the code's cost. 2-thread runs are timed by the wall clock, because a peer \
  that takes a lock blocks under contention and that wait is part of its cost; these figures \
  are therefore the ones most disturbed by other load on the machine (see the load average \
  above). Criterion reports the median over 30 samples.
- **Hot path**: one operation on a labelled series obtained beforehand (`shard=\"0\"`), in a loop \
  of criterion-chosen length, on 1 thread and on 2 threads updating the same series at once \
  (time per operation = the slower thread's wall time / iterations). *bare atomic* is a \
  `Box<AtomicU64>` with `fetch_add(1, Relaxed)` (counter) or `store` (gauge). diag's types: \
  `Counter`, `Gauge`, `Histogram<11>`; *diag (sharded)*: `ShardedCounter<8>` and \
  `ShardedHistogram<11, 4>`, which give each thread its own cache line. The histograms use the \
  default buckets and cycle through 8 values spread over them. For `metrics`, observations are \
  buffered until the exporter drains them; the drain (run between samples, untimed) is not \
  counted.
- **Encode**: the whole Prometheus text exposition of the workload into a buffer reused across \
  iterations. *small*: 50 counter families `app_requests_{f}_total` and 50 gauge families, each \
  with 4 values of the label `shard`, plus 10 histogram families × 4 series over the default \
  buckets; *large*: 500 + 500 families × 20 series, plus 100 histogram families × 20. diag: \
  `Registry` + `Family` + `Scrape::fill` into a reused `Vec<u8>`; prometheus: `gather()` + \
  `TextEncoder` into a reused `Vec<u8>`; prometheus-client: `encoding::text::encode` into a \
  reused `String`; metrics: `PrometheusHandle::render_to_write` into a reused `Vec<u8>`. \
  Allocations are counted by a counting global allocator over one encode after warm-up.
- **Protobuf encode**: the same workloads in the delimited protobuf exposition \
  (`io.prometheus.client.MetricFamily`). diag: `Scrape::new(Format::Protobuf, ..)` filling a \
  reused 64 KiB chunk until the scrape is done, as a frontend streams it; prometheus-client: \
  `prometheus_protobuf::encode_to_vec` (its messages are built per scrape, then encoded).
";

/// Formats nanoseconds with a unit that keeps 3 significant figures.
pub fn human(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.2} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// Draws the ratio chart as SVG: one bar per (row, peer), on a log scale.
///
/// # Errors
/// The drawing backend's error, as text.
pub fn chart(run: &Run, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let rows = run.rows();
    let bars: Vec<(String, String, f64)> = rows
        .iter()
        .flat_map(|r| r.ratios.iter().map(move |(p, x)| (r.label.clone(), p.clone(), *x)))
        .filter(|(_, _, x)| x.is_finite() && *x > 0.0)
        .collect();
    if bars.is_empty() {
        return Err("nothing to draw".to_owned());
    }
    let colour = |peer: &str| match peer {
        p if p.starts_with("bare") => RGBColor(150, 150, 150),
        p if p.starts_with("prometheus-client") => RGBColor(31, 119, 180),
        p if p.starts_with("prometheus") => RGBColor(255, 127, 14),
        p if p.starts_with("metrics") => RGBColor(44, 160, 44),
        _ => RGBColor(148, 103, 189),
    };
    let n = bars.len();
    let height = 120 + 18 * n as u32;
    let root = SVGBackend::new(path, (1250, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let lo = bars.iter().map(|b| b.2).fold(f64::INFINITY, f64::min).min(0.5) * 0.8;
    let hi = bars.iter().map(|b| b.2).fold(0.0, f64::max).max(4.0) * 2.5;
    let mut chart = ChartBuilder::on(&root)
        .caption("peer time / diag time, from one run (log scale; > 1: diag faster; red line: 3x)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(600)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
        .map_err(|e| e.to_string())?;
    let labels: Vec<String> = bars.iter().map(|(r, p, _)| format!("{r} vs {p}")).collect();
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(n.saturating_sub(1 + *i)).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .y_labels(n)
        .y_label_formatter(&label)
        .y_label_style(("sans-serif", 11))
        .x_desc("peer time / diag time")
        .disable_y_mesh()
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, p, x))| {
            let y = n - 1 - i;
            Rectangle::new(
                [(lo, SegmentValue::Exact(y)), (*x, SegmentValue::Exact(y + 1))],
                colour(p).mix(0.85).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, _, x))| {
            let y = n - 1 - i;
            Text::new(format!(" {x:.2}x"), (*x, SegmentValue::CenterOf(y)), ("sans-serif", 11))
        }))
        .map_err(|e| e.to_string())?;
    for (x, c) in [(1.0, BLACK), (3.0, RED)] {
        chart
            .draw_series(LineSeries::new([(x, SegmentValue::Exact(0)), (x, SegmentValue::Last)], c.stroke_width(1)))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

/// The workspace root (where BENCHMARKS.md lives): two levels above this crate
/// (`benches/report`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        let g = |id: &str, times: &[(&str, f64)]| Group {
            id: id.to_owned(),
            title: id.replace('_', " "),
            times: times.iter().map(|(i, t)| ((*i).to_owned(), *t)).collect(),
        };
        Run {
            machine: Machine {
                cpus: 2,
                model: "test".into(),
                rustc: "rustc".into(),
                date: "today".into(),
                load: ("1".into(), "2".into()),
            },
            hot: vec![
                g("counter_inc_1t", &[("diag", 5.0), ("atomic", 5.0), ("prometheus", 6.0)]),
                g("counter_inc_2t", &[("diag", 20.0), ("diag_sharded", 8.0), ("atomic", 20.0)]),
            ],
            lookup: vec![g("lookup_4_1t", &[("diag", 10.0), ("prometheus", 12.0)])],
            memory: vec![("diag", 100.0)],
            encode: vec![g("encode_small", &[("diag", 10.0), ("prometheus_client", 40.0)])],
            protobuf: vec![g("protobuf_small", &[("diag", 10.0), ("prometheus_client", 45.0)])],
            native: Some(g("native_observe", &[("diag_native", 9.0), ("diag_classic", 10.0)])),
            go_native: Ok(vec![("client_golang (Go) native", 100.0)]),
            facts: vec![
                EncodeFacts { workload: "small", imp: "diag", allocations: 0, bytes: 10 },
                EncodeFacts { workload: "small, protobuf", imp: "diag", allocations: 0, bytes: 8 },
            ],
            memcpy: vec![("small".into(), 2.0)],
            serve: vec![
                ServeResult { server: "diag-tokio".into(), rps: 300.0, bytes: 1 },
                ServeResult { server: "prometheus-client + hyper".into(), rps: 100.0, bytes: 1 },
                ServeResult { server: crate::rows::CEILING.into(), rps: 500.0, bytes: 1 },
            ],
            serve_note: "note".into(),
        }
    }

    #[test]
    fn targets_are_judged_from_the_figures() {
        let t = run().targets();
        let met = |prefix: &str| t.iter().find(|(w, _, _)| w.starts_with(prefix)).map(|(_, m, _)| *m);
        assert_eq!(met("counter inc within"), Some(true));
        assert_eq!(met("contended counter"), Some(true));
        assert_eq!(met("encode small"), Some(true));
        assert_eq!(met("/metrics large ≥ 4×"), Some(false), "3× is under 4×");
        assert_eq!(met("/metrics large ≥ 70%"), Some(false), "60% of the ceiling");
        assert_eq!(met("protobuf encode small"), Some(true));
        assert_eq!(met("native histogram observe"), Some(true));
        let md = run().markdown("c.svg");
        assert!(md.contains("| counter inc 1t — diag | 5.00 ns | 1.00× | 1.20× | – | – |"), "{md}");
    }

    #[test]
    fn chart_draws_every_ratio() {
        let path = std::env::temp_dir().join(format!("diag-bench-chart-{}.svg", std::process::id()));
        chart(&run(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        for label in ["counter inc 2t — diag (sharded) vs bare atomic", "2.50x", "3.00x"] {
            assert!(svg.contains(label), "missing {label}");
        }
    }
}
