//! Process-level memory settings of a running gateway.

mod common;

use common::one_route_config;
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::services::Sluice;

#[test]
fn a_running_gateway_has_transparent_huge_pages_off() {
    let up = FakeUpstream::start("up");
    let s = Sluice::start(&one_route_config(&up.addr.to_string()));
    assert_eq!(http::get(s.proxy, "/x").expect("GET").status, 200);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.process.pid()))
        .expect("the process's status");
    // The line exists since Linux 5.0; an older kernel cannot show the flag.
    let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) else {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
        return;
    };
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}
