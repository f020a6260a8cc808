//! A controllable upstream for resilience tests and demos.
//!
//! Every path except `/health` and `/admin/*` is answered `200 ok` (or `500` for the
//! configured failure share) after the configured delay: `delay_percent`% of requests
//! wait `delay_ms`, the rest `base_delay_ms`. Selection is by request number, not chance
//! (request n is delayed when n mod 100 < delay_percent), so runs are reproducible.
//! It counts requests received, answered, and those whose client went away before the
//! answer (a cancelled hedge shows up there).
//!
//! - `GET /admin/config`, `PUT /admin/config {base_delay_ms?, delay_ms?, delay_percent?, fail_percent?}`
//! - `GET /admin/stats` -> `{received, answered, client_gone}`; `POST /admin/reset`

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The behaviour, changed at run time.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Behaviour {
    /// Delay of every request not picked for the long delay.
    pub base_delay_ms: u64,
    /// The long delay.
    pub delay_ms: u64,
    /// Share (0..=100) of requests that get the long delay.
    pub delay_percent: u64,
    /// Share (0..=100) of requests answered 500.
    pub fail_percent: u64,
}

/// Shared state.
#[derive(Default)]
pub struct Upstream {
    behaviour: Mutex<Behaviour>,
    received: AtomicU64,
    answered: AtomicU64,
    client_gone: AtomicU64,
}

/// The app.
pub fn app(state: Arc<Upstream>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/admin/config", get(show).put(change))
        .route("/admin/stats", get(stats))
        .route("/admin/reset", post(reset))
        .fallback(serve)
        .with_state(state)
}

async fn show(State(s): State<Arc<Upstream>>) -> Json<Behaviour> {
    Json(s.behaviour.lock().map(|b| *b).unwrap_or_default())
}

async fn change(State(s): State<Arc<Upstream>>, body: axum::body::Bytes) -> Response {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_json", "message": "body must be a JSON object"})),
        )
            .into_response();
    };
    let Ok(mut b) = s.behaviour.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut next = *b;
    for (field, value) in &map {
        let Some(n) = value.as_u64() else {
            let message = format!("{field}: must be a whole number");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "message": message})),
            )
                .into_response();
        };
        match field.as_str() {
            "base_delay_ms" => next.base_delay_ms = n,
            "delay_ms" => next.delay_ms = n,
            "delay_percent" if n <= 100 => next.delay_percent = n,
            "fail_percent" if n <= 100 => next.fail_percent = n,
            other => {
                let message =
                    format!("{other}: unknown, or out of range (percentages are 0..=100)");
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "invalid_request", "message": message})),
                )
                    .into_response();
            }
        }
    }
    *b = next;
    Json(next).into_response()
}

async fn stats(State(s): State<Arc<Upstream>>) -> Json<Value> {
    Json(json!({
        "received": s.received.load(Ordering::Relaxed),
        "answered": s.answered.load(Ordering::Relaxed),
        "client_gone": s.client_gone.load(Ordering::Relaxed),
    }))
}

async fn reset(State(s): State<Arc<Upstream>>) -> StatusCode {
    s.received.store(0, Ordering::Relaxed);
    s.answered.store(0, Ordering::Relaxed);
    s.client_gone.store(0, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

/// Counts the request as client-gone unless it is answered: hyper drops the handler
/// future when the client disconnects mid-wait.
struct Answering<'a> {
    upstream: &'a Upstream,
    answered: bool,
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        let counter = if self.answered {
            &self.upstream.answered
        } else {
            &self.upstream.client_gone
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn serve(State(s): State<Arc<Upstream>>) -> Response {
    let n = s.received.fetch_add(1, Ordering::Relaxed);
    let b = s.behaviour.lock().map(|b| *b).unwrap_or_default();
    let mut guard = Answering {
        upstream: &s,
        answered: false,
    };
    let delay = if n % 100 < b.delay_percent {
        b.delay_ms
    } else {
        b.base_delay_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    // A different stride for failures, so delayed and failing requests are not the same.
    let fails = (n * 7 + 3) % 100 < b.fail_percent;
    guard.answered = true;
    if fails {
        (StatusCode::INTERNAL_SERVER_ERROR, "failed on purpose").into_response()
    } else {
        "ok".into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
        let (status, bytes) = crate::test_support::call(app, method, uri, &[], body).await;
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn delays_and_failures_follow_the_configured_shares() {
        let app = app(Arc::new(Upstream::default()));
        let (status, _) = call(
            &app,
            "PUT",
            "/admin/config",
            r#"{"delay_ms":300,"delay_percent":10,"fail_percent":20}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let mut slow = 0;
        let mut failed = 0;
        for _ in 0..100 {
            let start = tokio::time::Instant::now();
            let (status, _) = call(&app, "GET", "/x", "").await;
            if start.elapsed() >= Duration::from_millis(300) {
                slow += 1;
            }
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                failed += 1;
            }
        }
        assert_eq!((slow, failed), (10, 20));
        let (_, stats) = call(&app, "GET", "/admin/stats", "").await;
        assert_eq!(stats, r#"{"answered":100,"client_gone":0,"received":100}"#);
        let (status, body) = call(&app, "PUT", "/admin/config", r#"{"delay_percent":101}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
}
