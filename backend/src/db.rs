//! PostgreSQL connections for a service that owns one schema.
//!
//! Each service keeps its tables (and sqlx's migration table) in its own schema, so the
//! todo, payments and analytics migrations never see each other in a shared database.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// How long a request waits for a pooled connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens a pool whose connections use `schema`, creating the schema if needed.
pub async fn connect(url: &str, schema: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let mut conn = options.connect().await?;
    // Two instances starting at once would race on CREATE SCHEMA; serialize them.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(schema)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    conn.close().await?;

    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.options([("search_path", schema)]))
        .await
}

/// Retries [`connect`] until `deadline` passes, for services started alongside their
/// database.
pub async fn connect_with_retry(
    url: &str,
    schema: &str,
    max_connections: u32,
    deadline: Duration,
) -> Result<PgPool, sqlx::Error> {
    let start = tokio::time::Instant::now();
    loop {
        match connect(url, schema, max_connections).await {
            Ok(pool) => return Ok(pool),
            Err(e) if start.elapsed() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `error` means the database could not be reached (as opposed to a bad query).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}
