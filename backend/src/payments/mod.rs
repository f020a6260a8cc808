//! The payments service (Rinha de Backend 2025 API), run as several identical instances.
//!
//! - `POST /payments {correlationId, amount}`: validated, queued in Redis, answered 202 (200
//!   for a correlationId accepted before); workers pay it later (see [`worker`]).
//! - `GET /payments-summary?from&to`: what each processor confirmed, by `requestedAt`.
//! - `POST /purge-payments`: forgets everything (ledger and queue).
//! - `GET /health`, `GET /metrics` (Prometheus) and `GET /queue-stats` (accepted /
//!   queued / processing) for operators.

pub mod client;
pub mod health;
pub mod ledger;
pub mod metrics;
pub mod queue;
pub mod routing;
pub mod worker;

use crate::error::AppError;
use crate::rinha::{self, Range};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use queue::Queue;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;

/// Longest wait for the queue when accepting a payment.
const ACCEPT_TIMEOUT: Duration = Duration::from_millis(500);

/// One of the two processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Which {
    /// The cheaper one (fee 5% in the contest).
    Default,
    /// The one to use when the default fails (fee 15%).
    Fallback,
}

impl Which {
    /// The name used in summaries and storage.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Fallback => "fallback",
        }
    }

    /// The processor called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "default" => Some(Self::Default),
            "fallback" => Some(Self::Fallback),
            _ => None,
        }
    }
}

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The ledger (schema `payments`).
    pub pool: PgPool,
    /// The shared queue.
    pub queue: Queue,
}

/// The HTTP app.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/payments", post(accept))
        .route("/payments-summary", get(summary))
        .route("/purge-payments", post(purge))
        .route("/queue-stats", get(queue_stats))
        .route("/health", get(health_check))
        .route("/metrics", get(crate::service_metrics::handler))
        .fallback(|| async {
            AppError::NotFound("no such endpoint; see POST /payments, GET /payments-summary".into())
        })
        .with_state(state)
}

fn queue_unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "payment queue unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "error": "queue_unavailable",
            "message": "the payment queue is unavailable; try again shortly",
        })),
    )
        .into_response()
}

/// A valid `POST /payments` body: (correlationId, cents).
fn parse_payment(body: &[u8]) -> Result<(String, i64), AppError> {
    match rinha::parse_payment(body, false) {
        Ok(p) => Ok((p.correlation_id, p.cents)),
        Err(e @ rinha::BodyError::Json(_)) => Err(AppError::InvalidJson(e.to_string())),
        Err(e) => Err(AppError::BadRequest(e.to_string())),
    }
}

async fn accept(State(state): State<AppState>, body: Bytes) -> Response {
    let (id, cents) = match parse_payment(&body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // Bounded: a Redis that does not answer gets the client a prompt 503 (to retry; the
    // correlationId makes a retry safe), never a hang.
    let (result, response) =
        match tokio::time::timeout(ACCEPT_TIMEOUT, state.queue.accept(&id, cents)).await {
            Ok(Ok(true)) => (
                "new",
                (
                    StatusCode::ACCEPTED,
                    Json(json!({"correlationId": id, "status": "accepted"})),
                )
                    .into_response(),
            ),
            Ok(Ok(false)) => (
                "duplicate",
                (
                    StatusCode::OK,
                    Json(json!({"correlationId": id, "status": "already accepted"})),
                )
                    .into_response(),
            ),
            Ok(Err(e)) => ("unavailable", queue_unavailable(&e)),
            Err(_) => ("unavailable", queue_unavailable(&"no answer in time")),
        };
    metrics::metrics()
        .accepted
        .with_label_values(&[result])
        .inc();
    response
}

fn totals_json(t: ledger::Totals) -> Value {
    json!({"totalRequests": t.count, "totalAmount": rinha::cents_to_json(t.cents)})
}

async fn summary(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let range = Range::from_query(&query).map_err(AppError::BadRequest)?;
    let (default, fallback) = ledger::summary(&state.pool, range.from, range.to).await?;
    Ok(Json(json!({
        "default": totals_json(default),
        "fallback": totals_json(fallback),
    })))
}

async fn purge(State(state): State<AppState>) -> Response {
    if let Err(e) = state.queue.purge().await {
        return queue_unavailable(&e);
    }
    match ledger::purge(&state.pool).await {
        Ok(()) => Json(json!({"message": "All payments purged."})).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

async fn queue_stats(State(state): State<AppState>) -> Response {
    match state.queue.stats().await {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => queue_unavailable(&e),
    }
}

/// 200 when both the queue and the ledger answer within a second.
async fn health_check(State(state): State<AppState>) -> Response {
    let checks = async {
        let mut conn = state.queue.connection();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query("SELECT 1")
            .execute(&state.pool)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(Duration::from_secs(1), checks).await {
        Ok(Ok(())) => Json(json!({"status": "ok"})).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "timeout"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = parse_payment(
            br#"{"correlationId":"4A7901B8-7D26-4D9D-AA19-4DC1C7CF60B3","amount":19.90}"#,
        );
        assert_eq!(
            ok.expect("valid"),
            ("4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3".to_string(), 1990)
        );
        let message = |body: &[u8]| parse_payment(body).expect_err("invalid").to_string();
        assert!(message(b"{").starts_with("body is not valid JSON"));
        assert!(message(b"[]").starts_with("body must be"));
        assert!(message(br#"{"correlationId":"x","amount":1}"#).starts_with("correlationId"));
        assert!(
            message(br#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"}"#)
                .starts_with("amount")
        );
    }
}
