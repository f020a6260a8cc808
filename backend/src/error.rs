//! The services' error type: clients get a clear JSON message, 5xx details go to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// A query parameter is wrong; the message names it.
    #[error("{0}")]
    InvalidParameter(String),
    /// The body is not valid JSON.
    #[error("{0}")]
    InvalidJson(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The database could not be reached.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: logged, answered 500 without details.
    #[error("internal error")]
    Internal(#[source] sqlx::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Internal(e)
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
            Self::InvalidParameter(m) => (StatusCode::BAD_REQUEST, "invalid_parameter", m.clone()),
            Self::InvalidJson(m) => (StatusCode::BAD_REQUEST, "invalid_json", m.clone()),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            Self::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable; try again shortly".to_string(),
                )
            }
            Self::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_string(),
                )
            }
        };
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}
