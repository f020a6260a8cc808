//! What the admin handlers share: the state they are given and the JSON error they answer.

use super::session::Sessions;
use super::traffic::TrafficHistory;
use crate::reload::Reloader;
use crate::services::Services;
use crate::snapshot::SharedSnapshot;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The live config snapshot.
    pub snapshot: SharedSnapshot,
    /// Performs `POST /admin/reload`.
    pub reloader: Arc<Reloader>,
    /// Key store and friends.
    pub services: Arc<Services>,
    /// Dashboard sign-ins.
    pub sessions: Arc<Sessions>,
    /// The last minutes of request counters, for the dashboard.
    pub traffic: Arc<TrafficHistory>,
    /// Client for the analytics API (the dashboard's usage page).
    pub http: reqwest::Client,
}

impl AdminState {
    /// The state of a fresh admin listener: no sessions, no traffic history yet.
    pub fn new(snapshot: SharedSnapshot, reloader: Arc<Reloader>, services: Arc<Services>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            snapshot,
            reloader,
            services,
            sessions: Arc::default(),
            traffic: Arc::default(),
            http,
        }
    }
}

/// An admin API error: small to pass around, turned into a JSON response at the end.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error answered with `status`, `{"error": code, "message": message}`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, &self.message)
    }
}

/// A JSON error body with `status`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}
