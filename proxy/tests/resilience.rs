//! Circuit breakers and retry budgets with real sluice processes and fake upstreams
//! whose data path fails while their health checks pass.

mod common;

use common::metric;
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::services::Sluice;
use sluice_testkit::{ADMIN_AUTH, ADMIN_TOKEN_SHA256};
use std::time::{Duration, Instant};

fn config(a: &FakeUpstream, b: &FakeUpstream, breaker: &str, budget: &str) -> String {
    format!(
        r#"server: {{ listen: "{{listen}}", admin_listen: "{{admin}}", threads: 2, grace_period_s: 1 }}
admin: {{ token_sha256: "{ADMIN_TOKEN_SHA256}" }}
upstreams:
  g:
    peers: ["{}", "{}"]
    health_check: {{ path: /health, interval_ms: 200, timeout_ms: 200, healthy_after: 1, unhealthy_after: 1 }}
    retries: 1
    retry_on_status: [503]
    breaker: {breaker}
routes:
  - {{ name: r, path_prefix: /, upstream: g, retry_budget: {budget} }}
"#,
        a.addr, b.addr
    )
}

fn breaker_of(s: &Sluice, peer: &FakeUpstream) -> String {
    let body = http::request(s.admin, "GET", "/admin/upstreams", &[ADMIN_AUTH], None)
        .expect("admin")
        .body;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["upstreams"]["g"]["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["peer"] == peer.addr.to_string()))
        .and_then(|p| p["breaker"].as_str())
        .unwrap_or("?")
        .to_string()
}

#[test]
fn a_failing_peer_is_cut_off_by_its_breaker_probed_and_brought_back() {
    let (a, b) = (FakeUpstream::start("a"), FakeUpstream::start("b"));
    let s = Sluice::start(&config(
        &a,
        &b,
        "{ failure_rate: 0.5, min_requests: 10, window_ms: 10000, consecutive_failures: 0, open_ms: 1000, half_open_probes: 2 }",
        "{ percent: 100, min_per_s: 100 }",
    ));
    b.set_data_status(503);

    // Two seconds of GETs: every one must succeed (503s are retried on a).
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let r = http::get(s.proxy, "/x").expect("GET");
        assert_eq!(
            r.status, 200,
            "a GET reached the client as {}: {}",
            r.status, r.body
        );
        assert_eq!(r.body, "a /x");
        sent += 1;
    }
    let to_b = b.hits();
    // Before opening: up to min_requests (10, half failing) ... then only probes: at most
    // 2 per open period of 1 s over 2 s.
    assert!(sent > 200, "too few requests to tell: {sent}");
    assert!(
        to_b <= 10 + 2 * 3,
        "b got {to_b} of {sent} requests; the breaker should have cut it off"
    );
    assert!(
        matches!(breaker_of(&s, &b).as_str(), "open" | "half_open"),
        "{}",
        breaker_of(&s, &b)
    );
    assert!(metric(&s, "sluice_breaker_transitions_total{peer=") >= 1.0);

    // Heal b: after the open period two good probes close the breaker and b serves again.
    b.set_data_status(0);
    let healed = Instant::now();
    let mut back = None;
    while healed.elapsed() < Duration::from_secs(5) {
        if http::get(s.proxy, "/x").expect("GET").body == "b /x" && breaker_of(&s, &b) == "closed" {
            back = Some(healed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        back.is_some(),
        "b never came back; breaker {}",
        breaker_of(&s, &b)
    );
    let served: Vec<String> = (0..10)
        .map(|_| http::get(s.proxy, "/x").expect("GET").body)
        .collect();
    assert!(
        served.iter().any(|b| b == "b /x") && served.iter().any(|b| b == "a /x"),
        "{served:?}"
    );
}

#[test]
fn when_every_peer_is_open_the_answer_is_503_with_retry_after() {
    let (a, b) = (FakeUpstream::start("a"), FakeUpstream::start("b"));
    let s = Sluice::start(&config(
        &a,
        &b,
        "{ min_requests: 100, consecutive_failures: 3, open_ms: 3000, half_open_probes: 1 }",
        "{ percent: 100, min_per_s: 100 }",
    ));
    a.set_data_status(503);
    b.set_data_status(503);
    let mut last = None;
    for _ in 0..10 {
        last = Some(http::get(s.proxy, "/x").expect("GET"));
    }
    let r = last.expect("a response");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("upstream_circuit_open"), "{}", r.body);
    let retry_after: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=3).contains(&retry_after), "Retry-After {retry_after}");
}

#[test]
fn the_retry_budget_caps_retries_and_posts_are_never_retried() {
    let (a, b) = (FakeUpstream::start("a"), FakeUpstream::start("b"));
    // Breaker effectively off, so only the budget limits retries: 1/s minimum, 0%.
    let s = Sluice::start(&config(
        &a,
        &b,
        "{ min_requests: 100000, consecutive_failures: 0 }",
        "{ percent: 0, min_per_s: 1 }",
    ));
    b.set_data_status(503);
    let statuses: Vec<u16> = (0..100)
        .map(|_| http::get(s.proxy, "/x").expect("GET").status)
        .collect();
    let retries = metric(&s, "sluice_retries_total{upstream=\"g\"}");
    assert!(
        retries <= 10.0,
        "budget of 1/s over a 10 s window allows 10 retries, saw {retries}"
    );
    assert!(retries >= 5.0, "the minimum must be usable: {retries}");
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert!(
        failed >= 30,
        "without budget the 503s reach the client: {failed} of 100"
    );

    let before = b.hits();
    let mut posts_to_b = 0;
    for _ in 0..10 {
        let r = http::request(
            s.proxy,
            "POST",
            "/p",
            &[("Content-Type", "application/json")],
            Some("{}"),
        )
        .expect("POST");
        if r.status == 503 {
            posts_to_b += 1;
        }
    }
    assert_eq!(
        b.hits() - before,
        posts_to_b,
        "each POST to b was sent exactly once, not retried"
    );
    assert!(posts_to_b >= 1);
}

/// Hardening #8: a PUT whose body is larger than Pingora's retry buffer (64 KiB) cannot
/// be sent again, so a 503 on it must reach the client as it is. Before, it was retried
/// on the other peer without its body, which then waited for a body that never came:
/// the client got 504 (or 502) after the read timeout instead of the upstream's 503.
#[test]
fn a_body_too_large_to_resend_is_not_retried_on_status() {
    let (a, b) = (FakeUpstream::start("a"), FakeUpstream::start("b"));
    let s = Sluice::start(&config(
        &a,
        &b,
        "{ failure_rate: 1.0, min_requests: 1000, window_ms: 10000, consecutive_failures: 0, open_ms: 1000, half_open_probes: 1 }",
        "{ percent: 100, min_per_s: 100 }",
    ));
    a.set_data_status(503);
    b.set_data_status(503);
    let body = "x".repeat(100 * 1024);
    let r = http::request(
        s.proxy,
        "PUT",
        "/big",
        &[("Content-Type", "text/plain")],
        Some(&body),
    )
    .expect("PUT");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(a.hits() + b.hits(), 1, "sent once, not retried");
    // A small PUT is still retried (and here fails on both peers).
    let r = http::request(s.proxy, "PUT", "/small", &[], Some("y")).expect("PUT");
    assert_eq!(r.status, 503);
    assert_eq!(a.hits() + b.hits(), 3, "the small PUT went to both peers");
}
