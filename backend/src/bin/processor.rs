//! `processor` — a payment-processor simulator with the Rinha de Backend 2025 processor
//! API. The stack runs two: default on 8001 (fee 0.05) and fallback on 8002 (fee 0.15).

use clap::Parser;
use sluice_backend::processor::{self, Processor, Settings};
use sluice_backend::start;
use std::net::SocketAddr;

/// A payment-processor simulator (Rinha de Backend 2025 API).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Port to listen on.
    #[arg(long, default_value_t = 8001)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Fee per transaction, as a fraction of the amount.
    #[arg(long, default_value_t = 0.05)]
    fee: f64,
    /// Initial admin token (header X-Rinha-Token).
    #[arg(long, env = "PROCESSOR_TOKEN", default_value = "123")]
    token: String,
    /// Initial delay of every payment, ms.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// service-health allows one call per window of this many ms.
    #[arg(long, default_value_t = 5000)]
    health_window_ms: u64,
    /// service-health calls queued for later windows before 429.
    #[arg(long, default_value_t = 2)]
    health_queue: u64,
    /// Payments processed at once.
    #[arg(long, default_value_t = 800)]
    max_in_flight: usize,
    /// Payments waiting for a slot before 429.
    #[arg(long, default_value_t = 500)]
    max_queued: usize,
}

/// Runs the processor service until it is stopped; public for `sluice-services`, which
/// includes this file as a module.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    start::telemetry("processor");
    let cli = Cli::parse();
    anyhow::ensure!(
        (0.0..1.0).contains(&cli.fee),
        "--fee must be a fraction from 0 to 1, got {}",
        cli.fee
    );
    let settings = Settings {
        fee: cli.fee,
        token: cli.token,
        delay_ms: cli.delay_ms,
        health_window_ms: cli.health_window_ms,
        health_queue: cli.health_queue,
        max_in_flight: cli.max_in_flight,
        max_queued: cli.max_queued,
    };
    let addr = SocketAddr::new(cli.bind, cli.port);
    tracing::info!(fee = settings.fee, "payment processor simulator");
    let app = processor::app(Processor::new(&settings));
    start::serve("payment processor simulator", addr, app).await?;
    Ok(())
}
