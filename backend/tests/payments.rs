//! The payments family with real processes: PostgreSQL, Redis, two processor simulators,
//! two payments instances and sluice in front, as in the stack.
//!
//! Every test also checks the processors' `service-health` limit: across both instances,
//! never more than one call per 5 s window per processor (none queued, none refused).

use sluice_testkit::http;
use sluice_testkit::payments::{parse_summary, PaymentsService, ProcessorSim};
use sluice_testkit::postgres::Postgres;
use sluice_testkit::redis::Redis;
use sluice_testkit::redis_cluster::RedisCluster;
use sluice_testkit::services::Sluice;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Stack {
    started: Instant,
    default: ProcessorSim,
    fallback: ProcessorSim,
    instances: Vec<PaymentsService>,
    sluice: Sluice,
    redis: Option<Redis>,
    _cluster: Option<RedisCluster>,
    _pg: Postgres,
}

impl Stack {
    fn start(extra: &[&str]) -> Self {
        Self::start_with(Redis::start(), extra)
    }

    fn start_with(redis: Redis, extra: &[&str]) -> Self {
        let url = redis.url();
        Self::start_on(&url, Some(redis), None, extra)
    }

    /// The stack with its queue on a Redis Cluster.
    fn start_on_cluster(extra: &[&str]) -> Self {
        let cluster = RedisCluster::start();
        let nodes: Vec<String> = cluster
            .urls()
            .iter()
            .map(|u| u.trim_start_matches("redis://").to_string())
            .collect();
        let url = format!("redis+cluster://{}", nodes.join(","));
        Self::start_on(&url, None, Some(cluster), extra)
    }

    fn start_on(
        redis_url: &str,
        redis: Option<Redis>,
        cluster: Option<RedisCluster>,
        extra: &[&str],
    ) -> Self {
        let started = Instant::now();
        let pg = Postgres::start();
        let default = ProcessorSim::start(0.05);
        let fallback = ProcessorSim::start(0.15);
        let instances: Vec<PaymentsService> = (0..2)
            .map(|_| PaymentsService::start(&pg.url(), redis_url, &default, &fallback, extra))
            .collect();
        let peers: Vec<String> = instances
            .iter()
            .map(|i| format!("\"{}\"", i.addr))
            .collect();
        let sluice = Sluice::start(&format!(
            r#"server: {{ listen: "{{listen}}", admin_listen: "{{admin}}", threads: 2, grace_period_s: 1 }}
upstreams:
  payments:
    peers: [{}]
    health_check: {{ path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 2, unhealthy_after: 2 }}
    retries: 2
routes:
  - {{ name: payments, path_prefix: /payments, upstream: payments }}
  - {{ name: payments-summary, path_prefix: /payments-summary, upstream: payments }}
  - {{ name: purge-payments, path_prefix: /purge-payments, upstream: payments }}
"#,
            peers.join(", ")
        ));
        Self {
            started,
            default,
            fallback,
            instances,
            sluice,
            redis,
            _cluster: cluster,
            _pg: pg,
        }
    }

    fn proxy(&self) -> SocketAddr {
        self.sluice.proxy
    }

    /// POSTs payments of 19.90 with fresh ids from 8 threads; returns the ids.
    fn burst(&self, count: usize) -> Vec<String> {
        let ids: Vec<String> = (0..count)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        std::thread::scope(|scope| {
            for chunk in ids.chunks(count.div_ceil(8).max(1)) {
                let proxy = self.proxy();
                scope.spawn(move || {
                    for id in chunk {
                        let status = post(proxy, id, "19.90");
                        assert!(
                            (200..300).contains(&status),
                            "POST /payments answered {status}"
                        );
                    }
                });
            }
        });
        ids
    }

    /// Our summary through the gateway: [(count, amount) default, fallback].
    fn summary(&self, query: &str) -> [(u64, f64); 2] {
        let r = http::get(self.proxy(), &format!("/payments-summary{query}")).expect("summary");
        assert_eq!(r.status, 200, "{}", r.body);
        parse_summary(&r.body)
    }

