//! Splitting request text at ASCII bytes (`,`, `;`, `=`, `?`, `&`).
//!
//! `str::split(char)`, `split_once(char)`, `find(char)` and `trim_matches(char)` go through
//! `core::str`'s pattern machinery (`CharSearcher` and its iterators): about 1.2 KiB of flash on
//! a Cortex-M, for separators that are single ASCII bytes. Searching the bytes is as fast and
//! links nothing; an ASCII byte is always a character boundary, so the pieces stay `&str`.

/// The pieces of `s` between every `sep` (an ASCII byte), as `str::split` gives them.
pub(crate) fn split(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    core::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s` before and after its first `sep` (an ASCII byte), as `str::split_once` gives them.
pub(crate) fn split_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    debug_assert!(sep.is_ascii());
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `s` without the `"` at either end (as many as there are), as `trim_matches('"')` gives it.
pub(crate) fn trim_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| c != b'"').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b'"').map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or("")
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn the_same_pieces_as_core_str() {
        for s in ["", ",", "a", "a,b", ",a,,b,", "é,ü;ß", "text/plain;q=0.5, */*"] {
            for sep in [b',', b';', b'='] {
                let ours: Vec<&str> = split(s, sep).collect();
                let theirs: Vec<&str> = s.split(char::from(sep)).collect();
                assert_eq!(ours, theirs, "{s:?} at {sep}");
                assert_eq!(split_once(s, sep), s.split_once(char::from(sep)), "{s:?} at {sep}");
            }
        }
        for s in ["", "\"", "\"\"", "\"a\"", "a\"b", "\"\"x\"", "plain"] {
            assert_eq!(trim_quotes(s), s.trim_matches('"'), "{s:?}");
        }
    }
}
