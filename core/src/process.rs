//! [`ProcessCollector`]: the Linux process families, read from `/proc` at scrape time, with
//! the names, help texts and units of client_golang's process collector.
//!
//! | family | source |
//! |---|---|
//! | `process_cpu_seconds_total` | `stat` utime + stime, in `USER_HZ` (100) ticks |
//! | `process_open_fds` | entries of `fd/` |
//! | `process_max_fds` | soft `Max open files` of `limits` |
//! | `process_virtual_memory_bytes` | `stat` vsize |
//! | `process_virtual_memory_max_bytes` | soft `Max address space` of `limits` (unlimited = 2^64 - 1) |
//! | `process_resident_memory_bytes` | `VmRSS` of `status` |
//! | `process_start_time_seconds` | `stat` starttime / `USER_HZ` + `btime` of `/proc/stat` |
//!
//! A family whose file cannot be read (not Linux, no `/proc`) is left out of the scrape, as
//! client_golang does.

use std::format;
use std::fs;
use std::string::String;

use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
use crate::registry::Collect;

/// Clock ticks per second of `/proc` times; fixed by the kernel ABI (procfs assumes it too).
const USER_HZ: f64 = 100.0;

const CPU: Desc<'static> = Desc {
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    metric_type: MetricType::Counter,
};
const OPEN_FDS: Desc<'static> =
    Desc { name: "process_open_fds", help: "Number of open file descriptors.", metric_type: MetricType::Gauge };
const MAX_FDS: Desc<'static> =
    Desc { name: "process_max_fds", help: "Maximum number of open file descriptors.", metric_type: MetricType::Gauge };
const VSIZE: Desc<'static> = Desc {
    name: "process_virtual_memory_bytes",
    help: "Virtual memory size in bytes.",
    metric_type: MetricType::Gauge,
};
const VSIZE_MAX: Desc<'static> = Desc {
    name: "process_virtual_memory_max_bytes",
    help: "Maximum amount of virtual memory available in bytes.",
    metric_type: MetricType::Gauge,
};
const RSS: Desc<'static> = Desc {
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    metric_type: MetricType::Gauge,
};
const START: Desc<'static> = Desc {
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds.",
    metric_type: MetricType::Gauge,
};

/// Collects the `process_*` families of one Linux process (by default the calling one).
///
/// # Examples
/// ```
/// use diag_core::process::ProcessCollector;
/// use diag_core::{Format, Scrape};
/// static PROCESS: ProcessCollector = ProcessCollector::new();
/// let mut buf = [0u8; 4096];
/// let n = Scrape::new(Format::Prometheus, &PROCESS).fill(&mut buf).unwrap();
/// let text = core::str::from_utf8(&buf[..n]).unwrap();
/// # #[cfg(target_os = "linux")]
/// assert!(text.contains("\nprocess_resident_memory_bytes "));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessCollector {
    pid: Option<u32>,
}

impl ProcessCollector {
    /// The collector of the calling process (`/proc/self`).
    pub const fn new() -> Self {
        Self { pid: None }
    }

    /// The collector of process `pid`.
    pub const fn for_pid(pid: u32) -> Self {
        Self { pid: Some(pid) }
    }

    fn read(&self, file: &str) -> Option<String> {
        let path = match self.pid {
            Some(pid) => format!("/proc/{pid}/{file}"),
            None => format!("/proc/self/{file}"),
        };
        fs::read_to_string(path).ok()
    }

    fn stat(&self) -> Option<Stat> {
        Stat::parse(&self.read("stat")?)
    }

    fn open_fds(&self) -> Option<f64> {
        let dir = match self.pid {
            Some(pid) => format!("/proc/{pid}/fd"),
            None => String::from("/proc/self/fd"),
        };
        Some(fs::read_dir(dir).ok()?.count() as f64)
    }

    fn soft_limit(&self, name: &str) -> Option<f64> {
        soft_limit(&self.read("limits")?, name)
    }

