//! PostgreSQL: the aggregates and the consumed offsets, always written together.

use crate::aggregate::{self, Counts, Key};
use chrono::{DateTime, Utc};
use sluice_event::RequestEvent;
use sqlx::{PgPool, Row};
use std::collections::{BTreeMap, HashMap};

/// One consumed Kafka message.
#[derive(Debug, Clone)]
pub struct Consumed {
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// The message value.
    pub payload: Vec<u8>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events added to the aggregates (a message may carry several).
    pub applied: u64,
    /// Messages already applied before (replays), skipped.
    pub replayed: u64,
    /// Messages that were not events, skipped (and counted).
    pub malformed: u64,
    /// Events that could not be stored, kept in `dead_letters` instead.
    pub quarantined: u64,
    /// Partitions where messages were skipped as replays, with the stored position that
    /// skipped them (see `consumer`: a log that restarted looks like a replay at first).
    pub skipped_below: BTreeMap<i32, i64>,
}

/// Runs the analytics migrations (in the pool's `analytics` schema).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATIONS.run(pool).await
}

/// The `analytics` schema's migrations.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/analytics");

/// Earliest and latest event time stored: 1970 to the end of year 9999 (PostgreSQL's
/// range is wider; anything outside this is a broken clock or a forged event).
const TS_RANGE_MS: std::ops::RangeInclusive<i64> = 0..=253_402_300_799_999;

/// Why `event` cannot be stored, if it cannot.
pub fn unstorable(event: &RequestEvent) -> Option<&'static str> {
    if !TS_RANGE_MS.contains(&event.ts) {
        return Some("ts outside 1970..9999");
    }
    let strings = [Some(event.route.as_str()), event.key_id.as_deref()];
    if strings.into_iter().flatten().any(|s| s.contains('\0')) {
        return Some("a NUL character in route or key_id");
    }
    None
}

/// One event or message kept out of the aggregates.
struct DeadLetter<'a> {
    partition: i32,
    offset: i64,
    reason: String,
    payload: &'a [u8],
}

async fn insert_dead_letter(
    tx: &mut sqlx::PgConnection,
    topic: &str,
    letter: &DeadLetter<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dead_letters (topic, partition, \"offset\", reason, payload) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(topic)
    .bind(letter.partition)
    .bind(letter.offset)
    .bind(&letter.reason)
    .bind(letter.payload)
    .execute(tx)
    .await?;
    Ok(())
}

/// Keeps message `m` in `dead_letters` and moves its partition past it, in one
/// transaction: for a message whose events the database refuses (the consumer finds it
/// by applying a failing batch one message at a time).
pub async fn quarantine_message(
    pool: &PgPool,
    topic: &str,
    m: &Consumed,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let letter = DeadLetter {
        partition: m.partition,
        offset: m.offset,
        reason: reason.to_string(),
        payload: &m.payload,
    };
    insert_dead_letter(&mut tx, topic, &letter).await?;
    advance(&mut tx, topic, m.partition, m.offset + 1).await?;
    tx.commit().await
}

async fn advance(
    tx: &mut sqlx::PgConnection,
    topic: &str,
    partition: i32,
    next_offset: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consumed_offsets (topic, partition, next_offset) VALUES ($1, $2, $3) \
         ON CONFLICT (topic, partition) DO UPDATE SET \
           next_offset = GREATEST(consumed_offsets.next_offset, EXCLUDED.next_offset)",
    )
    .bind(topic)
    .bind(partition)
    .bind(next_offset)
    .execute(tx)
    .await?;
    Ok(())
}

