//! `testupstream` — a controllable upstream (latency distribution, failure share, counts
//! of requests and of clients that went away), for resilience tests and demos.

use clap::Parser;
use sluice_backend::start;
use sluice_backend::testupstream;
use std::net::SocketAddr;
use std::sync::Arc;

/// A controllable upstream; see `GET /admin/config`, `PUT /admin/config`, `GET /admin/stats`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Port to listen on.
    #[arg(long, default_value_t = 8201)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
}

/// Runs the testupstream service until it is stopped; public for `sluice-services`, which
/// includes this file as a module.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    start::telemetry("testupstream");
    let cli = Cli::parse();
    let addr = SocketAddr::new(cli.bind, cli.port);
    let app = testupstream::app(Arc::new(testupstream::Upstream::default()));
    start::serve("test upstream", addr, app).await?;
    Ok(())
}
