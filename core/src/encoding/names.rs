//! Metric and label names: which are accepted, which are *legacy*, and how Prometheus 3's
//! escaping schemes write the others.
//!
//! A *legacy* name is what every Prometheus parser reads: `[a-zA-Z_:][a-zA-Z0-9_:]*` for
//! metric names, `[a-zA-Z_][a-zA-Z0-9_]*` for label names. Legacy names are written as they
//! are under every scheme (client_golang's `model.EscapeMetricFamily` escapes only names that
//! are not legacy). Any other accepted name is written per the scheme the scrape negotiated
//! (see [`Escaping`]); a scrape that names none gets client_golang's default,
//! [`Escaping::Underscores`].

/// Prometheus 3's `escaping` parameter: how names that are not legacy are written.
///
/// The rules are those of `model.EscapeName` in prometheus/common, applied (as
/// `model.EscapeMetricFamily` applies them) to the names that are not legacy only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Escaping {
    /// `allow-utf-8`: names as they are. The text formats quote them: `{"my.metric",
    /// "my.label"="v"} 1`, `# TYPE "my.metric" counter`; protobuf carries them unchanged.
    AllowUtf8,
    /// `underscores`: every character not allowed in a legacy name becomes `_`
    /// (`http.server.duration` → `http_server_duration`). The default.
    Underscores,
    /// `dots`: `_` becomes `__`, `.` becomes `_dot_`, any other character not allowed becomes
    /// `__` (`my.metric_x` → `my_dot_metric__x`).
    Dots,
    /// `values`: a `U__` prefix, `_` becomes `__`, any other character not allowed becomes
    /// `_<hex code point>_` (`café_total` → `U__caf_e9___total`).
    Values,
}

impl Escaping {
    /// The parameter's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AllowUtf8 => "allow-utf-8",
            Self::Underscores => "underscores",
            Self::Dots => "dots",
            Self::Values => "values",
        }
    }

    /// The scheme named `s` (exact, as client_golang compares it).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::AllowUtf8, Self::Underscores, Self::Dots, Self::Values].into_iter().find(|e| e.as_str() == s)
    }
}

/// `true` if `name` is a legacy metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':'))
}

/// `true` if `name` is a legacy label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_'))
}

/// `true` if `name` may name a metric: any non-empty UTF-8 without control characters.
///
/// Control characters (`char::is_control`: U+0000–U+001F, U+007F–U+009F) are refused: no
/// exporter means them, they would reach terminals and logs raw through the escaping schemes
/// and protobuf, and a line feed in a name is a common sign of a mangled string. Names that are
/// not legacy ([`is_legacy_metric_name`]) are written per the negotiated [`Escaping`].
pub fn is_valid_metric_name(name: &str) -> bool {
    if !cfg!(feature = "utf8-names") {
        return is_legacy_metric_name(name);
    }
    !name.is_empty() && (is_legacy_metric_name(name) || !name.chars().any(char::is_control))
}

/// `true` if `name` is a label name that a user may set: non-empty UTF-8 without control
/// characters (as [`is_valid_metric_name`]), not `le` (the histogram bucket label) and not
/// starting with `__` (reserved for Prometheus' own labels, `__name__` and the like).
pub fn is_valid_label_name(name: &str) -> bool {
    let ok = if is_legacy_label_name(name) {
        true
    } else if !cfg!(feature = "utf8-names") {
        false
    } else {
        !name.is_empty() && !name.chars().any(char::is_control)
    };
    ok && name != "le" && !name.starts_with("__")
}

/// Writes `name` escaped per `scheme` as pieces handed to `put`, exactly as
/// `model.EscapeName` does (`underscores` and `values` leave legacy names alone, `dots` does
/// not; the encoders call this only for names that are not legacy, as
/// `model.EscapeMetricFamily` does).
/// `label`: `:` counts as not allowed (it is not in legacy label names; client_golang keeps it,
/// writing a label name legacy parsers reject). [`Escaping::AllowUtf8`] writes `name` as is.
pub(crate) fn escape<E>(
    name: &str,
    scheme: Escaping,
    label: bool,
    put: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    // Allowed characters are ASCII: one byte, copied from `name`.
    let allowed = |c: char, i: usize| {
        c.is_ascii_alphabetic() || c == '_' || (c == ':' && !label) || (c.is_ascii_digit() && i > 0)
    };
    let legacy = if label { is_legacy_label_name(name) } else { is_legacy_metric_name(name) };
    match scheme {
        _ if name.is_empty() => Ok(()),
        Escaping::AllowUtf8 => put(name.as_bytes()),
        Escaping::Underscores | Escaping::Values if legacy => put(name.as_bytes()),
        Escaping::Underscores => {
            for (i, c) in name.char_indices() {
                put(if allowed(c, i) { core::slice::from_ref(&name.as_bytes()[i]) } else { b"_" })?;
            }
            Ok(())
        }
        Escaping::Dots => {
            for (i, c) in name.char_indices() {
                put(match c {
                    '_' => b"__",
                    '.' => b"_dot_",
                    c if allowed(c, i) => core::slice::from_ref(&name.as_bytes()[i]),
                    _ => b"__",
                })?;
            }
            Ok(())
        }
        Escaping::Values => {
            put(b"U__")?;
            for (i, c) in name.char_indices() {
                if c == '_' {
                    put(b"__")?;
                } else if allowed(c, i) {
                    put(core::slice::from_ref(&name.as_bytes()[i]))?;
                } else {
                    // `_<lowercase hex code point>_`, no leading zeros (Go's FormatInt(r, 16)).
                    let mut hex = [0u8; 8];
                    let mut v = u32::from(c);
                    let mut at = hex.len() - 1;
                    hex[at] = b'_';
                    loop {
                        at -= 1;
                        hex[at] = b"0123456789abcdef"[(v & 15) as usize];
                        v >>= 4;
                        if v == 0 {
                            break;
                        }
                    }
                    at -= 1;
                    hex[at] = b'_';
                    put(&hex[at..])?;
                }
            }
            Ok(())
        }
    }
}

