//! Polls the processors' `service-health`, once per health window across *all* payments
//! instances: whoever takes a Redis lease (`SET NX PX`, Redis's own clock) makes the call
//! and stores the answer; every instance reads the stored answers.
//!
//! The lease outlives the processor's window by a margin, so two calls are always in
//! different windows even when the HTTP requests arrive with some jitter.

use super::client::{Health, ProcessorClient};
use super::routing::Routing;
use super::Which;
use redis::AsyncCommands;
use sluice_redis::Conn;
use std::sync::Arc;
use std::time::Duration;

/// How often an instance tries the lease and reads the stored answers.
const TICK: Duration = Duration::from_millis(500);
/// Stored answers older than this are ignored (the poller is gone).
const ANSWER_TTL_S: u64 = 30;

fn lease_key(which: Which) -> String {
    format!("payments:health-lease:{}", which.name())
}

fn answer_key(which: Which) -> String {
    format!("payments:health:{}", which.name())
}

/// Runs forever: polls when holding the lease, feeds `routing` with the latest answers.
pub async fn run(
    mut conn: Conn,
    client: Arc<ProcessorClient>,
    routing: Arc<Routing>,
    instance: String,
    window: Duration,
) {
    let lease_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX) + 250;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for which in [Which::Default, Which::Fallback] {
            if let Err(e) = poll_one(&mut conn, &client, &routing, &instance, which, lease_ms).await
            {
                tracing::debug!(error = %e, processor = which.name(), "health poll skipped");
            }
        }
    }
}

async fn poll_one(
    conn: &mut Conn,
    client: &ProcessorClient,
    routing: &Routing,
    instance: &str,
    which: Which,
    lease_ms: u64,
) -> redis::RedisResult<()> {
    let leased: Option<String> = redis::cmd("SET")
        .arg(lease_key(which))
        .arg(instance)
        .arg("NX")
        .arg("PX")
        .arg(lease_ms)
        .query_async(conn)
        .await?;
    if leased.is_some() {
        if let Some(health) = client.health(which).await {
            let report = Report {
                health,
                at_ms: chrono::Utc::now().timestamp_millis(),
            };
            let text = serde_json::to_string(&report).unwrap_or_default();
            conn.set_ex::<_, _, ()>(answer_key(which), text, ANSWER_TTL_S)
                .await?;
        }
    }
    let stored: Option<String> = conn.get(answer_key(which)).await?;
    match stored.and_then(|s| serde_json::from_str::<Report>(&s).ok()) {
        Some(report) => routing.health(which, report.health, report.at_ms),
        // No recent answer: nobody could ask; the breaker alone decides.
        None => routing.health_unknown(which),
    }
    Ok(())
}

/// A stored service-health answer and when it was given (ms since the Unix epoch).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Report {
    #[serde(flatten)]
    health: Health,
    at_ms: i64,
}
