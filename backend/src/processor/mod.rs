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

mod admin;
pub mod health_window;
mod pay;
mod state;

pub use state::{Processor, Settings};

use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;

/// The simulator's routes.
pub fn app(state: Arc<Processor>) -> Router {
    Router::new()
        .route("/payments", post(pay::pay))
        .route("/payments/service-health", get(pay::service_health))
        .route("/payments/{id}", get(pay::payment))
        .route("/admin/payments-summary", get(admin::summary))
        .route("/admin/configurations/token", put(admin::set_token))
        .route("/admin/configurations/delay", put(admin::set_delay))
        .route("/admin/configurations/failure", put(admin::set_failure))
        .route("/admin/purge-payments", post(admin::purge))
        .route("/admin/health-stats", get(admin::health_stats))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::{json, Value};
    use std::time::Duration;

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
