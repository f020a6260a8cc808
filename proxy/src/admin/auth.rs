//! Admin API authentication: `Authorization: Bearer <token>`, whose SHA-256 must equal
//! `admin.token_sha256` (compared in constant time). With no hash configured the admin
//! API is disabled; `/health` and `/metrics` stay open.

use super::state::{error_response, AdminState};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub(super) async fn require_admin(
    State(state): State<AdminState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.snapshot.load().config.admin.token_sha256 else {
        return error_response(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin API is disabled: set admin.token_sha256 in the config",
        );
    };
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = presented else {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "missing_admin_token",
            "send the admin token as Authorization: Bearer <token>",
        );
    };
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if bool::from(digest.ct_eq(&expected)) {
        next.run(req).await
    } else {
        error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "the admin token is wrong",
        )
    }
}
