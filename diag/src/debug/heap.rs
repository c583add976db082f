//! The `heap` and `allocs` profiles, from jemalloc's sampling heap profiler
//! ([`allocator`](super::allocator)): jemalloc dumps its samples (`prof.dump`), this module
//! reads the dump, trims the allocator's own frames and writes pprof protobuf.
//!
//! Both profiles carry Go's four sample types: `alloc_objects`, `alloc_space` (every sampled
//! allocation since the process started, `prof_accum`), `inuse_objects`, `inuse_space` (the
//! sampled allocations still live). `heap` shows `inuse_space` first, `allocs` `alloc_space`,
//! as Go's do. Values are scaled from the samples the way `jeprof` does.
//!
//! Trimming: a sampled stack starts inside jemalloc (`prof_backtrace_impl`, `imalloc_body`,
//! `malloc`…), then the global allocator wrapper (`__rust_alloc`, `tikv_jemallocator`), then
//! the standard library's allocation paths (`alloc::raw_vec`, `Vec::with_capacity`,
//! `String::push_str`, `hashbrown`…). All of these are removed from the leaf end, inlined
//! calls included, so the first frame, which `go tool pprof -top` charges, is the program's
//! function that asked for the memory.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::proto::{Builder, Line};
use super::unwind::Unwinder;

/// Which view of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Live allocations (`inuse_space` first).
    InUse,
    /// Every allocation since start (`alloc_space` first).
    Allocs,
}

/// Dumps and converts on a thread of its own (the dump writes and reads a temporary file).
///
/// # Errors
/// When jemalloc's profiler is off (e.g. `MALLOC_CONF=prof:false`) or the dump fails.
pub(crate) async fn collect(view: View) -> Result<Vec<u8>, String> {
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("diag-heap-profile".into())
        .spawn(move || {
            let _ = tx.send_blocking(dump().and_then(|text| convert(&text, view)));
        })
        .map_err(|e| format!("cannot start the heap profile thread: {e}"))?;
    rx.recv().await.map_err(|_| "the heap profile thread ended without a profile".to_owned())?
}

/// Reads a jemalloc option or statistic.
fn read_ctl<T: Copy>(name: &[u8]) -> Option<T> {
    #[allow(unsafe_code, reason = "jemalloc's mallctl interface is untyped")]
    // SAFETY: every name passed names a jemalloc control of type `T` (bool, size_t or uint64_t), as
    // jemalloc's manual documents.
    unsafe {
        tikv_jemalloc_ctl::raw::read(name).ok()
    }
}

/// Whether jemalloc is the program's global allocator: a fresh allocation through Rust's
/// allocator shows in jemalloc's count of this thread's allocated bytes. It is not unless the
/// program opts in (`diag::profiling::jemalloc!()`): the library never installs an allocator.
pub(crate) fn jemalloc_is_global() -> bool {
    let allocated = || read_ctl::<u64>(b"thread.allocated\0");
    let Some(before) = allocated() else { return false };
    let probe = std::hint::black_box(Vec::<u8>::with_capacity(1 << 20));
    let after = allocated().unwrap_or(before);
    drop(probe);
    after.wrapping_sub(before) >= 1 << 20
}

/// Asks jemalloc for a heap dump and returns its text.
fn dump() -> Result<String, String> {
    if !jemalloc_is_global() {
        return Err("heap profiles need jemalloc as the global allocator: add `diag::profiling::jemalloc!();` \
                    to the program's main.rs (diag installs no allocator by itself)"
            .into());
    }
    if read_ctl::<bool>(b"opt.prof\0") != Some(true) {
        return Err("heap profiling is off: jemalloc started without prof:true (check MALLOC_CONF)".into());
    }
    if read_ctl::<bool>(b"prof.active\0") != Some(true) {
        return Err("heap profiling is not active (check MALLOC_CONF: prof_active)".into());
    }
    static N: AtomicU64 = AtomicU64::new(0);
    // Relaxed: only makes the name unique.
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path: PathBuf = std::env::temp_dir().join(format!("diagd-heap-{}-{n}.prof", std::process::id()));
    // Created 0600 first: jemalloc opens it again without changing the mode.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    drop(file);
    let result = (|| {
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("temporary path {} holds a NUL byte", path.display()))?;
        #[allow(unsafe_code, reason = "jemalloc's mallctl interface is untyped")]
        // SAFETY: `prof.dump` takes a `const char *` file name; the string lives until the
        // call returns.
        unsafe { tikv_jemalloc_ctl::raw::write(b"prof.dump\0", c_path.as_ptr()) }
            .map_err(|e| format!("cannot dump the heap profile: {e}"))?;
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read the heap dump {}: {e}", path.display()))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// One stack of a dump, with jemalloc's counts.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// Return addresses, innermost first.
    stack: Vec<u64>,
    live_objects: f64,
    live_bytes: f64,
    all_objects: f64,
    all_bytes: f64,
}

/// A parsed dump: the mean bytes between samples and the stacks.
#[derive(Debug, PartialEq)]
struct Dump {
    rate: f64,
    entries: Vec<Entry>,
}

/// Parses jemalloc's `heap_v2` dump: `@ addr…` lines, each followed by
/// `t*: objs: bytes [accum_objs: accum_bytes]`.
fn parse(text: &str) -> Result<Dump, String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let rate: f64 = first
        .trim()
        .strip_prefix("heap_v2/")
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| format!("not a jemalloc heap_v2 dump: {first:?}"))?;
    let mut entries = Vec::new();
    let mut stack: Option<Vec<u64>> = None;
    for line in lines {
        let line = line.trim();
        if line == "MAPPED_LIBRARIES:" {
            break;
        }
        if let Some(addresses) = line.strip_prefix("@ ") {
            let parsed: Result<Vec<u64>, _> =
                addresses.split_whitespace().map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16)).collect();
            stack = Some(parsed.map_err(|_| format!("bad stack line in the heap dump: {line:?}"))?);
        } else if let Some(counts) = line.strip_prefix("t*:") {
            let Some(stack) = stack.take() else { continue };
            let numbers: Vec<f64> = counts
                .split(|c: char| c == ':' || c == '[' || c == ']' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| format!("bad count line in the heap dump: {line:?}"))?;
            let [live_objects, live_bytes, all_objects, all_bytes] = numbers[..] else {
                return Err(format!("bad count line in the heap dump: {line:?}"));
            };
            entries.push(Entry { stack, live_objects, live_bytes, all_objects, all_bytes });
        }
    }
    Ok(Dump { rate, entries })
}

