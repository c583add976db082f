//! The process-state machine: per-component states driven by heartbeats, aggregated into the
//! state `/readyz` and `process_state` report.

use core::fmt;

use crate::atomic::{AtomicBool, AtomicU64, Ordering, loom_const_fn};
use crate::error::CapacityError;
use crate::slots::Slots;

/// Default recovery window: a degraded component must keep succeeding for longer than this.
pub const DEFAULT_RECOVERY_WINDOW_MS: u64 = 10_000;

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

/// The pure transition rule of DESIGN.md §2, on `(state, recovery_start_ms)`.
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

struct Component {
    name: &'static str,
    window_ms: u64,
    /// `recovery_start_ms << 2 | state`, so that one compare-and-swap moves both.
    word: AtomicU64,
}

impl Component {
    fn state(&self) -> State {
        // Relaxed: the word is self-contained; no other memory is published through it.
        State::from_bits(self.word.load(Ordering::Relaxed))
    }
}

/// Per-component states in a fixed-capacity, lock-free table.
///
/// Heartbeat writers and readers never take a lock and never wait for each other; the only
/// wait is between two writers registering components at the same instant. The caller
/// supplies a monotonic time in milliseconds (the core has no clock).
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
/// ```
pub struct StateTable<const N: usize> {
    components: Slots<Component, N>,
    window_ms: u64,
    transitions: AtomicU64,
    shutting_down: AtomicBool,
}

impl<const N: usize> StateTable<N> {
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
                window_ms,
                transitions: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
            }
        }
    }

    /// The table's capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn entry(&self, name: &'static str, window_ms: u64) -> Result<&Component, CapacityError> {
        self.components
            .get_or_insert_with(
                |c| c.name == name,
                || Component { name, window_ms, word: AtomicU64::new(pack(State::Starting, 0)) },
            )
            .map(|(_, c)| c)
            .map_err(|_| CapacityError { capacity: N })
    }

    /// Registers `name` as [`State::Starting`] (if it is not known yet), so the process is not
    /// ready before it reports.
    ///
    /// # Errors
    /// [`CapacityError`] when `N` components are already registered.
    pub fn expect(&self, name: &'static str) -> Result<(), CapacityError> {
        self.entry(name, self.window_ms).map(|_| ())
    }

    /// Like [`expect`](Self::expect), with this component's own recovery window. The window of
    /// a component that is already known is not changed.
    ///
    /// # Errors
    /// [`CapacityError`] when the table is full.
    pub fn expect_with_window(&self, name: &'static str, window_ms: u64) -> Result<(), CapacityError> {
        self.entry(name, window_ms).map(|_| ())
    }

    /// Applies a heartbeat event at `now_ms` and returns the component's new state. An unknown
    /// component is registered first. Timestamps saturate at 2^62 − 1 ms (146 million years),
    /// the most the table stores.
    ///
    /// # Errors
    /// [`CapacityError`] when the component is unknown and the table is full.
    pub fn heartbeat(&self, name: &'static str, event: Event, now_ms: u64) -> Result<State, CapacityError> {
        // Saturate like the stored recovery start, so a huge `now_ms` never ends a recovery early.
        let now_ms = now_ms.min(MAX_MS);
        let c = self.entry(name, self.window_ms)?;
        // Relaxed: the packed word is the whole state; the CAS loop serialises writers.
        let mut current = c.word.load(Ordering::Relaxed);
        loop {
            let (state, since) = (State::from_bits(current), current >> 2);
            let (next, next_since) = transition(state, since, event, now_ms, c.window_ms);
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
    /// [`CapacityError`] when the component is unknown and the table is full.
    pub fn heartbeat_ok(&self, name: &'static str, now_ms: u64) -> Result<State, CapacityError> {
        self.heartbeat(name, Event::Ok, now_ms)
    }

    /// A failed heartbeat; see [`heartbeat`](Self::heartbeat).
    ///
    /// # Errors
    /// [`CapacityError`] when the component is unknown and the table is full.
    pub fn heartbeat_failed(&self, name: &'static str, now_ms: u64) -> Result<State, CapacityError> {
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

    /// Every registered component with its state, in registration order.
    pub fn components(&self) -> impl Iterator<Item = (&'static str, State)> + '_ {
        self.components.iter().map(|(_, c)| (c.name, c.state()))
    }

    /// Number of component slots in use, an upper bound for [`component_at`](Self::component_at).
    pub fn component_slots(&self) -> usize {
        self.components.len_hint()
    }

    /// The component in slot `index` (registration order), if that slot holds one.
    pub fn component_at(&self, index: usize) -> Option<(&'static str, State)> {
        self.components.get(index).map(|c| (c.name, c.state()))
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
impl<const N: usize> Default for StateTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for StateTable<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTable")
            .field("state", &self.state())
            .field("components", &DebugComponents(self))
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

struct DebugComponents<'a, const N: usize>(&'a StateTable<N>);

impl<const N: usize> fmt::Debug for DebugComponents<'_, N> {
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
        assert_eq!(t.expect("c"), Err(CapacityError { capacity: 2 }));
        assert_eq!(t.heartbeat_ok("c", 0), Err(CapacityError { capacity: 2 }));
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
    fn gauge_values() {
        assert_eq!([State::Ok, State::Recovering, State::Degraded, State::Starting].map(State::gauge), [0, 1, 2, 3]);
    }
}
