//! The process-state machine: per-component states driven by heartbeats, aggregated into the
//! state `/readyz` and `process_state` report.

use core::fmt;

use crate::atomic::{AtomicBool, AtomicU64, Ordering, loom_const_fn};
use crate::error::{CapacityError, ComponentError, NameError};
use crate::slots::Slots;

/// Default recovery window: a degraded component must keep succeeding for longer than this.
pub const DEFAULT_RECOVERY_WINDOW_MS: u64 = 10_000;

/// Default name capacity of a [`StateTable`]: the most bytes of UTF-8 a component name may
/// have. 32 bytes holds names such as `upstream-db` or `auth/primary` many times over and costs
/// 32 bytes of RAM per component slot; pick another with the table's second parameter.
pub const DEFAULT_NAME_CAPACITY: usize = 32;

/// The state of a component, or of the whole process; the discriminant is the value of the
/// `process_state` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    /// All heartbeats succeed.
    Ok = 0,
    /// A degraded component has succeeded again, but not yet for a whole recovery window.
    Recovering = 1,
    /// The last heartbeat failed.
    Degraded = 2,
    /// Registered but not yet heartbeating (or no components at all).
    Starting = 3,
}

impl State {
    /// The lower-case name used in verbose readiness output: `ok`, `recovering`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Recovering => "recovering",
            Self::Degraded => "degraded",
            Self::Starting => "starting",
        }
    }

    /// The `process_state` gauge value: ok=0, recovering=1, degraded=2, starting=3.
    pub const fn gauge(self) -> i64 {
        self as i64
    }

    const fn from_bits(bits: u64) -> Self {
        match bits & 0b11 {
            0 => Self::Ok,
            1 => Self::Recovering,
            2 => Self::Degraded,
            _ => Self::Starting,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A heartbeat event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The component's heartbeat succeeded.
    Ok,
    /// The component's heartbeat failed.
    Failed,
}

/// The pure transition rule of docs/states.md#transitions, on `(state, recovery_start_ms)`.
///
/// `recovery_start_ms` is only meaningful in [`State::Recovering`]. Exposed so that tests and
/// fuzzers can compare the lock-free table against a plain model.
///
/// # Examples
/// ```
/// use diag_core::state::{transition, Event, State};
/// assert_eq!(transition(State::Degraded, 0, Event::Ok, 500, 10_000), (State::Recovering, 500));
/// assert_eq!(transition(State::Recovering, 500, Event::Ok, 10_500, 10_000).0, State::Recovering);
/// assert_eq!(transition(State::Recovering, 500, Event::Ok, 10_501, 10_000).0, State::Ok);
/// ```
pub const fn transition(state: State, since_ms: u64, event: Event, now_ms: u64, window_ms: u64) -> (State, u64) {
    match (event, state) {
        (Event::Failed, _) => (State::Degraded, 0),
        (Event::Ok, State::Starting | State::Ok) => (State::Ok, 0),
        (Event::Ok, State::Degraded) => (State::Recovering, now_ms),
        (Event::Ok, State::Recovering) => {
            if now_ms.saturating_sub(since_ms) > window_ms {
                (State::Ok, 0)
            } else {
                (State::Recovering, since_ms)
            }
        }
    }
}

/// Largest timestamp the packed word can hold (62 bits of milliseconds: 146 million years).
const MAX_MS: u64 = u64::MAX >> 2;

const fn pack(state: State, since_ms: u64) -> u64 {
    (if since_ms > MAX_MS { MAX_MS } else { since_ms }) << 2 | state as u64
}

struct Component<const NAME: usize> {
    /// A copy of the name, written before the slot is published and never changed after.
    name: heapless::String<NAME>,
    window_ms: u64,
    /// Time to live: longest silence before [`StateTable::expire`] degrades it; 0 for none.
    ttl_ms: u64,
    /// `time << 2 | state`, so that one compare-and-swap moves both. The time is the recovery
    /// start in `Recovering` and the last report in `Ok` (so that every report of an `Ok`
    /// component changes the word, and an expiry racing with it fails its compare-and-swap).
    word: AtomicU64,
    /// The latest report time of any kind (for the TTL of a `Recovering` component).
    last_ms: AtomicU64,
}

impl<const NAME: usize> Component<NAME> {
    fn state(&self) -> State {
        // Relaxed: the word is self-contained; no other memory is published through it.
        State::from_bits(self.word.load(Ordering::Relaxed))
    }
}

/// Per-component states in a fixed-capacity, lock-free table of at most `N` components whose
/// names have at most `NAME` bytes (default [`DEFAULT_NAME_CAPACITY`], 32).
///
/// Heartbeat writers and readers never take a lock and never wait for each other; the only
/// wait is between two writers registering components at the same instant. The caller
/// supplies a monotonic time in milliseconds (the core has no clock).
///
/// # Component names
/// Every method takes the name as a `&str` of any lifetime: the table copies it into its own
/// fixed storage (no allocator) when the component is registered, and hands out names borrowed
/// from itself. A name is accepted when it is
/// - not empty, and at most `NAME` bytes long (a longer name is refused, never truncated);
/// - free of control characters: U+0000–U+001F and U+007F–U+009F ([`char::is_control`]), so a
///   name can never add a line to `/readyz?verbose` or a log.
///
/// Any other UTF-8 is kept exactly: `/`, space, quotes, `%`, `é`, emoji. Every accepted name is
/// reachable at `/readyz/<name>` percent-encoded (see [`http::Route`](crate::http::Route)).
/// A refused name is a [`ComponentError::InvalidName`]; [`check_name`](Self::check_name) tells
/// in advance (for example while reading a configuration file).
///
/// # Examples
/// ```
/// use diag_core::{State, StateTable};
/// static STATES: StateTable<4> = StateTable::new();
///
/// STATES.expect("auth").unwrap();
/// assert_eq!(STATES.state(), State::Starting);
/// STATES.heartbeat_ok("auth", 0).unwrap();
/// assert_eq!(STATES.state(), State::Ok);
/// STATES.heartbeat_failed("auth", 1_000).unwrap();
/// assert_eq!(STATES.state(), State::Degraded);
///
/// // Names computed at run time are copied in; nothing needs to live for `'static`.
/// let name = format!("db/{}", 7);
/// STATES.heartbeat_ok(&name, 2_000).unwrap();
/// drop(name);
/// assert_eq!(STATES.component("db/7"), Some(State::Ok));
/// ```
///
/// A name with a newline is refused, and so is one longer than the table's name capacity:
/// ```
/// use diag_core::{ComponentError, NameError, StateTable};
/// let states: StateTable<4, 12> = StateTable::new();
/// assert_eq!(
///     states.expect("db\n[+]x ok"),
///     Err(ComponentError::InvalidName(NameError::ControlCharacter { at: 2, character: '\n' }))
/// );
/// assert_eq!(
///     states.expect("much-too-long"),
///     Err(ComponentError::InvalidName(NameError::TooLong { len: 13, capacity: 12 }))
/// );
/// assert_eq!(states.components().count(), 0);
/// ```
pub struct StateTable<const N: usize, const NAME: usize = DEFAULT_NAME_CAPACITY> {
    components: Slots<Component<NAME>, N>,
    /// The default recovery window, xored with [`DEFAULT_RECOVERY_WINDOW_MS`]: a table with the
    /// default window is all zero bytes, so a `static` one goes to `.bss` instead of taking its
    /// size in flash as `.data` (352 bytes in the Cortex-M example).
    window_xor: u64,
    transitions: AtomicU64,
    shutting_down: AtomicBool,
}

impl<const N: usize, const NAME: usize> StateTable<N, NAME> {
    loom_const_fn! {
        /// An empty table with the default 10 s recovery window.
        pub fn new() -> Self {
            Self::with_recovery_window_ms(DEFAULT_RECOVERY_WINDOW_MS)
        }
    }

    loom_const_fn! {
        /// An empty table whose components default to `window_ms` as recovery window.
        pub fn with_recovery_window_ms(window_ms: u64) -> Self {
            Self {
                components: Slots::new(),
                window_xor: window_ms ^ DEFAULT_RECOVERY_WINDOW_MS,
                transitions: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
            }
        }
    }

    /// The recovery window components get unless registered with their own.
    const fn window_ms(&self) -> u64 {
        self.window_xor ^ DEFAULT_RECOVERY_WINDOW_MS
    }

    /// The table's capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The most bytes a component name may have in this table, `NAME`.
    pub const fn name_capacity(&self) -> usize {
        NAME
    }

    /// Whether this table accepts `name` (see [Component names](Self#component-names)).
    ///
    /// # Errors
    /// [`NameError::Empty`], [`NameError::TooLong`] (more than `NAME` bytes) or
    /// [`NameError::ControlCharacter`].
    ///
    /// # Examples
    /// ```
    /// use diag_core::{NameError, StateTable};
    /// type States = StateTable<4, 16>;
    /// assert_eq!(States::check_name("café/my db"), Ok(()));
    /// assert_eq!(States::check_name(""), Err(NameError::Empty));
    /// assert_eq!(States::check_name("a\tb"), Err(NameError::ControlCharacter { at: 1, character: '\t' }));
    /// ```
    pub fn check_name(name: &str) -> Result<(), NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > NAME {
            return Err(NameError::TooLong { len: name.len(), capacity: NAME });
        }
        // Byte by byte (cheaper in flash than decoding characters): in UTF-8, U+0000–U+001F
        // and U+007F are those bytes, and U+0080–U+009F are 0xC2 followed by 0x80–0x9F; 0xC2
        // is only ever a lead byte, so nothing else matches.
        let bytes = name.as_bytes();
        for (at, &byte) in bytes.iter().enumerate() {
            let c1 = match (byte, bytes.get(at + 1)) {
                (0xc2, Some(&next @ 0x80..=0x9f)) => Some(next),
                _ => None,
            };
            if byte < 0x20 || byte == 0x7f || c1.is_some() {
                return Err(NameError::ControlCharacter { at, character: char::from(c1.unwrap_or(byte)) });
            }
        }
        Ok(())
    }

    /// The component named `name`, registered with `window_ms` if it is not known yet. The
    /// name is copied into the slot before the slot is published, so readers that see the
    /// slot see the whole name.
    fn entry(&self, name: &str, window_ms: u64, ttl_ms: u64) -> Result<&Component<NAME>, ComponentError> {
        Self::check_name(name)?;
        // Checked above to fit, so this never fails; the error path keeps it panic-free.
        let stored =
            heapless::String::try_from(name).map_err(|_| NameError::TooLong { len: name.len(), capacity: NAME })?;
        self.components
            .get_or_insert_with(
                |c| c.name.as_str() == name,
                || Component {
                    name: stored,
                    window_ms,
                    ttl_ms,
                    word: AtomicU64::new(pack(State::Starting, 0)),
                    last_ms: AtomicU64::new(0),
                },
            )
            .map(|(_, c)| c)
            .map_err(|_| ComponentError::Full(CapacityError { capacity: N }))
    }

    /// Registers `name` as [`State::Starting`] (if it is not known yet), so the process is not
    /// ready before it reports. The table keeps its own copy of the name.
    ///
    /// # Errors
    /// [`ComponentError::InvalidName`] when the name is refused (see
    /// [Component names](Self#component-names)); [`ComponentError::Full`] when `N` components
    /// are already registered.
    pub fn expect(&self, name: &str) -> Result<(), ComponentError> {
        self.entry(name, self.window_ms(), 0).map(|_| ())
    }

    /// Like [`expect`](Self::expect), with this component's own recovery window. The window of
    /// a component that is already known is not changed.
    ///
    /// # Errors
    /// As [`expect`](Self::expect).
    pub fn expect_with_window(&self, name: &str, window_ms: u64) -> Result<(), ComponentError> {
        self.entry(name, window_ms, 0).map(|_| ())
    }

    /// Like [`expect_with_window`](Self::expect_with_window), with a time to live: once the
    /// component has reported, a silence of more than `ttl_ms` (on the caller's clock, checked
    /// by [`expire`](Self::expire)) turns it [`State::Degraded`]; when it reports again it
    /// recovers through [`State::Recovering`] like after a failed heartbeat. `ttl_ms` 0 means
    /// no time to live. The window and TTL of a component that is already known are not changed.
    ///
    /// # Errors
    /// As [`expect`](Self::expect).
    ///
    /// # Examples
    /// ```
    /// use diag_core::{State, StateTable};
    /// let states: StateTable<4> = StateTable::new();
    /// states.expect_with_ttl("db", 10_000, 3_000).unwrap();
    /// states.heartbeat_ok("db", 1_000).unwrap();
    /// assert_eq!(states.expire(4_000), 0, "3 s of silence is within the TTL");
    /// assert_eq!(states.expire(4_001), 1);
    /// assert_eq!(states.component("db"), Some(State::Degraded));
    /// assert_eq!(states.heartbeat_ok("db", 5_000), Ok(State::Recovering));
    /// ```
    pub fn expect_with_ttl(&self, name: &str, window_ms: u64, ttl_ms: u64) -> Result<(), ComponentError> {
        self.entry(name, window_ms, ttl_ms).map(|_| ())
    }

    /// Degrades every component with a time to live whose last report is more than its TTL
    /// before `now_ms` (see [`expect_with_ttl`](Self::expect_with_ttl)), and returns how many
    /// it degraded. A component that never reported (`Starting`) or is `Degraded` already is
    /// left alone. Call it periodically with the clock the heartbeats use; it takes no lock.
    ///
    /// An `Ok` component that reports while it expires ends either `Ok` (the report won) or
    /// `Recovering` (the expiry came first), never `Degraded`. A `Recovering` component whose
    /// report lands in the same instant as its expiry may end `Degraded` and start its recovery
    /// again with its next report.
    pub fn expire(&self, now_ms: u64) -> usize {
        let now_ms = now_ms.min(MAX_MS);
        let mut expired = 0;
        for (_, c) in self.components.iter() {
            if c.ttl_ms == 0 {
                continue;
            }
            // Relaxed: the packed word is self-contained (see `heartbeat`).
            let mut current = c.word.load(Ordering::Relaxed);
            loop {
                let last = match State::from_bits(current) {
                    State::Ok => current >> 2,
                    // Relaxed: a timestamp read on its own; the CAS below decides.
                    State::Recovering => (current >> 2).max(c.last_ms.load(Ordering::Relaxed)),
                    State::Degraded | State::Starting => break,
                };
                if now_ms.saturating_sub(last) <= c.ttl_ms {
                    break;
                }
                let degraded = pack(State::Degraded, 0);
                match c.word.compare_exchange_weak(current, degraded, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        // Relaxed: a statistic, read on its own.
                        self.transitions.fetch_add(1, Ordering::Relaxed);
                        expired += 1;
                        break;
                    }
                    Err(actual) => current = actual,
                }
            }
        }
        expired
    }

    /// The time to live of the component `name` in milliseconds, if it is registered with one.
    pub fn ttl_ms(&self, name: &str) -> Option<u64> {
        self.components.iter().find(|(_, c)| c.name.as_str() == name).map(|(_, c)| c.ttl_ms).filter(|&t| t > 0)
    }

    /// Applies a heartbeat event at `now_ms` and returns the component's new state. An unknown
    /// component is registered first. Timestamps saturate at 2^62 − 1 ms (146 million years),
    /// the most the table stores.
    ///
    /// # Errors
    /// [`ComponentError::InvalidName`] when the name is refused; [`ComponentError::Full`] when
    /// the component is unknown and the table is full.
    pub fn heartbeat(&self, name: &str, event: Event, now_ms: u64) -> Result<State, ComponentError> {
        // Saturate like the stored recovery start, so a huge `now_ms` never ends a recovery early.
        let now_ms = now_ms.min(MAX_MS);
        let c = self.entry(name, self.window_ms(), 0)?;
        // Relaxed: a timestamp read on its own (by `expire`).
        c.last_ms.fetch_max(now_ms, Ordering::Relaxed);
        // Relaxed: the packed word is the whole state; the CAS loop serialises writers.
        let mut current = c.word.load(Ordering::Relaxed);
        loop {
            let (state, since) = (State::from_bits(current), current >> 2);
            let (next, mut next_since) = transition(state, since, event, now_ms, c.window_ms);
            if next == State::Ok {
                // An `Ok` word holds the last report (never going back with the caller's clock).
                next_since = if state == State::Ok { since.max(now_ms) } else { now_ms };
            }
            let word = pack(next, next_since);
            if word == current {
                return Ok(next);
            }
            match c.word.compare_exchange_weak(current, word, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if next != state {
                        // Relaxed: a statistic, read on its own.
                        self.transitions.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(next);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// A successful heartbeat; see [`heartbeat`](Self::heartbeat).
    ///
    /// # Errors
    /// As [`heartbeat`](Self::heartbeat).
    pub fn heartbeat_ok(&self, name: &str, now_ms: u64) -> Result<State, ComponentError> {
        self.heartbeat(name, Event::Ok, now_ms)
    }

    /// A failed heartbeat; see [`heartbeat`](Self::heartbeat).
    ///
    /// # Errors
    /// As [`heartbeat`](Self::heartbeat).
    pub fn heartbeat_failed(&self, name: &str, now_ms: u64) -> Result<State, ComponentError> {
        self.heartbeat(name, Event::Failed, now_ms)
    }

    /// The aggregate: any degraded → degraded; else any recovering → recovering; else, with at
    /// least one component and all ok → ok; else starting.
    pub fn state(&self) -> State {
        aggregate(self.components())
    }

    /// One component's state, if it is registered.
    pub fn component(&self, name: &str) -> Option<State> {
        self.components().find(|(n, _)| *n == name).map(|(_, s)| s)
    }

    /// Every registered component with its state, in registration order; the names are
    /// borrowed from the table.
    pub fn components(&self) -> impl Iterator<Item = (&str, State)> + '_ {
        self.components.iter().map(|(_, c)| (c.name.as_str(), c.state()))
    }

    /// Number of component slots in use, an upper bound for [`component_at`](Self::component_at).
    pub fn component_slots(&self) -> usize {
        self.components.len_hint()
    }

    /// The component in slot `index` (registration order), if that slot holds one.
    pub fn component_at(&self, index: usize) -> Option<(&str, State)> {
        self.components.get(index).map(|c| (c.name.as_str(), c.state()))
    }

    /// Number of state changes of any component since start.
    pub fn transitions(&self) -> u64 {
        // Relaxed: a statistic.
        self.transitions.load(Ordering::Relaxed)
    }

    /// Turns readiness to "shutting down" (503) at once; health stays ok.
    pub fn begin_shutdown(&self) {
        // Relaxed: a flag read on its own; no data is published through it.
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Whether [`begin_shutdown`](Self::begin_shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        // Relaxed: see `begin_shutdown`.
        self.shutting_down.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
impl<const N: usize, const NAME: usize> Default for StateTable<N, NAME> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const NAME: usize> fmt::Debug for StateTable<N, NAME> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTable")
            .field("state", &self.state())
            .field("components", &DebugComponents(self))
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

struct DebugComponents<'a, const N: usize, const NAME: usize>(&'a StateTable<N, NAME>);

impl<const N: usize, const NAME: usize> fmt::Debug for DebugComponents<'_, N, NAME> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.components()).finish()
    }
}

/// The aggregation rule over component states (see [`StateTable::state`]).
pub fn aggregate<'a>(states: impl IntoIterator<Item = (&'a str, State)>) -> State {
    let (mut any, mut recovering, mut starting) = (false, false, false);
    for (_, s) in states {
        any = true;
        match s {
            State::Degraded => return State::Degraded,
            State::Recovering => recovering = true,
            State::Starting => starting = true,
            State::Ok => {}
        }
    }
    if recovering {
        State::Recovering
    } else if any && !starting {
        State::Ok
    } else {
        State::Starting
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;

    const W: u64 = DEFAULT_RECOVERY_WINDOW_MS;

    #[test]
    fn no_components_is_starting() {
        let t: StateTable<2> = StateTable::new();
        assert_eq!(t.state(), State::Starting);
    }

    #[test]
    fn unknown_component_heartbeat_ok_goes_ok() {
        let t: StateTable<2> = StateTable::new();
        assert_eq!(t.heartbeat_ok("a", 5), Ok(State::Ok));
        assert_eq!(t.state(), State::Ok);
        assert_eq!(t.transitions(), 1);
    }

    #[test]
    fn unknown_component_heartbeat_failed_goes_degraded() {
        let t: StateTable<2> = StateTable::new();
        assert_eq!(t.heartbeat_failed("a", 5), Ok(State::Degraded));
    }

    #[test]
    fn expect_keeps_process_starting_until_it_reports() {
        let t: StateTable<2> = StateTable::new();
        t.heartbeat_ok("a", 0).unwrap();
        t.expect("b").unwrap();
        assert_eq!(t.state(), State::Starting);
        t.heartbeat_ok("b", 1).unwrap();
        assert_eq!(t.state(), State::Ok);
    }

    #[test]
    fn expect_does_not_reset_a_known_component() {
        let t: StateTable<2> = StateTable::new();
        t.heartbeat_failed("a", 0).unwrap();
        t.expect("a").unwrap();
        assert_eq!(t.component("a"), Some(State::Degraded));
    }

    #[test]
    fn ok_stays_ok() {
        let t: StateTable<1> = StateTable::new();
        t.heartbeat_ok("a", 0).unwrap();
        assert_eq!(t.heartbeat_ok("a", 1), Ok(State::Ok));
        assert_eq!(t.transitions(), 1);
    }

    #[test]
    fn failed_from_every_state_degrades() {
        for setup in [&[][..], &[Event::Ok], &[Event::Failed], &[Event::Failed, Event::Ok]] {
            let t: StateTable<1> = StateTable::new();
            t.expect("a").unwrap();
            for e in setup {
                t.heartbeat("a", *e, 0).unwrap();
            }
            assert_eq!(t.heartbeat_failed("a", 1), Ok(State::Degraded));
        }
    }

    #[test]
    fn degraded_then_ok_is_recovering() {
        let t: StateTable<1> = StateTable::new();
        t.heartbeat_failed("a", 0).unwrap();
        assert_eq!(t.heartbeat_ok("a", 100), Ok(State::Recovering));
        assert_eq!(t.state(), State::Recovering);
    }

    #[test]
    fn success_exactly_one_window_later_stays_recovering() {
        let t: StateTable<1> = StateTable::new();
        t.heartbeat_failed("a", 0).unwrap();
        t.heartbeat_ok("a", 1_000).unwrap();
        assert_eq!(t.heartbeat_ok("a", 1_000 + W), Ok(State::Recovering));
        assert_eq!(t.heartbeat_ok("a", 1_000 + W + 1), Ok(State::Ok));
    }

    #[test]
    fn time_alone_never_recovers() {
        let t: StateTable<1> = StateTable::new();
        t.heartbeat_failed("a", 0).unwrap();
        t.heartbeat_ok("a", 1).unwrap();
        // No event arrives; the state is still recovering however late we look.
        assert_eq!(t.component("a"), Some(State::Recovering));
    }

    #[test]
    fn failure_during_recovery_restarts_the_window() {
        let t: StateTable<1> = StateTable::new();
        t.heartbeat_failed("a", 0).unwrap();
        t.heartbeat_ok("a", 1).unwrap();
        t.heartbeat_failed("a", 5_000).unwrap();
        t.heartbeat_ok("a", 6_000).unwrap();
        assert_eq!(t.heartbeat_ok("a", 12_000), Ok(State::Recovering), "window runs from 6 s, not 1 s");
        assert_eq!(t.heartbeat_ok("a", 16_001), Ok(State::Ok));
    }

    #[test]
    fn per_component_window() {
        let t: StateTable<1> = StateTable::new();
        t.expect_with_window("a", 100).unwrap();
        t.heartbeat_failed("a", 0).unwrap();
        t.heartbeat_ok("a", 0).unwrap();
        assert_eq!(t.heartbeat_ok("a", 101), Ok(State::Ok));
    }

    #[test]
    fn clock_going_backwards_stays_recovering() {
        let t: StateTable<1> = StateTable::new();
        t.heartbeat_failed("a", 0).unwrap();
        t.heartbeat_ok("a", 50_000).unwrap();
        assert_eq!(t.heartbeat_ok("a", 10), Ok(State::Recovering));
    }

    #[test]
    fn aggregate_rule() {
        use State::*;
        let cases: &[(&[State], State)] = &[
            (&[], Starting),
            (&[Ok], Ok),
            (&[Ok, Starting], Starting),
            (&[Ok, Recovering, Starting], Recovering),
            (&[Recovering, Degraded], Degraded),
            (&[Starting, Degraded], Degraded),
        ];
        for (states, want) in cases {
            assert_eq!(aggregate(states.iter().map(|s| ("x", *s))), *want, "{states:?}");
        }
    }

    #[test]
    fn one_component_too_many_is_an_error() {
        let t: StateTable<2> = StateTable::new();
        t.expect("a").unwrap();
        t.expect("b").unwrap();
        let full = Err(ComponentError::Full(CapacityError { capacity: 2 }));
        assert_eq!(t.expect("c"), full);
        assert_eq!(t.heartbeat_ok("c", 0), full.map(|()| State::Ok));
        assert_eq!(t.heartbeat_ok("a", 0), Ok(State::Ok), "known components still work");
    }

    #[test]
    fn shutdown_flag() {
        let t: StateTable<1> = StateTable::new();
        t.heartbeat_ok("a", 0).unwrap();
        t.begin_shutdown();
        assert!(t.is_shutting_down());
        assert_eq!(t.state(), State::Ok);
    }

    #[test]
    fn names_are_copied_into_the_table() {
        let t: StateTable<2> = StateTable::new();
        let name = std::string::String::from("db/primary");
        t.heartbeat_ok(&name, 0).unwrap();
        let mut reused = name;
        reused.clear();
        reused.push_str("overwritten");
        assert_eq!(t.component("db/primary"), Some(State::Ok));
        assert_eq!(t.components().collect::<std::vec::Vec<_>>(), [("db/primary", State::Ok)]);
        assert_eq!(t.component_at(0), Some(("db/primary", State::Ok)));
        assert_eq!(t.heartbeat_failed(&std::format!("db/{}", "primary"), 1), Ok(State::Degraded), "same slot");
        assert_eq!(t.component_slots(), 1);
    }

    #[test]
    fn accepted_names_are_kept_exactly() {
        let t: StateTable<12> = StateTable::new();
        let names = [
            "a/b",
            "my db",
            "café",
            "%2F",
            "quote\"back\\slash",
            "[+]x ok",
            "\u{a0}nbsp\u{2028}sep",
            "🦀",
            "x",
            "exactly-thirty-two-bytes-long-ab",
        ];
        for name in names {
            assert_eq!(t.expect(name), Ok(()), "{name:?}");
        }
        let got: std::vec::Vec<&str> = t.components().map(|(n, _)| n).collect();
        assert_eq!(got, names);
        assert_eq!(t.name_capacity(), DEFAULT_NAME_CAPACITY);
    }

    #[test]
    fn refused_names_are_errors_and_register_nothing() {
        let t: StateTable<4> = StateTable::new();
        let too_long = "thirty-three-bytes-is-one-too-man";
        assert_eq!(too_long.len(), 33);
        let accented = "éééééééééééééééé_"; // 16 two-byte characters and one: 33 bytes
        let cases: [(&str, NameError); 10] = [
            ("", NameError::Empty),
            (too_long, NameError::TooLong { len: 33, capacity: 32 }),
            (accented, NameError::TooLong { len: 33, capacity: 32 }),
            ("db\n[+]fake ok", NameError::ControlCharacter { at: 2, character: '\n' }),
            ("\r", NameError::ControlCharacter { at: 0, character: '\r' }),
            ("tab\t", NameError::ControlCharacter { at: 3, character: '\t' }),
            ("nul\0", NameError::ControlCharacter { at: 3, character: '\0' }),
            ("del\x7f", NameError::ControlCharacter { at: 3, character: '\x7f' }),
            ("é\u{80}", NameError::ControlCharacter { at: 2, character: '\u{80}' }),
            ("\u{9f}", NameError::ControlCharacter { at: 0, character: '\u{9f}' }),
        ];
        for (name, error) in cases {
            let want = Err(ComponentError::InvalidName(error));
            assert_eq!(StateTable::<4>::check_name(name), Err(error), "{name:?}");
            assert_eq!(t.expect(name), want, "{name:?}");
            assert_eq!(t.expect_with_window(name, 1), want, "{name:?}");
            assert_eq!(t.heartbeat_ok(name, 0), want.map(|()| State::Ok), "{name:?}");
            assert_eq!(t.heartbeat_failed(name, 0), want.map(|()| State::Ok), "{name:?}");
            assert_eq!(t.component(name), None);
        }
        assert_eq!(t.component_slots(), 0, "nothing registered, no slot used");
        assert_eq!(t.state(), State::Starting);
        assert_eq!(t.transitions(), 0);
    }

    #[test]
    fn name_capacity_is_a_parameter() {
        let t: StateTable<2, 4> = StateTable::new();
        assert_eq!(t.expect("abcd"), Ok(()));
        assert_eq!(t.expect("café"), Err(ComponentError::InvalidName(NameError::TooLong { len: 5, capacity: 4 })));
        let wide: StateTable<1, 64> = StateTable::new();
        let long = "a-name-of-sixty-four-bytes-for-a-table-whose-names-hold-64-bytes";
        assert_eq!(long.len(), 64);
        assert_eq!(wide.heartbeat_ok(long, 0), Ok(State::Ok));
        assert_eq!(wide.component(long), Some(State::Ok));
    }

    #[test]
    fn a_bad_name_is_reported_before_a_full_table() {
        let t: StateTable<1> = StateTable::new();
        t.expect("a").unwrap();
        assert_eq!(
            t.expect("b\n"),
            Err(ComponentError::InvalidName(NameError::ControlCharacter { at: 1, character: '\n' }))
        );
        assert_eq!(t.expect("b"), Err(ComponentError::Full(CapacityError { capacity: 1 })));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        use std::string::ToString;
        let cases = [
            (ComponentError::InvalidName(NameError::Empty), "component name is empty"),
            (
                ComponentError::InvalidName(NameError::TooLong { len: 40, capacity: 32 }),
                "component name is 40 bytes long, more than the 32 bytes allowed",
            ),
            (
                ComponentError::InvalidName(NameError::ControlCharacter { at: 2, character: '\n' }),
                "component name contains the control character U+000A at byte 2 (control characters are not allowed)",
            ),
            (
                ComponentError::Full(CapacityError { capacity: 64 }),
                "state table full: fixed capacity of 64 entries exhausted",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn concurrent_registration_with_runtime_names_and_readers() {
        use std::string::String;
        use std::sync::Arc;
        use std::vec::Vec;
        let t: Arc<StateTable<10>> = Arc::new(StateTable::new());
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 0..3 {
                        let name = std::format!("worker {w}/é{i}");
                        t.heartbeat_ok(&name, i).unwrap();
                        // Both writers also race on one shared name.
                        t.heartbeat_ok(&String::from("shared"), i).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..20 {
            for (name, state) in t.components() {
                assert!(name == "shared" || name.starts_with("worker "), "torn or foreign name {name:?}");
                // A name registered by its first heartbeat is `starting` for the instant
                // between its slot being published and the heartbeat applied.
                assert!(matches!(state, State::Ok | State::Starting), "{name}: {state:?}");
            }
        }
        for w in writers {
            w.join().unwrap();
        }
        let mut names: Vec<&str> = t.components().map(|(n, _)| n).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["shared", "worker 0/é0", "worker 0/é1", "worker 0/é2", "worker 1/é0", "worker 1/é1", "worker 1/é2"]
        );
    }

    #[test]
    fn silence_longer_than_the_ttl_degrades() {
        let t: StateTable<4> = StateTable::new();
        t.expect_with_ttl("db", 1_000, 500).unwrap();
        assert_eq!(t.ttl_ms("db"), Some(500));
        // A component that never reported is left starting.
        assert_eq!(t.expire(10_000), 0);
        assert_eq!(t.component("db"), Some(State::Starting));
        t.heartbeat_ok("db", 10_000).unwrap();
        assert_eq!(t.expire(10_500), 0, "exactly the TTL is still alive");
        t.heartbeat_ok("db", 10_400).unwrap();
        assert_eq!(t.expire(10_900), 0, "each report restarts the TTL");
        assert_eq!(t.expire(10_901), 1);
        assert_eq!(t.component("db"), Some(State::Degraded));
        assert_eq!(t.state(), State::Degraded);
        assert_eq!(t.expire(20_000), 0, "degraded stays degraded, counted once");
        assert_eq!(t.transitions(), 2);
    }

    #[test]
    fn an_expired_component_recovers_through_recovering() {
        let t: StateTable<4> = StateTable::new();
        t.expect_with_ttl("db", 1_000, 500).unwrap();
        t.heartbeat_ok("db", 0).unwrap();
        assert_eq!(t.expire(501), 1);
        assert_eq!(t.heartbeat_ok("db", 600), Ok(State::Recovering));
        assert_eq!(t.heartbeat_ok("db", 1_000), Ok(State::Recovering));
        assert_eq!(t.expire(1_400), 0, "recovering, reported 400 ms ago");
        assert_eq!(t.heartbeat_ok("db", 1_601), Ok(State::Ok), "window passed");
        // Silence while recovering expires too.
        t.heartbeat_failed("db", 2_000).unwrap();
        t.heartbeat_ok("db", 2_100).unwrap();
        assert_eq!(t.component("db"), Some(State::Recovering));
        assert_eq!(t.expire(2_600), 0);
        assert_eq!(t.expire(2_601), 1);
        assert_eq!(t.component("db"), Some(State::Degraded));
    }

    #[test]
    fn components_without_ttl_never_expire() {
        let t: StateTable<4> = StateTable::new();
        t.heartbeat_ok("plain", 0).unwrap();
        t.expect_with_ttl("ttl", 10_000, 100).unwrap();
        t.heartbeat_ok("ttl", 0).unwrap();
        assert_eq!(t.expire(u64::MAX), 1);
        assert_eq!(t.component("plain"), Some(State::Ok));
        assert_eq!(t.ttl_ms("plain"), None);
        // A clock going backwards never expires anything.
        t.heartbeat_ok("ttl", 50_000).unwrap();
        assert_eq!(t.expire(10), 0);
    }

    #[test]
    fn an_ok_report_never_moves_the_recorded_time_back() {
        let t: StateTable<4> = StateTable::new();
        t.expect_with_ttl("db", 1_000, 500).unwrap();
        t.heartbeat_ok("db", 1_000).unwrap();
        t.heartbeat_ok("db", 10).unwrap();
        assert_eq!(t.expire(1_500), 0);
        assert_eq!(t.expire(1_501), 1);
    }

    #[test]
    fn gauge_values() {
        assert_eq!([State::Ok, State::Recovering, State::Degraded, State::Starting].map(State::gauge), [0, 1, 2, 3]);
    }
}

/// loom models of the time to live: an expiry racing with reports.
#[cfg(all(test, loom))]
mod loom_ttl {
    use loom::sync::Arc;
    use loom::thread;

    use super::{State, StateTable};

    /// An `Ok` component reporting while it expires ends `Ok` (the report came first) or
    /// `Recovering` (the expiry came first), never `Degraded`; transitions count what happened.
    #[test]
    fn a_report_racing_an_expiry_is_never_lost() {
        loom::model(|| {
            let t: Arc<StateTable<1>> = Arc::new(StateTable::new());
            t.expect_with_ttl("a", 10_000, 100).unwrap();
            t.heartbeat_ok("a", 0).unwrap();
            let reporter = {
                let t = t.clone();
                thread::spawn(move || t.heartbeat_ok("a", 150).unwrap())
            };
            let expired = t.expire(150);
            let reported = reporter.join().unwrap();
            match (expired, reported, t.component("a")) {
                // The report first: 150 is within the TTL, nothing expires.
                (0, State::Ok, Some(State::Ok)) => assert_eq!(t.transitions(), 1),
                // The expiry first: the report starts the recovery.
                (1, State::Recovering, Some(State::Recovering)) => assert_eq!(t.transitions(), 3),
                other => panic!("impossible interleaving result {other:?}"),
            }
        });
    }

    /// A reader sees the expiry or not, nothing else, while it happens.
    #[test]
    fn readers_see_ok_or_degraded_during_an_expiry() {
        loom::model(|| {
            let t: Arc<StateTable<1>> = Arc::new(StateTable::new());
            t.expect_with_ttl("a", 10_000, 100).unwrap();
            t.heartbeat_ok("a", 0).unwrap();
            let expirer = {
                let t = t.clone();
                thread::spawn(move || t.expire(101))
            };
            let seen = t.state();
            assert!(matches!(seen, State::Ok | State::Degraded), "{seen:?}");
            assert_eq!(expirer.join().unwrap(), 1);
            assert_eq!(t.state(), State::Degraded);
        });
    }
}
