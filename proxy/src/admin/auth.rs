//! Admin API authentication, two ways in:
//! - scripts send `Authorization: Bearer <token>`, whose SHA-256 must equal
//!   `admin.token_sha256` (compared in constant time);
//! - the dashboard sends its session cookie (see [`super::session`]); a state-changing
//!   call (anything but GET/HEAD) must also carry the session's `X-CSRF-Token`, which a
//!   page on another origin cannot read, so it cannot forge the call.
//!
//! With no hash configured the admin API is disabled; `/health` and `/metrics` stay open.

use super::session::{cookie, same_secret, COOKIE};
use super::state::{error_response, AdminState, ApiError};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE as COOKIE_HEADER};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The configured admin token hash, or the 403 that says the admin API is off.
pub(super) fn configured(state: &AdminState) -> Result<[u8; 32], ApiError> {
    state
        .snapshot
        .load()
        .config
        .admin
        .token_sha256
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "the admin API is disabled: set admin.token_sha256 in the config",
            )
        })
}

/// `true` when `token` is the configured admin token.
pub(super) fn token_matches(token: &str, expected: &[u8; 32]) -> bool {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    bool::from(digest.ct_eq(expected))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// The session id in the request's cookie, if any.
pub(super) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie(h, COOKIE))
}

fn unauthorized(code: &str, message: &str) -> Response {
    error_response(StatusCode::UNAUTHORIZED, code, message)
}

pub(super) async fn require_admin(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    let expected = match configured(&state) {
        Ok(hash) => hash,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(token) = bearer(req.headers()) {
        return if token_matches(token, &expected) {
            next.run(req).await
        } else {
            unauthorized("invalid_admin_token", "the admin token is wrong")
        };
    }
    let Some(id) = session_id(req.headers()) else {
        return unauthorized(
            "missing_admin_token",
            "send the admin token as Authorization: Bearer <token>",
        );
    };
    let Some(session) = state.sessions.check(id, &expected) else {
        return unauthorized("session_expired", "the session has ended; sign in again");
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let csrf_ok = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|presented| same_secret(presented, &session.csrf));
    if safe || csrf_ok {
        next.run(req).await
    } else {
        error_response(
            StatusCode::FORBIDDEN,
            "csrf",
            "a state-changing call from the dashboard needs its X-CSRF-Token",
        )
    }
}
