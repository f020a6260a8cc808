//! Request events to Kafka through rdkafka's in-process mock cluster: every request
//! becomes exactly one event, a broker outage delays events without losing them, and an
//! outage longer than the queue holds drops events that are counted exactly.

mod common;

use common::metric;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use sluice_event::RequestEvent;
use sluice_testkit::fake::FakeUpstream;
use sluice_testkit::http;
use sluice_testkit::services::Sluice;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const TOPIC: &str = "sluice.requests";

fn config(brokers: &str, upstream: &FakeUpstream, capacity: usize) -> String {
    format!(
        r#"server: {{ listen: "{{listen}}", admin_listen: "{{admin}}", threads: 2, grace_period_s: 1 }}
kafka: {{ brokers: "{brokers}", topic: "{TOPIC}", queue_capacity: {capacity}, linger_ms: 5 }}
upstreams:
  g: {{ peers: ["{}"] }}
routes:
  - {{ name: app, path_prefix: /app, upstream: g }}
"#,
        upstream.addr
    )
}

/// Reads events until `want` distinct ids arrived or `timeout` passed.
async fn consume(brokers: &str, want: usize, timeout: Duration) -> Vec<RequestEvent> {
    consume_values(brokers, want, timeout).await.0
}

/// Like [`consume`], also returning each message's value as it came.
async fn consume_values(
    brokers: &str,
    want: usize,
    timeout: Duration,
) -> (Vec<RequestEvent>, Vec<Vec<u8>>) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    let mut values = Vec::new();
    let deadline = Instant::now() + timeout;
    while seen.len() < want && Instant::now() < deadline {
        let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await
        else {
            continue;
        };
        values.push(msg.payload().unwrap_or_default().to_vec());
        // A message carries one event or several, one per line.
        for event in RequestEvent::decode_batch(msg.payload().unwrap_or_default()) {
            let event = event.expect("a request event");
            if seen.insert(event.id.clone()) {
                events.push(event);
            }
        }
    }
    (events, values)
}

fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 4, 1).expect("topic");
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_becomes_one_event_and_matches_the_metrics() {
    let cluster = cluster();
    let up = FakeUpstream::start("up");
    let s = Sluice::start(&config(&cluster.bootstrap_servers(), &up, 10_000));
    let n = 300;
    for i in 0..n {
        let path = if i % 10 == 0 { "/nowhere" } else { "/app/x" };
        if i == 1 {
            let r = http::request(
                s.proxy,
                "GET",
                path,
                &[("X-Request-Id", "req-test-1")],
                None,
            )
            .expect("GET");
            assert_eq!(r.header("x-request-id"), Some("req-test-1"));
        } else {
            http::get(s.proxy, path).expect("GET");
        }
    }
    let events = consume(&cluster.bootstrap_servers(), n, Duration::from_secs(20)).await;
    assert_eq!(events.len(), n, "one event per request");
    assert!(
        events
            .iter()
            .any(|e| e.request_id.as_deref() == Some("req-test-1")),
        "the client's request id is in its event"
    );
    let ids: std::collections::HashSet<_> =
        events.iter().filter_map(|e| e.request_id.clone()).collect();
    assert_eq!(ids.len(), n, "every event has its own request id");
    assert!(
        events
            .iter()
            .all(|e| e.http_version.as_deref() == Some("1.1")),
        "every event names the client's protocol"
    );
    let by_route = |r: &str| events.iter().filter(|e| e.route == r).count();
    assert_eq!((by_route("app"), by_route("none")), (270, 30));
    assert!(events
        .iter()
        .filter(|e| e.route == "app")
        .all(|e| e.status == 200
            && e.upstream.is_some()
            && e.breaker.as_deref() == Some("closed")
            && e.upstream_latency_us.is_some_and(|u| u <= e.latency_us)));
    assert!(events
        .iter()
        .filter(|e| e.route == "none")
        .all(|e| e.status == 404 && e.breaker.is_none() && e.upstream_latency_us.is_none()));
    let counted = metric(&s, "sluice_requests_total{");
    assert_eq!(counted, n as f64, "events equal sluice_requests_total");
    assert_eq!(
        metric(&s, "sluice_kafka_events_total{result=\"delivered\"}"),
        n as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_values_carry_every_event_in_compressed_frames() {
    let cluster = cluster();
    let up = FakeUpstream::start("up");
    let yaml = config(&cluster.bootstrap_servers(), &up, 10_000)
        .replace("linger_ms: 5 }", "linger_ms: 5, value_compression: zstd }");
    let s = Sluice::start(&yaml);
    let n = 300;
    for _ in 0..n {
        http::get(s.proxy, "/app/x").expect("GET");
    }
    let (events, values) =
        consume_values(&cluster.bootstrap_servers(), n, Duration::from_secs(20)).await;
    assert_eq!(events.len(), n, "one event per request");
    assert!(!values.is_empty());
    let zstd_magic = [0x28, 0xB5, 0x2F, 0xFD];
    assert!(
        values.iter().all(|v| v.starts_with(&zstd_magic)),
        "every value is a zstd frame"
    );
    let plain: usize = events.iter().map(|e| e.encode().len() + 1).sum();
    let sent: usize = values.iter().map(Vec::len).sum();
    assert!(
        sent * 3 < plain,
        "{sent} bytes on the wire for {plain} bytes of JSON"
    );
    assert_eq!(
        metric(&s, "sluice_kafka_events_total{result=\"delivered\"}"),
        n as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_events_but_loses_none() {
    let cluster = cluster();
    let up = FakeUpstream::start("up");
    let s = Sluice::start(&config(&cluster.bootstrap_servers(), &up, 10_000));
    for _ in 0..50 {
        http::get(s.proxy, "/app/before").expect("GET");
    }
    cluster.broker_down(1).expect("broker down");
    let started = Instant::now();
    for _ in 0..100 {
        let r = http::get(s.proxy, "/app/during").expect("GET");
        assert_eq!(
            r.status, 200,
            "requests are served normally during the outage"
        );
    }
    let during = started.elapsed();
    assert!(
        during < Duration::from_secs(5),
        "serving did not wait for the broker: {during:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    cluster.broker_up(1).expect("broker up");
    for _ in 0..50 {
        http::get(s.proxy, "/app/after").expect("GET");
    }
    let events = consume(&cluster.bootstrap_servers(), 200, Duration::from_secs(30)).await;
    assert_eq!(events.len(), 200, "nothing lost");
    assert_eq!(
        metric(&s, "sluice_kafka_events_total{result=\"dropped\"}"),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_queue_drops_events_and_counts_each() {
    let cluster = cluster();
    let up = FakeUpstream::start("up");
    let s = Sluice::start(&config(&cluster.bootstrap_servers(), &up, 20));
    cluster.broker_down(1).expect("broker down");
    let n = 200;
    for _ in 0..n {
        assert_eq!(http::get(s.proxy, "/app/x").expect("GET").status, 200);
    }
    cluster.broker_up(1).expect("broker up");
    let mut settled = false;
    for _ in 0..60 {
        let delivered = metric(&s, "sluice_kafka_events_total{result=\"delivered\"}");
        let dropped = metric(&s, "sluice_kafka_events_total{result=\"dropped\"}");
        if delivered + dropped == n as f64 {
            settled = true;
            assert!(dropped > 0.0, "a queue of 20 cannot hold 200 events");
            let events = consume(
                &cluster.bootstrap_servers(),
                delivered as usize,
                Duration::from_secs(20),
            )
            .await;
            assert_eq!(
                events.len() as f64,
                delivered,
                "what was counted delivered is on the topic"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(settled, "delivered + dropped never reached {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_spill_dir_an_outage_longer_than_the_queue_loses_nothing_and_keeps_order() {
    let cluster = cluster();
    let up = FakeUpstream::start("up");
    let spill = tempfile::tempdir().expect("tempdir");
    let yaml = config(&cluster.bootstrap_servers(), &up, 20).replace(
        "linger_ms: 5 }",
        &format!("linger_ms: 5, spill_dir: \"{}\" }}", spill.path().display()),
    );
    let s = Sluice::start(&yaml);
    cluster.broker_down(1).expect("broker down");
    let n = 300;
    for _ in 0..n {
        assert_eq!(http::get(s.proxy, "/app/x").expect("GET").status, 200);
    }
    assert!(
        metric(&s, "sluice_kafka_events_total{result=\"spilled\"}") > 0.0,
        "a queue of 20 cannot hold {n} events: some must have been spilled"
    );
    cluster.broker_up(1).expect("broker up");
    let events = consume(&cluster.bootstrap_servers(), n, Duration::from_secs(30)).await;
    let counts = ["queued", "spilled", "delivered", "dropped"]
        .map(|r| metric(&s, &format!("sluice_kafka_events_total{{result=\"{r}\"}}")));
    assert_eq!(
        events.len(),
        n,
        "nothing lost; queued/spilled/delivered/dropped: {counts:?}\n{}",
        s.process.output()
    );
    assert_eq!(
        metric(&s, "sluice_kafka_events_total{result=\"dropped\"}"),
        0.0
    );
    assert_eq!(
        metric(&s, "sluice_kafka_events_total{result=\"delivered\"}"),
        n as f64
    );
    // One client, one key, one partition: the events arrive in the order of the requests.
    let sequence: Vec<u64> = events
        .iter()
        .filter_map(|e| e.id.rsplit('-').next()?.parse().ok())
        .collect();
    assert!(
        sequence.windows(2).all(|w| w[0] < w[1]),
        "out of order: {sequence:?}"
    );
    // Drained: the file is empty again.
    let left = std::fs::metadata(spill.path().join("events.ndjson")).map_or(0, |m| m.len());
    assert_eq!(left, 0, "the spill file is emptied once drained");
}

/// Hardening #5: requests that finish during a graceful stop still get their events to
/// the broker. Before, the producer loop ended when the grace period began, so the events
/// of the requests still in flight then were never sent (0 of 20 arrived).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_requests_that_finish_during_a_graceful_stop_are_delivered() {
    let cluster = cluster();
    let up = FakeUpstream::start("up");
    let yaml = config(&cluster.bootstrap_servers(), &up, 10_000)
        .replace("grace_period_s: 1", "grace_period_s: 10");
    let mut s = Sluice::start(&yaml);
    let proxy = s.proxy;
    // The fake answers paths with /slow after one second.
    let slow: Vec<_> = (0..20)
        .map(|i| std::thread::spawn(move || http::get(proxy, &format!("/app/slow/{i}"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.process.signal(sluice_testkit::process::signal::TERM);
    for t in slow {
        let r = t
            .join()
            .expect("client thread")
            .expect("answered during the stop");
        assert_eq!(r.status, 200);
    }
    let exit = s.process.wait_exit(Duration::from_secs(15));
    assert!(exit.is_some_and(|e| e.success()), "{exit:?}");
    let events = consume(&cluster.bootstrap_servers(), 20, Duration::from_secs(20)).await;
    let slow_events = events.iter().filter(|e| e.path.contains("/slow/")).count();
    assert_eq!(
        slow_events, 20,
        "every request answered during the stop has its event"
    );
}

/// A broker that comes up without the events topic holds sluice's events until the topic
/// appears, also past librdkafka's default 30 s for a missing topic (which then failed
/// them as `UnknownTopicOrPartition`). analytics creates the topic when it starts, and
/// `make up`'s first run starts the broker and analytics minutes after sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_a_topic_created_after_they_were_sent() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let broker = sluice_testkit::tansu::Tansu::start();
    let up = FakeUpstream::start("up");
    let s = Sluice::start(&config(&broker.brokers(), &up, 10_000));
    for _ in 0..20 {
        http::get(s.proxy, "/app/early").expect("GET");
    }
    tokio::time::sleep(Duration::from_secs(35)).await;
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .create()
        .expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(TOPIC, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let events = consume(&broker.brokers(), 20, Duration::from_secs(30)).await;
    assert_eq!(events.len(), 20, "nothing lost:\n{}", s.process.output());
    assert_eq!(
        metric(&s, "sluice_kafka_events_total{result=\"dropped\"}"),
        0.0
    );
}
