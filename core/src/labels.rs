//! Label sets and label values: what a [`Family`](crate::Family) is keyed by.
//!
//! A family copies the label values of a new series into its own storage as *label text*,
//! `name="value",…` with every value escaped, once, when the series is created; a scrape copies
//! that text. So values may be borrowed for any lifetime (a `&str` cut from a request, a
//! `String` about to be dropped), and may be typed: integers, `bool`, `char`, enums that name
//! themselves (`#[derive(LabelValue)]`), and with the `http` feature `http::Method` and
//! `http::StatusCode`.
//!
//! A label *set* is a tuple or array of values, whose names the family is given when built
//! (the positional form), or a struct with named fields and `#[derive(LabelSet)]`, whose field
//! names are the label names: two labels cannot be swapped by mistake, it does not compile.

use core::fmt;

use crate::atomic::{Ordering, StaticAtomicUsize};
use crate::decimal;
use crate::error::SeriesError;

/// The seed new families take for hashing label text, 0 until set or first drawn.
static SEED: StaticAtomicUsize = StaticAtomicUsize::new(0);

/// Sets the seed that families not yet used take for hashing their label text.
///
/// Label values often come from outside (a user name in a URL); with a hash seed an attacker
/// cannot guess, they cannot choose values that collide and slow a family down (and the probe
/// bound turns any collisions left into [`SeriesError::Crowded`], never into a slow walk). With
/// the `std` feature a random seed is drawn from the standard library at first use and this
/// call is optional; on bare metal, call it at boot with a value from a hardware random number
/// generator, before the first series is created (a family keeps the seed it started with).
pub fn seed_label_hashes(seed: u64) {
    // Relaxed: families read it once, at their first series; any value they see is valid.
    SEED.store((seed as usize) | 1, Ordering::Relaxed);
}

/// The seed for a family's first series: the one set, else one drawn (with `std`) or fixed.
pub(crate) fn global_seed() -> usize {
    // Relaxed: as in `seed_label_hashes`.
    let seed = SEED.load(Ordering::Relaxed);
    if seed != 0 {
        return seed;
    }
    #[cfg(feature = "std")]
    let drawn = {
        use core::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x6469_6167u32) as usize
    };
    #[cfg(not(feature = "std"))]
    let drawn = 0x9e37_79b9_7f4a_7c15_u64 as usize;
    // The first drawn value wins, so every family of the process shares it.
    match SEED.compare_exchange(0, drawn | 1, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => drawn | 1,
        Err(seed) => seed,
    }
}

/// A value that can be a label value: it writes its text through a [`ValueWriter`].
///
/// # Examples
/// A type of your own (or use `#[derive(LabelValue)]` for a fieldless enum):
/// ```
/// use diag_core::labels::{LabelValue, ValueWriter};
/// use diag_core::SeriesError;
///
/// #[derive(Clone, Copy)]
/// struct Shard(u8);
///
/// impl LabelValue for Shard {
///     type Ref<'a> = Shard;
///     fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
///         w.push_str("shard-")?;
///         w.push_u64(u64::from(self.0))
///     }
/// }
/// ```
pub trait LabelValue {
    /// The same type borrowed for `'a`: what a family keyed by this type takes in lookups
    /// (`&'static str` → `&'a str`; `Self` for a type without lifetimes).
    type Ref<'a>: LabelValue;

    /// Writes the value's text (escaping is the writer's job). The same value must always
    /// write the same pieces.
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] from the writer when the family's label text is full; return
    /// it unchanged.
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError>;
}

/// A set of label values that keys one series of a family.
///
/// Implemented for tuples of up to 8 [`LabelValue`]s, arrays of them, `()` (no labels),
/// references to label sets, and structs with `#[derive(LabelSet)]` (feature `derive`).
pub trait LabelSet {
    /// The same set borrowed for `'a`: what a family keyed by this type takes in lookups, so
    /// the values may be borrowed for any lifetime (`(&'static str, u16)` → `(&'a str, u16)`).
    type Ref<'a>: LabelSet<Names = Self::Names>;

    /// Where the label names come from: `[&'static str; L]` given to
    /// [`Family::new`](crate::Family::new) for tuples and arrays; `()` for derived structs,
    /// whose field names are the label names.
    type Names: Copy + 'static;