    /// Waits until nothing is queued or in progress and `total` payments are in the ledger.
    fn wait_settled(&self, total: u64) {
        let settled = sluice_testkit::eventually(Duration::from_secs(60), || {
            // Not asserting: the gateway may still be seeing instances come back.
            let paid = http::get(self.proxy(), "/payments-summary")
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| parse_summary(&r.body))
                .map(|[d, f]| d.0 + f.0);
            let (_, queued, processing) = self.instances[0].queue_stats();
            paid == Some(total) && queued == 0 && processing == 0
        });
        let [d, f] = self.summary("");
        assert!(
            settled,
            "expected {total} paid, ledger has default {d:?} fallback {f:?}, queue {:?}\n{}",
            self.instances[0].queue_stats(),
            self.instances[0].process.output()
        );
    }

    /// Our summary equals the processors' own, for `query`.
    fn assert_consistent(&self, query: &str) {
        let ours = self.summary(query);
        let theirs = [self.default.summary(query), self.fallback.summary(query)];
        assert_eq!(
            ours, theirs,
            "summary{query}: ours (default, fallback) vs the processors'"
        );
    }

    /// A counter's value summed over both instances' `/metrics`.
    fn metric(&self, line_start: &str) -> f64 {
        self.instances
            .iter()
            .map(|i| {
                let body = http::get(i.addr, "/metrics").expect("metrics").body;
                body.lines()
                    .find(|l| l.starts_with(line_start))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            })
            .sum()
    }

    /// service-health: at most one call per 5 s window per processor, none queued or refused.
    fn assert_health_limit(&self) {
        let windows = self.started.elapsed().as_secs() / 5 + 1;
        for (name, p) in [("default", &self.default), ("fallback", &self.fallback)] {
            let (calls, queued, rejected) = p.health_stats();
            assert!(calls >= 1, "{name}: service-health was never polled");
            assert!(
                calls <= windows && queued == 0 && rejected == 0,
                "{name}: {calls} health calls in {windows} windows, {queued} queued, {rejected} refused"
            );
        }
    }
}

fn post(proxy: SocketAddr, id: &str, amount: &str) -> u16 {
    let body = format!(r#"{{"correlationId":"{id}","amount":{amount}}}"#);
    http::send_json(proxy, "POST", "/payments", &body)
        .map(|r| r.status)
        .unwrap_or_else(|e| panic!("POST /payments through sluice failed: {e}"))
}

#[test]
fn duplicates_are_paid_once_and_summaries_match_the_processors() {
    let stack = Stack::start(&[]);
    let before = now();

    // The same correlationId, five times, through both instances.
    let id = uuid::Uuid::new_v4().to_string();
    for _ in 0..5 {
        let status = post(stack.proxy(), &id, "19.90");
        assert!(status == 202 || status == 200, "{status}");
    }
    // Bad bodies are refused and name the field.
    let r = http::send_json(
        stack.proxy(),
        "POST",
        "/payments",
        r#"{"correlationId":"nope","amount":1}"#,
    )
    .expect("post");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("correlationId"), "{}", r.body);
    let r = http::send_json(stack.proxy(), "POST", "/payments", "{").expect("post");
    assert_eq!(r.status, 400, "{}", r.body);

    stack.wait_settled(1);
    assert_eq!(
        stack.default.summary("").0 + stack.fallback.summary("").0,
        1
    );

    // A burst through both instances, then the summary matches, whole and in part.
    stack.burst(400);
    stack.wait_settled(401);
    stack.assert_consistent("");
    let after = now();
    stack.assert_consistent(&format!("?from={before}&to={after}"));
    stack.assert_consistent(&format!("?from={after}"));
    let r = http::get(stack.proxy(), "/payments-summary?from=yesterday").expect("summary");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("from"), "{}", r.body);

    // Both instances' workers took part: the processors saw the default get them all.
    let [d, f] = stack.summary("");
    assert_eq!(
        (d.0, f.0),
        (401, 0),
        "a healthy default takes every payment"
    );
    assert!((d.1 - 401.0 * 19.90).abs() < 1e-6, "{}", d.1);
    let metric = |line: &str| stack.metric(line);
    assert_eq!(metric("payments_accepted_total{result=\"duplicate\"}"), 4.0);
    assert_eq!(metric("payments_accepted_total{result=\"new\"}"), 401.0);
    assert_eq!(metric("payments_paid_total{processor=\"default\"}"), 401.0);

    // Purge clears our side; the processors keep theirs until purged themselves.
    let r = http::request(stack.proxy(), "POST", "/purge-payments", &[], None).expect("purge");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stack.summary(""), [(0, 0.0), (0, 0.0)]);
    stack.assert_health_limit();
}

/// Now as an RFC 3339 `from`/`to` bound (UTC, ms).
fn now() -> String {
    sluice_backend::rinha::format_instant(chrono::Utc::now())
}

