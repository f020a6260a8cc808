//! What a panic on the request path does: with `panic = "unwind"` Pingora runs each
//! downstream connection on its own task, so a panic in a filter ends that connection
//! (the client sees it closed, with no response) and the process goes on serving every
//! other connection. Uses the debug-only `SLUICE_DEBUG_PANIC_PATH` hook in the route stage.

mod common;

use common::one_route_config;
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::services::Sluice;
use std::time::Duration;

#[test]
fn a_panic_in_a_filter_ends_one_connection_and_the_gateway_keeps_serving() {
    let up = FakeUpstream::start("up");
    let yaml = one_route_config(&up.addr.to_string());
    let mut s = Sluice::start_with_env(&yaml, &[("SLUICE_DEBUG_PANIC_PATH", "/boom")]);
    // A keep-alive client in the middle of its requests is not disturbed either.
    let before = http::get(s.proxy, "/ok").expect("GET before");
    assert_eq!(before.status, 200);
    for _ in 0..5 {
        match http::get(s.proxy, "/boom") {
            Err(_) => {}
            Ok(r) => assert!(r.status >= 500, "a panicking request got {}", r.status),
        }
    }
    for _ in 0..20 {
        let r = http::get(s.proxy, "/ok").expect("GET after the panics");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert!(
        s.process.wait_exit(Duration::from_millis(200)).is_none(),
        "sluice exited:\n{}",
        s.process.output()
    );
    assert!(s.process.output().contains("SLUICE_DEBUG_PANIC_PATH"));
}