    /// The label names, in the order [`write_labels`](Self::write_labels) writes values.
    fn names(names: &Self::Names) -> &[&'static str];

    /// Writes every value, in order, with [`LabelWriter::label`]: exactly one per name.
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] when the family's label text is full; return it unchanged.
    fn write_labels<W: LabelWriter>(&self, w: &mut W) -> Result<(), SeriesError>;
}

mod sealed {
    pub trait Sealed {}
}

/// Takes a label set's values one label at a time; see [`LabelSet::write_labels`].
///
/// A family runs a label set through three writers, each its own type so that each pass
/// compiles to straight code: *hashing* the values (only the values, from the caller's bytes:
/// the names are the same in every series of a family), *comparing* them with a series' stored
/// text in place (so finding an existing series copies nothing), and *rendering* the text of a
/// new series, `name="value",…`, escaped. Sealed: only diag implements it.
pub trait LabelWriter: ValueWriter {
    /// Takes the next label's value.
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] when the family's label text is full.
    fn label<T: LabelValue + ?Sized>(&mut self, value: &T) -> Result<(), SeriesError>;
}

/// Takes one label value's text, piece by piece; see [`LabelValue::write_value`]. Sealed.
pub trait ValueWriter: sealed::Sealed {
    /// Appends `s` (escaped when rendered).
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] when the family's label text is full.
    fn push_str(&mut self, s: &str) -> Result<(), SeriesError>;

    /// Appends `v` in decimal.
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] when the family's label text is full.
    fn push_u64(&mut self, v: u64) -> Result<(), SeriesError>;

    /// Appends `v` in decimal.
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] when the family's label text is full.
    fn push_i64(&mut self, v: i64) -> Result<(), SeriesError> {
        if v < 0 {
            self.push_str("-")?;
        }
        self.push_u64(v.unsigned_abs())
    }

    /// Appends `v`'s `Display` text.
    ///
    /// # Errors
    /// [`SeriesError::TooLong`] when the family's label text is full.
    fn push_display(&mut self, v: &dyn fmt::Display) -> Result<(), SeriesError>
    where
        Self: Sized,
    {
        let mut failed = None;
        let _ = fmt::write(&mut DisplaySink { w: self, failed: &mut failed }, format_args!("{v}"));
        failed.map_or(Ok(()), Err)
    }
}

/// Passes `Display` output to a [`ValueWriter`], keeping the first error.
struct DisplaySink<'s, W> {
    w: &'s mut W,
    failed: &'s mut Option<SeriesError>,
}

impl<W: ValueWriter> fmt::Write for DisplaySink<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.w.push_str(s).map_err(|e| {
            self.failed.get_or_insert(e);
            fmt::Error
        })
    }
}

/// Renders label text into a fixed buffer.
pub(crate) struct Render<'w> {
    buf: &'w mut [u8],
    len: usize,
    names: &'w [&'w str],
    next: usize,
}

impl<'w> Render<'w> {
    pub(crate) fn new(buf: &'w mut [u8], names: &'w [&'w str]) -> Self {
        Self { buf, len: 0, names, next: 0 }
    }

    /// The text rendered.
    pub(crate) fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn too_long(&self) -> SeriesError {
        SeriesError::TooLong { capacity: self.buf.len() }
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put(&mut self, bytes: &[u8]) -> Result<(), SeriesError> {
        let end = self.len + bytes.len();
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            return Err(self.too_long());
        };
        crate::encoding::copy_short(dst, bytes);
        self.len = end;
        Ok(())
    }

    #[cold]
    fn put_escaping(&mut self, bytes: &[u8]) -> Result<(), SeriesError> {
        escaped_pieces(bytes, |piece| self.put(piece))
    }
}

/// Feeds `bytes` escaped (`\\`, `\"`, `\n`) to `f`, piece by piece.
fn escaped_pieces(bytes: &[u8], mut f: impl FnMut(&[u8]) -> Result<(), SeriesError>) -> Result<(), SeriesError> {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' => b"\\\"",
            _ => continue,
        };
        f(&bytes[start..i])?;
        f(esc)?;
        start = i + 1;
    }
    f(&bytes[start..])
}

impl sealed::Sealed for Render<'_> {}

impl ValueWriter for Render<'_> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn push_str(&mut self, s: &str) -> Result<(), SeriesError> {
        let bytes = s.as_bytes();
        if crate::encoding::needs_escape(bytes, true) {
            return self.put_escaping(bytes);
        }
        self.put(bytes)
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn push_u64(&mut self, v: u64) -> Result<(), SeriesError> {
        let end = self.len + decimal::len(v);
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            return Err(self.too_long());
        };
        decimal::write(dst, v);
        self.len = end;
        Ok(())
    }
}