#[test]
fn a_failing_default_sends_payments_to_the_fallback_and_they_come_back() {
    let stack = Stack::start(&[]);
    stack.default.set_failure(true);
    stack.burst(100);
    stack.wait_settled(100);
    let [d, f] = stack.summary("");
    assert_eq!(
        (d.0, f.0),
        (0, 100),
        "the failing default paid nothing; the fallback all"
    );
    stack.assert_consistent("");

    // Recovered: within a health window (and a breaker probe) payments go back to it.
    stack.default.set_failure(false);
    std::thread::sleep(Duration::from_millis(5500));
    stack.burst(100);
    stack.wait_settled(200);
    let [d, f] = stack.summary("");
    assert_eq!(
        (d.0, f.0),
        (100, 100),
        "after recovery the default takes them again"
    );
    stack.assert_consistent("");
    stack.assert_health_limit();
}

#[test]
fn timed_out_payments_are_never_paid_by_both_processors() {
    // The default answers after 600 ms but the instances give up after 200 ms: every call
    // times out, yet the default still pays. Each payment must stay with the default
    // (retries answer 422 "already paid") and never reach the fallback too.
    let stack = Stack::start(&["--processor-timeout-ms", "200", "--lookup-after-ms", "1500"]);
    stack.default.set_delay(600);
    let ids = stack.burst(30);
    stack.wait_settled(30);
    let [d, f] = stack.summary("");
    assert_eq!(d.0 + f.0, 30);
    let (theirs_default, theirs_fallback) =
        (stack.default.summary("").0, stack.fallback.summary("").0);
    assert_eq!(
        theirs_default + theirs_fallback,
        30,
        "processors made {theirs_default} + {theirs_fallback} payments for {} ids",
        ids.len()
    );
    assert_eq!(
        (theirs_default, theirs_fallback),
        (30, 0),
        "every payment stays with the default whose calls timed out"
    );
    stack.assert_consistent("");
    stack.assert_health_limit();
}

#[test]
fn a_crashed_instance_leaves_nothing_unpaid_or_paid_twice() {
    let mut stack = Stack::start(&[]);
    stack.default.set_delay(300);
    stack.burst(300);
    // Kill one instance while it holds payments at the processor; its leftovers are
    // queued again when it restarts.
    stack.instances[1].kill_and_restart();
    stack.wait_settled(300);
    let (theirs_default, theirs_fallback) =
        (stack.default.summary("").0, stack.fallback.summary("").0);
    assert_eq!(theirs_default + theirs_fallback, 300);
    stack.assert_consistent("");
    stack.assert_health_limit();
}

#[test]
fn the_payments_of_an_instance_that_never_comes_back_are_taken_over() {
    let mut stack = Stack::start(&["--heartbeat-ttl-ms", "1500"]);
    stack.default.set_delay(500);
    stack.burst(300);
    // One instance dies holding payments and is not restarted: once its heartbeat
    // expires, the other puts its payments back on the queue and pays them.
    stack.instances[1].process.kill();
    std::thread::sleep(Duration::from_millis(100));
    let (_, _, stranded) = stack.instances[0].queue_stats();
    stack.default.set_delay(0);
    stack.wait_settled(300);
    let (theirs_default, theirs_fallback) =
        (stack.default.summary("").0, stack.fallback.summary("").0);
    assert_eq!(
        theirs_default + theirs_fallback,
        300,
        "{stranded} were in progress at the kill"
    );
    stack.assert_consistent("");
}

#[test]
fn a_redis_outage_refuses_new_payments_and_loses_none_already_accepted() {
    let mut stack = Stack::start_with(Redis::start_durable(), &[]);
    stack.default.set_delay(300);
    stack.burst(100);
    let redis = stack.redis.as_mut().expect("a single Redis");
    redis.stop();
    // No queue: new payments are refused at once (the service's 503, or the gateway's
    // once health checks took the instances out), never left hanging.
    let body = format!(
        r#"{{"correlationId":"{}","amount":1.00}}"#,
        uuid::Uuid::new_v4()
    );
    let r = http::send_json(stack.proxy(), "POST", "/payments", &body).expect("post");
    assert_eq!(r.status, 503, "{}", r.body);
    std::thread::sleep(Duration::from_secs(2));
    stack.redis.as_mut().expect("a single Redis").start_again();
    // What was accepted before the outage is paid, once.
    stack.wait_settled(100);
    let (theirs_default, theirs_fallback) =
        (stack.default.summary("").0, stack.fallback.summary("").0);
    assert_eq!(theirs_default + theirs_fallback, 100);
    stack.assert_consistent("");
}

