//! (e) The diagd YAML config loader on arbitrary bytes: it must return a config or an error that
//! names what is wrong, never panic. The loader is the `diag` library's (`diag::config`), the
//! one diagd and `Diagnostics::from_config` use.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = diag::config::Config::parse(text) {
        // Every error says something (the key, or the YAML problem).
        assert!(!format!("{e:#}").is_empty());
    }
});