fn minute(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Applies a batch exactly once: in one transaction, skips messages below the stored
/// next offset of their partition, adds the rest to the aggregates, and moves the
/// offsets on. A crash before commit leaves nothing; a replay after commit is skipped.
pub async fn apply_batch(
    pool: &PgPool,
    topic: &str,
    batch: &[Consumed],
) -> Result<BatchOutcome, sqlx::Error> {
    sluice_backend::service_metrics::timed("analytics.apply_batch", apply(pool, topic, batch)).await
}

/// [`apply_batch`], untimed.
async fn apply(
    pool: &PgPool,
    topic: &str,
    batch: &[Consumed],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let partitions: Vec<i32> = {
        let mut p: Vec<i32> = batch.iter().map(|m| m.partition).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let rows = sqlx::query(
        "SELECT partition, next_offset FROM consumed_offsets \
         WHERE topic = $1 AND partition = ANY($2) FOR UPDATE",
    )
    .bind(topic)
    .bind(&partitions)
    .fetch_all(&mut *tx)
    .await?;
    let mut next: HashMap<i32, i64> = rows
        .iter()
        .map(|r| Ok((r.try_get::<i32, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;

    let mut outcome = BatchOutcome::default();
    let mut aggregates: HashMap<Key, Counts> = HashMap::new();
    let mut new_next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut dead = Vec::new();
    for m in batch {
        let from = next.get(&m.partition).copied().unwrap_or(0);
        if m.offset < from {
            outcome.replayed += 1;
            outcome.skipped_below.insert(m.partition, from);
            continue;
        }
        next.insert(m.partition, m.offset + 1);
        new_next.insert(m.partition, m.offset + 1);
        for decoded in RequestEvent::decode_batch(&m.payload) {
            match decoded {
                Ok(event) => match unstorable(&event) {
                    None => {
                        aggregate::add(&mut aggregates, &event);
                        outcome.applied += 1;
                    }
                    Some(reason) => {
                        tracing::warn!(
                            reason,
                            partition = m.partition,
                            offset = m.offset,
                            "quarantining an event that cannot be stored"
                        );
                        outcome.quarantined += 1;
                        dead.push(DeadLetter {
                            partition: m.partition,
                            offset: m.offset,
                            reason: format!("{reason} (event {})", event.id),
                            payload: &m.payload,
                        });
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, partition = m.partition, offset = m.offset, "skipping a line that is not a request event");
                    outcome.malformed += 1;
                }
            }
        }
    }
    for (key, c) in &aggregates {
        sqlx::query(
            "INSERT INTO minute_stats (minute, route, key_id, status_class, count, errors, limited, \
               hedged, retried, bytes_in, bytes_out, latency_hist) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (minute, route, key_id, status_class) DO UPDATE SET \
               count = minute_stats.count + EXCLUDED.count, \
               errors = minute_stats.errors + EXCLUDED.errors, \
               limited = minute_stats.limited + EXCLUDED.limited, \
               hedged = minute_stats.hedged + EXCLUDED.hedged, \
               retried = minute_stats.retried + EXCLUDED.retried, \
               bytes_in = minute_stats.bytes_in + EXCLUDED.bytes_in, \
               bytes_out = minute_stats.bytes_out + EXCLUDED.bytes_out, \
               latency_hist = (SELECT array_agg(a + b ORDER BY i) FROM \
                 unnest(minute_stats.latency_hist, EXCLUDED.latency_hist) WITH ORDINALITY AS t(a, b, i))",
        )
        .bind(minute(key.minute_ms))
        .bind(&key.route)
        .bind(&key.key_id)
        .bind(key.status_class)
        .bind(c.count)
        .bind(c.errors)
        .bind(c.limited)
        .bind(c.hedged)
        .bind(c.retried)
        .bind(c.bytes_in)
        .bind(c.bytes_out)
        .bind(&c.hist)
        .execute(&mut *tx)
        .await?;
    }
    for letter in &dead {
        insert_dead_letter(&mut tx, topic, letter).await?;
    }
    for (partition, offset) in new_next {
        advance(&mut tx, topic, partition, offset).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Forgets `partition`'s stored position if it is still `stored` (so a move made since by
/// another member stands). Its next message is then counted whatever its offset. True
/// when it was forgotten.
pub async fn forget_position(
    pool: &PgPool,
    topic: &str,
    partition: i32,
    stored: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM consumed_offsets WHERE topic = $1 AND partition = $2 AND next_offset = $3",
    )
    .bind(topic)
    .bind(partition)
    .bind(stored)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A stored row, for the API.
#[derive(Debug, Clone)]
pub struct StatRow {
    /// Minute start.
    pub minute: DateTime<Utc>,
    /// Route.
    pub route: String,
    /// Key id (`""` for none).
    pub key_id: String,
    /// Status class.
    pub status_class: String,
    /// Values.
    pub counts: Counts,
}

/// Most rows a query loads; [`rows`] returns one more when the range holds more.
pub const MAX_ROWS: usize = 100_000;

/// Rows with `from <= minute <= to`, optionally of one route or one key: at most
/// [`MAX_ROWS`] + 1 (the caller refuses a range that holds more).
pub async fn rows(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    route: Option<&str>,
    key_id: Option<&str>,
) -> Result<Vec<StatRow>, sqlx::Error> {
    let rows = sluice_backend::service_metrics::timed(
        "analytics.rows",
        sqlx::query(
            "SELECT minute, route, key_id, status_class, count, errors, limited, hedged, retried, \
                bytes_in, bytes_out, latency_hist \
         FROM minute_stats \
         WHERE minute >= $1 AND minute <= $2 \
           AND ($3::text IS NULL OR route = $3) AND ($4::text IS NULL OR key_id = $4) \
         ORDER BY minute LIMIT $5",
        )
        .bind(from)
        .bind(to)
        .bind(route)
        .bind(key_id)
        .bind(i64::try_from(MAX_ROWS + 1).unwrap_or(i64::MAX))
        .fetch_all(pool),
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StatRow {
                minute: r.try_get(0)?,
                route: r.try_get(1)?,
                key_id: r.try_get(2)?,
                status_class: r.try_get(3)?,
                counts: Counts {
                    count: r.try_get(4)?,
                    errors: r.try_get(5)?,
                    limited: r.try_get(6)?,
                    hedged: r.try_get(7)?,
                    retried: r.try_get(8)?,
                    bytes_in: r.try_get(9)?,
                    bytes_out: r.try_get(10)?,
                    hist: r.try_get(11)?,
                },
            })
        })
        .collect()
}
