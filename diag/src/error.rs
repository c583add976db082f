//! [`Error`]: the facade's one error type.

use std::fmt;

/// Why setting diagnostics up failed: a bad configuration (the message names the key), a
/// refused component name, a debug socket that cannot be made, an address that cannot be
/// bound, a tracing pipeline that cannot start. `Display` gives the whole chain of causes,
/// outermost first: `components[0].ttl: must be longer than heartbeat_period (5s)`.
pub struct Error(anyhow::Error);

impl Error {
    pub(crate) fn msg(message: impl fmt::Display + fmt::Debug + Send + Sync + 'static) -> Self {
        Self(anyhow::Error::msg(message))
    }

    /// The underlying error, for `anyhow` users.
    pub fn into_anyhow(self) -> anyhow::Error {
        self.0
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Self(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self(e.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Error {}
