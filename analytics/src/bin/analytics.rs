//! `analytics` — consumes sluice's request events into PostgreSQL and serves the query
//! API. Several instances with the same `--group` split the topic's partitions.

use anyhow::Context;
use clap::Parser;
use sluice_analytics::{api, consumer, store, topic};
use sluice_backend::start;
use std::net::SocketAddr;
use std::time::Duration;

/// sluice's analytics service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// API port.
    #[arg(long, default_value_t = 8100)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
    brokers: String,
    /// Topic of request events.
    #[arg(long, default_value = "sluice.requests")]
    topic: String,
    /// Consumer group.
    #[arg(long, default_value = "sluice-analytics")]
    group: String,
    /// Partitions of the topic when it has to be created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
}

/// Runs the analytics service until it is stopped; public for `sluice-services`, which
/// includes this file as a module.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    start::telemetry("analytics");
    let cli = Cli::parse();
    let pool = start::database(&cli.database_url, "analytics", 8, &store::MIGRATIONS).await?;
    // Retried: the broker may still be starting.
    let mut tries = 0;
    while let Err(e) = topic::ensure_topic(&cli.brokers, &cli.topic, cli.partitions).await {
        tries += 1;
        if tries >= 30 {
            return Err(e).context("creating the events topic");
        }
        tracing::warn!(error = %e, "broker not ready; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let consumer = consumer::consumer(&cli.brokers, &cli.group, &cli.topic)
        .context("creating the kafka consumer")?;
    let progress = std::sync::Arc::new(sluice_analytics::progress::Progress::default());
    tokio::spawn(consumer::run(
        consumer,
        pool.clone(),
        cli.topic.clone(),
        progress.clone(),
    ));

    let addr = SocketAddr::new(cli.bind, cli.port);
    tracing::info!(brokers = %cli.brokers, topic = %cli.topic, "analytics");
    start::serve(
        "analytics",
        addr,
        api::app(api::AppState { pool, progress }),
    )
    .await?;
    Ok(())
}
