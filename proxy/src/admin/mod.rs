//! The admin listener (loopback by default): `/health`, `/metrics`, `/admin/upstreams`.
//!
//! An axum app served from a Pingora background service, so it starts after Pingora has
//! daemonized and stops with the server.

use crate::metrics::metrics;
use crate::snapshot::SharedSnapshot;
use async_trait::async_trait;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tracing::{error, info};

/// The admin HTTP app over the shared snapshot.
pub fn app(snapshot: SharedSnapshot) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .route("/admin/upstreams", get(upstreams))
        .fallback(not_found)
        .with_state(snapshot)
}

async fn health(State(snapshot): State<SharedSnapshot>) -> Json<Value> {
    Json(json!({ "status": "ok", "generation": snapshot.load().generation }))
}

async fn prometheus() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics().render(),
    )
}

async fn upstreams(State(snapshot): State<SharedSnapshot>) -> Json<Value> {
    let snapshot = snapshot.load();
    let groups: serde_json::Map<String, Value> = snapshot
        .upstreams
        .iter()
        .map(|(name, group)| {
            let peers: Vec<Value> = group
                .peer_health()
                .into_iter()
                .map(|(addr, healthy)| json!({ "peer": addr.to_string(), "healthy": healthy }))
                .collect();
            (name.clone(), json!({ "peers": peers }))
        })
        .collect();
    Json(json!({ "generation": snapshot.generation, "upstreams": groups }))
}

async fn not_found() -> impl IntoResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "message": "no such admin endpoint" })),
    )
}

/// Background service serving [`app`] on the admin address.
pub struct AdminService {
    addr: SocketAddr,
    snapshot: SharedSnapshot,
}

impl AdminService {
    /// Serves the admin app for `snapshot` on `addr`.
    pub fn new(addr: SocketAddr, snapshot: SharedSnapshot) -> Self {
        Self { addr, snapshot }
    }
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let listener = match tokio::net::TcpListener::bind(self.addr).await {
            Ok(listener) => listener,
            Err(e) => {
                // Running without metrics and health would be flying blind; refuse.
                error!(error = %e, addr = %self.addr, "cannot bind the admin listener");
                std::process::exit(1);
            }
        };
        info!(addr = %self.addr, "admin listener up");
        let served = axum::serve(listener, app(self.snapshot.clone()))
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(e) = served {
            error!(error = %e, "admin listener failed");
        }
    }
}
