//! `todo` — the todo REST service. `--port` and `DATABASE_URL` select the instance;
//! any number of instances can share one database.

use clap::Parser;
use sluice_backend::{start, todo};
use std::net::SocketAddr;

/// The todo REST service on PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Port to listen on.
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Pool size.
    #[arg(long, default_value_t = 16)]
    max_connections: u32,
}

/// Runs the todo service until it is stopped; public for `sluice-services`, which
/// includes this file as a module.
#[tokio::main]
pub async fn main() -> anyhow::Result<()> {
    start::telemetry("todo");
    let cli = Cli::parse();
    let pool = start::database(
        &cli.database_url,
        "todo",
        cli.max_connections,
        &todo::MIGRATIONS,
    )
    .await?;
    let addr = SocketAddr::new(cli.bind, cli.port);
    start::serve("todo service", addr, todo::app(todo::AppState { pool })).await?;
    Ok(())
}
