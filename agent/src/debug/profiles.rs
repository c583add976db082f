//! The profiles diagd serves, by the names `go tool pprof` users know: `profile` (CPU) and
//! `heap`; the `PROFILES` list of `diagd debug profile`; the `/debug/pprof/` index.

use std::fmt::Write as _;

/// One kind of profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// CPU samples over a number of seconds.
    Cpu,
    /// Live heap allocations (sampled).
    Heap,
}

/// Every profile, in the order the index and the default list give them.
pub(crate) const ALL: [Profile; 2] = [Profile::Cpu, Profile::Heap];

/// CPU profile length when none (or 0) is asked for.
pub(crate) const DEFAULT_SECONDS: u64 = 10;

/// Longest CPU profile served.
pub(crate) const MAX_SECONDS: u64 = 600;

impl Profile {
    /// Its name: the path under `/debug/pprof/` and the tarball entry `<name>.pprof`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Cpu => "profile",
            Self::Heap => "heap",
        }
    }

    /// The profile called `name`.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|p| p.name() == name)
    }

    fn about(self) -> &'static str {
        match self {
            Self::Cpu => "CPU samples for ?seconds=N (default 10)",
            Self::Heap => "live heap allocations, sampled by jemalloc",
        }
    }
}

/// `profile, heap`: the names, for error messages.
pub(crate) fn supported() -> String {
    ALL.map(Profile::name).join(", ")
}

/// Why a profile name was refused.
pub(crate) fn unknown(name: &str) -> String {
    format!("unknown profile {name:?}; supported profiles: {}", supported())
}

/// Parses a comma-separated list such as `profile,heap` (each name once, in the given order).
///
/// # Errors
/// An empty list or an unknown name, with the supported names.
pub(crate) fn parse_list(list: &str) -> Result<Vec<Profile>, String> {
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
pub(crate) fn index() -> String {
    let mut text = String::from("diagd profiles (pprof protobuf; read them with `go tool pprof`):\n");
    for p in ALL {
        let _ = writeln!(text, "/debug/pprof/{:<8} {}", p.name(), p.about());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_list_the_supported_ones() {
        assert_eq!(parse_list("profile,heap").unwrap(), ALL);
        assert_eq!(parse_list(" heap , profile,heap").unwrap(), [Profile::Heap, Profile::Cpu]);
        assert_eq!(
            parse_list("goroutine,heap").unwrap_err(),
            "unknown profile \"goroutine\"; supported profiles: profile, heap"
        );
        assert!(parse_list(",").unwrap_err().contains("supported profiles: profile, heap"));
        assert!(index().contains("/debug/pprof/heap"));
    }
}
