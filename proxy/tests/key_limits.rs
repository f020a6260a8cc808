//! Keys with their own limits: set and cleared through the admin API (validated, naming
//! the field), enforced on another instance within a second, named in `RateLimit-Policy`,
//! kept through a rotate. Real Redis and sluice processes.

mod common;

use common::{admin, call, create_key, keyed_config};
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::redis::Redis;
use sluice_testkit::services::Sluice;
use std::time::Duration;

#[test]
fn own_limits_are_validated_and_named_field_by_field() {
    let (redis, up) = (Redis::start(), FakeUpstream::start("up"));
    let s = Sluice::start(&keyed_config(&redis.url(), &up.addr.to_string(), "local"));
    let create = |body: &str| admin(&s, "POST", "/admin/keys", Some(body));
    for (body, message) in [
        (
            r#"{"name":"a","tier":"free","rate_per_s":0,"burst":5}"#,
            "rate_per_s: must be a number greater than 0",
        ),
        (
            r#"{"name":"a","tier":"free","rate_per_s":-1,"burst":5}"#,
            "rate_per_s: must be a number greater than 0",
        ),
        (
            r#"{"name":"a","tier":"free","rate_per_s":"fast","burst":5}"#,
            "rate_per_s: must be a number greater than 0",
        ),
        (
            r#"{"name":"a","tier":"free","rate_per_s":5,"burst":0}"#,
            "burst: must be a whole number of at least 1",
        ),
        (
            r#"{"name":"a","tier":"free","rate_per_s":5,"burst":2.5}"#,
            "burst: must be a whole number of at least 1",
        ),
        (
            r#"{"name":"a","tier":"free","rate_per_s":5}"#,
            "burst: is required with rate_per_s",
        ),
        (
            r#"{"name":"a","tier":"free","burst":5}"#,
            "rate_per_s: is required with burst",
        ),
    ] {
        let (status, v) = create(body);
        assert_eq!(status, 400, "{body}: {v}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "{body}: {v}"
        );
    }
    let (status, v) = create(r#"{"name":"a","tier":"free","rate_per_s":2.5,"burst":3}"#);
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["rate_per_s"].as_f64(), v["burst"].as_u64()),
        (Some(2.5), Some(3))
    );
    let id = v["id"].as_str().expect("id").to_string();
    let (status, v) = admin(&s, "GET", &format!("/admin/keys/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(
        (v["rate_per_s"].as_f64(), v["burst"].as_u64()),
        (Some(2.5), Some(3))
    );
    let (status, v) = admin(
        &s,
        "PATCH",
        &format!("/admin/keys/{id}"),
        Some(r#"{"rate_per_s":null,"burst":3}"#),
    );
    assert_eq!(status, 400, "clearing takes both: {v}");
    let (status, v) = admin(
        &s,
        "PATCH",
        &format!("/admin/keys/{id}"),
        Some(r#"{"rate_per_s":null,"burst":null}"#),
    );
    assert_eq!(status, 200, "{v}");
    assert!(
        v.get("rate_per_s").is_none() && v.get("burst").is_none(),
        "back to the tier's: {v}"
    );
}

#[test]
fn a_change_of_own_limits_on_one_instance_holds_on_another_within_a_second() {
    let (redis, up) = (Redis::start(), FakeUpstream::start("up"));
    // About propagation: a lookup slowed past 20 ms on a loaded box is no outage here.
    let config = keyed_config(&redis.url(), &up.addr.to_string(), "local")
        .replace("timeout_ms: 20", "timeout_ms: 250");
    let (a, b) = (Sluice::start(&config), Sluice::start(&config));
    let (id, key) = create_key(&a, "free"); // 10/s, burst 100
    let first = call(&b, "/api/x", &key);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"free\";q=100;w=10")
    );

    let (status, v) = admin(
        &a,
        "PATCH",
        &format!("/admin/keys/{id}"),
        Some(r#"{"rate_per_s":0.5,"burst":2}"#),
    );
    assert_eq!(status, 200, "{v}");
    // B follows: its answers name the key's own policy, and the small bucket runs out.
    let limited_after = common::time_until(Duration::from_secs(3), || {
        let r = call(&b, "/api/x", &key);
        if r.status != 429 {
            return false;
        }
        assert_eq!(
            r.header("ratelimit-policy"),
            Some(format!("\"key_{id}\";q=2;w=4").as_str())
        );
        assert!(r.body.contains("own rate limit"), "{}", r.body);
        true
    });
    let after = limited_after.expect("instance B never applied the key's own limits");
    assert!(
        after < Duration::from_secs(1),
        "B applied them after {after:?}"
    );

    // A rotate keeps them; clearing them gives the tier back.
    let (status, v) = admin(&a, "POST", &format!("/admin/keys/{id}/rotate"), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["burst"].as_u64(),
        Some(2),
        "the rotated key keeps its limits: {v}"
    );
    let key = v["key"].as_str().expect("key").to_string();
    let (status, _) = admin(
        &a,
        "PATCH",
        &format!("/admin/keys/{id}"),
        Some(r#"{"rate_per_s":null,"burst":null}"#),
    );
    assert_eq!(status, 200);
    sluice_testkit::assert_eventually!(
        Duration::from_secs(2),
        call(&b, "/api/x", &key).header("ratelimit-policy") == Some("\"free\";q=100;w=10"),
        "B went back to the tier's policy"
    );
}