    fn rss(&self) -> Option<f64> {
        let status = self.read("status")?;
        let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?;
        Some(kib.trim().parse::<f64>().ok()? * 1024.0)
    }

    fn start_time(&self) -> Option<f64> {
        let ticks = self.stat()?.start_ticks;
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let btime: f64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
        Some(btime + ticks / USER_HZ)
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

/// Emits one family with one unlabelled sample, or nothing when `value` is unknown.
fn family(enc: &mut Encoder<'_>, desc: &Desc<'_>, value: Option<f64>) -> Result<(), Stop> {
    match value {
        Some(v) => {
            enc.header(desc)?;
            enc.sample(desc, &Labels::EMPTY, Value::F64(v))
        }
        None => Ok(()),
    }
}

impl Collect for ProcessCollector {
    fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
        enc.entry(0, |enc| family(enc, &CPU, self.stat().map(|s| (s.utime + s.stime) / USER_HZ)))?;
        enc.entry(1, |enc| family(enc, &OPEN_FDS, self.open_fds()))?;
        enc.entry(2, |enc| family(enc, &MAX_FDS, self.soft_limit("Max open files")))?;
        enc.entry(3, |enc| family(enc, &VSIZE, self.stat().map(|s| s.vsize)))?;
        enc.entry(4, |enc| family(enc, &VSIZE_MAX, self.soft_limit("Max address space")))?;
        enc.entry(5, |enc| family(enc, &RSS, self.rss()))?;
        enc.entry(6, |enc| family(enc, &START, self.start_time()))
    }
}

/// The fields of `/proc/<pid>/stat` the families use.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    utime: f64,
    stime: f64,
    start_ticks: f64,
    vsize: f64,
}

impl Stat {
    /// Parses `pid (comm) state ppid …`; `comm` may hold spaces and parentheses, so fields are
    /// counted after the last `)`.
    fn parse(stat: &str) -> Option<Self> {
        let rest = &stat[stat.rfind(')')? + 1..];
        // Field 3 (state) is index 0 here, so field k is index k - 3.
        let fields: [&str; 21] = {
            let mut it = rest.split_ascii_whitespace();
            core::array::from_fn(|_| it.next().unwrap_or(""))
        };
        let field = |k: usize| fields[k - 3].parse::<f64>().ok();
        Some(Self { utime: field(14)?, stime: field(15)?, start_ticks: field(22)?, vsize: field(23)? })
    }
}

/// The soft limit named `name` in a `/proc/<pid>/limits` table; `unlimited` is 2^64 - 1, as
/// procfs reports it.
fn soft_limit(limits: &str, name: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_ascii_whitespace().next()?;
    if soft == "unlimited" { Some(u64::MAX as f64) } else { soft.parse().ok() }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 524288               files     \n\
        Max address space         unlimited            unlimited            bytes     \n";

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000000 200 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = Stat::parse(stat).unwrap();
        assert_eq!((s.utime, s.stime, s.start_ticks, s.vsize), (250.0, 50.0, 12345.0, 1_000_000.0));
        assert_eq!(Stat::parse("42 (short) S 1"), None);
        assert_eq!(Stat::parse("no parenthesis"), None);
    }

    #[test]
    fn soft_limits() {
        assert_eq!(soft_limit(LIMITS, "Max open files"), Some(1024.0));
        assert_eq!(soft_limit(LIMITS, "Max address space"), Some(18446744073709551615.0));
        assert_eq!(soft_limit(LIMITS, "Max processes"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn scrapes_this_process_with_client_golang_names() {
        let mut buf = [0u8; 4096];
        let n = crate::Scrape::new(crate::Format::Prometheus, &ProcessCollector::new()).fill(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        let value = |name: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(name) && l.as_bytes()[name.len()] == b' ').unwrap();
            line[name.len() + 1..].parse().unwrap()
        };
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"), "{text}");
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_resident_memory_bytes") > 100_000.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_virtual_memory_max_bytes") > 0.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(start <= now + 1.0 && start > now - 3600.0, "started within the hour: {start} vs {now}");
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
