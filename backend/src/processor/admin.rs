//! The simulator's admin API (header `X-Rinha-Token`): the summary, the configuration
//! calls, purge and the health-call statistics.

use super::state::{message, Processor, Refusal};
use crate::rinha::{self, Range};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Admin handler.
pub(super) async fn summary(
    State(p): State<Arc<Processor>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    p.require_token(&headers)?;
    let range = Range::from_query(&query).map_err(Refusal::BadRequest)?;
    let (count, cents) = p
        .payments
        .lock()
        .map(|m| {
            m.values()
                .filter(|s| range.contains(s.requested_at))
                .fold((0u64, 0i64), |(n, c), s| (n + 1, c + s.cents))
        })
        .unwrap_or_default();
    let fee = serde_json::Number::from_f64(cents as f64 * p.fee / 100.0)
        .map(Value::Number)
        .unwrap_or(Value::Null);
    Ok(Json(json!({
        "totalRequests": count,
        "totalAmount": rinha::cents_to_json(cents),
        "totalFee": fee,
        "feePerTransaction": p.fee,
    }))
    .into_response())
}

/// Admin handler.
pub(super) async fn set_token(
    State(p): State<Arc<Processor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let value = p.admin_field(&headers, &body, "token")?;
    let token = value
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Refusal::BadRequest("token: must be a non-empty string".into()))?;
    match p.token.write() {
        Ok(mut current) => {
            *current = token.to_string();
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(_) => Ok(message(StatusCode::INTERNAL_SERVER_ERROR, "internal error")),
    }
}

/// Admin handler.
pub(super) async fn set_delay(
    State(p): State<Arc<Processor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let delay = p
        .admin_field(&headers, &body, "delay")?
        .as_u64()
        .ok_or_else(|| Refusal::BadRequest("delay: must be a whole number of ms".into()))?;
    let was = p.delay_ms.swap(delay, Ordering::Relaxed);
    Ok(Json(json!({"config": "delay", "was": was, "is": delay})).into_response())
}

/// Admin handler.
pub(super) async fn set_failure(
    State(p): State<Arc<Processor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let failure = p
        .admin_field(&headers, &body, "failure")?
        .as_bool()
        .ok_or_else(|| Refusal::BadRequest("failure: must be true or false".into()))?;
    let was = p.failing.swap(failure, Ordering::Relaxed);
    Ok(Json(json!({"config": "failure", "was": was, "is": failure})).into_response())
}

/// Admin handler.
pub(super) async fn purge(
    State(p): State<Arc<Processor>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    p.require_token(&headers)?;
    if let Ok(mut payments) = p.payments.lock() {
        payments.clear();
    }
    Ok(message(StatusCode::OK, "All payments purged."))
}

/// Admin handler.
pub(super) async fn health_stats(
    State(p): State<Arc<Processor>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    p.require_token(&headers)?;
    Ok(Json(json!({
        "calls": p.health_calls.load(Ordering::Relaxed),
        "queued": p.health_queued.load(Ordering::Relaxed),
        "rejected": p.health_rejected.load(Ordering::Relaxed),
    }))
    .into_response())
}
