//! The contest's processor API: `POST /payments`, `GET /payments/service-health` and
//! `GET /payments/{id}`.

use super::health_window::Admission;
use super::state::{bad_request, message, Processor, Stored};
use crate::rinha;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// `POST /payments`: `requestedAt` is required here (the summary counts by it).
pub(super) async fn pay(State(p): State<Arc<Processor>>, body: Bytes) -> Response {
    let request = match rinha::parse_payment(&body, true) {
        Ok(r) => r,
        Err(e) => return bad_request(&e.to_string()),
    };
    // Spawned so a client that hangs up does not cancel it: the payment is still made.
    let work = tokio::spawn(async move { process(&p, request).await });
    work.await
        .unwrap_or_else(|_| message(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

async fn process(p: &Processor, request: rinha::PaymentBody) -> Response {
    let _slot = match p.slots.try_acquire() {
        Ok(slot) => slot,
        Err(_) => {
            if p.waiting.fetch_add(1, Ordering::AcqRel) >= p.max_queued {
                p.waiting.fetch_sub(1, Ordering::AcqRel);
                return message(StatusCode::TOO_MANY_REQUESTS, "too many payments in flight");
            }
            let slot = p.slots.acquire().await;
            p.waiting.fetch_sub(1, Ordering::AcqRel);
            match slot {
                Ok(slot) => slot,
                Err(_) => return message(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
            }
        }
    };
    let delay = p.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if p.failing.load(Ordering::Relaxed) {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the payment processor is failing",
        );
    }
    let Some(requested_at) = request.requested_at else {
        return bad_request("requestedAt: must be an RFC 3339 timestamp");
    };
    let Ok(mut payments) = p.payments.lock() else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    if payments.contains_key(&request.correlation_id) {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "CorrelationId already exists",
        );
    }
    payments.insert(
        request.correlation_id,
        Stored {
            cents: request.cents,
            requested_at,
        },
    );
    message(StatusCode::OK, "payment processed successfully")
}

/// `GET /payments/service-health`: one call per window, a few queued, then 429.
pub(super) async fn service_health(State(p): State<Arc<Processor>>) -> Response {
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    let admission = match p.health.lock() {
        Ok(mut window) => window.admit(now_ms),
        Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    };
    match admission {
        Admission::Now => {}
        Admission::At(at_ms) => {
            p.health_queued.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(at_ms.saturating_sub(now_ms))).await;
        }
        Admission::Rejected => {
            p.health_rejected.fetch_add(1, Ordering::Relaxed);
            let mut response = message(
                StatusCode::TOO_MANY_REQUESTS,
                "service-health is limited to one call per window",
            );
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("5"));
            return response;
        }
    }
    p.health_calls.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "failing": p.failing.load(Ordering::Relaxed),
        "minResponseTime": p.delay_ms.load(Ordering::Relaxed),
    }))
    .into_response()
}

/// `GET /payments/{id}`.
pub(super) async fn payment(State(p): State<Arc<Processor>>, Path(id): Path<String>) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return message(StatusCode::NOT_FOUND, "no such payment");
    };
    let found = p
        .payments
        .lock()
        .ok()
        .and_then(|m| m.get(&id.to_string()).copied());
    match found {
        Some(s) => Json(json!({
            "correlationId": id.to_string(),
            "amount": rinha::cents_to_json(s.cents),
            "requestedAt": rinha::format_instant(s.requested_at),
        }))
        .into_response(),
        None => message(StatusCode::NOT_FOUND, "no such payment"),
    }
}
