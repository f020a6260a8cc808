//! `todo` — the todo REST service. `--port` and `DATABASE_URL` select the instance;
//! any number of instances can share one database.

use anyhow::Context;
use clap::Parser;
use sluice_backend::{db, todo};
use std::net::SocketAddr;
use std::time::Duration;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sluice_backend::telemetry::init();
    let cli = Cli::parse();
    let pool = db::connect_with_retry(
        &cli.database_url,
        "todo",
        cli.max_connections,
        Duration::from_secs(30),
    )
    .await
    .context("connecting to the database")?;
    todo::migrate(&pool)
        .await
        .context("running the todo migrations")?;

    let addr = SocketAddr::new(cli.bind, cli.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "todo service listening");
    axum::serve(listener, todo::app(todo::AppState { pool }))
        .with_graceful_shutdown(sluice_backend::shutdown::signal())
        .await
        .context("serving")?;
    Ok(())
}
