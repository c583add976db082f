//! The lock-free `StateTable` on arbitrary event sequences, against a plain reference model
//! (a Vec of components) written from docs/states.md#transitions. After every step: the returned state,
//! capacity error or refused name, every component's state, registration order, the
//! aggregate, the transitions counter and the shutdown flag must agree.
#![no_main]

use arbitrary::Arbitrary;
use diag_core::{ComponentError, State, StateTable};
use libfuzzer_sys::fuzz_target;

/// Why the table or the model refused an event.
#[derive(Debug, PartialEq)]
enum Refused {
    /// The table is full (its capacity).
    Full(usize),
    /// The name is not accepted.
    Name,
}

fn refused(e: ComponentError) -> Refused {
    match e {
        ComponentError::Full(e) => Refused::Full(e.capacity),
        ComponentError::InvalidName(_) => Refused::Name,
        other => panic!("an error the model does not know: {other:?}"),
    }
}

const CAPACITY: usize = 4;
/// The table's name capacity, in bytes.
const NAME: usize = 8;
/// More names than slots, so capacity overflow is exercised; names the table refuses
/// (empty, control characters, longer than `NAME` bytes), and some it keeps as they are.
const NAMES: [&str; 11] = ["auth", "node", "db", "proxy", "", "ü", "a/b c", "bad\nname", "\u{85}", "ninebytes", "éééé"];

#[derive(Debug, Arbitrary)]
enum Op {
    Expect(u8),
    ExpectWithWindow(u8, Window),
    Ok(u8, Step),
    Failed(u8, Step),
    Shutdown,
}

/// How the clock moves before an event: mostly forward, sometimes backwards or anywhere.
#[derive(Debug, Arbitrary)]
enum Step {
    Same,
    Forward(u16),
    Far(u32),
    Back(u16),
    Jump(u64),
}

#[derive(Debug, Arbitrary)]
enum Window {
    Small(u8),
    Any(u64),
}

#[derive(Debug, Arbitrary)]
struct Case {
    default_window: Window,
    start: u32,
    ops: Vec<Op>,
}

fn window(w: &Window) -> u64 {
    match w {
        Window::Small(ms) => u64::from(*ms),
        Window::Any(ms) => *ms,
    }
}

/// The reference model: the rule of docs/states.md#transitions, written plainly.
#[derive(Debug)]
struct Component {
    name: &'static str,
    state: State,
    recovery_start: u64,
    window: u64,
}

#[derive(Debug, Default)]
struct Model {
    components: Vec<Component>,
    transitions: u64,
    shutting_down: bool,
}

impl Model {
    fn find_or_register(&mut self, name: &'static str, window: u64) -> Result<usize, Refused> {
        // The documented charset: 1 to NAME bytes of UTF-8 without control characters.
        if name.is_empty()
            || name.len() > NAME
            || name.chars().any(|c| c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c))
        {
            return Err(Refused::Name);
        }
        if let Some(i) = self.components.iter().position(|c| c.name == name) {
            return Ok(i);
        }
        if self.components.len() == CAPACITY {
            return Err(Refused::Full(CAPACITY));
        }
        self.components.push(Component { name, state: State::Starting, recovery_start: 0, window });
        Ok(self.components.len() - 1)
    }

    fn heartbeat(&mut self, name: &'static str, ok: bool, now: u64, default_window: u64) -> Result<State, Refused> {
        // The table's documented limit: timestamps saturate at 2^62 - 1 ms.
        let now = now.min(u64::MAX >> 2);
        let i = self.find_or_register(name, default_window)?;
        let c = &mut self.components[i];
        let next = if !ok {
            State::Degraded
        } else {
            match c.state {
                State::Starting | State::Ok => State::Ok,
                State::Degraded => {
                    c.recovery_start = now;
                    State::Recovering
                }
                State::Recovering => {
                    // "now - recovery_start > window", strictly; a clock that went backwards
                    // has seen no time pass.
                    if now > c.recovery_start && now - c.recovery_start > c.window {
                        State::Ok
                    } else {
                        State::Recovering
                    }
                }
            }
        };
        if next != c.state {
            self.transitions += 1;
        }
        c.state = next;
        Ok(next)
    }

    fn aggregate(&self) -> State {
        let states = || self.components.iter().map(|c| c.state);
        if states().any(|s| s == State::Degraded) {
            State::Degraded
        } else if states().any(|s| s == State::Recovering) {
            State::Recovering
        } else if !self.components.is_empty() && states().all(|s| s == State::Ok) {
            State::Ok
        } else {
            State::Starting
        }
    }
}

