//! `payments` — the payments service (Rinha de Backend 2025 API). Any number of
//! instances share one Redis (queue) and one PostgreSQL (ledger); each needs its own
//! `--instance` name (the stack uses the port).

use anyhow::Context;
use clap::Parser;
use sluice_backend::payments::client::ProcessorClient;
use sluice_backend::payments::queue::Queue;
use sluice_backend::payments::routing::Routing;
use sluice_backend::payments::worker::Workers;
use sluice_backend::payments::{self, health, ledger, AppState};
use sluice_backend::start;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The payments service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Port to listen on.
    #[arg(long, default_value_t = 8091)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// This instance's name, unique among the instances (default: the port).
    #[arg(long)]
    instance: Option<String>,
    /// PostgreSQL URL (the ledger, schema `payments`).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Redis URL (the queue): `redis://host:port`, or `redis+cluster://host:port,host:port`
    /// for a Redis Cluster.
    #[arg(long, env = "REDIS_URL")]
    redis_url: String,
    /// The default payment processor.
    #[arg(
        long,
        env = "PROCESSOR_DEFAULT_URL",
        default_value = "http://127.0.0.1:8001"
    )]
    default_url: String,
    /// The fallback payment processor.
    #[arg(
        long,
        env = "PROCESSOR_FALLBACK_URL",
        default_value = "http://127.0.0.1:8002"
    )]
    fallback_url: String,
    /// How long a payment call may take beyond the processor's reported minimum response
    /// time before its outcome counts as unknown, ms (also the bound of a lookup).
    #[arg(long, default_value_t = 8000)]
    processor_timeout_ms: u64,
    /// A processor whose answers take this long (reported by its service-health, or seen
    /// in a call) gets new payments only when the other is no faster, ms. Below the
    /// contest's 1.5 s check margin: a payment answered later is held by the processor
    /// before the ledger can show it.
    #[arg(long, default_value_t = 1000)]
    slow_after_ms: u64,
    /// The processors' service-health window, ms: polled at most once per window.
    #[arg(long, default_value_t = 5000)]
    health_window_ms: u64,
    /// After a processor call timed out, how long to keep retrying it before asking it
    /// whether it holds the payment, ms (also the least quiet time before its "not found"
    /// counts). Must exceed the longest call a processor may still complete.
    #[arg(long, default_value_t = 10_000)]
    lookup_after_ms: u64,
    /// This instance counts as alive this long after each heartbeat, ms; the others take
    /// over its payments when it has been silent that long.
    #[arg(long, default_value_t = 15_000)]
    heartbeat_ttl_ms: u64,
    /// Payments this instance has at the processors at once.
    #[arg(long, default_value_t = 300)]
    max_in_flight: usize,
    /// Threads of the worker runtime (the HTTP API has its own).
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
    /// The worker runtime's threads run at this niceness (0–19; 0 = as the rest): a
    /// burst of payments to settle, as when a processor comes back after an outage, then
    /// takes CPU from `POST /payments` last, whose latency clients see.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    worker_nice: i32,
    /// Pool size.
    #[arg(long, default_value_t = 8)]
    max_connections: u32,
}

/// Runs the payments service until it is stopped; public for `sluice-services`, which
/// includes this file as a module.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    start::telemetry("payments");
    // Registered now, so the first scrape already shows them (at 0).
    let _ = sluice_backend::payments::metrics::metrics();
    let cli = Cli::parse();
    let instance = cli.instance.clone().unwrap_or_else(|| cli.port.to_string());
    let pool = start::database(
        &cli.database_url,
        "payments",
        cli.max_connections,
        &ledger::MIGRATIONS,
    )
    .await?;
    // redis://host:port, or redis+cluster://host:port,host:port,… for a Redis Cluster.
    let redis = sluice_redis::Target::parse(&cli.redis_url, Duration::from_secs(1))
        .context("reading the Redis URL")?;
    let queue = Queue::connect(&redis, &instance)
        .await
        .context("connecting to Redis")?;
    let timeout = Duration::from_millis(cli.processor_timeout_ms);
    let client = Arc::new(
        ProcessorClient::new(&cli.default_url, &cli.fallback_url, timeout)
            .context("building the HTTP client")?,
    );
    let routing = Arc::new(Routing::new(Duration::from_millis(cli.slow_after_ms)));

    // The workers get a runtime (and thread) of their own: bursts of processor answers
    // then never queue ahead of POST /payments, whose latency clients see.
    let worker_nice = cli.worker_nice;
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.worker_threads)
        .thread_name("payments-worker")
        .on_thread_start(move || start::lower_thread_priority(worker_nice))
        .enable_all()
        .build()
        .context("starting the worker runtime")?;
    background.spawn(health::run(
        queue.connection(),
        client.clone(),
        routing.clone(),
        instance.clone(),
        Duration::from_millis(cli.health_window_ms),
    ));
    let workers = Arc::new(Workers {
        queue: queue.clone(),
        pool: pool.clone(),
        client,
        routing,
        max_in_flight: cli.max_in_flight,
        lookup_after: Duration::from_millis(cli.lookup_after_ms),
        heartbeat_ttl: Duration::from_millis(cli.heartbeat_ttl_ms.max(300)),
    });
    background.spawn(workers.run());

    let addr = SocketAddr::new(cli.bind, cli.port);
    tracing::info!(%instance, "payments service");
    start::serve(
        "payments service",
        addr,
        payments::app(AppState { pool, queue }),
    )
    .await?;
    background.shutdown_background();
    Ok(())
}
