//! The profiles diagd serves, by the names `go tool pprof` and Teleport users know:
//! `goroutine` (every thread's stack), `heap`, `allocs` and `profile` (CPU); the list
//! `diagd debug profile` takes; the `/debug/pprof/` index. Go's other names (`trace`,
//! `mutex`, `block`, `threadcreate`, …) describe Go's runtime and are refused with the list
//! of what exists.

use std::fmt::Write as _;

/// One kind of profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every thread's stack now (Go's `goroutine`).
    Goroutine,
    /// Live heap allocations (sampled).
    Heap,
    /// CPU samples over a number of seconds.
    Cpu,
    /// Every allocation since the process started (sampled).
    Allocs,
}

/// Every profile, in the order the index gives them.
pub const ALL: [Profile; 4] = [Profile::Goroutine, Profile::Heap, Profile::Cpu, Profile::Allocs];

/// What `diagd debug profile` collects when no list is given: Teleport's default.
pub const DEFAULT_LIST: &str = "goroutine,heap,profile";

/// Go profile names diag has no counterpart for, with why.
const GO_ONLY: [(&str, &str); 6] = [
    ("trace", "Go's execution tracer"),
    ("mutex", "Go's mutex contention profile"),
    ("block", "Go's blocking profile"),
    ("threadcreate", "Go's thread-creation profile"),
    ("cmdline", "Go's command line endpoint"),
    ("symbol", "Go's symbol lookup endpoint"),
];

/// CPU profile length when none (or 0) is asked for.
pub const DEFAULT_SECONDS: u64 = 10;

/// Longest CPU profile served.
pub const MAX_SECONDS: u64 = 600;

impl Profile {
    /// Its name: the path under `/debug/pprof/` and the tarball entry `<name>.pprof`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Goroutine => "goroutine",
            Self::Heap => "heap",
            Self::Cpu => "profile",
            Self::Allocs => "allocs",
        }
    }

    /// The profile called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its path on the debug service; `seconds` is the CPU profile's length.
    pub fn path(self, seconds: u64) -> String {
        match self {
            Self::Cpu => format!("/debug/pprof/profile?seconds={seconds}"),
            _ => format!("/debug/pprof/{}", self.name()),
        }
    }

    fn about(self) -> &'static str {
        match self {
            Self::Goroutine => "every thread's stack now, labelled with its name, id and state",
            Self::Heap => "live heap allocations, sampled by jemalloc (inuse_space first)",
            Self::Cpu => "CPU samples of every thread for ?seconds=N, 100 per CPU second",
            Self::Allocs => "every allocation since start, sampled by jemalloc (alloc_space first)",
        }
    }
}

/// `goroutine, heap, profile, allocs`: the names, for error messages.
pub fn supported() -> String {
    ALL.map(Profile::name).join(", ")
}

/// Why a profile name was refused.
pub fn unknown(name: &str) -> String {
    match GO_ONLY.iter().find(|(n, _)| *n == name) {
        Some((_, what)) => {
            format!(
                "profile {name:?} is {what}, which diag has no counterpart for; supported profiles: {}",
                supported()
            )
        }
        None => format!("unknown profile {name:?}; supported profiles: {}", supported()),
    }
}

/// Parses a comma-separated list such as `goroutine,heap,profile` (each name once, in the
/// given order).
///
/// # Errors
/// An empty list or a name diag does not serve, with the supported names.
pub fn parse_list(list: &str) -> Result<Vec<Profile>, String> {
    let mut profiles = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let profile = Profile::from_name(name).ok_or_else(|| unknown(name))?;
        if !profiles.contains(&profile) {
            profiles.push(profile);
        }
    }
    if profiles.is_empty() {
        return Err(format!("no profile named; supported profiles: {}", supported()));
    }
    Ok(profiles)
}

/// The plain-text index served at `/debug/pprof/`.
pub fn index() -> String {
    let mut text = String::from("diagd profiles (pprof protobuf; read them with `go tool pprof`):\n");
    for p in ALL {
        let _ = writeln!(text, "/debug/pprof/{:<10} {}", p.name(), p.about());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_list_the_supported_ones() {
        assert_eq!(parse_list(DEFAULT_LIST).unwrap(), [Profile::Goroutine, Profile::Heap, Profile::Cpu]);
        assert_eq!(parse_list(" heap , profile,heap,allocs").unwrap(), [Profile::Heap, Profile::Cpu, Profile::Allocs]);
        assert_eq!(
            parse_list("goroutine,nope").unwrap_err(),
            "unknown profile \"nope\"; supported profiles: goroutine, heap, profile, allocs"
        );
        let mutex = parse_list("heap,mutex").unwrap_err();
        assert!(mutex.contains("\"mutex\" is Go's mutex contention profile"), "{mutex}");
        assert!(mutex.ends_with("supported profiles: goroutine, heap, profile, allocs"), "{mutex}");
        for go in ["trace", "block", "threadcreate"] {
            assert!(parse_list(go).unwrap_err().contains("no counterpart"), "{go}");
        }
        assert!(parse_list(",").unwrap_err().contains("supported profiles: goroutine, heap, profile, allocs"));
        assert_eq!(Profile::Cpu.path(3), "/debug/pprof/profile?seconds=3");
        assert_eq!(Profile::Allocs.path(3), "/debug/pprof/allocs");
        for p in ALL {
            assert!(index().contains(&format!("/debug/pprof/{}", p.name())), "{p:?}");
        }
    }
}
