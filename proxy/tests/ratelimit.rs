//! Redis token buckets end to end (the two-instance exactness tests are in exactness.rs): per-IP limits,
//! and each `on_redis_error` mode through a Redis outage and back.

mod common;

use common::{call, create_key, keyed_config, metric, stage_ms};
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::redis::Redis;
use sluice_testkit::services::Sluice;
use sluice_testkit::slow_tcp::SlowConnect;
use std::time::{Duration, Instant};

#[test]
fn requests_in_the_first_moments_wait_for_the_first_redis_connection() {
    let (redis, up) = (Redis::start(), FakeUpstream::start("up"));
    let a = Sluice::start(&keyed_config(&redis.url(), &up.addr.to_string(), "local"));
    let (_, key) = create_key(&a, "exact");
    // b reaches Redis through a relay that holds each connect for 250 ms, so its first
    // requests arrive while it is still connecting: they must neither be refused (no key
    // store yet) nor limited by the local fallback bucket.
    let relay = SlowConnect::start(
        ([127, 0, 0, 1], redis.port()).into(),
        Duration::from_millis(250),
    );
    let relayed = format!("redis://{}", relay.addr);
    let b = Sluice::start(&keyed_config(&relayed, &up.addr.to_string(), "local"));
    let r = call(&b, "/api/x", &key);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        metric(
            &b,
            "sluice_ratelimit_decisions_total{decision=\"allowed\",mode=\"redis\""
        ),
        1.0,
        "the first request was decided by Redis"
    );
}

#[test]
fn anonymous_routes_can_limit_per_client_ip() {
    let (redis, up) = (Redis::start(), FakeUpstream::start("up"));
    let s = Sluice::start(&keyed_config(&redis.url(), &up.addr.to_string(), "local"));
    let statuses: Vec<u16> = (0..7)
        .map(|_| http::get(s.proxy, "/ip/x").expect("GET").status)
        .collect();
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 200, 429, 429],
        "tier tiny: burst 5"
    );
    let r = http::get(s.proxy, "/ip/x").expect("GET");
    assert_eq!(r.header("ratelimit-policy"), Some("\"tiny\";q=5;w=5"));
    assert!(r.body.contains("rate_limited"), "{}", r.body);
    // Routes without a limit are untouched.
    assert!((0..10).all(|_| http::get(s.proxy, "/open").expect("GET").status == 200));
}

/// Starts sluice in `mode`, warms the key cache, stops Redis, returns what the caller
/// needs to check the outage behaviour, then restarts Redis and checks recovery.
fn outage(mode: &str, during: impl FnOnce(&Sluice, &str)) {
    let (mut redis, up) = (Redis::start_durable(), FakeUpstream::start("up"));
    let s = Sluice::start(&keyed_config(&redis.url(), &up.addr.to_string(), mode));
    let (_, key) = create_key(&s, "tiny"); // 1/s, burst 5
    assert_eq!(call(&s, "/api/x", &key).status, 200); // cached now

    redis.stop();
    during(&s, &key);
    // A key this instance never saw cannot be checked without Redis.
    let r = call(&s, "/api/x", "sk_never_seen");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("auth_store_unavailable"), "{}", r.body);

    redis.start_again();
    let restarted = Instant::now();
    let redis_before = metric(
        &s,
        "sluice_ratelimit_decisions_total{decision=\"allowed\",mode=\"redis\"",
    );
    let mut resumed = None;
    while restarted.elapsed() < Duration::from_secs(5) {
        call(&s, "/api/x", &key);
        let now = metric(
            &s,
            "sluice_ratelimit_decisions_total{decision=\"allowed\",mode=\"redis\"",
        ) + metric(
            &s,
            "sluice_ratelimit_decisions_total{decision=\"limited\",mode=\"redis\"",
        );
        if now > redis_before {
            resumed = Some(restarted.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let resumed = resumed.expect("redis mode never resumed");
    assert!(
        resumed <= Duration::from_secs(2),
        "redis mode resumed after {resumed:?}"
    );
}

/// Every limiter decision during the outage took at most the timeout (20 ms) + 10 ms.
fn assert_limiter_fast(r: &sluice_testkit::http::Response) {
    let ms = stage_ms(r, "ratelimit").expect("Server-Timing carries the ratelimit stage");
    assert!(ms <= 30.0, "the limiter took {ms} ms with Redis down");
}

#[test]
fn redis_down_local_mode_limits_in_process() {
    outage("local", |s, key| {
        let responses: Vec<_> = (0..8).map(|_| call(s, "/api/x", key)).collect();
        responses.iter().for_each(assert_limiter_fast);
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        let allowed = statuses.iter().filter(|s| **s == 200).count();
        assert!(
            (5..=6).contains(&allowed),
            "local bucket: burst 5 (+1 refill): {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 429),
            "{statuses:?}"
        );
        assert!(
            metric(
                s,
                "sluice_ratelimit_decisions_total{decision=\"limited\",mode=\"local\""
            ) >= 2.0
        );
    });
}

#[test]
fn redis_down_open_mode_allows_everything() {
    outage("open", |s, key| {
        let responses: Vec<_> = (0..10).map(|_| call(s, "/api/x", key)).collect();
        responses.iter().for_each(assert_limiter_fast);
        assert!(responses.iter().all(|r| r.status == 200));
        assert!(
            metric(
                s,
                "sluice_ratelimit_decisions_total{decision=\"allowed\",mode=\"open\""
            ) >= 10.0
        );
    });
}

#[test]
fn redis_down_closed_mode_answers_503() {
    outage("closed", |s, key| {
        let responses: Vec<_> = (0..5).map(|_| call(s, "/api/x", key)).collect();
        responses.iter().for_each(assert_limiter_fast);
        for r in &responses {
            assert_eq!(r.status, 503, "{}", r.body);
            assert!(r.body.contains("ratelimit_unavailable"), "{}", r.body);
        }
        assert!(
            metric(
                s,
                "sluice_ratelimit_decisions_total{decision=\"unavailable\",mode=\"closed\""
            ) >= 5.0
        );
    });
}
