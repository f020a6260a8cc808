//! sluice on a real Redis Cluster (six local nodes: three masters, three replicas): one
//! exact limit across two instances, key revocation across instances, and a master killed
//! under load — the limiter takes its fallback for the failover and is exact again after,
//! and no request waits past `redis.timeout_ms`.

mod common;

use common::{call, create_key, keyed_config, metric, stage_ms};
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::redis_cluster::RedisCluster;
use sluice_testkit::services::Sluice;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The keyed test config with the cluster's seed nodes instead of one server.
fn cluster_config(cluster: &RedisCluster, upstream: &str, timeout_ms: u64) -> String {
    let nodes: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    keyed_config("redis://placeholder", upstream, "local")
        .replace(
            "redis: { url: \"redis://placeholder\", timeout_ms: 20 }",
            &format!(
                "redis: {{ cluster: [{}], timeout_ms: {timeout_ms} }}",
                nodes.join(", ")
            ),
        )
        .replace("expected_instances: 1", "expected_instances: 2")
}

#[test]
fn two_instances_share_one_exact_limit_on_a_cluster() {
    let (cluster, up) = (RedisCluster::start(), FakeUpstream::start("up"));
    let config = cluster_config(&cluster, &up.addr.to_string(), 250);
    assert!(config.contains("cluster: ["), "{config}");
    let (a, b) = (
        Arc::new(Sluice::start(&config)),
        Arc::new(Sluice::start(&config)),
    );
    let (_, key) = create_key(&a, "exact"); // 100/s, burst 100
    common::assert_exact_limit(
        a,
        b,
        key,
        100.0,
        100.0,
        Duration::from_secs(4),
        "\"exact\";q=",
    );
}

#[test]
fn a_revoke_on_one_instance_holds_on_another_within_a_second_on_a_cluster() {
    let (cluster, up) = (RedisCluster::start(), FakeUpstream::start("up"));
    let config = cluster_config(&cluster, &up.addr.to_string(), 250);
    let (a, b) = (Sluice::start(&config), Sluice::start(&config));
    let (id, key) = create_key(&a, "free");
    assert_eq!(
        call(&b, "/api/x", &key).status,
        200,
        "B reads the key from the cluster"
    );
    let (status, v) = common::admin(&a, "DELETE", &format!("/admin/keys/{id}"), None);
    assert_eq!(status, 200, "{v}");
    let after = common::time_until(Duration::from_secs(3), || {
        call(&b, "/api/x", &key).status == 403
    });
    let after = after.expect("B never refused the revoked key");
    assert!(
        after < Duration::from_secs(1),
        "B enforced the revoke after {after:?}"
    );
    // The admin view lists the key from the cluster too.
    let (status, v) = common::admin(&b, "GET", "/admin/keys", None);
    assert_eq!(status, 200);
    assert!(
        v["keys"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k["id"] == id.as_str())),
        "{v}"
    );
}

#[test]
fn a_killed_master_means_the_fallback_for_the_failover_then_exact_again() {
    let (mut cluster, up) = (RedisCluster::start(), FakeUpstream::start("up"));
    let config = cluster_config(&cluster, &up.addr.to_string(), 50);
    let s = Sluice::start(&config);
    let (id, key) = create_key(&s, "fast");
    assert_eq!(call(&s, "/api/x", &key).status, 200);
    // Replication is asynchronous: a key written a moment before its master dies can be
    // lost with it (Redis Cluster's own trade-off). Give the replicas a moment, as a key
    // in service has had.
    cluster.wait_replicated();
    // The master holding this key's bucket dies.
    let victim = cluster.master_of(&format!("sluice:bucket:{id}"));
    cluster.kill(victim);
    let killed = Instant::now();
    let redis_decisions = |s: &Sluice| {
        metric(
            s,
            "sluice_ratelimit_decisions_total{decision=\"allowed\",mode=\"redis\"",
        )
    };
    let mut slowest = 0.0f64;
    let mut local_seen = false;
    let mut back = None;
    while killed.elapsed() < Duration::from_secs(20) {
        let before = redis_decisions(&s);
        let r = call(&s, "/api/x", &key);
        assert!(
            r.status == 200 || r.status == 429,
            "{} {}",
            r.status,
            r.body
        );
        if let Some(ms) = stage_ms(&r, "ratelimit") {
            slowest = slowest.max(ms);
        }
        local_seen |= metric(
            &s,
            "sluice_ratelimit_decisions_total{decision=\"allowed\",mode=\"local\"",
        ) > 0.0;
        if local_seen && redis_decisions(&s) > before {
            back = Some(killed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        local_seen,
        "the limiter never took its fallback while the master was down"
    );
    let back = back.expect("the limiter never went back to Redis after the failover");
    assert!(cluster.is_ok(), "the cluster did not fail over");
    // redis.timeout_ms is 50: no decision may wait much longer (the stage's own time).
    assert!(
        slowest <= 50.0 + 30.0,
        "a rate-limit decision took {slowest} ms"
    );
    eprintln!("failover: back on Redis after {back:?}, slowest decision {slowest} ms");
}
