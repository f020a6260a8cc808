//! One simulator instance's state and settings, and the answers its handlers share.

use super::health_window::HealthWindow;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
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

/// A payment the simulator holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stored {
    pub(super) cents: i64,
    pub(super) requested_at: DateTime<Utc>,
}

/// One simulator instance's state.
pub struct Processor {
    pub(super) fee: f64,
    pub(super) max_queued: usize,
    pub(super) token: RwLock<String>,
    pub(super) delay_ms: AtomicU64,
    pub(super) failing: AtomicBool,
    pub(super) payments: Mutex<HashMap<String, Stored>>,
    pub(super) slots: Semaphore,
    pub(super) waiting: AtomicUsize,
    pub(super) health: Mutex<HealthWindow>,
    pub(super) health_calls: AtomicU64,
    pub(super) health_queued: AtomicU64,
    pub(super) health_rejected: AtomicU64,
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

/// A `{"message": text}` answer.
pub(super) fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// The body as a JSON object, or the 400 message saying why not.
pub(super) fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("body must be a JSON object".into()),
        Err(e) => Err(format!("body is not valid JSON: {e}")),
    }
}

/// A 400 with `text`.
pub(super) fn bad_request(text: &str) -> Response {
    message(StatusCode::BAD_REQUEST, text)
}

/// Why an admin call is refused.
#[derive(Debug)]
pub(super) enum Refusal {
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
    /// The admin token checked.
    pub(super) fn require_token(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.authorized(headers) {
            Ok(())
        } else {
            Err(Refusal::Unauthorized)
        }
    }

    /// The token checked, the body's `field` (for the configuration calls).
    pub(super) fn admin_field(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        field: &str,
    ) -> Result<Value, Refusal> {
        self.require_token(headers)?;
        let mut map = json_object(body).map_err(Refusal::BadRequest)?;
        map.remove(field)
            .ok_or_else(|| Refusal::BadRequest(format!("{field}: missing")))
    }
}