/// The length of `name` escaped per `scheme` (see [`escape`]).
#[cfg(any(feature = "protobuf", all(test, not(loom), feature = "utf8-names")))]
pub(crate) fn escaped_len(name: &str, scheme: Escaping, label: bool) -> usize {
    let mut len = 0;
    let _ = escape::<()>(name, scheme, label, &mut |piece| {
        len += piece.len();
        Ok(())
    });
    len
}

#[cfg(all(test, not(loom), feature = "utf8-names"))]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn escaped(name: &str, scheme: Escaping, label: bool) -> String {
        let mut out = std::vec::Vec::new();
        escape::<()>(name, scheme, label, &mut |p| {
            out.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(out.len(), escaped_len(name, scheme, label));
        String::from_utf8(out).unwrap()
    }

    /// The cases of prometheus/common's `TestEscapeName`, written out by hand.
    #[test]
    fn schemes_escape_as_prometheus_common() {
        use Escaping::*;
        for (name, underscores, dots, values) in [
            ("no:escaping_required", "no:escaping_required", "no:escaping__required", "no:escaping_required"),
            (
                "mysystem.prod.west.cpu.load",
                "mysystem_prod_west_cpu_load",
                "mysystem_dot_prod_dot_west_dot_cpu_dot_load",
                "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load",
            ),
            (
                "mysystem.prod.west.cpu.load_total",
                "mysystem_prod_west_cpu_load_total",
                "mysystem_dot_prod_dot_west_dot_cpu_dot_load__total",
                "U__mysystem_2e_prod_2e_west_2e_cpu_2e_load__total",
            ),
            ("http.status:sum", "http_status:sum", "http_dot_status:sum", "U__http_2e_status:sum"),
            ("label with 😱", "label_with__", "label__with____", "U__label_20_with_20__1f631_"),
            ("café_total", "caf__total", "caf____total", "U__caf_e9___total"),
            ("1abc", "_abc", "__abc", "U___31_abc"),
        ] {
            assert_eq!(escaped(name, AllowUtf8, false), name);
            assert_eq!(escaped(name, Underscores, false), underscores, "{name}");
            assert_eq!(escaped(name, Dots, false), dots, "{name}");
            assert_eq!(escaped(name, Values, false), values, "{name}");
        }
        // Label names: `:` is not legacy.
        assert_eq!(escaped("a:b", Underscores, true), "a_b");
        assert_eq!(escaped("a:b", Values, true), "U__a_3a_b");
    }

    #[test]
    fn accepted_names() {
        for ok in ["a", "http.server.duration", "café_total", "a b", "😱", "0abc", "__x"] {
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "a\nb", "tab\there", "\u{7f}", "\u{85}"] {
            assert!(!is_valid_metric_name(bad), "{bad:?}");
        }
        for ok in ["a", "http.method", "région", "a:b", "_x", "1st"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "le", "__name__", "__x.y", "a\nb", "a\u{0}"] {
            assert!(!is_valid_label_name(bad), "{bad:?}");
        }
        assert!(is_legacy_metric_name("a:b_1") && !is_legacy_metric_name("1a") && !is_legacy_metric_name("a.b"));
        assert!(is_legacy_label_name("a_1") && !is_legacy_label_name("a:b") && !is_legacy_label_name(""));
    }
}

/// Without `utf8-names` (the bare-metal default): legacy names only.
#[cfg(all(test, not(loom), not(feature = "utf8-names")))]
mod legacy_only {
    extern crate std;
    use super::*;

    #[test]
    fn only_legacy_names_are_accepted() {
        assert!(is_valid_metric_name("a:b_1") && is_valid_label_name("a_1"));
        for bad in ["http.server.duration", "café_total", "a b", ""] {
            assert!(!is_valid_metric_name(bad) && !is_valid_label_name(bad), "{bad:?}");
        }
    }
}
