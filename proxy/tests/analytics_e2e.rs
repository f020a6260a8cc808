//! End to end with real processes: sluice -> tansu (a Kafka-compatible broker) ->
//! analytics -> PostgreSQL. The analytics totals equal what the clients saw and equal
//! `sluice_requests_total`, exactly, across a 10 s broker outage and an analytics
//! SIGKILL + restart.

mod common;

use common::{create_key, metric};
use serde_json::Value;
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::postgres::Postgres;
use sluice_testkit::redis::Redis;
use sluice_testkit::services::{Analytics, Sluice};
use sluice_testkit::tansu::Tansu;
use sluice_testkit::ADMIN_TOKEN_SHA256;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The stack's settings where they matter here: zstd values, as `make up` sends tansu.
fn config(redis: &str, brokers: &str, upstream: &FakeUpstream) -> String {
    format!(
        r#"server: {{ listen: "{{listen}}", admin_listen: "{{admin}}", threads: 2, grace_period_s: 2 }}
admin: {{ token_sha256: "{ADMIN_TOKEN_SHA256}" }}
redis: {{ url: "{redis}", timeout_ms: 50 }}
kafka: {{ brokers: "{brokers}", topic: sluice.requests, queue_capacity: 100000, linger_ms: 5,
         value_compression: zstd }}
tiers:
  tiny: {{ rate_per_s: 1, burst: 5 }}
  roomy: {{ rate_per_s: 1000, burst: 1000 }}
upstreams:
  g: {{ peers: ["{}"] }}
routes:
  - {{ name: keyed, path_prefix: /api/, strip_prefix: true, upstream: g, auth: api_key }}
  - {{ name: open, path_prefix: /open, upstream: g }}
"#,
        upstream.addr
    )
}

/// What the clients saw, to compare with the analytics.
#[derive(Default)]
struct Seen {
    by_route: BTreeMap<&'static str, i64>,
    by_key: BTreeMap<String, i64>,
    by_class: BTreeMap<String, i64>,
    limited: i64,
    latencies: Vec<Duration>,
}

fn send(s: &Sluice, keys: &[(String, String)], n: usize, seen: &mut Seen) {
    for i in 0..n {
        let started = Instant::now();
        let (route, r) = match i % 4 {
            0 | 1 => {
                let (id, key) = &keys[i % 4];
                *seen.by_key.entry(id.clone()).or_default() += 1;
                (
                    "keyed",
                    http::request(s.proxy, "GET", "/api/x", &[("X-API-Key", key)], None),
                )
            }
            2 => ("open", http::get(s.proxy, "/open/x")),
            _ => ("none", http::get(s.proxy, "/nowhere")),
        };
        let r = r.expect("request through sluice");
        seen.latencies.push(started.elapsed());
        *seen.by_route.entry(route).or_default() += 1;
        *seen
            .by_class
            .entry(format!("{}xx", r.status / 100))
            .or_default() += 1;
        if r.status == 429 {
            seen.limited += 1;
        }
    }
}

fn summary(a: &Analytics) -> Value {
    let body = http::get(a.addr, "/analytics/summary?from=0")
        .expect("analytics")
        .body;
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn mean(d: &[Duration]) -> Duration {
    d.iter().sum::<Duration>() / u32::try_from(d.len().max(1)).unwrap_or(1)
}

#[test]
fn analytics_totals_equal_the_gateway_counters_across_a_broker_outage_and_a_consumer_crash() {
    let (pg, redis, up) = (Postgres::start(), Redis::start(), FakeUpstream::start("up"));
    let mut broker = Tansu::start();
    let mut analytics = Analytics::start(&pg.url(), &broker.brokers());
    let s = Sluice::start(&config(&redis.url(), &broker.brokers(), &up));
    let keys = vec![create_key(&s, "tiny"), create_key(&s, "roomy")];
    let mut seen = Seen::default();

    send(&s, &keys, 200, &mut seen);
    let before = mean(&seen.latencies);

    // The broker goes away for 10 s; requests keep being served at the same speed.
    broker.stop();
    let outage = Instant::now();
    let from = seen.latencies.len();
    send(&s, &keys, 200, &mut seen);
    let during = mean(&seen.latencies[from..]);
    std::thread::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed()));
    broker.start_again();
    assert!(
        during < before * 3 + Duration::from_millis(5),
        "requests slowed down during the outage: {before:?} before, {during:?} during"
    );

    // The consumer is killed mid-stream and restarted.
    send(&s, &keys, 100, &mut seen);
    analytics.kill_and_restart();
    send(&s, &keys, 100, &mut seen);

    let n = 600;
    let mut got = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        got = summary(&analytics);
        if got["requests"].as_i64() == Some(n) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(got["requests"].as_i64(), Some(n), "analytics total: {got}");
    assert_eq!(
        metric(&s, "sluice_requests_total{"),
        n as f64,
        "gateway counter"
    );
    for (route, count) in &seen.by_route {
        assert_eq!(
            got["by_route"][*route].as_i64(),
            Some(*count),
            "route {route}: {got}"
        );
    }
    for (class, count) in &seen.by_class {
        assert_eq!(
            got["by_status"][class.as_str()].as_i64(),
            Some(*count),
            "status {class}: {got}"
        );
    }
    assert_eq!(got["limited"].as_i64(), Some(seen.limited), "{got}");
    assert!(
        seen.limited > 0,
        "the tiny tier must have limited some requests"
    );
    for (id, count) in &seen.by_key {
        let body = http::get(analytics.addr, &format!("/analytics/keys/{id}?from=0"))
            .expect("key")
            .body;
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["requests"].as_i64(), Some(*count), "key {id}: {v}");
    }
    assert_eq!(
        metric(&s, "sluice_kafka_events_total{result=\"dropped\"}"),
        0.0
    );
}