impl LabelWriter for Render<'_> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn label<T: LabelValue + ?Sized>(&mut self, value: &T) -> Result<(), SeriesError> {
        // A label beyond the names: a hand-written set out of step with them.
        let Some(name) = self.names.get(self.next) else { return Err(self.too_long()) };
        if self.next > 0 {
            self.put(b",")?;
        }
        self.next += 1;
        self.put(name.as_bytes())?;
        self.put(b"=\"")?;
        value.write_value(self)?;
        self.put(b"\"")
    }
}

/// Hashes label values, from the caller's bytes (reading back bytes just copied, with other
/// widths than they were written, would stall on store forwarding). Each piece is its own
/// write: `("ab", "c")` and `("a", "bc")` may hash alike, and the text compare tells them apart.
///
/// Written here rather than taken from a crate because it must inline into the lookup: label
/// values are a few bytes, and foldhash's `Hasher::write` (the design this follows: a
/// folded 64×64→128-bit multiply of the seeded input words) is an out-of-line call from another
/// crate, 2 of the 25 ns a lookup took. On bare-metal targets a 32-bit multiply-rotate instead
/// (no 128-bit products: smaller and faster on a Cortex-M). The seed is what keeps collisions
/// from being chosen; the probe bound keeps lookups short whatever happens.
pub(crate) struct Hash {
    acc: u64,
    seed: u64,
}

/// Odd constants from the fractional digits of pi, as foldhash uses.
const K: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

/// The high and low halves of the 128-bit product, xored: every input bit reaches every output
/// bit.
#[cfg_attr(not(target_os = "none"), inline(always))]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg_attr(not(target_os = "none"), inline(always))]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

#[cfg_attr(not(target_os = "none"), inline(always))]
fn half(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

impl Hash {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn new(seed: usize) -> Self {
        let seed = seed as u64;
        Self { acc: seed ^ K[0], seed }
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn finish(&self) -> u64 {
        if cfg!(target_os = "none") {
            // Spread the 32 bits over the 64 the index takes (home from the high half, tag
            // from the low).
            let h = self.acc as u32;
            return u64::from(h.wrapping_mul(0x9e37_79b9)) << 32
                | u64::from(h.rotate_left(15).wrapping_mul(0x85eb_ca6b));
        }
        // One more folded multiply. Each write already ends in one, but its operands are the
        // input xored with the seed, and for some seeds one of them keeps only a few varying
        // bits over similar values (`/path/1`, `/path/2`, ...): the high half that picks the
        // index position then clusters, and a family of 1,024 numbered values at a quarter
        // load saw probe runs of 126 (see `similar_values_spread_over_the_index_for_every_seed`).
        fold(self.acc, K[0])
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        if cfg!(target_os = "none") {
            let mut h = (self.acc as u32) ^ bytes.len() as u32;
            for &b in bytes {
                h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193).rotate_left(5);
            }
            self.acc = u64::from(h);
            return;
        }
        let n = bytes.len();
        let (mut a, mut b) = if n >= 8 {
            (word(bytes, 0), word(bytes, n - 8))
        } else if n >= 4 {
            (half(bytes, 0), half(bytes, n - 4))
        } else if n > 0 {
            (u64::from(bytes[0]) << 16 | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]), 0)
        } else {
            (0, 0)
        };
        if n > 16 {
            // Longer values: every 16 bytes folded in, then the last 16 (overlapping).
            let mut at = 0;
            while at + 16 < n {
                self.acc = fold(word(bytes, at) ^ self.acc, word(bytes, at + 8) ^ self.seed);
                at += 16;
            }
            a = word(bytes, n - 16);
            b = word(bytes, n - 8);
        }
        self.acc = fold(a ^ self.acc ^ n as u64, b ^ self.seed ^ K[1]);
    }
}

impl sealed::Sealed for Hash {}

impl ValueWriter for Hash {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn push_str(&mut self, s: &str) -> Result<(), SeriesError> {
        self.write(s.as_bytes());
        Ok(())
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn push_u64(&mut self, v: u64) -> Result<(), SeriesError> {
        self.write(&v.to_ne_bytes());
        Ok(())
    }
}

impl LabelWriter for Hash {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn label<T: LabelValue + ?Sized>(&mut self, value: &T) -> Result<(), SeriesError> {
        value.write_value(self)
    }
}

/// Compares label values with a series' stored text, in place; a difference is an error
/// (which the family reads as "not this series").
pub(crate) struct Compare<'w> {
    text: &'w [u8],
    pos: usize,
    names: &'w [&'w str],
    next: usize,
    /// Whether the stored text holds a backslash. If not, every value in it was stored as
    /// given, and a value's raw bytes equal its stored bytes exactly when the values are equal
    /// (a raw `"`, `\` or newline can never match there), so no escape scan is needed.
    escaped: bool,
}

