//! Start-up shared by the services' binaries (todo, payments, processor, testupstream,
//! analytics): logging, the database (connected with retry, since a service may start
//! alongside it, then migrated), and serving an app on a bound listener until SIGTERM or
//! Ctrl-C, letting requests in flight finish. A handler that panics answers 500 and the
//! service goes on serving (see [`catch_panics`]).

use axum::response::IntoResponse;
use axum::Router;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a service waits for its database to accept connections.
const DATABASE_PATIENCE: Duration = Duration::from_secs(30);

/// Why a service could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database stayed unreachable.
    #[error("connecting to the database ({schema}): {source}")]
    Database {
        /// The service's schema.
        schema: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// The migrations failed.
    #[error("running the {schema} migrations: {source}")]
    Migrate {
        /// The service's schema.
        schema: String,
        /// Cause.
        source: MigrateError,
    },
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Logs to stderr (see [`crate::telemetry`]) and names the process `service` in its
/// metrics (see [`crate::service_metrics`]).
pub fn telemetry(service: &str) {
    crate::telemetry::init();
    crate::service_metrics::set_service(service);
}

/// A pool on `schema` (created if missing) with `migrations` applied.
pub async fn database(
    url: &str,
    schema: &str,
    max_connections: u32,
    migrations: &Migrator,
) -> Result<PgPool, StartError> {
    let pool = crate::db::connect_with_retry(url, schema, max_connections, DATABASE_PATIENCE)
        .await
        .map_err(|source| StartError::Database {
            schema: schema.to_string(),
            source,
        })?;
    crate::service_metrics::watch_pool(&pool);
    migrations
        .run(&pool)
        .await
        .map_err(|source| StartError::Migrate {
            schema: schema.to_string(),
            source,
        })?;
    Ok(pool)
}

/// Binds `addr` and serves `app` until SIGTERM or Ctrl-C.
pub async fn serve(name: &str, addr: SocketAddr, app: Router) -> Result<(), StartError> {
    serve_until(name, addr, app, crate::shutdown::signal()).await
}

/// Binds `addr` and serves `app` until `stop` resolves, then lets requests in flight
/// finish.
pub async fn serve_until(
    name: &str,
    addr: SocketAddr,
    app: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    tracing::info!(%addr, "{name} listening");
    axum::serve(
        listener,
        catch_panics(crate::service_metrics::instrument(app)),
    )
    .with_graceful_shutdown(stop)
    .await
    .map_err(StartError::Serve)
}

/// `app` with tower-http's `CatchPanicLayer`: a handler that panics answers 500 with the
/// usual JSON error (the panic message goes to the log, not the client) and the process
/// keeps serving.
pub fn catch_panics(app: Router) -> Router {
    app.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        panic_answer,
    ))
}

fn panic_answer(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    tracing::error!(panic = %what, "a request handler panicked; answered 500");
    let body = serde_json::json!({"error": "internal", "message": "internal error"});
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(body),
    )
        .into_response()
}

/// Lowers the calling thread's CPU priority to `nice` (on Linux, niceness is per thread).
/// Not being able to is logged and otherwise harmless.
pub fn lower_thread_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), nice) {
        tracing::warn!(error = %e, nice, "could not lower the thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_next_request_is_served() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = catch_panics(
            Router::new()
                .route("/boom", get(boom))
                .route("/ok", get(|| async { "ok" })),
        );
        let (status, body) = crate::test_support::call(&app, "GET", "/boom", &[], "").await;
        assert_eq!(status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(String::from_utf8_lossy(&body).contains("internal"));
        let (status, _) = crate::test_support::call(&app, "GET", "/ok", &[], "").await;
        assert_eq!(status, axum::http::StatusCode::OK);
    }
}
