//! (e) The diagd YAML config loader on arbitrary bytes: it must return a config or an error that
//! names what is wrong, never panic. The agent's own `config.rs` (and the exporter-URL rules it
//! calls) are compiled in unchanged with `#[path]`, so this fuzzes the real loader.
#![no_main]

#[allow(dead_code, reason = "only the loader is exercised; the rest of the agent's config API is unused here")]
#[path = "../../agent/src/config.rs"]
mod config;

#[allow(dead_code, reason = "only the URL rules are exercised here")]
#[path = "../../agent/src/telemetry/url.rs"]
mod url;

/// The part of the agent's `telemetry` module that the config loader calls.
mod telemetry {
    pub(crate) use super::url::ExporterUrl;
}

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = config::Config::parse(text) {
        // Every error says something (the key, or the YAML problem).
        assert!(!format!("{e:#}").is_empty());
    }
});