/// What a [`Compare`] returns at the first difference; never seen by users.
const DIFFERS: SeriesError = SeriesError::Crowded;

impl<'w> Compare<'w> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn new(text: &'w [u8], names: &'w [&'w str], escaped: bool) -> Self {
        Self { text, pos: 0, names, next: 0, escaped }
    }

    /// Whether the whole stored text was met.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn put(&mut self, bytes: &[u8]) -> Result<(), SeriesError> {
        self.pos = matched_at(self.text, self.pos, bytes).ok_or(DIFFERS)?;
        Ok(())
    }
}

/// Where `bytes` end in `text` if they are there from `pos`; `None` at a difference.
#[cfg_attr(not(target_os = "none"), inline(always))]
fn matched_at(text: &[u8], pos: usize, bytes: &[u8]) -> Option<usize> {
    let end = pos + bytes.len();
    text.get(pos..end).filter(|stored| eq_short(stored, bytes)).map(|_| end)
}

impl sealed::Sealed for Compare<'_> {}

impl ValueWriter for Compare<'_> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn push_str(&mut self, s: &str) -> Result<(), SeriesError> {
        let bytes = s.as_bytes();
        if self.escaped && crate::encoding::needs_escape(bytes, true) {
            // By value in, by value out: the writer's fields stay in registers on the common
            // path (a `&mut self` handed to the call spilled them on every lookup).
            self.pos = compare_escaped(self.text, self.pos, bytes).ok_or(DIFFERS)?;
            return Ok(());
        }
        self.put(bytes)
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn push_u64(&mut self, v: u64) -> Result<(), SeriesError> {
        self.put(decimal::Digits::new(v).as_bytes())
    }
}

/// Where `value`, escaped, ends in `text` if it is there from `pos`; `None` at a difference.
#[cold]
#[inline(never)]
fn compare_escaped(text: &[u8], pos: usize, value: &[u8]) -> Option<usize> {
    let mut pos = pos;
    escaped_pieces(value, |piece| {
        pos = matched_at(text, pos, piece).ok_or(DIFFERS)?;
        Ok(())
    })
    .ok()?;
    Some(pos)
}

impl LabelWriter for Compare<'_> {
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn label<T: LabelValue + ?Sized>(&mut self, value: &T) -> Result<(), SeriesError> {
        let Some(name) = self.names.get(self.next) else { return Err(DIFFERS) };
        // Every series of the family has the same names: skip `,name="`.
        self.pos += usize::from(self.next > 0) + name.len() + 2;
        self.next += 1;
        value.write_value(self)?;
        self.put(b"\"")
    }
}

/// `a == b`, word by word for the short texts labels are (no call to `memcmp`).
#[cfg_attr(not(target_os = "none"), inline(always))]
pub(crate) fn eq_short(a: &[u8], b: &[u8]) -> bool {
    if cfg!(target_os = "none") {
        return a == b; // smaller code on bare metal
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        if n >= 4 {
            let half = |s: &[u8], at: usize| {
                let mut w = [0u8; 4];
                w.copy_from_slice(&s[at..at + 4]);
                u32::from_ne_bytes(w)
            };
            return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
        }
        return (0..n).all(|i| a[i] == b[i]);
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

impl LabelValue for str {
    type Ref<'a> = &'a str;
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        w.push_str(self)
    }
}

impl<T: LabelValue + ?Sized> LabelValue for &T {
    type Ref<'a> = T::Ref<'a>;
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        (**self).write_value(w)
    }
}

impl<const N: usize> LabelValue for heapless::String<N> {
    type Ref<'a> = &'a str;
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        w.push_str(self)
    }
}

#[cfg(feature = "std")]
impl LabelValue for std::string::String {
    type Ref<'a> = &'a str;
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        w.push_str(self)
    }
}

impl LabelValue for bool {
    type Ref<'a> = bool;
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        w.push_str(if *self { "true" } else { "false" })
    }
}

impl LabelValue for char {
    type Ref<'a> = char;
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        w.push_str(self.encode_utf8(&mut [0; 4]))
    }
}