/// Unbiases sampled counts as `jeprof` does: (objects, bytes) → estimated totals.
fn scale(objects: f64, bytes: f64, rate: f64) -> (i64, i64) {
    if objects <= 0.0 || bytes <= 0.0 {
        return (0, 0);
    }
    let ratio = (bytes / objects) / rate;
    let factor = 1.0 / (1.0 - (-ratio).exp());
    ((objects * factor).round() as i64, (bytes * factor).round() as i64)
}

/// Whether a symbolized line is the allocator's or the standard library's allocation path.
fn is_allocator(line: &Line) -> bool {
    const PREFIXES: &[&str] = &[
        // The standard library (its allocation paths: containers, strings, formatting).
        "alloc::",
        "core::",
        "std::",
        "<alloc::",
        "<core::",
        "<std::",
        "hashbrown::",
        "<hashbrown::",
        // The global allocator wrapper and its shims.
        "tikv_jemallocator::",
        "<tikv_jemallocator::",
        "__rust_",
        "__rustc::",
        "__rdl_",
        "__rg_",
        // jemalloc.
        "_rjem_",
        "je_",
        "prof_",
        "imalloc",
        "ialloc",
        "iralloc",
        "irealloc",
        "do_rallocx",
        "malloc",
        "calloc",
        "realloc",
        "mallocx",
        "rallocx",
        "posix_memalign",
        "aligned_alloc",
        "memalign",
        "valloc",
    ];
    let name = line.function.as_str();
    if PREFIXES.iter().any(|p| name.starts_with(p)) || line.file.contains("/jemalloc/") {
        return true;
    }
    // `<str as alloc::string::ToString>::to_string`, `<[T] as alloc::…>`: a standard trait on
    // a type without a path (a primitive or a generic parameter).
    if let Some((self_type, rest)) = name.strip_prefix('<').and_then(|n| n.split_once(" as ")) {
        let std_trait = ["alloc::", "core::", "std::"].iter().any(|p| rest.starts_with(p));
        return std_trait && !self_type.contains("::");
    }
    false
}

/// Turns a dump into the profile of `view`.
fn convert(text: &str, view: View) -> Result<Vec<u8>, String> {
    let dump = parse(text)?;
    let objects = Unwinder::new().objects().to_vec();
    let rate = dump.rate.max(1.0);
    let mut builder = Builder::new(
        &[("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"), ("inuse_space", "bytes")],
        ("space", "bytes"),
        rate as i64,
        objects,
    );
    builder.default_sample_type(match view {
        View::InUse => "inuse_space",
        View::Allocs => "alloc_space",
    });
    builder.comment(&format!(
        "jemalloc heap profile: one sample per {rate} bytes allocated on average; allocator and standard library frames trimmed"
    ));
    let accumulating = read_ctl::<bool>(b"opt.prof_accum\0") == Some(true);
    if !accumulating {
        builder.comment("alloc_objects and alloc_space are empty: jemalloc runs without prof_accum");
    }
    for entry in dump.entries {
        let (live_objects, live_bytes) = scale(entry.live_objects, entry.live_bytes, rate);
        let (all_objects, all_bytes) = scale(entry.all_objects, entry.all_bytes, rate);
        let wanted = match view {
            View::InUse => live_bytes,
            View::Allocs => all_bytes,
        };
        if wanted == 0 || entry.stack.is_empty() {
            continue;
        }
        let frames = trimmed(&mut builder, &entry.stack);
        builder.sample(&frames, vec![all_objects, all_bytes, live_objects, live_bytes], Vec::new());
    }
    Ok(builder.finish())
}

