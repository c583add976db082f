//! Regression tests for what the fuzz targets in `fuzz/` found, each named after what broke.

use diag_core::{State, StateTable};

/// The recovery start is stored in 62 bits and saturated; `now_ms` was not, so a success at a
/// timestamp beyond 2^62 saw a huge difference to the saturated start and ended the recovery
/// at once, although no time had passed since the component degraded and recovered.
#[test]
fn recovery_start_beyond_62_bits_does_not_end_recovery_early() {
    let t: StateTable<1> = StateTable::new();
    let late = 17_868_031_107_658_676_215; // > 2^62, from the fuzz artifact
    t.heartbeat_failed("proxy", late).unwrap();
    assert_eq!(t.heartbeat_ok("proxy", late), Ok(State::Recovering));
    assert_eq!(t.heartbeat_ok("proxy", late), Ok(State::Recovering), "no time has passed");
    assert_eq!(t.heartbeat_ok("proxy", u64::MAX), Ok(State::Recovering), "saturated: no time passes");
    // Below the limit the window works as always.
    let t: StateTable<1> = StateTable::new();
    let start = (u64::MAX >> 2) - 20_000;
    t.heartbeat_failed("proxy", start).unwrap();
    t.heartbeat_ok("proxy", start).unwrap();
    assert_eq!(t.heartbeat_ok("proxy", start + 10_000), Ok(State::Recovering));
    assert_eq!(t.heartbeat_ok("proxy", start + 10_001), Ok(State::Ok));
}

/// `Service::respond` promises HEAD an empty body, but a HEAD of an unknown path got the 404
/// body (the 404 answer returned before the HEAD handling).
#[test]
fn head_of_unknown_path_has_no_body() {
    use diag_core::http::{Request, Service};
    let states: StateTable<1> = StateTable::new();
    let service = Service::new(&states, &[], 1);
    for target in ["", "/nope", "/debug/pprof/heap"] {
        let get = service.respond(&Request::get(target));
        let head = service.respond(&Request { method: "HEAD", ..Request::get(target) });
        assert_eq!((head.status(), head.content_length()), (404, get.content_length()), "{target:?}");
        let mut buf = [0u8; 64];
        assert_eq!(head.into_body().fill(&mut buf), Ok(0), "HEAD {target:?} has a body");
    }
}
