//! The consumer loop: batches of up to 1,000 messages or 200 ms, each applied in one
//! transaction (see `store::apply_batch`). Kafka's own committed offsets only decide where
//! a restarted member starts reading; PostgreSQL's decide what counts.

use crate::progress::Progress;
use crate::store::{self, Consumed};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::Offset;
use sqlx::PgPool;
use std::collections::BTreeMap;
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
        apply(&consumer, &pool, &topic, &batch, &progress).await;
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
            tracing::debug!(error = %e, "committing kafka offsets (an optimisation only)");
        }
    }
}

/// Applies `batch`. The database being away must not lose it: it is retried until it
/// applies (and `/health` says so after a while). A batch the database *refuses* (a
/// data error: a value it cannot hold) is applied one message at a time instead, and the
/// message it refuses is quarantined in `dead_letters`, so one bad event never blocks its
/// partition.
async fn apply(
    consumer: &StreamConsumer,
    pool: &PgPool,
    topic: &str,
    batch: &[Consumed],
    progress: &Progress,
) {
    loop {
        match store::apply_batch(pool, topic, batch).await {
            Ok(outcome) => {
                progress.set_failing(false);
                tracing::debug!(?outcome, "batch applied");
                rewind_logs_that_started_over(consumer, pool, topic, &outcome.skipped_below).await;
                return;
            }
            Err(e) if is_refusal(&e) && batch.len() > 1 => {
                tracing::warn!(error = %e, "the database refused a batch; applying it message by message");
                for m in batch {
                    Box::pin(apply(
                        consumer,
                        pool,
                        topic,
                        std::slice::from_ref(m),
                        progress,
                    ))
                    .await;
                }
                return;
            }
            Err(e) if is_refusal(&e) => {
                let Some(m) = batch.first() else { return };
                tracing::error!(error = %e, partition = m.partition, offset = m.offset, "the database refused a message; quarantined in dead_letters");
                match store::quarantine_message(pool, topic, m, &e.to_string()).await {
                    Ok(()) => {
                        progress.set_failing(false);
                        return;
                    }
                    Err(e) => {
                        progress.set_failing(true);
                        tracing::warn!(error = %e, "quarantining failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            Err(e) => {
                progress.set_failing(true);
                tracing::warn!(error = %e, "applying a batch failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Whether the database refused the data itself (SQLSTATE class 22, data exception, or
/// 23, integrity), as opposed to being unreachable: retrying the same data cannot help.
fn is_refusal(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        _ => false,
    }
}

/// Messages below a partition's stored position are normally replays (Kafka's committed
/// offsets trail PostgreSQL's) and rightly skipped. But when the broker's log for that
/// partition now ends below the stored position, the log itself started over (topic
/// re-created, broker data wiped): the position belongs to a log that is gone, and every
/// event up to it would be skipped as a "replay". Such a partition is read again from its
/// start with the position forgotten. Seek first, then forget: the consumer loop applies
/// nothing in between, so no message of the new log can set a position the re-read would
/// skip. (A new log that has already grown past the old position cannot be told apart.)
async fn rewind_logs_that_started_over(
    consumer: &StreamConsumer,
    pool: &PgPool,
    topic: &str,
    skipped_below: &BTreeMap<i32, i64>,
) {
    for (&partition, &stored) in skipped_below {
        let high = tokio::task::block_in_place(|| {
            consumer.fetch_watermarks(topic, partition, Duration::from_secs(2))
        });
        let high = match high {
            Ok((_, high)) if high < stored => high,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, partition, "no high watermark to check a replay against");
                continue;
            }
        };
        tracing::warn!(
            partition,
            stored_position = stored,
            high_watermark = high,
            "the broker's log ends below the stored position: the topic was re-created or \
             its data wiped; counting this partition again from its start"
        );
        let seek = tokio::task::block_in_place(|| {
            consumer.seek(topic, partition, Offset::Beginning, Duration::from_secs(5))
        });
        if let Err(e) = seek {
            tracing::warn!(error = %e, partition, "could not rewind the partition; will retry on the next replay");
            continue;
        }
        if let Err(e) = store::forget_position(pool, topic, partition, stored).await {
            tracing::warn!(error = %e, partition, "could not forget the stale position");
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