#[test]
fn a_frozen_instance_cannot_pay_what_another_took_over() {
    // Every call to the default times out (it answers 500 after 600 ms, the instances wait
    // 300 ms), so both instances hold their payments with the outcome unknown.
    let stack = Stack::start(&[
        "--heartbeat-ttl-ms",
        "1500",
        "--lookup-after-ms",
        "1000",
        "--processor-timeout-ms",
        "300",
    ]);
    stack.default.set_delay(600);
    stack.default.set_failure(true);
    stack.burst(200);
    std::thread::sleep(Duration::from_millis(500));
    // One instance freezes (as a long pause, CPU starvation or a partition would freeze
    // it) while it holds payments; the other takes them over once its heartbeat expires,
    // finds the default never made them, and pays them all at the fallback.
    let frozen = &stack.instances[1].process;
    frozen.signal("STOP");
    stack.wait_settled(200);
    // The default recovers, and the frozen instance wakes up with its old view of the
    // payments it no longer owns: it must not pay any of them again.
    stack.default.set_failure(false);
    stack.default.set_delay(0);
    frozen.signal("CONT");
    std::thread::sleep(Duration::from_secs(4));
    let (theirs_default, theirs_fallback) =
        (stack.default.summary("").0, stack.fallback.summary("").0);
    assert_eq!(
        theirs_default + theirs_fallback,
        200,
        "processors made {theirs_default} + {theirs_fallback} payments for 200 ids"
    );
    stack.assert_consistent("");
    assert!(
        stack.metric("payments_taken_over_total") > 0.0,
        "the woken instance had no stale payment refused: the test froze it too late"
    );
}

#[test]
fn on_a_redis_cluster_payments_are_paid_once_through_a_crash_and_a_takeover() {
    // The queue's keys share one hash slot on a cluster: its scripts and transactions use
    // several at once, which a cluster only allows within a slot.
    let mut stack = Stack::start_on_cluster(&["--heartbeat-ttl-ms", "1500"]);
    stack.default.set_delay(300);
    stack.burst(300);
    stack.instances[1].kill_and_restart();
    stack.default.set_delay(0);
    stack.wait_settled(300);
    let (theirs_default, theirs_fallback) =
        (stack.default.summary("").0, stack.fallback.summary("").0);
    assert_eq!(theirs_default + theirs_fallback, 300, "each paid once");
    stack.assert_consistent("");
    let r = http::request(stack.proxy(), "POST", "/purge-payments", &[], None).expect("purge");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stack.summary(""), [(0, 0.0), (0, 0.0)]);
}

#[test]
fn a_processor_slower_than_the_call_timeout_agrees_with_the_summary_at_every_check() {
    // The default answers after 1.2 s: longer than the instances' 500 ms call timeout, but
    // inside the 1.5 s the contest's checks look back. Once its service-health has told
    // the instances, a call waits that long plus the timeout, so each payment is in the
    // ledger as soon as the default holds it. (Before, a call gave up at 500 ms; its retry
    // was answered "already paid" at ~1.75 s, and checks in between saw the default hold
    // payments the summary did not.) `--slow-after-ms` keeps the default the choice.
    let stack = Stack::start(&["--processor-timeout-ms", "500", "--slow-after-ms", "5000"]);
    stack.default.set_delay(1200);
    let polled = stack.default.health_stats().0;
    assert!(
        sluice_testkit::eventually(Duration::from_secs(8), || stack.default.health_stats().0
            > polled),
        "the instances never polled the default's service-health"
    );
    let total = 150;
    let (mut checks, mut inconsistent, mut seen) = (0, Vec::new(), 0);
    std::thread::scope(|scope| {
        let proxy = stack.proxy();
        let poster = scope.spawn(move || {
            for _ in 0..total {
                let status = post(proxy, &uuid::Uuid::new_v4().to_string(), "19.90");
                assert!(
                    (200..300).contains(&status),
                    "POST /payments answered {status}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            let now = chrono::Utc::now();
            let at = |ago_ms: i64| {
                sluice_backend::rinha::format_instant(now - chrono::Duration::milliseconds(ago_ms))
            };
            let query = format!("?from={}&to={}", at(15_000), at(1_500));
            let ours = stack.summary(&query);
            let theirs = [
                stack.default.summary(&query),
                stack.fallback.summary(&query),
            ];
            checks += 1;
            seen = seen.max(theirs[0].0 + theirs[1].0);
            if ours[0].0 + ours[1].0 != theirs[0].0 + theirs[1].0 {
                inconsistent.push(format!(
                    "{query}: ours {ours:?}, the processors' {theirs:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        poster.join().expect("poster");
    });
    assert!(
        seen >= 50,
        "the checks saw only {seen} payments: the test checked too little"
    );
    assert!(
        inconsistent.is_empty(),
        "{} of {checks} checks disagreed, first: {}",
        inconsistent.len(),
        inconsistent[0]
    );
    stack.wait_settled(total);
    assert_eq!(
        stack.default.summary("").0,
        total,
        "the default paid them all"
    );
    stack.assert_consistent("");
    stack.assert_health_limit();
}
