//! The admin listener (loopback by default): `/health` and `/metrics` (open), the
//! admin API behind the admin token (a bearer token, or the dashboard's session):
//! `/admin/upstreams`, `/admin/stats`, `/admin/usage/*`, `/admin/config`,
//! `POST /admin/reload`, `/admin/keys`; and the dashboard at `/ui/`.
//!
//! An axum app served from a Pingora background service, so it starts after Pingora has
//! daemonized and stops with the server. The socket uses SO_REUSEPORT so that during a
//! graceful upgrade the new process can bind while the old one is still draining.

mod auth;
mod config_view;
mod keys;
mod live;
mod session;
mod state;
pub mod traffic;
mod ui;
mod usage;

use state::error_response;
pub use state::AdminState;

use crate::metrics::metrics;
use crate::reload::ReloadError;
use async_trait::async_trait;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tracing::{error, info};

/// The admin HTTP app.
pub fn app(state: AdminState) -> Router {
    let admin = Router::new()
        .route("/admin/upstreams", get(live::upstreams))
        .route("/admin/stats", get(live::stats))
        .route("/admin/usage/{*path}", get(usage::read))
        .route("/admin/config", get(config_view::show))
        .route("/admin/reload", post(reload))
        .route("/admin/keys", post(keys::create).get(keys::list))
        .route(
            "/admin/keys/{id}",
            get(keys::get).patch(keys::patch).delete(keys::revoke),
        )
        .route("/admin/keys/{id}/rotate", post(keys::rotate))
        .route("/admin/tiers", get(keys::tiers))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .merge(admin)
        .merge(ui::routes())
        .fallback(not_found)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("an admin handler panicked; answered 500");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            },
        ))
        .with_state(state)
}

async fn health(State(state): State<AdminState>) -> Json<Value> {
    Json(json!({ "status": "ok", "generation": state.snapshot.load().generation }))
}

async fn prometheus() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics().render(),
    )
}

async fn reload(State(state): State<AdminState>) -> Response {
    match state.reloader.reload().await {
        Ok(generation) => Json(json!({ "result": "ok", "generation": generation })).into_response(),
        Err(ReloadError::Invalid(errors)) => {
            let list: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "invalid_config", "message": errors.to_string(), "errors": list })),
            )
                .into_response()
        }
        Err(e @ ReloadError::RestartRequired(_)) => {
            error_response(StatusCode::BAD_REQUEST, "restart_required", &e.to_string())
        }
        Err(e @ ReloadError::Build(_)) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload_failed",
            &e.to_string(),
        ),
    }
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

/// Background service serving [`app`] on the admin address.
pub struct AdminService {
    addr: SocketAddr,
    state: AdminState,
}

impl AdminService {
    /// Serves the admin app on `addr`.
    pub fn new(addr: SocketAddr, state: AdminState) -> Self {
        Self { addr, state }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// How long to wait for the admin address to free up (an old process draining after a
/// graceful upgrade may hold it without SO_REUSEPORT).
const BIND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

async fn bind_with_patience(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + BIND_PATIENCE;
    let mut warned = false;
    loop {
        match bind(addr) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                if !warned {
                    tracing::warn!(%addr, "admin address in use (an old process draining?); retrying");
                    warned = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let listener = match bind_with_patience(self.addr).await {
            Ok(listener) => listener,
            Err(e) => {
                // Running without metrics and health would be flying blind; refuse.
                error!(error = %e, addr = %self.addr, "cannot bind the admin listener");
                std::process::exit(1);
            }
        };
        info!(addr = %self.addr, "admin listener up");
        let traffic = self.state.traffic.clone();
        let sampler_shutdown = shutdown.clone();
        tokio::spawn(async move { traffic.run(sampler_shutdown).await });
        let served = axum::serve(listener, app(self.state.clone()))
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(e) = served {
            error!(error = %e, "admin listener failed");
        }
    }
}
