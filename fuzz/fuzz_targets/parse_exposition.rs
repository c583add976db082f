//! The strict exposition parser itself on arbitrary bytes, in both formats: it never panics,
//! every event it yields before an error is readable (labels, escapes, numbers), and its
//! verdict does not depend on reading the events or only validating.
#![no_main]

use diag_core::Format;
use diag_core::encoding::parse::{Event, Lines, Parser, validate, validate_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let verdict = validate_bytes(format, data);
        let Ok(text) = std::str::from_utf8(data) else {
            assert!(verdict.is_err());
            continue;
        };
        let mut samples = 0;
        let mut error = None;
        for event in Parser::new(format, text) {
            match event {
                Ok(Event::Sample { family, suffix, sample, .. }) => {
                    samples += 1;
                    assert!(sample.name.starts_with(family) && sample.name.ends_with(suffix));
                    for (name, value) in sample.labels.iter() {
                        assert!(!name.is_empty());
                        let unescaped: String = value.chars().collect();
                        assert!(value.eq_str(&unescaped));
                        assert!(unescaped.len() <= value.raw().len());
                    }
                    let _ = (sample.value.as_f64(), sample.value.as_u64(), sample.timestamp, sample.exemplar);
                }
                Ok(Event::Help { help, .. }) => {
                    let _ = help.to_string();
                }
                Ok(_) => {}
                Err(e) => error = Some(e),
            }
        }
        match (&verdict, error) {
            (Ok(summary), None) => assert_eq!(summary.samples, samples),
            (Err(a), Some(b)) => assert_eq!(*a, b),
            (v, e) => panic!("validate says {v:?}, the parser says {e:?}"),
        }
        // The line layer fails no later than the parser.
        if let Some(Err(e)) = Lines::new(format, text).find(Result::is_err) {
            assert!(verdict.as_ref().is_err_and(|v| v.line <= e.line), "{verdict:?} vs {e:?}");
        }
        let _ = validate(format, text);
    }
});
