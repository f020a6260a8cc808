//! Events -> Kafka (mock cluster) -> consumer -> PostgreSQL -> API: totals are exact,
//! replays change nothing, a consumer killed mid-run loses and doubles nothing.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use sluice_analytics::{api, consumer, store};
use sluice_event::RequestEvent;
use sluice_testkit::postgres::Postgres;
use std::time::Duration;
use tower::ServiceExt;

const TOPIC: &str = "sluice.requests";

fn event(i: usize) -> RequestEvent {
    let now = chrono::Utc::now().timestamp_millis();
    RequestEvent {
        v: sluice_event::VERSION,
        id: format!("t-{i}"),
        ts: now,
        route: if i.is_multiple_of(2) {
            "todo".into()
        } else {
            "api".into()
        },
        method: "GET".into(),
        path: "/x".into(),
        status: match i % 10 {
            0 => 429,
            1 => 503,
            _ => 200,
        },
        key_id: (i % 2 == 1).then(|| {
            if i % 4 == 1 {
                "key_a".to_string()
            } else {
                "key_b".to_string()
            }
        }),
        tier: None,
        client_ip: Some("127.0.0.1".into()),
        upstream: None,
        latency_us: 1000 + (i as u64 % 7) * 100,
        upstream_latency_us: None,
        breaker: None,
        bytes_in: 0,
        bytes_out: 10,
        limited: i.is_multiple_of(10),
        limiter: None,
        hedged: false,
        request_id: None,
        http_version: None,
        retries: 0,
    }
}

async fn produce(brokers: &str, range: std::ops::Range<usize>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("producer");
    for i in range {
        let e = event(i);
        let payload = e.encode();
        producer
            .send(
                FutureRecord::to(TOPIC).key(&e.id).payload(&payload),
                Duration::from_secs(5),
            )
            .await
            .expect("produced");
    }
}