/// `stack` (return addresses, innermost first) as (address to symbolize, lines to skip),
/// without the allocator's frames at the leaf end.
fn trimmed(builder: &mut Builder, stack: &[u64]) -> Vec<(u64, usize)> {
    let addresses: Vec<u64> = stack.iter().map(|&a| a.saturating_sub(1)).collect();
    for (i, &address) in addresses.iter().enumerate() {
        let lines = builder.lines(address);
        if lines.is_empty() {
            // Unknown code: not known to be the allocator's, so the stack starts here.
            return start_at(&addresses, i, 0);
        }
        if let Some(skip) = lines.iter().position(|l| !is_allocator(l)) {
            return start_at(&addresses, i, skip);
        }
    }
    // Nothing but allocator and standard library frames (e.g. the runtime's own start-up
    // allocations): keep the whole stack.
    start_at(&addresses, 0, 0)
}

fn start_at(addresses: &[u64], index: usize, skip: usize) -> Vec<(u64, usize)> {
    addresses[index..].iter().enumerate().map(|(i, &a)| (a, if i == 0 { skip } else { 0 })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "heap_v2/16384\n  t*: 3: 48 [9: 144]\n  t0: 3: 48 [0: 0]\n\
        @ 0x10 0x20 0x30\n  t*: 1: 16384 [5: 81920]\n  t0: 1: 16384 [0: 0]\n\
        @ 0x40\n  t*: 0: 0 [4: 65536]\n\nMAPPED_LIBRARIES:\n55d0-55e0 r-xp 0 08:01 1 /bin/x\n";

    #[test]
    fn dumps_parse_with_live_and_accumulated_counts() {
        let dump = parse(DUMP).unwrap();
        assert_eq!(dump.rate, 16384.0);
        assert_eq!(dump.entries.len(), 2, "the header's totals are not a stack");
        assert_eq!(dump.entries[0].stack, [0x10, 0x20, 0x30]);
        assert_eq!(
            (dump.entries[0].live_objects, dump.entries[0].live_bytes, dump.entries[0].all_bytes),
            (1.0, 16384.0, 81920.0)
        );
        assert_eq!((dump.entries[1].live_bytes, dump.entries[1].all_objects), (0.0, 4.0));
        assert!(parse("heap_v1/1\n").unwrap_err().contains("not a jemalloc heap_v2 dump"));
        assert!(parse("heap_v2/1\n@ 0xzz\n").unwrap_err().contains("bad stack line"));
        assert!(parse("heap_v2/1\n@ 0x1\n t*: 1: 2\n").unwrap_err().contains("bad count line"));
    }

    #[test]
    fn scaling_follows_jeprof() {
        assert_eq!(scale(0.0, 0.0, 512.0), (0, 0));
        // One 16 KiB sample at a 16 KiB rate stands for 1/(1-e^-1) ≈ 1.58 of them.
        assert_eq!(scale(1.0, 16384.0, 16384.0), (2, 25919));
        // Large allocations are (nearly) always sampled: no scaling.
        assert_eq!(scale(1.0, f64::from(1u32 << 30), 16384.0), (1, 1 << 30));
    }

    #[test]
    fn allocator_and_std_lines_are_trimmed_and_program_lines_kept() {
        let line = |function: &str, file: &str| Line {
            function: function.into(),
            system_name: String::new(),
            file: file.into(),
            line: 1,
        };
        for internal in [
            line("prof_backtrace_impl", "/x/jemalloc/src/prof.c"),
            line("je_malloc_default", ""),
            line("imalloc_body", ""),
            line("__rust_alloc", ""),
            line("<tikv_jemallocator::Jemalloc as core::alloc::global::GlobalAlloc>::alloc", ""),
            line("alloc::raw_vec::RawVecInner<A>::try_allocate_in", ""),
            line("alloc::vec::Vec<T>::with_capacity", ""),
            line("<alloc::string::String as core::clone::Clone>::clone", ""),
            line("<str as alloc::string::ToString>::to_string", ""),
            line("<[T] as alloc::slice::hack::ConvertVec>::to_vec", ""),
            line("hashbrown::raw::RawTable<T,A>::reserve_rehash", ""),
            line("some_static_fn", "/registry/tikv-jemalloc-sys-0.7/jemalloc/src/tcache.c"),
        ] {
            assert!(is_allocator(&internal), "{internal:?}");
        }
        for program in [
            line("profile_workload::retain_known", "/agent/examples/x.rs"),
            line("<diagd::Foo as core::clone::Clone>::clone", ""),
            line("diagd::debug::heap::convert", ""),
        ] {
            assert!(!is_allocator(&program), "{program:?}");
        }
    }
}
