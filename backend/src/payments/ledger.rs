//! The ledger in PostgreSQL (schema `payments`): what each processor confirmed.

use super::Which;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Runs the payments migrations (in the pool's `payments` schema).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATIONS.run(pool).await
}

/// The `payments` schema's migrations.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/payments");

/// Records a confirmed payment; recording it again changes nothing.
pub async fn record(
    pool: &PgPool,
    correlation_id: &str,
    processor: Which,
    cents: i64,
    requested_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    crate::service_metrics::timed(
        "payments.record",
        sqlx::query(
            "INSERT INTO ledger (correlation_id, processor, amount_cents, requested_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (correlation_id) DO NOTHING",
        )
        .bind(correlation_id)
        .bind(processor.name())
        .bind(cents)
        .bind(requested_at)
        .execute(pool),
    )
    .await?;
    Ok(())
}

/// Count and cents paid through one processor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Payments.
    pub count: i64,
    /// Their sum, in cents.
    pub cents: i64,
}

/// Totals per processor (default, fallback) over `requestedAt` in `from..=to`.
pub async fn summary(
    pool: &PgPool,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(Totals, Totals), sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = crate::service_metrics::timed(
        "payments.summary",
        sqlx::query_as(
            "SELECT processor, count(*), coalesce(sum(amount_cents), 0)::bigint FROM ledger \
         WHERE ($1::timestamptz IS NULL OR requested_at >= $1) \
           AND ($2::timestamptz IS NULL OR requested_at <= $2) \
         GROUP BY processor",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool),
    )
    .await?;
    let mut default = Totals::default();
    let mut fallback = Totals::default();
    for (name, count, cents) in rows {
        let totals = Totals { count, cents };
        match Which::from_name(&name) {
            Some(Which::Default) => default = totals,
            Some(Which::Fallback) => fallback = totals,
            None => {}
        }
    }
    Ok((default, fallback))
}

/// Forgets every payment.
pub async fn purge(pool: &PgPool) -> Result<(), sqlx::Error> {
    crate::service_metrics::timed(
        "payments.purge",
        sqlx::query("TRUNCATE ledger").execute(pool),
    )
    .await?;
    Ok(())
}