macro_rules! unsigned_values {
    ($($t:ty),*) => {$(
        impl LabelValue for $t {
            type Ref<'a> = $t;
            #[inline]
            fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
                w.push_u64(*self as u64)
            }
        }
    )*};
}
unsigned_values!(u8, u16, u32, u64, usize);

macro_rules! signed_values {
    ($($t:ty),*) => {$(
        impl LabelValue for $t {
            type Ref<'a> = $t;
            #[inline]
            fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
                w.push_i64(*self as i64)
            }
        }
    )*};
}
signed_values!(i8, i16, i32, i64, isize);

#[cfg(feature = "http")]
impl LabelValue for http::Method {
    type Ref<'a> = http::Method;
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        w.push_str(self.as_str())
    }
}

#[cfg(feature = "http")]
impl LabelValue for http::StatusCode {
    type Ref<'a> = http::StatusCode;
    fn write_value<W: ValueWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        w.push_u64(u64::from(self.as_u16()))
    }
}

impl LabelSet for () {
    type Ref<'a> = ();
    type Names = [&'static str; 0];
    fn names(names: &Self::Names) -> &[&'static str] {
        names
    }
    fn write_labels<W: LabelWriter>(&self, _: &mut W) -> Result<(), SeriesError> {
        Ok(())
    }
}

impl<T: LabelSet + ?Sized> LabelSet for &T {
    type Ref<'a> = T::Ref<'a>;
    type Names = T::Names;
    fn names(names: &Self::Names) -> &[&'static str] {
        T::names(names)
    }
    #[inline]
    fn write_labels<W: LabelWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        (**self).write_labels(w)
    }
}

impl<T: LabelValue, const L: usize> LabelSet for [T; L] {
    type Ref<'a> = [T::Ref<'a>; L];
    type Names = [&'static str; L];
    fn names(names: &Self::Names) -> &[&'static str] {
        names
    }
    #[inline]
    fn write_labels<W: LabelWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
        self.iter().try_for_each(|v| w.label(v))
    }
}

macro_rules! tuple_sets {
    ($(($len:literal: $($t:ident $i:tt),+))*) => {$(
        impl<$($t: LabelValue),+> LabelSet for ($($t,)+) {
            type Ref<'a> = ($($t::Ref<'a>,)+);
            type Names = [&'static str; $len];
            fn names(names: &Self::Names) -> &[&'static str] {
                names
            }
            #[cfg_attr(not(target_os = "none"), inline(always))]
            fn write_labels<W: LabelWriter>(&self, w: &mut W) -> Result<(), SeriesError> {
                $(w.label(&self.$i)?;)+
                Ok(())
            }
        }
    )*};
}
tuple_sets! {
    (1: A 0)
    (2: A 0, B 1)
    (3: A 0, B 1, C 2)
    (4: A 0, B 1, C 2, D 3)
    (5: A 0, B 1, C 2, D 3, E 4)
    (6: A 0, B 1, C 2, D 3, E 4, F 5)
    (7: A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (8: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn text<S: LabelSet>(set: S, names: &S::Names, cap: usize) -> Result<heapless::String<128>, SeriesError> {
        let mut buf = [0u8; 128];
        let mut w = Render::new(&mut buf[..cap], S::names(names));
        set.write_labels(&mut w)?;
        Ok(heapless::String::try_from(core::str::from_utf8(w.text()).unwrap()).unwrap())
    }

    #[test]
    fn typed_values_render_escaped() {
        let t = text(("GE\"T", 200u16, -3i8, true, 'é'), &["m", "code", "d", "ok", "c"], 128).unwrap();
        assert_eq!(t.as_str(), r#"m="GE\"T",code="200",d="-3",ok="true",c="é""#);
        let t = text(["a\\b", "line\nbreak"], &["x", "y"], 128).unwrap();
        assert_eq!(t.as_str(), r#"x="a\\b",y="line\nbreak""#);
        assert_eq!(text((), &[], 0).unwrap().as_str(), "");
    }

    #[test]
    fn too_long_is_an_error_never_a_truncation() {
        assert_eq!(text(("abcdef",), &["k"], 9), Err(SeriesError::TooLong { capacity: 9 }));
        assert_eq!(text(("abcdef",), &["k"], 10).unwrap().as_str(), r#"k="abcdef""#);
        assert_eq!(text((u64::MAX,), &["k"], 10), Err(SeriesError::TooLong { capacity: 10 }));
    }
}