async fn get(app: &axum::Router, uri: &str) -> (u16, Value) {
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .uri(uri)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn wait_for_total(app: &axum::Router, want: i64) -> i64 {
    let mut last = 0;
    for _ in 0..100 {
        last = get(app, "/analytics/summary").await.1["requests"]
            .as_i64()
            .unwrap_or(0);
        if last == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// The analytics service around a throwaway PostgreSQL: its API, and consumers on demand.
struct Analytics {
    _pg: Postgres,
    pool: sqlx::PgPool,
    progress: std::sync::Arc<sluice_analytics::progress::Progress>,
    app: axum::Router,
}

impl Analytics {
    async fn start() -> Self {
        let pg = Postgres::start();
        let pool = sluice_backend::db::connect(&pg.url(), "analytics", 4)
            .await
            .expect("db");
        store::migrate(&pool).await.expect("migrate");
        let progress = std::sync::Arc::new(sluice_analytics::progress::Progress::default());
        let app = api::app(api::AppState {
            pool: pool.clone(),
            progress: progress.clone(),
        });
        Self {
            _pg: pg,
            pool,
            progress,
            app,
        }
    }

    /// A consumer-group member reading from `brokers`, until aborted.
    fn consume(&self, brokers: &str, group: &str) -> tokio::task::JoinHandle<()> {
        tokio::spawn(consumer::run(
            consumer::consumer(brokers, group, TOPIC).expect("consumer"),
            self.pool.clone(),
            TOPIC.into(),
            self.progress.clone(),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_are_exact_across_replays_and_a_killed_consumer() {
    let analytics = Analytics::start().await;
    let app = &analytics.app;
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 4, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();

    produce(&brokers, 0..500).await;
    let first = analytics.consume(&brokers, "analytics");
    assert_eq!(wait_for_total(app, 500).await, 500);
    let (_, summary) = get(app, "/analytics/summary").await;
    assert_eq!(summary["by_route"]["todo"], 250);
    assert_eq!(summary["by_route"]["api"], 250);
    assert_eq!(summary["limited"], 50);
    assert_eq!(summary["errors"], 50);
    assert_eq!(summary["by_status"]["2xx"], 400);
    let (_, key_a) = get(app, "/analytics/keys/key_a").await;
    assert_eq!(key_a["requests"], 125);
    let p50 = summary["latency_ms"]["p50"].as_f64().expect("p50");
    assert!((1.0..=1.6).contains(&p50), "{p50}");

    // A consumer in a brand-new group re-reads everything from the start: nothing changes.
    let replay = analytics.consume(&brokers, "analytics-replay");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        wait_for_total(app, 500).await,
        500,
        "a full replay is not counted twice"
    );
    replay.abort();

    // Kill the consumer in the middle of a stream and start another member: exact again.
    let more = tokio::spawn({
        let brokers = brokers.clone();
        async move { produce(&brokers, 500..900).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.abort();
    more.await.expect("producer task");
    let _second = analytics.consume(&brokers, "analytics");
    assert_eq!(wait_for_total(app, 900).await, 900);

    // Garbage on the topic is skipped.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    producer
        .send(
            FutureRecord::to(TOPIC).key("x").payload("not an event"),
            Duration::from_secs(5),
        )
        .await
        .expect("produced");
    produce(&brokers, 900..910).await;
    assert_eq!(wait_for_total(app, 910).await, 910);
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let analytics = Analytics::start().await;
    let app = &analytics.app;
    for (uri, param) in [
        ("/analytics/summary?from=yesterday", "from: "),
        ("/analytics/routes?to=soon", "to: "),
        ("/analytics/timeseries?step=90", "step: "),
        (
            "/analytics/summary?from=2026-11-22T12:00:00Z&to=2026-11-22T11:00:00Z",
            "from: must not be after to",
        ),
    ] {
        let (status, body) = get(app, uri).await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert!(
            body["message"].as_str().unwrap_or("").starts_with(param),
            "{uri}: {body}"
        );
    }
    let (status, body) = get(app, "/analytics/timeseries?step=300").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["step"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_started_over_is_counted_from_its_start() {
    let analytics = Analytics::start().await;
    let app = &analytics.app;
    let run = |brokers: &str| analytics.consume(brokers, "analytics");

    let old = MockCluster::new(1).expect("mock cluster");
    old.create_topic(TOPIC, 4, 1).expect("topic");
    produce(&old.bootstrap_servers(), 0..400).await;
    let first = run(&old.bootstrap_servers());
    assert_eq!(wait_for_total(app, 400).await, 400);
    first.abort();

    // The broker's data is gone (a new cluster: same topic, offsets from 0 again, every
    // partition's log shorter than the positions stored for the old one).
    let new = MockCluster::new(1).expect("mock cluster");
    new.create_topic(TOPIC, 4, 1).expect("topic");
    produce(&new.bootstrap_servers(), 400..500).await;
    let _second = run(&new.bootstrap_servers());
    assert_eq!(
        wait_for_total(app, 500).await,
        500,
        "the new log's events are counted, not skipped as replays of the old one"
    );
    // And once only: a while later the total has not moved.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(wait_for_total(app, 500).await, 500);
}

/// Hardening #3: events the database cannot store (a timestamp out of its range, a NUL in
/// a string, sums past bigint) are quarantined in `dead_letters` and counted; the events
/// around them are counted as usual and `/health` stays ok. Before, the first such event
/// made its batch fail for ever ("timestamp out of range", retried every second), nothing
/// after it was counted, and `/health` still said ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_events_are_quarantined_and_never_block_their_partition() {
    let analytics = Analytics::start().await;
    let app = &analytics.app;
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let send = |e: RequestEvent| {
        let producer = producer.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(TOPIC).key("k").payload(&e.encode()),
                    Duration::from_secs(5),
                )
                .await
                .expect("produced");
        }
    };
    produce(&brokers, 0..50).await;
    send(RequestEvent {
        ts: -1_000_000_000_000_000,
        id: "poison-ts".into(),
        ..event(50)
    })
    .await;
    send(RequestEvent {
        route: "nul\0route".into(),
        id: "poison-nul".into(),
        ..event(51)
    })
    .await;
    // Two huge sizes for one minute's row, in two batches: the second overflows the
    // stored bigint sum, which only the database can see.
    // One timestamp for both: taken at each send, they could fall either side of a
    // minute boundary, into two rows that never overflow (seen under load: 102 counted).
    let minute = event(52).ts;
    let huge = |id: &str| RequestEvent {
        bytes_out: u64::MAX,
        id: id.into(),
        route: "huge".into(),
        ts: minute,
        ..event(52)
    };
    send(huge("huge-1")).await;
    let _consumer = analytics.consume(&brokers, "analytics");
    assert_eq!(
        wait_for_total(app, 51).await,
        51,
        "50 + 1 huge, past two poisons"
    );
    send(huge("huge-2")).await;
    produce(&brokers, 100..150).await;
    assert_eq!(
        wait_for_total(app, 101).await,
        101,
        "the 50 after the overflowing one are counted"
    );
    let dead: Vec<String> = sqlx::query_scalar("SELECT reason FROM dead_letters ORDER BY id")
        .fetch_all(&analytics.pool)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(dead[0].starts_with("ts outside"), "{dead:?}");
    assert!(dead[1].contains("NUL"), "{dead:?}");
    assert!(dead[2].contains("out of range"), "{dead:?}");
    let (status, health) = get(app, "/health").await;
    assert_eq!(status, 200, "{health}");
}
