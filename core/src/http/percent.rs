//! Percent-decoding of a request path without allocating: [`PercentDecoded`] is a view of the
//! raw path that reads, compares and copies the decoded text, so `/readyz/<component>` can
//! name any component — `a%2Fb`, `my%20db`, `caf%C3%A9` — with no buffer for the name.

use core::fmt;

/// Why a percent-encoded component name in a request path was refused; the request gets a
/// 400 whose body is [`message`](Self::message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PercentError {
    /// A `%` that is not followed by two hexadecimal digits.
    BadEscape {
        /// Byte offset of the `%` in the encoded text.
        at: usize,
    },
    /// The decoded bytes are not UTF-8 (for example `%FF`, or `%C3` alone).
    NotUtf8,
}

impl PercentError {
    /// The body of the 400 response: a fixed text, so it needs no buffer.
    pub const fn message(self) -> &'static str {
        match self {
            Self::BadEscape { .. } => {
                "malformed percent-encoding in the component name: every '%' must be followed by two hex digits"
            }
            Self::NotUtf8 => "the percent-decoded component name is not UTF-8",
        }
    }
}

impl fmt::Display for PercentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        match self {
            Self::BadEscape { at } => write!(f, " (at byte {at})"),
            Self::NotUtf8 => Ok(()),
        }
    }
}

impl core::error::Error for PercentError {}

/// Percent-encoded text from a request path, known to be well formed: every `%` starts a
/// `%XX` escape of two hex digits (either case), and the decoded bytes are UTF-8. Any other
/// byte stands for itself — `+` stays `+` (it means a space only in form bodies), and a plain
/// `/` is a `/` just as `%2F` is.
///
/// Decoding happens on the fly: comparing with `==` against a `&str` decodes while it compares,
/// and [`decode_into`](Self::decode_into) copies into a caller buffer. Equality is by decoded
/// text, so `a%2Fb`, `a%2fb` and `a/b` are equal.
///
/// # Examples
/// ```
/// use diag_core::http::{PercentDecoded, PercentError};
/// let name = PercentDecoded::new("caf%C3%A9%20au%2Flait").unwrap();
/// assert_eq!(name, "café au/lait");
/// let mut buf = [0u8; 32];
/// assert_eq!(name.decode_into(&mut buf), Some("café au/lait"));
/// assert_eq!(PercentDecoded::new("100%"), Err(PercentError::BadEscape { at: 3 }));
/// assert_eq!(PercentDecoded::new("%FF"), Err(PercentError::NotUtf8));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PercentDecoded<'a> {
    encoded: &'a str,
}

impl<'a> PercentDecoded<'a> {
    /// Checks `encoded` and wraps it.
    ///
    /// # Errors
    /// [`PercentError::BadEscape`] for a `%` without two hex digits after it;
    /// [`PercentError::NotUtf8`] when the decoded bytes are not UTF-8.
    pub fn new(encoded: &'a str) -> Result<Self, PercentError> {
        let bytes = encoded.as_bytes();
        for (at, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'%') {
            let digits = bytes.get(at + 1..at + 3).unwrap_or_default();
            if digits.len() != 2 || !digits.iter().all(u8::is_ascii_hexdigit) {
                return Err(PercentError::BadEscape { at });
            }
        }
        let decoded = Self { encoded };
        if is_utf8(decoded.bytes()) { Ok(decoded) } else { Err(PercentError::NotUtf8) }
    }

    /// The text as it came, still encoded.
    pub fn as_encoded(&self) -> &'a str {
        self.encoded
    }

    /// The decoded text when it is the encoded text itself (no `%` in it).
    pub fn as_plain(&self) -> Option<&'a str> {
        (!self.encoded.contains('%')).then_some(self.encoded)
    }

    /// The decoded bytes (UTF-8).
    pub fn bytes(&self) -> DecodedBytes<'a> {
        DecodedBytes { rest: self.encoded.as_bytes() }
    }

    /// Copies the decoded text into `buf` and returns it, or `None` (writing nothing useful)
    /// when it does not fit.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Option<&'b str> {
        let mut len = 0;
        for b in self.bytes() {
            *buf.get_mut(len)? = b;
            len += 1;
        }
        core::str::from_utf8(&buf[..len]).ok()
    }
}

impl PartialEq<str> for PercentDecoded<'_> {
    fn eq(&self, other: &str) -> bool {
        self.bytes().eq(other.bytes())
    }
}

impl PartialEq<&str> for PercentDecoded<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq for PercentDecoded<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes().eq(other.bytes())
    }
}

impl Eq for PercentDecoded<'_> {}

/// The decoded bytes of a [`PercentDecoded`], one at a time.
#[derive(Debug, Clone)]
pub struct DecodedBytes<'a> {
    rest: &'a [u8],
}

impl Iterator for DecodedBytes<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        if first == b'%' {
            if let [high, low, after @ ..] = rest {
                if let (Some(high), Some(low)) = (hex(*high), hex(*low)) {
                    self.rest = after;
                    return Some(high << 4 | low);
                }
            }
        }
        // Not an escape (never the case once `new` has checked the text): the byte itself.
        self.rest = rest;
        Some(first)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.rest.len().div_ceil(3), Some(self.rest.len()))
    }
}

const fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether `bytes` are UTF-8 (RFC 3629: shortest form, no surrogates, at most U+10FFFF),
/// checked one character at a time as they are decoded. Written out rather than through
/// `core::str::from_utf8`, which would need a buffer and costs a microcontroller 0.6 KiB of
/// flash.
fn is_utf8(mut bytes: impl Iterator<Item = u8>) -> bool {
    while let Some(lead) = bytes.next() {
        // Continuation bytes, the payload bits of the lead byte, the smallest code point of
        // this length (anything lower is an overlong form).
        let (continuations, mut code, min) = match lead {
            0x00..=0x7f => continue,
            0xc0..=0xdf => (1, u32::from(lead & 0x1f), 0x80),
            0xe0..=0xef => (2, u32::from(lead & 0x0f), 0x800),
            0xf0..=0xf7 => (3, u32::from(lead & 0x07), 0x1_0000),
            _ => return false,
        };
        for _ in 0..continuations {
            match bytes.next() {
                Some(next @ 0x80..=0xbf) => code = code << 6 | u32::from(next & 0x3f),
                _ => return false,
            }
        }
        // `char::from_u32` refuses surrogates and code points above U+10FFFF.
        if code < min || char::from_u32(code).is_none() {
            return false;
        }
    }
    true
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn decoded(encoded: &str) -> Result<String, PercentError> {
        PercentDecoded::new(encoded).map(|d| String::from_utf8(d.bytes().collect()).unwrap())
    }

    #[test]
    fn decodes_escapes_of_either_case() {
        for (encoded, want) in [
            ("plain", "plain"),
            ("a%2Fb", "a/b"),
            ("a%2fb", "a/b"),
            ("a/b", "a/b"),
            ("my%20db", "my db"),
            ("caf%C3%A9", "café"),
            ("caf%c3%a9", "café"),
            ("café", "café"),
            ("a+b", "a+b"),
            ("%25", "%"),
            ("%2525", "%25"),
            ("%F0%9F%A6%80", "🦀"),
            ("%0A", "\n"),
            ("", ""),
        ] {
            assert_eq!(decoded(encoded).as_deref(), Ok(want), "{encoded}");
            let d = PercentDecoded::new(encoded).unwrap();
            assert_eq!(d, want);
            assert_eq!(d.as_encoded(), encoded);
            assert_eq!(d.as_plain().is_some(), !encoded.contains('%'));
        }
    }

    #[test]
    fn malformed_escapes_are_refused_with_their_offset() {
        for (encoded, at) in [("%", 0), ("a%", 1), ("a%2", 1), ("%2G", 0), ("%G2", 0), ("ok%20then%zz", 9), ("%%41", 0)]
        {
            assert_eq!(PercentDecoded::new(encoded), Err(PercentError::BadEscape { at }), "{encoded}");
        }
    }

    #[test]
    fn decoded_bytes_must_be_utf8() {
        for encoded in ["%FF", "%C3", "caf%C3", "%C3%28", "%ED%A0%80", "%C0%AF", "%F4%90%80%80"] {
            assert_eq!(PercentDecoded::new(encoded), Err(PercentError::NotUtf8), "{encoded}");
        }
    }

    /// The UTF-8 check agrees with `core::str::from_utf8` on every sequence of one and two
    /// bytes, on every three-byte sequence with a three-byte lead, and on four-byte sequences
    /// around each boundary (overlong, U+10000, U+10FFFF, beyond).
    #[test]
    #[cfg_attr(miri, ignore = "a million cases: run natively")]
    fn utf8_check_agrees_with_core() {
        let agree = |bytes: &[u8]| {
            assert_eq!(is_utf8(bytes.iter().copied()), core::str::from_utf8(bytes).is_ok(), "{bytes:02X?}");
        };
        for a in 0..=255u8 {
            agree(&[a]);
            for b in 0..=255u8 {
                agree(&[a, b]);
                if (0xe0..=0xef).contains(&a) {
                    for c in 0..=255u8 {
                        agree(&[a, b, c]);
                    }
                }
            }
        }
        for a in 0xf0..=0xf8u8 {
            for b in [0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0] {
                for c in [0x7f, 0x80, 0xbf, 0xc0] {
                    for d in [0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xff] {
                        agree(&[a, b, c, d]);
                        agree(&[a, b, c]);
                    }
                }
            }
        }
    }

    #[test]
    fn utf8_check_on_sample_text() {
        for ch in ["é", "€", "🦀", "\u{10ffff}", "\u{ffff}", "\u{7ff}"] {
            let text: String = std::format!("x{ch}y");
            let encoded: String = text.bytes().map(|b| std::format!("%{b:02X}")).collect();
            assert_eq!(decoded(&encoded).as_deref(), Ok(text.as_str()), "{ch}");
            // The same character cut short is refused.
            let cut: String = encoded[..encoded.len() - 6].into();
            assert_eq!(PercentDecoded::new(&cut), Err(PercentError::NotUtf8), "{ch} cut");
        }
    }

    #[test]
    fn equality_is_by_decoded_text() {
        let a = PercentDecoded::new("a%2Fb").unwrap();
        assert_eq!(a, PercentDecoded::new("a/b").unwrap());
        assert_eq!(a, "a/b");
        assert_ne!(a, "a%2Fb");
        assert_ne!(a, "a/");
        assert_ne!(a, "a/bc");
    }

    #[test]
    fn decode_into_needs_room_for_the_decoded_text() {
        let d = PercentDecoded::new("caf%C3%A9").unwrap();
        let mut exact = [0u8; 5];
        assert_eq!(d.decode_into(&mut exact), Some("café"));
        let mut short = [0u8; 4];
        assert_eq!(d.decode_into(&mut short), None);
    }

    #[test]
    fn messages_are_clear() {
        let e = PercentError::BadEscape { at: 3 };
        assert_eq!(
            std::format!("{e}"),
            "malformed percent-encoding in the component name: every '%' must be followed by two hex digits (at byte 3)"
        );
        assert_eq!(PercentError::NotUtf8.message(), "the percent-decoded component name is not UTF-8");
    }
}
