//! A payment-processor simulator with the Rinha de Backend 2025 processor API, for
//! running the payments service (and its k6 scenario) without the contest's containers.
//!
//! - `POST /payments {correlationId, amount, requestedAt}`: waits the configured delay,
//!   then fails (500) if told to, else stores the payment: 200, or 422 for a correlationId
//!   it already has. The work runs to the end even if the client hangs up, as a real
//!   processor's would: a timed-out call may still have been paid.
//! - `GET /payments/service-health` -> `{failing, minResponseTime}`: one call per fixed
//!   window, a few queued for later windows, then 429 + `Retry-After`.
//! - `GET /payments/{id}`: the stored payment, or 404.
//! - Admin (header `X-Rinha-Token`): `GET /admin/payments-summary?from&to`,
//!   `PUT /admin/configurations/{token,delay,failure}`, `POST /admin/purge-payments`, and
//!   (not in the contest API) `GET /admin/health-stats`, for tests that check callers
//!   respect the health limit.

pub mod health_window;

use crate::rinha::{self, Range};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use health_window::{Admission, HealthWindow};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// How a simulator instance is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Fee per transaction, as a fraction of the amount (0.05 default, 0.15 fallback).
    pub fee: f64,
    /// The initial admin token.
    pub token: String,
    /// Initial delay before answering a payment, ms.
    pub delay_ms: u64,
    /// Health-check window, ms (5000 in the contest).
    pub health_window_ms: u64,
    /// Health calls that may wait for later windows before the rest are refused.
    pub health_queue: u64,
    /// Payments processed at once.
    pub max_in_flight: usize,
    /// Payments waiting for a slot before the rest are refused (429).
    pub max_queued: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            fee: 0.05,
            token: "123".into(),
            delay_ms: 0,
            health_window_ms: 5000,
            health_queue: 2,
            max_in_flight: 800,
            max_queued: 500,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Stored {
    cents: i64,
    requested_at: DateTime<Utc>,
}

/// One simulator instance's state.
pub struct Processor {
    fee: f64,
    max_queued: usize,
    token: RwLock<String>,
    delay_ms: AtomicU64,
    failing: AtomicBool,
    payments: Mutex<HashMap<String, Stored>>,
    slots: Semaphore,
    waiting: AtomicUsize,
    health: Mutex<HealthWindow>,
    health_calls: AtomicU64,
    health_queued: AtomicU64,
    health_rejected: AtomicU64,
}

impl Processor {
    /// A simulator with `settings`, holding no payments.
    pub fn new(settings: &Settings) -> Arc<Self> {
        Arc::new(Self {
            fee: settings.fee,
            max_queued: settings.max_queued,
            token: RwLock::new(settings.token.clone()),
            delay_ms: AtomicU64::new(settings.delay_ms),
            failing: AtomicBool::new(false),
            payments: Mutex::new(HashMap::new()),
            slots: Semaphore::new(settings.max_in_flight.max(1)),
            waiting: AtomicUsize::new(0),
            health: Mutex::new(HealthWindow::new(
                settings.health_window_ms,
                settings.health_queue,
            )),
            health_calls: AtomicU64::new(0),
            health_queued: AtomicU64::new(0),
            health_rejected: AtomicU64::new(0),
        })
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get("x-rinha-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        self.token
            .read()
            // Constant time, so response timing does not reveal the token.
            .is_ok_and(|token| bool::from(given.ct_eq(token.as_bytes())))
    }
}

/// The simulator's routes.
pub fn app(state: Arc<Processor>) -> Router {
    Router::new()
        .route("/payments", post(pay))
        .route("/payments/service-health", get(service_health))
        .route("/payments/{id}", get(payment))
        .route("/admin/payments-summary", get(summary))
        .route("/admin/configurations/token", put(set_token))
        .route("/admin/configurations/delay", put(set_delay))
        .route("/admin/configurations/failure", put(set_failure))
        .route("/admin/purge-payments", post(purge))
        .route("/admin/health-stats", get(health_stats))
        .with_state(state)
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// The body as a JSON object, or the 400 message saying why not.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("body must be a JSON object".into()),
        Err(e) => Err(format!("body is not valid JSON: {e}")),
    }
}

fn bad_request(text: &str) -> Response {
    message(StatusCode::BAD_REQUEST, text)
}

/// A payment as the processor receives it.
struct PaymentRequest {
    correlation_id: String,
    cents: i64,
    requested_at: DateTime<Utc>,
}

fn parse_payment(body: &[u8]) -> Result<PaymentRequest, String> {
    let map = json_object(body)?;
    let correlation_id = map
        .get("correlationId")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or("correlationId: must be a UUID string")?
        .to_string();
    let cents = map
        .get("amount")
        .and_then(rinha::cents_from_json)
        .ok_or("amount: must be a positive number")?;
    let requested_at = map
        .get("requestedAt")
        .and_then(Value::as_str)
        .and_then(rinha::parse_instant)
        .ok_or("requestedAt: must be an RFC 3339 timestamp")?;
    Ok(PaymentRequest {
        correlation_id,
        cents,
        requested_at,
    })
}

async fn pay(State(p): State<Arc<Processor>>, body: Bytes) -> Response {
    let request = match parse_payment(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&e),
    };
    // Spawned so a client that hangs up does not cancel it: the payment is still made.
    let work = tokio::spawn(async move { process(&p, request).await });
    work.await
        .unwrap_or_else(|_| message(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

async fn process(p: &Processor, request: PaymentRequest) -> Response {
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
            requested_at: request.requested_at,
        },
    );
    message(StatusCode::OK, "payment processed successfully")
}

