//! One exact limit across two instances: eight clients hammer a key through two sluice
//! processes sharing one Redis, and the admitted requests must be within 2 % of
//! burst + rate x elapsed. Its own test binary, the hammers one at a time: the figure
//! depends on the clients keeping up, which tests running beside them on the same two
//! cores would prevent.

mod common;

use common::{create_key, keyed_config};
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::redis::Redis;
use sluice_testkit::services::Sluice;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn two_instances_share_one_exact_limit() {
    hammer_two_instances("exact", None, 100.0, 100.0, Duration::from_secs(5));
}

#[test]
fn a_leased_tier_stays_within_two_percent_across_instances() {
    // 1000/s: each Redis call leases 10 tokens; unused leases expire, so the limit is
    // never exceeded and at most a lease per instance goes unused.
    hammer_two_instances("fast", None, 1000.0, 1000.0, Duration::from_secs(3));
}

#[test]
fn a_key_with_its_own_limits_is_held_to_them_exactly_across_instances() {
    // Tier "free" would allow 10/s with a burst of 100; the key's own 60/s, burst 40 win.
    hammer_two_instances("free", Some((60.0, 40)), 60.0, 40.0, Duration::from_secs(4));
}

/// Eight clients hammer one key through two instances for `run_for`; the admitted
/// requests must be within 2% of burst + rate x elapsed. With `own`, the key is given
/// its own (rate, burst) through the admin API first.
fn hammer_two_instances(
    tier: &str,
    own: Option<(f64, u64)>,
    rate: f64,
    burst: f64,
    run_for: Duration,
) {
    let (redis, up) = (Redis::start(), FakeUpstream::start("up"));
    // These tests measure the Redis path. Two instances run, so the config says so; and a
    // Redis reply slowed past 20 ms by a loaded CI box must not count as an outage here
    // (that would switch an instance to its local fallback bucket — the outage tests
    // below cover that behaviour).
    let config = keyed_config(&redis.url(), &up.addr.to_string(), "local")
        .replace("timeout_ms: 20", "timeout_ms: 250")
        .replace("expected_instances: 1", "expected_instances: 2");
    let (a, b) = (
        Arc::new(Sluice::start(&config)),
        Arc::new(Sluice::start(&config)),
    );
    let (id, key) = create_key(&a, tier);
    if let Some((rate_per_s, burst)) = own {
        let body = format!(r#"{{"rate_per_s":{rate_per_s},"burst":{burst}}}"#);
        let (status, v) = common::admin(&a, "PATCH", &format!("/admin/keys/{id}"), Some(&body));
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            (v["rate_per_s"].as_f64(), v["burst"].as_u64()),
            (Some(rate_per_s), Some(burst))
        );
    }
    let policy = match own {
        Some((_, b)) => format!("\"key_{id}\";q={b};w="),
        None => format!("\"{tier}\";q="),
    };
    common::assert_exact_limit(a, b, key, rate, burst, run_for, &policy);
}
