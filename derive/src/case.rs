//! `rename_all` cases: how a variant name becomes a label value.

/// A case a variant name (written `UpperCamelCase`) is converted to, as serde converts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// `HttpGet` → `httpget`.
    Lower,
    /// `HttpGet` → `HTTPGET`.
    Upper,
    /// `HttpGet` → `http_get`.
    Snake,
    /// `HttpGet` → `http-get`.
    Kebab,
    /// `HttpGet` → `HTTP_GET`.
    ScreamingSnake,
}

impl Case {
    /// The accepted names, as an error message lists them.
    pub(crate) const NAMES: &'static str =
        "\"lowercase\", \"UPPERCASE\", \"snake_case\", \"kebab-case\", \"SCREAMING_SNAKE_CASE\"";

    /// The case called `name` in `rename_all = "…"`.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "lowercase" => Self::Lower,
            "UPPERCASE" => Self::Upper,
            "snake_case" => Self::Snake,
            "kebab-case" => Self::Kebab,
            "SCREAMING_SNAKE_CASE" => Self::ScreamingSnake,
            _ => return None,
        })
    }

    /// `variant` in this case: words start at upper-case letters.
    pub(crate) fn apply(self, variant: &str) -> String {
        let snake = || {
            let mut out = String::with_capacity(variant.len() + 4);
            for (i, c) in variant.chars().enumerate() {
                if i > 0 && c.is_uppercase() {
                    out.push('_');
                }
                out.extend(c.to_lowercase());
            }
            out
        };
        match self {
            Self::Lower => variant.to_lowercase(),
            Self::Upper => variant.to_uppercase(),
            Self::Snake => snake(),
            Self::Kebab => snake().replace('_', "-"),
            Self::ScreamingSnake => snake().to_uppercase(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Case;

    #[test]
    fn every_case_as_serde_writes_it() {
        let cases = ["lowercase", "UPPERCASE", "snake_case", "kebab-case", "SCREAMING_SNAKE_CASE"];
        let expect = [
            ("HttpGet", ["httpget", "HTTPGET", "http_get", "http-get", "HTTP_GET"]),
            ("Get", ["get", "GET", "get", "get", "GET"]),
            (
                "TooManyRequests",
                ["toomanyrequests", "TOOMANYREQUESTS", "too_many_requests", "too-many-requests", "TOO_MANY_REQUESTS"],
            ),
            ("IPv6", ["ipv6", "IPV6", "i_pv6", "i-pv6", "I_PV6"]),
            ("Café", ["café", "CAFÉ", "café", "café", "CAFÉ"]),
        ];
        for (variant, want) in expect {
            for (name, want) in cases.iter().zip(want) {
                assert_eq!(Case::from_name(name).unwrap().apply(variant), want, "{variant} as {name}");
            }
        }
        for unknown in ["camelCase", "PascalCase", "lower", "Lowercase", ""] {
            assert_eq!(Case::from_name(unknown), None, "{unknown:?}");
        }
    }
}
