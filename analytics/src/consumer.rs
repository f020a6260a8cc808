//! The consumer loop: batches of up to 1,000 messages or 200 ms, each applied in one
//! transaction (see `store::apply_batch`). Kafka's own committed offsets only decide where
//! a restarted member starts reading; PostgreSQL's decide what counts.

use crate::progress::Progress;
use crate::store::{self, Consumed};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const BATCH: usize = 1000;
const BATCH_WAIT: Duration = Duration::from_millis(200);
/// How often positions are compared with the broker's high watermarks.
const PROGRESS_CHECK: Duration = Duration::from_secs(30);

/// A group member reading `topic` from `brokers`.
pub fn consumer(
    brokers: &str,
    group: &str,
    topic: &str,
) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // A member that died (SIGKILL) holds its partitions until its session times out;
        // keep that short so a restarted member takes over within seconds.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "2000")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Consumes forever (until the task is dropped), checking its progress now and then.
pub async fn run(consumer: StreamConsumer, pool: PgPool, topic: String, progress: Arc<Progress>) {
    let mut next_check = Instant::now() + PROGRESS_CHECK;
    loop {
        if Instant::now() >= next_check {
            next_check = Instant::now() + PROGRESS_CHECK;
            check_progress(&consumer, &topic, &progress);
        }
        let mut batch = Vec::new();
        let deadline = Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(Consumed {
                    partition: m.partition(),
                    offset: m.offset(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                }),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        // The database being away must not lose the batch: retry it until it applies.
        loop {
            match store::apply_batch(&pool, &topic, &batch).await {
                Ok(outcome) => {
                    tracing::debug!(?outcome, "batch applied");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "applying a batch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
            tracing::debug!(error = %e, "committing kafka offsets (an optimisation only)");
        }
    }
}

/// Compares each held partition's position with its high watermark (a blocking broker
/// call, made off the async workers) and logs stalls as they start and end.
fn check_progress(consumer: &StreamConsumer, topic: &str, progress: &Progress) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    let held: Vec<(i32, i64, i64)> = tokio::task::block_in_place(|| {
        positions
            .elements_for_topic(topic)
            .iter()
            .filter_map(|e| {
                let position = e.offset().to_raw()?;
                let (_, high) = consumer
                    .fetch_watermarks(topic, e.partition(), Duration::from_secs(2))
                    .ok()?;
                (position >= 0).then_some((e.partition(), position, high))
            })
            .collect()
    });
    tracing::debug!(?held, assigned = positions.count(), "progress check");
    if progress.assigned(positions.count()) == 2 {
        tracing::error!(
            "no partition assigned to this member for two checks: more members than \
             partitions, or the group coordinator is not completing the join"
        );
    }
    let before = progress.stalled();
    let now = progress.check(&held);
    for stall in now
        .iter()
        .filter(|s| !before.iter().any(|b| b.partition == s.partition))
    {
        tracing::error!(
            partition = stall.partition,
            position = stall.position,
            high_watermark = stall.high_watermark,
            "consumer stalled: the broker holds records past this offset but serves none"
        );
    }
    if !before.is_empty() && now.is_empty() {
        tracing::info!("consumer moving again");
    }
}