fn compare(table: &StateTable<CAPACITY, NAME>, model: &Model, step: usize) {
    let got: Vec<(&str, State)> = table.components().collect();
    let want: Vec<(&str, State)> = model.components.iter().map(|c| (c.name, c.state)).collect();
    assert_eq!(got, want, "components after step {step}");
    for c in &model.components {
        assert_eq!(table.component(c.name), Some(c.state), "component {} after step {step}", c.name);
    }
    for name in NAMES {
        if !model.components.iter().any(|c| c.name == name) {
            assert_eq!(table.component(name), None, "unregistered {name} after step {step}");
        }
    }
    assert_eq!(table.component_slots(), model.components.len(), "slots after step {step}");
    for (i, c) in model.components.iter().enumerate() {
        assert_eq!(table.component_at(i), Some((c.name, c.state)));
    }
    assert_eq!(table.state(), model.aggregate(), "aggregate after step {step}");
    assert_eq!(table.transitions(), model.transitions, "transitions after step {step}");
    assert_eq!(table.is_shutting_down(), model.shutting_down);
}

fuzz_target!(|case: Case| {
    let default_window = window(&case.default_window);
    let table: StateTable<CAPACITY, NAME> = StateTable::with_recovery_window_ms(default_window);
    let mut model = Model::default();
    let mut now = u64::from(case.start);
    for (step, op) in case.ops.iter().enumerate().take(256) {
        let mut advance = |s: &Step| {
            now = match s {
                Step::Same => now,
                Step::Forward(d) => now.saturating_add(u64::from(*d)),
                Step::Far(d) => now.saturating_add(u64::from(*d)),
                Step::Back(d) => now.saturating_sub(u64::from(*d)),
                Step::Jump(t) => *t,
            };
            now
        };
        let name = |i: &u8| NAMES[usize::from(*i) % NAMES.len()];
        // The table gets a copy that dies after the call: it must keep its own.
        let owned = |i: &u8| name(i).to_owned();
        match op {
            Op::Expect(i) => {
                let got = table.expect(&owned(i)).map_err(refused);
                let want = model.find_or_register(name(i), default_window).map(|_| ());
                assert_eq!(got, want, "expect at step {step}");
            }
            Op::ExpectWithWindow(i, w) => {
                let got = table.expect_with_window(&owned(i), window(w)).map_err(refused);
                let want = model.find_or_register(name(i), window(w)).map(|_| ());
                assert_eq!(got, want, "expect_with_window at step {step}");
            }
            Op::Ok(i, s) => {
                let t = advance(s);
                let got = table.heartbeat_ok(&owned(i), t).map_err(refused);
                let want = model.heartbeat(name(i), true, t, default_window);
                assert_eq!(got, want, "heartbeat_ok({}, {t}) at step {step}", name(i));
            }
            Op::Failed(i, s) => {
                let t = advance(s);
                let got = table.heartbeat_failed(&owned(i), t).map_err(refused);
                let want = model.heartbeat(name(i), false, t, default_window);
                assert_eq!(got, want, "heartbeat_failed({}, {t}) at step {step}", name(i));
            }
            Op::Shutdown => {
                table.begin_shutdown();
                model.shutting_down = true;
            }
        }
        compare(&table, &model, step);
    }
});