async fn service_health(State(p): State<Arc<Processor>>) -> Response {
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

async fn payment(State(p): State<Arc<Processor>>, Path(id): Path<String>) -> Response {
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

/// Why an admin call is refused.
#[derive(Debug)]
enum Refusal {
    /// Missing or wrong `X-Rinha-Token`.
    Unauthorized,
    /// A bad body or parameter; the message names it.
    BadRequest(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized => {
                message(StatusCode::UNAUTHORIZED, "X-Rinha-Token missing or wrong")
            }
            Self::BadRequest(text) => bad_request(&text),
        }
    }
}

impl Processor {
    fn require_token(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.authorized(headers) {
            Ok(())
        } else {
            Err(Refusal::Unauthorized)
        }
    }

    /// The token checked, the body's `field` (for the configuration calls).
    fn admin_field(&self, headers: &HeaderMap, body: &[u8], field: &str) -> Result<Value, Refusal> {
        self.require_token(headers)?;
        let mut map = json_object(body).map_err(Refusal::BadRequest)?;
        map.remove(field)
            .ok_or_else(|| Refusal::BadRequest(format!("{field}: missing")))
    }
}

async fn summary(
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

async fn set_token(
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

async fn set_delay(
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

async fn set_failure(
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

async fn purge(State(p): State<Arc<Processor>>, headers: HeaderMap) -> Result<Response, Refusal> {
    p.require_token(&headers)?;
    if let Ok(mut payments) = p.payments.lock() {
        payments.clear();
    }
    Ok(message(StatusCode::OK, "All payments purged."))
}

async fn health_stats(
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(t) = token {
            headers.push(("X-Rinha-Token", t));
        }
        let (status, bytes) = crate::test_support::call(app, method, uri, &headers, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    const ID: &str = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";

    fn payment_body(id: &str, at: &str) -> String {
        format!(r#"{{"correlationId":"{id}","amount":19.9,"requestedAt":"{at}"}}"#)
    }

    #[tokio::test]
    async fn pays_once_and_summarises_by_requested_at() {
        let app = app(Processor::new(&Settings::default()));
        let body = payment_body(ID, "2025-07-15T12:00:00.000Z");
        let (s, v) = call(&app, "POST", "/payments", None, &body).await;
        assert_eq!(
            (s, v["message"].as_str()),
            (StatusCode::OK, Some("payment processed successfully"))
        );
        let (s, _) = call(&app, "POST", "/payments", None, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, v) = call(&app, "GET", &format!("/payments/{ID}"), None, "").await;
        assert_eq!((s, v["amount"].as_f64()), (StatusCode::OK, Some(19.9)));
        let (s, _) = call(&app, "POST", "/payments", None, r#"{"correlationId":"x"}"#).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        let uri =
            "/admin/payments-summary?from=2025-07-15T12:00:00.000Z&to=2025-07-15T12:00:00.000Z";
        let (s, _) = call(&app, "GET", uri, None, "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, v) = call(&app, "GET", uri, Some("123"), "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["totalRequests"], 1);
        assert_eq!(v["totalAmount"].as_f64(), Some(19.9));
        assert_eq!(v["feePerTransaction"].as_f64(), Some(0.05));
        let later = "/admin/payments-summary?from=2025-07-15T12:00:00.001Z";
        let (_, v) = call(&app, "GET", later, Some("123"), "").await;
        assert_eq!(v["totalRequests"], 0);

        let (s, _) = call(&app, "POST", "/admin/purge-payments", Some("123"), "").await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = call(&app, "GET", &format!("/payments/{ID}"), None, "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_comes_first_then_failure() {
        let app = app(Processor::new(&Settings::default()));
        let (s, v) = call(
            &app,
            "PUT",
            "/admin/configurations/delay",
            Some("123"),
            r#"{"delay":100}"#,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v, json!({"config": "delay", "was": 0, "is": 100}));
        let (_, v) = call(
            &app,
            "PUT",
            "/admin/configurations/failure",
            Some("123"),
            r#"{"failure":true}"#,
        )
        .await;
        assert_eq!(v, json!({"config": "failure", "was": false, "is": true}));
        let start = tokio::time::Instant::now();
        let body = payment_body(ID, "2025-07-15T12:00:00.000Z");
        let (s, _) = call(&app, "POST", "/payments", None, &body).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(start.elapsed() >= Duration::from_millis(100));
        let (_, v) = call(&app, "GET", "/payments/service-health", None, "").await;
        assert_eq!(v, json!({"failing": true, "minResponseTime": 100}));
        // The failed payment was not stored.
        let (s, _) = call(&app, "GET", &format!("/payments/{ID}"), None, "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        let (s, _) = call(
            &app,
            "PUT",
            "/admin/configurations/token",
            Some("123"),
            r#"{"token":"abc"}"#,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(&app, "POST", "/admin/purge-payments", Some("123"), "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = call(&app, "POST", "/admin/purge-payments", Some("abc"), "").await;
        assert_eq!(s, StatusCode::OK);
    }

    #[tokio::test]
    async fn health_calls_beyond_the_queue_get_429() {
        let settings = Settings {
            health_window_ms: 60_000,
            health_queue: 0,
            ..Settings::default()
        };
        let app = app(Processor::new(&settings));
        let (s, _) = call(&app, "GET", "/payments/service-health", None, "").await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = call(&app, "GET", "/payments/service-health", None, "").await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        let (_, v) = call(&app, "GET", "/admin/health-stats", Some("123"), "").await;
        assert_eq!(v, json!({"calls": 1, "queued": 0, "rejected": 1}));
    }
}
