//! The core's error types: small, `Copy`, allocation-free.

use core::fmt;

/// A fixed-capacity table, family or registry is full; nothing was inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapacityError {
    /// The capacity that was exhausted.
    pub capacity: usize,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fixed capacity of {} entries exhausted", self.capacity)
    }
}

impl core::error::Error for CapacityError {}

/// Why a component name was refused by [`StateTable`](crate::StateTable).
///
/// Accepted names are 1 to `NAME` bytes (the table's name capacity) of UTF-8 without control
/// characters: anything else, `/`, space, quotes and non-ASCII such as `é` included, is kept
/// exactly as given. A name is never truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than the table stores.
    TooLong {
        /// Length of the name, in bytes.
        len: usize,
        /// Most bytes a name may have in this table.
        capacity: usize,
    },
    /// The name contains a control character: U+0000–U+001F or U+007F–U+009F (Unicode's
    /// `Cc` category, [`char::is_control`]), such as a newline or a tab.
    ControlCharacter {
        /// Byte offset of the character in the name.
        at: usize,
        /// The character.
        character: char,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("component name is empty"),
            Self::TooLong { len, capacity } => {
                write!(f, "component name is {len} bytes long, more than the {capacity} bytes allowed")
            }
            Self::ControlCharacter { at, character } => write!(
                f,
                "component name contains the control character U+{:04X} at byte {at} (control characters are not allowed)",
                u32::from(*character)
            ),
        }
    }
}

impl core::error::Error for NameError {}

/// Why a component could not be registered (by `expect`, or by the first heartbeat of a
/// component not yet known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ComponentError {
    /// The table is full.
    Full(CapacityError),
    /// The name is refused; see [`NameError`].
    InvalidName(NameError),
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(e) => write!(f, "state table full: {e}"),
            Self::InvalidName(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for ComponentError {}

impl From<CapacityError> for ComponentError {
    fn from(e: CapacityError) -> Self {
        Self::Full(e)
    }
}

impl From<NameError> for ComponentError {
    fn from(e: NameError) -> Self {
        Self::InvalidName(e)
    }
}

/// Why a [`Family`](crate::Family) could not give a series for a label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeriesError {
    /// The label set is new and the family holds its capacity of series already (only when the
    /// family was built with [`Overflow::Error`](crate::Overflow::Error); otherwise the update
    /// goes to the overflow series).
    Full(CapacityError),
    /// The label text (`name="value",…`, escaped) is longer than the family's text capacity
    /// `B`; values are never truncated.
    TooLong {
        /// The family's label text capacity in bytes.
        capacity: usize,
    },
    /// Every index position within the probe bound of this label set's hash is taken, a sign of
    /// label values chosen to collide (the family's hash is seeded; see
    /// [`seed_label_hashes`](crate::seed_label_hashes)).
    Crowded,
}

impl fmt::Display for SeriesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(e) => write!(f, "family full: {e}"),
            Self::TooLong { capacity } => {
                write!(f, "label values too long: the escaped label text exceeds the family's {capacity} bytes")
            }
            Self::Crowded => f.write_str("too many label sets collide in the family's index (probe limit reached)"),
        }
    }
}

impl core::error::Error for SeriesError {}

impl From<CapacityError> for SeriesError {
    fn from(e: CapacityError) -> Self {
        Self::Full(e)
    }
}

/// Why a metric or collector could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// The registry is full.
    Full(CapacityError),
    /// A metric of that name is already registered.
    DuplicateName,
    /// The metric name is empty or holds a control character.
    InvalidName,
    /// A label name is empty, holds a control character, or is reserved (`le`, `__…`).
    InvalidLabelName,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(e) => write!(f, "registry full: {e}"),
            Self::DuplicateName => f.write_str("a metric with this name is already registered"),
            Self::InvalidName => f.write_str("invalid metric name (must be non-empty, without control characters)"),
            Self::InvalidLabelName => f.write_str(
                "invalid or reserved label name (must be non-empty, without control characters, not `le` or `__*`)",
            ),
        }
    }
}

impl core::error::Error for RegisterError {}

impl From<CapacityError> for RegisterError {
    fn from(e: CapacityError) -> Self {
        Self::Full(e)
    }
}

/// Why an encoding did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// One item (a family header, or one series with all its lines) is larger than the whole
    /// buffer it must fit in. Nothing of that item was written.
    BufferTooSmall,
    /// The underlying writer failed.
    Write(embedded_io::ErrorKind),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall => f.write_str("an encoded series is larger than the whole buffer"),
            Self::Write(kind) => write!(f, "writer failed: {kind:?}"),
        }
    }
}

impl core::error::Error for EncodeError {}
